"""The shell commands the README and docs/ show, run as a reader would: each page's `sh`
blocks, in order, through bash with the real kubectl (tests/kubectl.py) against a real
kube-apiserver of the page's own (tests/apiserver.py), in a folder that holds the repository's
files by their relative paths. The lines that cannot run here are named with the test that
stands for them instead.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests import apiserver as kube, kubectl as k
from tests.test_kubectl import install_stand_ins

pytestmark = pytest.mark.apiserver

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
# (what a command starts with or holds, why it is not run here)
NOT_RUN = (
    ("make ", "the suite itself, and the server `make serve` starts (tests/test_http.py)"),
    ("docker ", "no image registry here (the Dockerfile is checked by tests/test_manifests.py)"),
    ("curl ", "tests/test_http.py checks the answer it prints"),
    ("helm ", "tests/test_chart.py installs and upgrades the chart"),
    (" rollout status ", "no kubelet here: no pod ever runs"),
    (" -w", "a watch never ends"),
)
LINKED = ("examples", "metacontroller", "charts", ".venv")
# What a page takes as given, which another page shows how to get: run before its own commands.
GIVEN = {
    "docs/development.md": ["kubectl create namespace dittofs-demo",
                            "kubectl -n dittofs-demo apply -f metacontroller/example-dittoserver.yaml"],
    "docs/moving-over.md": ["kubectl create namespace storage",
                            "kubectl -n storage apply -f examples/shares-and-users.yaml"],
    "docs/tls-and-webhook-auth.md": ["kubectl apply -k metacontroller/"],
}
# Exit codes that mean something else than failure (`hooks diff`: 1 means "changes").
ALSO_FINE = {"-m hooks diff ": 1}


def as_run(command: str) -> str:
    """The command as the test runs it: as shown, with an exit code that is an answer taken as one."""
    for text, code in ALSO_FINE.items():
        if text in command:
            return f"{{ {command}\n}} || test $? -eq {code}"
    return command


def commands(page: str) -> list[str]:
    """The commands of a page's `sh` blocks: continuation lines joined, and a quoted argument
    that spans lines (a program given to python3 -c) kept whole."""
    text = (ROOT / page).read_text()
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        current = ""
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            current = f"{current}\n{line}" if current else line.strip()
            try:
                shlex.split(current, comments=True)
            except ValueError:   # a quotation still open: the command goes on
                continue
            if current and not current.startswith("#"):
                found.append(current)
            current = ""
    return found


def not_run(command: str) -> str | None:
    return next((why for text, why in NOT_RUN if command.startswith(text) or text in f" {command} "), None)


def test_every_page_with_commands_is_covered_and_every_left_out_line_has_its_reason():
    pages = [page for page in PAGES if commands(page)]
    assert {"README.md", "docs/install.md", "docs/shares-and-users.md", "docs/moving-over.md"} <= set(pages)
    ran = [c for page in pages for c in commands(page) if not_run(c) is None]
    assert any(c.startswith("kubectl ") for c in ran) and any(".venv/bin/python -m hooks" in c for c in ran)


@pytest.mark.parametrize("page", [p for p in PAGES if any(not_run(c) is None for c in commands(p))])
def test_the_commands_a_page_shows_run(page, tmp_path):
    script = [*GIVEN.get(page, []), *(as_run(c) for c in commands(page) if not_run(c) is None)]
    with kube.running() as api:
        tools = k.tools(api, tmp_path / "tools")
        install_stand_ins(tools)
        for crd in sorted((ROOT / "metacontroller").glob("crd*.yaml")):
            tools.kubectl("apply", "-f", str(crd))
        tools.kubectl("wait", "--for=condition=Established", "crd", "--all", f"--timeout={kube.READY_TIMEOUT_S:.0f}s")
        work = tmp_path / "reader"
        work.mkdir()
        for name in LINKED:
            (work / name).symlink_to(ROOT / name)
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "kubectl").symlink_to(k.kubectl_binary())
        env = {**tools.env(), "PATH": f"{tmp_path / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(script)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=k.TIMEOUT_S)
    assert done.returncode == 0, f"{page}:\n" + "\n".join(script) + f"\n--- out:\n{done.stdout}\n--- err:\n{done.stderr}"
    if any("get dittoshares" in line for line in script):   # what the reader is told to look at
        assert "dittoshare.dittofs.dittofs.com/export" in done.stdout, done.stdout
    if any("-m hooks adopt" in line for line in script):
        assert "# 1. Stop the Go operator" in done.stdout, done.stdout
