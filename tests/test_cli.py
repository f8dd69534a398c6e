"""The command line (`python -m hooks render|diff`): the same answer as `POST /sync` for the
same request, and a diff against live objects that agrees with the dynamic-apply model, on
objects a converged `tests.harness.Loop` produced exactly as a cluster stores them.
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonpatch
import pytest
import yaml

from hooks.children import adoption, sync
from hooks.dittofs import version
from hooks.request import ports
from hooks.tools import cli
from hooks.web import app, settings
from tests import factory as f
from tests import harness
from tests import test_convergence as convergence
from tests.harness import Loop

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "metacontroller" / "example-dittoserver.yaml"
SPEC = {"storage": {"metadataSize": "10Gi"}, "metrics": {"enabled": True}}
NFS, SMB = f.entry("nfs", 12049), f.entry("smb", 12445)
NO_RESTART = "The DittoFS pod would not restart."
RESTART = "The DittoFS pod would restart: spec.template of StatefulSet/demo changes."


@pytest.fixture(autouse=True)
def _default_strategy(monkeypatch):
    monkeypatch.delenv("DITTOFS_HOOK_APPLY_STRATEGY", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def write_yaml(path: Path, obj: dict) -> Path:
    path.write_text(yaml.safe_dump(obj))
    return path


def settled(adapters, **kwargs) -> Loop:
    loop = Loop(SPEC, adapters, groups=f.WITH_POLICIES, **kwargs)
    loop.settle()
    loop.mark_ready()
    loop.settle()
    return loop


def dump_live(tmp_path: Path, loop: Loop, drop=(), extra=()) -> Path:
    """The loop's cluster as `kubectl get -o json` prints it: a List."""
    items = [copy.deepcopy(obj) for key, obj in sorted(loop.cluster.objects.items()) if key not in drop]
    path = tmp_path / "live.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [*items, *extra]}))
    return path


def diff(capsys, tmp_path, loop: Loop, *options, parent=None, **dump) -> tuple[int, list[str], str]:
    manifest = write_yaml(tmp_path / "ditto.yaml", parent or loop.parent)
    code, out, err = run(capsys, "diff", manifest, "--observed", dump_live(tmp_path, loop, **dump), *options)
    return code, out.splitlines(), err


def by_identity(children: list[dict]) -> dict[tuple[str, str], dict]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


# --------------------------------------------------------------------------- render


def test_render_equals_the_children_of_post_sync(capsys):
    code, out, err = run(capsys, "render", EXAMPLE)
    assert code == 0
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"]["namespace"] = "default"
    request = {"controller": {}, "parent": manifest, "related": {}, "finalizing": False,
               "children": {group: {} for group in f.WITH_POLICIES}}
    client = app.create_app(settings.Settings()).test_client()
    answer = client.post("/sync", json=request).get_json()

    rendered, served = by_identity(documents(out)), by_identity(answer["children"])
    assert list(rendered) == [(c["kind"], c["metadata"]["name"]) for c in answer["children"]]
    assert ("NetworkPolicy", "dittofs-example-baseline") in rendered
    for key, child in served.items():
        if key[0] == "Secret":   # random until the Secret exists
            assert sorted(rendered[key]["data"]) == sorted(child["data"])
            assert {**rendered[key], "data": None} == {**child, "data": None}
        else:
            assert rendered[key] == child, key
    status = yaml.safe_load(err)["status"]
    assert status["phase"] == "Pending"
    assert status["configHash"] == answer["status"]["configHash"]


def test_render_prints_helm_style_documents(capsys):
    _, out, _ = run(capsys, "render", EXAMPLE)
    assert out.startswith("---\n# Source: Secret/dittofs-example-jwt-secret\napiVersion: v1\n")
    assert "# Source: StatefulSet/dittofs-example\n" in out
    assert "  config.yaml: |\n" in out   # the config reads as a block, not one escaped line
    assert "&id" not in out and "{" not in out.split("config.yaml")[0]


def test_render_is_stable_apart_from_new_secrets(capsys):
    _, first, _ = run(capsys, "render", EXAMPLE)
    _, second, _ = run(capsys, "render", EXAMPLE)
    def without_secrets(text):
        return [d for d in documents(text) if d["kind"] != "Secret"]
    assert without_secrets(first) == without_secrets(second)


def test_adapters_option_gives_the_adapter_port_and_service(capsys):
    code, out, err = run(capsys, "render", EXAMPLE, "--adapters", "nfs:12049")
    assert code == 0
    children = by_identity(documents(out))
    svc = children[("Service", "dittofs-example-adapter-nfs")]
    assert {(p["name"], p["port"]) for p in svc["spec"]["ports"]} == {("adapter-nfs", 12049), ("mdns", 5353), ("portmap", 111)}
    ports = children[("StatefulSet", "dittofs-example")]["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {"name": "adapter-nfs", "containerPort": 12049, "protocol": "TCP"} in ports
    assert yaml.safe_load(err)["status"]["adapters"] == [{"type": "nfs", "port": 12049}]


def test_adapters_option_replaces_the_manifests_annotation(capsys, tmp_path):
    parent = f.parent(adapters=[NFS, SMB])
    code, out, _ = run(capsys, "render", write_yaml(tmp_path / "p.yaml", parent), "--adapters", "smb:1445")
    services = [d["metadata"]["name"] for d in documents(out) if d["kind"] == "Service"]
    assert code == 0 and "demo-adapter-smb" in services and "demo-adapter-nfs" not in services


def test_empty_adapters_option_means_none_is_running(capsys, tmp_path):
    _, _, err = run(capsys, "render", EXAMPLE, "--adapters", "")
    status = yaml.safe_load(err)["status"]
    known = next(c for c in status["conditions"] if c["type"] == "AdaptersKnown")
    assert status["adapters"] == [] and known["status"] == "True"


def test_server_side_apply_adds_the_udp_portmapper(capsys):
    _, out, _ = run(capsys, "render", EXAMPLE, "--adapters", "nfs:12049", "--strategy", "server-side-apply")
    sts = by_identity(documents(out))[("StatefulSet", "dittofs-example")]
    assert "adapter-pm-udp" in [p["name"] for p in sts["spec"]["template"]["spec"]["containers"][0]["ports"]]


@pytest.mark.parametrize("value, message", [
    ("nfs:abc", "must be a number from 1 to 65535"),
    ("nfs:70000", "must be a number from 1 to 65535"),
    ("nfs:65536", "must be a number from 1 to 65535"),
    ("nfs:0", "must be a number from 1 to 65535"),
    ("nfs", "is not TYPE:PORT"),
    (":12049", "is not TYPE:PORT"),
    ("nfs:1,NFS:2", "given twice"),
])
def test_bad_adapters_option_exits_2_with_a_message(capsys, value, message):
    code, out, err = run(capsys, "render", EXAMPLE, "--adapters", value)
    assert code == 2 and out == ""
    assert "--adapters" in err and message in err


@pytest.mark.parametrize("port", [1, 65535])
def test_the_adapters_options_bounds_are_ports_too(capsys, port):
    """Both ends of the range are ports: 65535 (and 1) are taken, as the annotation takes them."""
    assert cli.parse_adapters(f"nfs:{port}") == f'[{{"type":"nfs","enabled":true,"running":true,"port":{port}}}]'
    code, out, _ = run(capsys, "render", EXAMPLE, "--adapters", f"smb:{port}")
    assert code == 0
    service = by_identity(documents(out))[("Service", "dittofs-example-adapter-smb")]
    assert [p["port"] for p in service["spec"]["ports"] if p["name"] == "adapter-smb"] == [port]


def test_invalid_manifest_exits_2_naming_the_field(capsys, tmp_path):
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["spec"]["replicas"] = 2
    code, out, err = run(capsys, "render", write_yaml(tmp_path / "bad.yaml", manifest))
    assert code == 2 and out == ""
    assert "parent.spec.replicas" in err and "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("spec: [unclosed\n", "neither JSON nor YAML"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "holds no DittoServer"),
    ("- just\n- a list\n", "must be an object"),
])
def test_unreadable_manifest_exits_2(capsys, tmp_path, content, message):
    path = tmp_path / "manifest.yaml"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "render", path)
    assert code == 2 and out == "" and message in err


def test_first_dittoserver_of_a_multi_document_file(capsys, tmp_path):
    other = yaml.safe_load(EXAMPLE.read_text())
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
                                        f.parent(name="first"), {**other}]))
    code, out, _ = run(capsys, "render", path)
    assert code == 0
    assert {d["metadata"]["name"] for d in documents(out) if d["kind"] == "StatefulSet"} == {"first"}


def test_namespace_option_and_manifest_namespace(capsys, tmp_path):
    code, out, _ = run(capsys, "render", EXAMPLE, "-n", "dittofs-demo")
    assert code == 0 and {d["metadata"]["namespace"] for d in documents(out)} == {"dittofs-demo"}
    code, _, err = run(capsys, "render", write_yaml(tmp_path / "p.yaml", f.parent()), "-n", "other")
    assert code == 2 and "does not match" in err


def test_render_with_observed_keeps_the_live_secrets(capsys, tmp_path):
    loop = settled([NFS])
    manifest = write_yaml(tmp_path / "ditto.yaml", loop.parent)
    code, out, _ = run(capsys, "render", manifest, "--observed", dump_live(tmp_path, loop))
    secret = by_identity(documents(out))[("Secret", "demo-admin-bootstrap-credentials")]
    assert code == 0
    assert secret["data"] == loop.live("Secret", "demo-admin-bootstrap-credentials")["data"]


def python_m_hooks(*argv: str) -> subprocess.CompletedProcess:
    """A real `python -m hooks` from the repository root, without the test's environment."""
    return subprocess.run([sys.executable, "-m", "hooks", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_python_dash_m_hooks_runs_as_a_subprocess():
    proc = python_m_hooks("render", str(EXAMPLE), "--adapters", "nfs:12049")
    assert proc.returncode == 0, proc.stderr
    kinds = [d["kind"] for d in documents(proc.stdout)]
    assert kinds.count("StatefulSet") == 1 and "Service" in kinds
    assert yaml.safe_load(proc.stderr)["status"]["phase"] == "Pending"
    bad = python_m_hooks("render", str(EXAMPLE), "--adapters", "nfs:abc")
    assert bad.returncode == 2 and "nfs:abc" in bad.stderr and bad.stdout == ""


# --------------------------------------------------------------------------- diff


def test_diff_of_what_the_hook_produced_is_empty(capsys, tmp_path):
    loop = settled([NFS])
    code, lines, _ = diff(capsys, tmp_path, loop)
    assert code == 0
    assert lines[-1] == NO_RESTART
    children = [line for line in lines if line.startswith(("created", "updated", "deleted", "unchanged"))]
    assert len(children) == len(loop.cluster.objects) == 12
    assert all(line.startswith("unchanged") for line in children)


def test_diff_ignores_objects_that_are_not_this_parents_children(capsys, tmp_path):
    loop = settled([NFS])
    strangers = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "storage"}},
        {**copy.deepcopy(loop.live("Service", "demo-api")), "metadata": {"name": "demo-api", "namespace": "elsewhere"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo-0", "namespace": "storage"}},
    ]
    code, lines, err = diff(capsys, tmp_path, loop, extra=strangers)
    assert code == 0 and lines[-1] == NO_RESTART
    assert "2 live object(s) are not children" in err


def test_diff_finds_the_parent_uid_in_the_live_children(capsys, tmp_path):
    loop = settled([NFS])
    parent = copy.deepcopy(loop.parent)   # as in git: no uid, no status
    del parent["metadata"]["uid"], parent["status"]
    code, lines, _ = diff(capsys, tmp_path, loop, parent=parent)
    assert code == 0 and lines[-1] == NO_RESTART


def test_diff_accepts_live_yaml_documents(capsys, tmp_path):
    loop = settled([NFS])
    live = tmp_path / "live.yaml"
    live.write_text(yaml.safe_dump_all(list(loop.cluster.objects.values())))
    code, out, _ = run(capsys, "diff", write_yaml(tmp_path / "d.yaml", loop.parent), "--observed", live)
    assert code == 0 and out.splitlines()[-1] == NO_RESTART


def test_adding_an_adapter_restarts_the_pod_and_creates_its_service(capsys, tmp_path):
    loop = settled([NFS])
    code, lines, _ = diff(capsys, tmp_path, loop, "--adapters", "nfs:12049,smb:12445")
    assert code == 1
    assert lines[-1] == RESTART
    assert "created    Service/demo-adapter-smb" in lines
    assert "created    NetworkPolicy/demo-adapter-smb" in lines
    assert "updated    StatefulSet/demo" in lines
    fields = lines[lines.index("updated    StatefulSet/demo") + 1:]
    assert any(line.strip().startswith("spec.template.spec.containers[dittofs].ports[12445]: (absent) → ")
               and '"name": "adapter-smb"' in line for line in fields)
    last_applied = next(line for line in fields if "last-applied-configuration" in line)
    assert "rewritten" in last_applied and "{" not in last_applied   # summarized, not dumped
    assert "unchanged  Service/demo-adapter-nfs" in lines


def test_a_missing_child_is_created_without_a_restart(capsys, tmp_path):
    loop = settled([NFS])
    code, lines, _ = diff(capsys, tmp_path, loop, drop={("ConfigMap", "demo-config")})
    assert code == 1
    assert "created    ConfigMap/demo-config" in lines
    assert lines[-1] == NO_RESTART


def test_a_stopped_adapters_service_is_deleted(capsys, tmp_path):
    loop = settled([NFS, SMB])
    code, lines, _ = diff(capsys, tmp_path, loop, "--adapters", "nfs:12049")
    assert code == 1
    assert "deleted    Service/demo-adapter-smb" in lines
    assert "deleted    NetworkPolicy/demo-adapter-smb" in lines
    assert lines[-1] == RESTART
    assert "1 created" not in lines[-2] and "2 deleted" in lines[-2]


def test_diff_shows_old_and_new_values(capsys, tmp_path):
    loop = settled([NFS])
    parent = copy.deepcopy(loop.parent)
    parent["spec"]["image"] = "marmos91c/dittofs:v2"
    _, lines, _ = diff(capsys, tmp_path, loop, parent=parent)
    assert (f'    spec.template.spec.containers[dittofs].image: "{version.IMAGE}" → '
            '"marmos91c/dittofs:v2"') in lines
    assert lines[-1] == RESTART


def test_diff_never_prints_secret_values(capsys, tmp_path):
    loop = settled([NFS])
    secret = loop.cluster.objects[("Secret", "demo-admin-bootstrap-credentials")]
    secret["data"] = {"username": secret["data"]["username"]}   # the password key went missing
    code, lines, _ = diff(capsys, tmp_path, loop)
    assert code == 1 and "updated    Secret/demo-admin-bootstrap-credentials" in lines
    assert "    data.password: (secret value changed)" in lines
    assert not any(f.fake_token(32) in line or "eHh4" in line for line in lines)


def test_diff_requires_observed_and_reports_bad_files(capsys, tmp_path):
    code, _, err = run(capsys, "diff", EXAMPLE)
    assert code == 2 and "--observed" in err
    code, _, err = run(capsys, "diff", EXAMPLE, "--observed", tmp_path / "missing.json")
    assert code == 2 and "cannot read" in err


def test_values_at_resolves_keys_with_dots_and_list_items():
    old = {"metadata": {"annotations": {"dittofs.io/config-hash": "a"}},
           "ports": [{"containerPort": 1, "name": "x"}]}
    new = {"metadata": {"annotations": {"dittofs.io/config-hash": "b"}},
           "ports": [{"containerPort": 1, "name": "y"}, {"containerPort": 2, "name": "z"}]}
    assert cli.values_at(old, new, "metadata.annotations.dittofs.io/config-hash") == ("a", "b")
    assert cli.values_at(old, new, "ports[1].name") == ("x", "y")
    assert cli.values_at(old, new, "ports[2]") == (cli.ABSENT, {"containerPort": 2, "name": "z"})


def test_render_of_the_example_is_what_the_docs_show_and_what_dittofs_v029_expects(capsys):
    _, out, _ = run(capsys, "render", EXAMPLE)
    children = by_identity(documents(out))
    config_yaml = children[("ConfigMap", "dittofs-example-config")]["data"]["config.yaml"]
    readme = (ROOT / "docs" / "dittoserver.md").read_text()
    block = readme.split("The `config.yaml` of `metacontroller/example-dittoserver.yaml`:\n\n```yaml\n")[1]
    assert block.split("```")[0] == config_yaml
    pod = children[("StatefulSet", "dittofs-example")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (container["image"], container["command"], container["args"]) == (
        version.IMAGE, ["/app/dfs"], ["start", "--foreground", "--config", "/config/config.yaml"])
    assert {m["mountPath"]: m["name"] for m in container["volumeMounts"]} == {
        "/config": "config", "/data/controlplane": "controlplane", "/data/store/metadata": "metadata",
        "/data/store/block": "content"}
    assert [e["name"] for e in container["env"]] == ["DITTOFS_CONTROLPLANE_SECRET", "DITTOFS_ADMIN_INITIAL_PASSWORD"]


def test_diff_says_which_live_ports_dynamic_apply_cannot_update(capsys, tmp_path):
    """Children left by server-side apply (TCP and UDP twins on one port number) read under
    dynamic apply: the diff names them and the fix."""
    loop = settled([NFS], strategy="server-side-apply")
    code, lines, _ = diff(capsys, tmp_path, loop, "--strategy", "dynamic-apply")
    stuck = [line for line in lines if line.startswith("Not updatable: ")]
    assert len(stuck) == 1
    # (The harness's cluster merges as dynamic apply does: the twins are already identical.)
    assert "StatefulSet demo container dittofs: containerPort 10111" in stuck[0]
    assert "Service demo-adapter-nfs: port 111" in stuck[0]
    assert "fix: kubectl -n storage patch statefulset.apps/demo --type=json" in stuck[0]
    _, clean, _ = diff(capsys, tmp_path, settled([NFS]))
    assert not [line for line in clean if line.startswith("Not updatable")]


# --------------------------------------------------------------------------- adopt


def write_live(live: Path, loop: Loop) -> None:
    """What is live beside the parent, as `kubectl get ... -o json` lists it."""
    live.write_text(json.dumps({"kind": "List", "items": list(loop.cluster.objects.values())}))


def go_world_files(tmp_path: Path, parent_uid: bool = True, adapters=(NFS,)) -> tuple[Path, Path, Loop]:
    loop = Loop(SPEC, list(adapters), groups=f.WITH_POLICIES)
    harness.go_operator_world(loop)
    parent = copy.deepcopy(loop.parent)
    if not parent_uid:
        del parent["metadata"]["uid"]
    manifest = tmp_path / "ditto.json"
    manifest.write_text(json.dumps(parent))
    live = tmp_path / "live.json"
    write_live(live, loop)
    return manifest, live, loop


def test_adopt_prints_the_steps_in_order_as_kubectl_commands(capsys, tmp_path):
    manifest, live, loop = go_world_files(tmp_path)
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live)
    assert code == 0
    titles = [line.split(".", 1)[0] for line in out.splitlines() if line.startswith("# ") and line[2].isdigit()]
    assert titles == [f"# {n}" for n in range(1, 9)]
    order = [out.index(text) for text in ("scale deployment/dittofs-operator-controller-manager --replicas=0",
                                          "label --overwrite", "patch statefulset.apps/demo --type=json",
                                          "patch dittoserver.dittofs.dittofs.com/demo",
                                          "demo-jwt-secret: kept", "kubectl apply -k metacontroller/", "updated ",
                                          "# 8. The DittoFS pod restarts 2 time(s)")]
    assert order == sorted(order)
    labels = [line for line in out.splitlines() if " label --overwrite " in line]
    assert sorted(line.split()[5] for line in labels) == sorted(cli.resource_of(o) for o in loop.cluster.objects.values())
    assert all(line.endswith(f"controller-uid={harness.PARENT_UID}") for line in labels)
    assert '"value":"dittofs.dittofs.com/finalizer"' in out
    # Made: the manager account's Secret, which the Go operator has no counterpart of.
    assert "1 created" in out and "0 deleted" in out
    # The twins' patch writes the pod template (the one restart of the hand-over itself); the
    # portmapper's follows discovery's first poll.
    restarts = out[out.index("# 8."):].splitlines()[1:]
    assert restarts[0].startswith("#    1. at step 3: the StatefulSet's patch removes container ports")
    assert restarts[1].startswith("#    2. seconds after the first sync") and "portmapper" in restarts[1]
    assert len(restarts) == 2


def test_adopt_json_holds_the_same_steps_as_patches(capsys, tmp_path):
    manifest, live, loop = go_world_files(tmp_path)
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live, "--format", "json",
                       "--operator-namespace", "ops", "--operator-deployment", "go-op")
    plan = json.loads(out)
    assert code == 0 and plan["steps"][0]["commands"] == ["kubectl -n ops scale deployment/go-op --replicas=0"]
    patched = {(p["kind"], p["name"]) for p in plan["steps"][1]["patches"]}
    assert patched == set(loop.cluster.objects)
    (finalizer,) = [s for s in plan["steps"] if s["title"].startswith("Remove the Go operator's finalizer")]
    assert finalizer["patches"][0]["patch"][1] == {"op": "remove", "path": "/metadata/finalizers/0"}
    assert plan["firstSync"]["podRolls"] is False and plan["firstSync"]["podTemplateFields"] == []
    assert [r["when"] for r in plan["restarts"]] == \
        ["at step 3", "seconds after the first sync, when the hook's discovery has polled the server"]


@pytest.mark.parametrize("strategy", [ports.DYNAMIC, ports.SERVER_SIDE])
def test_adopt_says_a_server_without_nfs_restarts_once_at_the_first_sync(capsys, tmp_path, strategy):
    """No NFS: no UDP twins to remove and no portmapper to turn on; the hook's pod template,
    which differs from the Go operator's, is the one restart, at the first sync."""
    manifest, live, _ = go_world_files(tmp_path, adapters=[f.entry("smb", 12445)])
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live, "--format", "json", "--strategy", strategy)
    plan = json.loads(out)
    assert code == 0 and not any(s["title"].startswith("Remove the UDP port") for s in plan["steps"])
    assert [r["when"] for r in plan["restarts"]] == ["at the first sync"] and plan["firstSync"]["podRolls"] is True
    assert "probe" in plan["restarts"][0]["why"] or "httpGet.port" in plan["restarts"][0]["why"]


def test_adopt_needs_the_live_dittoserver_with_its_uid(capsys, tmp_path):
    manifest, live, _ = go_world_files(tmp_path, parent_uid=False)
    code, _, err = run(capsys, "adopt", manifest, "--observed", live)
    assert code == 2 and "has no uid" in err


def test_adopt_says_the_pod_rolls_and_which_template_fields_differ(capsys, tmp_path):
    """A pod template field the Go operator wrote otherwise than the hook does rolls the pod
    once on the first sync under server-side apply: adopt says so and names the field. Under
    dynamic apply the twins' patch writes it, so the first sync rolls nothing."""
    manifest, live, loop = go_world_files(tmp_path)
    sts = loop.cluster.objects[("StatefulSet", "demo")]
    sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 5
    write_live(live, loop)
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live, "--format", "json", "--strategy", ports.SERVER_SIDE)
    first = json.loads(out)["firstSync"]
    assert code == 0 and first["podRolls"] is True
    assert "spec.template.spec.terminationGracePeriodSeconds" in first["podTemplateFields"]
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live, "--strategy", ports.SERVER_SIDE)
    assert "#    1. at the first sync: it writes the hook's pod template, which differs from the Go operator's in " in out
    assert "spec.template.spec.terminationGracePeriodSeconds" in out.split("#    1. at the first sync")[1]
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live, "--format", "json", "--strategy", ports.DYNAMIC)
    plan = json.loads(out)
    assert plan["firstSync"]["podRolls"] is False
    ops = next(e["patch"] for s in plan["steps"] for e in s["patches"] if e["kind"] == "StatefulSet" and e["type"] == "json")
    hooks_own = next(c for c in sync.desired_state(loop.request())["children"] if c["kind"] == "StatefulSet")
    assert {"op": "replace", "path": "/spec/template/spec/terminationGracePeriodSeconds",
            "value": hooks_own["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]} in ops


def test_adopt_removes_the_udp_twin_of_each_pair_under_dynamic_apply_only():
    """The Go operator gives NFS a TCP and a UDP port of one number; dynamic apply's merge key
    would make them two equal ports. The UDP one goes, from the end, each removal tested."""
    sts = {"kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": {"name": "demo", "namespace": "ns"},
           "spec": {"template": {"spec": {"containers": [{"name": "dittofs", "ports": [
               {"name": "api", "containerPort": 8080},
               {"name": "adapter-nfs", "containerPort": 12049, "protocol": "TCP"},
               {"name": "adapter-nfs-udp", "containerPort": 12049, "protocol": "UDP"},
               {"name": "a", "containerPort": 7000}, {"name": "b", "containerPort": 7000}]}]}}}}
    fixed, ops = adoption.without_twins(sts)
    assert [p["name"] for p in fixed["spec"]["template"]["spec"]["containers"][0]["ports"]] == \
        ["api", "adapter-nfs", "a"]
    path = "/spec/template/spec/containers/0/ports"
    ports_now = sts["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ops == [{"op": "test", "path": f"{path}/4", "value": ports_now[4]}, {"op": "remove", "path": f"{path}/4"},
                   {"op": "test", "path": f"{path}/2", "value": ports_now[2]},
                   {"op": "remove", "path": f"{path}/2"}]
    assert cli.twins_step([sts], ports.DYNAMIC).patches[0]["patch"] == ops
    assert cli.twins_step([sts], ports.SERVER_SIDE) is None
    assert cli.twins_step([fixed], ports.DYNAMIC) is None


def test_adopt_removes_an_unnamed_twin_too_and_its_patch_applies(capsys, tmp_path):
    """Container ports may be unnamed: the removal is tested against the whole port, so the
    patch applies (as the API server applies it) and refuses a port that changed since."""
    manifest, live, loop = go_world_files(tmp_path)
    sts = loop.cluster.objects[("StatefulSet", "demo")]
    twin = next(p for p in sts["spec"]["template"]["spec"]["containers"][0]["ports"] if p["protocol"] == "UDP"
                and p["containerPort"] == 10111)
    del twin["name"]
    write_live(live, loop)
    code, out, err = run(capsys, "adopt", manifest, "--observed", live, "--format", "json")
    assert code == 0, err
    entry = next(e for s in json.loads(out)["steps"] for e in s["patches"] if e["kind"] == "StatefulSet" and e["type"] == "json")
    ports_after = jsonpatch.apply_patch(sts, entry["patch"])["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert twin not in ports_after and all(p.get("name") for p in ports_after)
    twin["hostPort"] = 10111   # changed since adopt read it: the patch is refused
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(sts, entry["patch"])


MANAGER = ("Secret", "demo-manager-credentials")


def _released_world(tmp_path: Path) -> tuple[Path, Path, Loop]:
    """The mistake: the CompositeController ran before `adopt` and released every child."""
    manifest, live, loop = go_world_files(tmp_path)
    for _ in range(2):
        loop.sync()
    # Every child is released; the first sync made the one the Go operator has none of.
    assert sorted(loop.cluster.released) == sorted(k for k in loop.cluster.objects if k != MANAGER)
    write_live(live, loop)
    return manifest, live, loop


def test_adopt_after_the_controllers_came_first_labels_every_released_child_and_keeps_every_secret(capsys, tmp_path):
    manifest, live, loop = _released_world(tmp_path)
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live)
    assert code == 0
    labels = [line for line in out.splitlines() if " label --overwrite " in line]
    released = sorted(loop.cluster.released)
    # Every child by name, the one already adopted too (labelling it again changes nothing).
    assert sorted(line.split()[5] for line in labels) == sorted(cli.resource_of(o) for o in loop.cluster.objects.values())
    for suffix in cli.GO_SECRET_SUFFIXES:
        assert f"demo-{suffix}: kept as it is" in out
    assert "will generate" not in out and "0 created" in out and "0 deleted" in out
    # The same commands as the status of the stuck parent gives, child by child.
    status_commands = convergence.fix_commands(loop.parent)
    assert sorted(c for c in status_commands if " label " in c) == \
        sorted(c for c in labels if "secret/demo-manager-credentials" not in c)
    # Run as printed: the next sync adopts every child in place, as adopt predicted, no value lost.
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live, "--format", "json")
    plan = json.loads(out)
    for line in [c for step in plan["steps"] for c in step["commands"] if " label " in c or " patch " in c]:
        entry = convergence.kubectl_entry(line)
        target = loop.parent if entry["kind"] == "DittoServer" else loop.cluster.objects[(entry["kind"], entry["name"])]
        convergence.apply_patch(target, entry)
    written = loop.sync()
    assert sorted(loop.cluster.adopted) == released
    assert {c.action for c in written} <= {"update"}
    assert [(c.kind, c.name, list(c.fields)) for c in written] == \
        [(c["kind"], c["name"], c["fields"]) for c in plan["firstSync"]["changes"] if c["action"] != "unchanged"]
    for key, obj in loop.cluster.objects.items():
        if key[0] == "Secret" and key in released:
            assert set(obj["data"].values()) == {harness.GO_OPERATOR_SECRET}, key


def test_adopt_names_objects_another_controller_owns_and_never_touches_them(capsys, tmp_path):
    manifest, live, loop = go_world_files(tmp_path)
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "u-x", "controller": True}
    loop.cluster.objects[("Service", "demo-api")]["metadata"]["ownerReferences"] = [other]
    loop.cluster.objects[("Secret", "demo-jwt-secret")]["metadata"]["ownerReferences"] = [other]
    write_live(live, loop)
    code, out, _ = run(capsys, "adopt", manifest, "--observed", live, "--format", "json")
    plan = json.loads(out)
    touched = {(p["kind"], p["name"]) for step in plan["steps"] for p in step["patches"]}
    assert ("Service", "demo-api") not in touched and ("Secret", "demo-jwt-secret") not in touched
    (foreign,) = [s for s in plan["steps"] if s["title"].startswith("Objects with a child's name that another")]
    assert foreign["commands"] == [] and len(foreign["notes"]) == 2
    assert any(n.startswith("Service demo-api: controlled by Deployment x (uid u-x)") for n in foreign["notes"])
    notes = [n for s in plan["steps"] for n in s["notes"]]
    assert "demo-jwt-secret: exists, controlled by Deployment x: not a child, left as it is (the hook cannot use it)" in notes
    assert not any("will generate" in n for n in notes)
