"""The package's folders are its layers, and imports run one way (hooks/__init__.py)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hooks"
# Each layer and the layers it may import; everything else of `hooks` is above it.
ALLOWED = {
    "request": set(),
    "dittofs": {"request"},
    "children": {"dittofs", "request"},
    "web": {"children", "dittofs", "request"},
    "tools": {"web", "children", "dittofs", "request"},
}


def _imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hooks."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hooks.")}
    return found


def test_every_module_sits_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py"}]
    assert loose == []
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_run_downward(layer):
    for path in sorted((PACKAGE / layer).glob("*.py")):
        above = _imported_layers(path) - ALLOWED[layer] - {layer}
        assert not above, f"{path.relative_to(PACKAGE)} imports {sorted(above)}"


def test_the_core_never_imports_flask():
    for layer in ("request", "dittofs", "children"):
        for path in (PACKAGE / layer).glob("*.py"):
            text = path.read_text()
            assert "import flask" not in text and "from flask" not in text, path
