"""`adopt`'s printed steps run verbatim, line by line, through the real kubectl (tests/kubectl.py)
against the real kube-apiserver, on a world the Go operator v0.29 built there
(tests/test_apiserver_real.py's `go_operator_on_the_server`): the right order, and the mistake
(the controllers installed first). Then the hook's first sync: as adopt predicted, every Secret
value kept, and a resync that writes nothing.
"""
from __future__ import annotations

import json
import re
import shlex

import pytest

from hooks.children import adoption
from hooks.request import ports
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


def adopt_output(loop: harness.Loop, tmp_path, capsys, fmt: str) -> str:
    (tmp_path / "ditto.json").write_text(json.dumps(loop.parent))
    (tmp_path / "live.json").write_text(json.dumps({"kind": "List", "items": list(loop.cluster.objects.values())}))
    assert cli.main(["adopt", str(tmp_path / "ditto.json"), "--observed", str(tmp_path / "live.json"),
                     "--strategy", loop.strategy, "--format", fmt]) == 0
    return capsys.readouterr().out


def run_verbatim(tools: k.Tools, text: str) -> list[str]:
    """Every `kubectl ...` line of adopt's text, run as printed; the lines run."""
    ran = []
    for line in text.splitlines():
        if line.startswith("kubectl "):
            tools.kubectl(*shlex.split(line)[1:])
            ran.append(line)
    return ran


def run_patches(tools: k.Tools, plan: dict) -> list[str]:
    """adopt's `--format json`, step by step: each patch sent with `kubectl patch` as JSON, a step
    without patches run as its commands say; the commands run, as lines."""
    ran = []
    for step in plan["steps"]:
        lines = [shlex.join(["kubectl", "-n", e["namespace"], "patch",
                             adoption.resource_of(e["kind"], e["apiVersion"], e["name"]),
                             f"--type={e['type']}", "-p", json.dumps(e["patch"])]) for e in step["patches"]]
        ran += run_verbatim(tools, "\n".join(lines or step["commands"]))
    return ran


def restarts_said(output: str, fmt: str) -> list[tuple[str, str]]:
    """(when, why) of each restart adopt announces."""
    if fmt == "json":
        return [(r["when"], r["why"]) for r in json.loads(output)["restarts"]]
    return re.findall(r"^#    \d+\. (.*?): (.*)$", output[output.index("The DittoFS pod restarts"):], re.MULTILINE)


@pytest.fixture
def operator_tools(apiserver, tmp_path):
    tools = k.tools(apiserver, tmp_path / "kubectl")
    install_stand_ins(tools)
    tools.kubectl("create", "namespace", "dittofs", check=False)
    (tmp_path / "operator.json").write_text(json.dumps(OPERATOR))
    tools.kubectl("apply", "-f", str(tmp_path / "operator.json"))
    return tools


CASES = [(strategy, first, "text") for strategy in (ports.DYNAMIC, ports.SERVER_SIDE) for first in (False, True)] \
    + [(strategy, False, "json") for strategy in (ports.DYNAMIC, ports.SERVER_SIDE)]


@pytest.mark.parametrize("strategy, controllers_first, fmt", CASES,
                         ids=[f"{s}-{'controllers-first' if c else 'in-order'}-{f}" for s, c, f in CASES])
def test_adopts_printed_commands_run_through_kubectl_hand_the_server_over(apiserver, crd, operator_tools, tmp_path,
                                                                        capsys, controllers_first, strategy, fmt):
    """adopt's output run through the real kubectl: the text's lines verbatim, or the JSON's
    patches; in order or after the controllers came first; under either apply strategy. Then
    the first sync, the restarts as adopt said, every Secret byte kept, and idle."""
    loop = go_operator_on_the_server(apiserver, strategy)
    operators = set(loop.cluster.objects)
    if controllers_first:   # the mistake: every child released before adopt runs
        loop.sync()
        loop.sync()
        assert sorted(loop.cluster.released) == sorted(operators)
    output = adopt_output(loop, tmp_path, capsys, fmt)
    template = apiserver.get("StatefulSet", "demo", loop.cluster.namespace)["spec"]["template"]
    before = loop.cluster.pod_template_writes()   # server-side apply took the released objects over
    ran = run_verbatim(operator_tools, output) if fmt == "text" else run_patches(operator_tools, json.loads(output))
    rolls = int(apiserver.get("StatefulSet", "demo", loop.cluster.namespace)["spec"]["template"] != template)
    assert any(" scale deployment/" in line for line in ran) and any(" apply -k metacontroller/" in line for line in ran)
    labelled = " label --overwrite " if fmt == "text" else "--type=merge"
    assert any(labelled in line for line in ran) and any(" patch dittoserver" in line for line in ran)
    assert operator_tools.kubectl("-n", "dittofs", "get", "deployment/dittofs-operator-controller-manager",
                                  "-o", "jsonpath={.spec.replicas}").stdout == "0"
    loop.parent = apiserver.get("DittoServer", "demo", loop.cluster.namespace)
    assert "finalizers" not in loop.parent["metadata"]
    written = loop.sync()   # raises on any API error
    assert {c.action for c in written} <= {"update", "create"}
    assert {(c.kind, c.name) for c in written if c.action == "create"} <= {("Secret", "demo-manager-credentials")}
    # Released by the controllers that came first: adopted once labelled (dynamic apply), or
    # taken over already by their apply patches (server-side apply), their Secret values kept.
    adopted = controllers_first and strategy == ports.DYNAMIC
    assert sorted(loop.cluster.adopted) == (sorted(operators) if adopted else [])
    loop.settle()
    assert loop.sync() == []
    # The pod template changed as often as adopt said, but for the portmapper's restart, which
    # follows discovery's first poll (tests/test_handover_data.py runs that one on the real dfs).
    said = restarts_said(output, fmt)
    rolls += loop.cluster.pod_template_writes() - before
    assert rolls == len([why for _, why in said if "portmapper" not in why])
    assert said[-1][0].startswith("seconds after the first sync") and "portmapper" in said[-1][1]
    for key, obj in loop.cluster.objects.items():
        if key[0] == "Secret" and key in operators:
            assert set(obj["data"].values()) == {harness.GO_OPERATOR_SECRET}, key   # no byte changed
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [loop.parent["metadata"]["uid"]], key
    assert not {c["type"] for c in loop.parent["status"]["conditions"]} & {"ChildrenNotAdopted", "FinalizerLeftOver"}
