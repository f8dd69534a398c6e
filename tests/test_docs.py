"""The docs hold together: README.md is the front page that maps every page of docs/, and every
relative link in them leads to a file of the repository (no anchors, nothing outside it)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
# [text](target): the target up to the closing parenthesis; code spans and fences are left out.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text):
    """The text outside fenced code blocks and inline code spans (links there are not links)."""
    outside = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", outside)


def links(page):
    return LINK.findall(prose(page.read_text()))


def test_there_are_pages_and_links_to_check():
    assert len(PAGES) >= 10
    assert len(links(ROOT / "README.md")) >= len(PAGES)


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_link_is_a_file_of_the_repository_without_an_anchor(page):
    for target in links(page):
        assert not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE), f"{page.name}: {target} leaves the repository"
        assert "#" not in target, f"{page.name}: {target} has an anchor"
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} is outside the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / target).resolve() for target in links(ROOT / "README.md")}
    assert [p.name for p in PAGES if p.resolve() not in linked] == []


def test_the_links_regex_finds_what_a_reader_sees(tmp_path):
    # A link inside code is not a link; one in prose is, whatever its text.
    page = tmp_path / "p.md"
    page.write_text("see [a](docs/a.md) and `[b](b.md)`\n```\n[c](c.md)\n```\n[`d`](d.md)\n")
    assert links(page) == ["docs/a.md", "d.md"]


def blocks(language: str) -> list[tuple[str, str]]:
    """(page, text) of every fenced block of `language` in README.md and docs/."""
    found = []
    for page in [ROOT / "README.md", *PAGES]:
        found += [(page.name, text) for text in re.findall(rf"^```{language}\n(.*?)^```", page.read_text(),
                                                            re.MULTILINE | re.DOTALL)]
    return found


def test_every_json_block_is_what_the_hook_reads():
    """The adapters annotation the docs show is one the hook parses into the adapters it says."""
    from hooks.request import adapters
    shown = blocks("json")
    assert shown
    for page, text in shown:
        entries = adapters.parse_entries(text)
        assert [(e.type, e.port) for e in adapters.active(entries)] == [("nfs", 12049)], page


def test_every_yaml_block_parses_and_its_webhook_fields_are_metacontrollers():
    """YAML fragments (a Deployment's env and volumes, a webhook with auth and a CA) parse, and
    name only fields Metacontroller's webhook and the shipped Deployment use."""
    import yaml
    shown = blocks("yaml")
    assert len(shown) >= 4
    webhook_keys = {"url", "timeout", "authorization", "caBundle", "etag"}
    for page, text in shown:
        found = yaml.safe_load(text)
        assert isinstance(found, dict), page
        if "webhook" in found:
            assert set(found["webhook"]) <= webhook_keys, page
            assert set(found["webhook"]["authorization"]) <= {"type", "secretRef"}
            assert set(found["webhook"]["caBundle"]) == {"secretRef"}
        if set(found) == {"caBundle"}:
            assert set(found["caBundle"]) == {"inline"}
    deployment = yaml.safe_load((ROOT / "metacontroller" / "deployment.yaml").read_text())
    env_names = {e["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    fragment = next(yaml.safe_load(t) for _, t in shown if "volumeMounts" in (yaml.safe_load(t) or {}))
    assert {e["name"] for e in fragment["env"]} <= env_names | {"DITTOFS_HOOK_TOKEN_FILE"}


def test_the_adopt_output_moving_over_shows_is_what_adopt_prints(tmp_path, capsys):
    """The output after `adopt`'s command on the moving-over page: each run of lines between
    `...` is printed, in that order, by `adopt` for a server the Go operator v0.29 runs with NFS
    and SMB (the test world of tests/harness.py, whose names and uid the page uses)."""
    import json

    from hooks.tools import cli
    from tests import factory as f, harness
    from tests.test_convergence import NFS, SMB, SPEC
    text = (ROOT / "docs" / "moving-over.md").read_text()
    shown = re.search(r"hooks adopt ditto\.json --observed live\.json\n```\n```\n(.*?)^```", text,
                      re.MULTILINE | re.DOTALL).group(1)
    loop = harness.Loop(SPEC, [NFS, SMB], groups=f.WITH_POLICIES)
    harness.go_operator_world(loop)
    (tmp_path / "ditto.json").write_text(json.dumps(loop.parent))
    (tmp_path / "live.json").write_text(json.dumps({"kind": "List", "items": list(loop.cluster.objects.values())}))
    assert cli.main(["adopt", str(tmp_path / "ditto.json"), "--observed", str(tmp_path / "live.json"),
                     "--strategy", "dynamic-apply"]) == 0
    printed, at = capsys.readouterr().out.splitlines(), 0
    runs = [run.strip("\n").splitlines() for run in re.split(r"^\.\.\.$", shown, flags=re.MULTILINE)]
    assert len(runs) > 3
    for run in runs:
        found = next((i for i in range(at, len(printed)) if printed[i:i + len(run)] == run), None)
        assert found is not None, f"not printed (in this order): {run}"
        at = found + len(run)
