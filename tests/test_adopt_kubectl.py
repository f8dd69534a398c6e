"""`adopt`'s printed steps run verbatim, line by line, through the real kubectl (tests/kubectl.py)
against the real kube-apiserver, on a world the Go operator v0.29 built there
(tests/test_apiserver_real.py's `go_operator_on_the_server`): the right order, and the mistake
(the controllers installed first). Then the hook's first sync: as adopt predicted, every Secret
value kept, and a resync that writes nothing.
"""
from __future__ import annotations

import json
import shlex

import pytest

from hooks.tools import cli
from tests import harness, kubectl as k
from tests.test_apiserver_real import crd, go_operator_on_the_server  # noqa: F401 (crd: a fixture)
from tests.test_kubectl import install_stand_ins

pytestmark = pytest.mark.apiserver

OPERATOR = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "dittofs-operator-controller-manager", "namespace": "dittofs"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "go-operator"}},
                     "template": {"metadata": {"labels": {"app": "go-operator"}},
                                  "spec": {"containers": [{"name": "manager", "image": "operator"}]}}}}


def adopt_text(loop: harness.Loop, tmp_path, capsys) -> str:
    (tmp_path / "ditto.json").write_text(json.dumps(loop.parent))
    (tmp_path / "live.json").write_text(json.dumps({"kind": "List", "items": list(loop.cluster.objects.values())}))
    assert cli.main(["adopt", str(tmp_path / "ditto.json"), "--observed", str(tmp_path / "live.json")]) == 0
    return capsys.readouterr().out


def run_verbatim(tools: k.Tools, text: str) -> list[str]:
    """Every `kubectl ...` line of adopt's text, run as printed; the lines run."""
    ran = []
    for line in text.splitlines():
        if line.startswith("kubectl "):
            tools.kubectl(*shlex.split(line)[1:])
            ran.append(line)
    return ran


@pytest.fixture
def operator_tools(apiserver, tmp_path):
    tools = k.tools(apiserver, tmp_path / "kubectl")
    install_stand_ins(tools)
    tools.kubectl("create", "namespace", "dittofs", check=False)
    (tmp_path / "operator.json").write_text(json.dumps(OPERATOR))
    tools.kubectl("apply", "-f", str(tmp_path / "operator.json"))
    return tools


@pytest.mark.parametrize("controllers_first", [False, True], ids=["in-order", "controllers-first"])
def test_adopts_printed_commands_run_through_kubectl_hand_the_server_over(apiserver, crd, operator_tools, tmp_path,
                                                                        capsys, controllers_first):
    loop = go_operator_on_the_server(apiserver)
    operators = set(loop.cluster.objects)
    if controllers_first:   # the mistake: every child released before adopt runs
        loop.sync()
        loop.sync()
        assert sorted(loop.cluster.released) == sorted(operators)
    text = adopt_text(loop, tmp_path, capsys)
    ran = run_verbatim(operator_tools, text)
    assert any(" scale deployment/" in line for line in ran) and any(" apply -k metacontroller/" in line for line in ran)
    assert any(" label --overwrite " in line for line in ran) and any(" patch dittoserver" in line for line in ran)
    assert operator_tools.kubectl("-n", "dittofs", "get", "deployment/dittofs-operator-controller-manager",
                                  "-o", "jsonpath={.spec.replicas}").stdout == "0"
    loop.parent = apiserver.get("DittoServer", "demo", loop.cluster.namespace)
    assert "finalizers" not in loop.parent["metadata"]
    written = loop.sync()   # raises on any API error
    assert {c.action for c in written} <= {"update", "create"}
    assert {(c.kind, c.name) for c in written if c.action == "create"} <= {("Secret", "demo-manager-credentials")}
    assert sorted(loop.cluster.adopted) == (sorted(operators) if controllers_first else [])
    loop.settle()
    assert loop.sync() == []
    for key, obj in loop.cluster.objects.items():
        if key[0] == "Secret" and key in operators:
            assert set(obj["data"].values()) == {harness.GO_OPERATOR_SECRET}, key   # no byte changed
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [loop.parent["metadata"]["uid"]], key
    assert not {c["type"] for c in loop.parent["status"]["conditions"]} & {"ChildrenNotAdopted", "FinalizerLeftOver"}
