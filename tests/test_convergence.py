"""Convergence under Metacontroller's dynamic apply (METACONTROLLER_FACTS.md), replayed through
`applying.Cluster`: each input change converges with at most one pod-template write, a resync
with unchanged input writes nothing, unknown adapter state deletes and writes nothing, and a
storage change never touches an immutable field; and the hand-over from the DittoFS Go
operator v0.29 (`python -m hooks adopt`) under Metacontroller's adoption rules.
"""
import copy
import json
import re
import shlex
from pathlib import Path

import jsonpatch
import pytest

from hooks.children import sync
from hooks.tools import cli
from tests import factory as f, harness
from tests.harness import Loop

NFS, SMB, WEBDAV = f.entry("nfs", 12049), f.entry("smb", 12445), f.entry("webdav", 8081)
SPEC = {"storage": {"metadataSize": "10Gi"}, "metrics": {"enabled": True}}


def settled(loop: Loop) -> Loop:
    loop.settle()
    loop.mark_ready()
    loop.settle()
    return loop


def test_creation_settles_and_a_resync_writes_nothing():
    loop = Loop(SPEC, [NFS])
    assert {c.action for c in loop.sync()} == {"create"}
    assert loop.sync() == []          # the second sync returns exactly what the first did
    created = len(loop.cluster.writes)
    assert loop.live_names("Service") == ["demo-adapter-nfs", "demo-api", "demo-headless", "demo-metrics"]
    for _ in range(3):
        assert loop.sync() == []
    assert len(loop.cluster.writes) == created
    assert loop.cluster.pod_template_writes() == 0


def test_becoming_ready_changes_status_but_no_child():
    loop = Loop(SPEC, [NFS])
    loop.settle()
    writes = len(loop.cluster.writes)
    loop.mark_ready()
    loop.settle()
    assert len(loop.cluster.writes) == writes
    assert loop.parent["status"]["phase"] == "Running"
    assert loop.sync() == [] and loop.settle() == 1


MDNS = ("adapter-mdns", 5353, "UDP")
WSD = {("adapter-wsd", 3702, "UDP"), ("adapter-wsdmeta", 5357, "TCP")}
ADAPTER_SEQUENCE = [
    ([], {("api", 8080, "TCP"), ("metrics", 9090, "TCP")}),
    ([NFS], {MDNS, ("adapter-nfs", 12049, "TCP"), ("adapter-nfs-pm", 10111, "TCP")}),
    ([NFS, SMB], {MDNS, ("adapter-nfs", 12049, "TCP"), ("adapter-nfs-pm", 10111, "TCP"), ("adapter-smb", 12445, "TCP"), *WSD}),
    ([SMB, f.entry("nfs", 12049, running=False)], {MDNS, ("adapter-smb", 12445, "TCP"), *WSD}),
    ([f.entry("smb", 1445)], {MDNS, ("adapter-smb", 1445, "TCP"), *WSD}),
    ([f.entry("smb", 1445), WEBDAV, f.entry("custom-adapter-a", 7000)],
     {MDNS, ("adapter-smb", 1445, "TCP"), *WSD, ("adapter-webdav", 8081, "TCP"), ("adapter-cu-1e31", 7000, "TCP")}),
    ([], set()),
]


def test_each_adapter_change_converges_with_at_most_one_pod_template_write():
    loop = settled(Loop(SPEC, []))
    static = {("api", 8080, "TCP"), ("metrics", 9090, "TCP")}
    for adapters, dynamic in ADAPTER_SEQUENCE:
        before = loop.cluster.pod_template_writes()
        loop.set_adapters(adapters)
        loop.settle()
        assert loop.cluster.pod_template_writes() - before <= 1, adapters
        assert loop.live_port_set() == static | dynamic
        expected = {f"demo-adapter-{a['type']}" for a in adapters if a["enabled"] and a["running"]}
        assert {n for n in loop.live_names("Service") if "-adapter-" in n} == expected
        writes = len(loop.cluster.writes)
        assert loop.sync() == [] and len(loop.cluster.writes) == writes


# --- events, not a clock: what a resync of the CompositeController can still find -----------------

JWT = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jwt", "namespace": "storage"},
       "data": {"k": "b25lLXNpZ25pbmcta2V5LTAxMjM0NTY3ODkwMTIzNDU2Nzg5"}}
JWT_ROTATED = {**JWT, "data": {"k": "dHdvLXNpZ25pbmcta2V5LTAxMjM0NTY3ODkwMTIzNDU2Nzg5"}}
WITH_JWT = {**SPEC, "identity": {"jwt": {"secretRef": {"name": "jwt", "key": "k"}}}}
AUTHENTICATED = '{"message":"polling as k8s-operator","reason":"Authenticated"}'
NOT_READY = '{"message":"StatefulSet demo has no ready replica yet","reason":"ServerNotReady"}'


def event_steps() -> list[tuple[str, object]]:
    """Every kind of input a parent sees, each one watched change (or a few at once)."""
    steps = [
        ("created", lambda loop: None),
        ("a replica is ready", lambda loop: loop.mark_ready()),
        ("discovery reports the control plane",
         lambda loop: loop.set_annotation("dittofs.io/control-plane", AUTHENTICATED)),
    ]
    steps += [(f"adapters {[a['type'] for a in adapters]}", lambda loop, a=adapters: loop.set_adapters(a))
              for adapters, _ in ADAPTER_SEQUENCE]
    steps += [
        ("adapter state unknown", lambda loop: loop.set_adapters("broken")),
        ("adapters known again", lambda loop: loop.set_adapters([NFS, SMB])),
        ("a config change", lambda loop: loop.set_spec({**SPEC, "logging": {"level": "DEBUG"}})),
        ("a Secret the config reads", lambda loop: (loop.set_related([JWT]), loop.set_spec(WITH_JWT))),
        ("that Secret rotated", lambda loop: loop.set_related([JWT_ROTATED])),
        ("a storage change it cannot make",
         lambda loop: loop.set_spec({**WITH_JWT, "storage": {"metadataSize": "20Gi"}})),
        ("the pod goes", lambda loop: (loop.mark_ready(0),
                                       loop.set_annotation("dittofs.io/control-plane", NOT_READY))),
        ("stopped", lambda loop: loop.set_spec({**WITH_JWT, "storage": {"metadataSize": "20Gi"}, "replicas": 0})),
        ("started", lambda loop: loop.set_spec({**WITH_JWT, "storage": {"metadataSize": "20Gi"}, "replicas": 1})),
        ("ready again", lambda loop: (loop.mark_ready(),
                                      loop.set_annotation("dittofs.io/control-plane", AUTHENTICATED))),
        ("discovery's backoff annotation", lambda loop: loop.set_annotation(
            "dittofs.io/discovery-backoff", '{"failures":1,"retryAt":"2026-11-26T12:00:30Z"}')),
    ]
    return steps


def assert_nothing_left_for_a_resync(loop: Loop) -> None:
    """Each step converges on the syncs its events trigger; a resync an hour later writes
    nothing (no child, no status): nothing waits for the resync period."""
    for name, step in event_steps():
        step(loop)
        loop.on_events()
        writes, status_writes = len(loop.cluster.writes), loop.status_writes
        assert loop.resync() == [], name
        assert (len(loop.cluster.writes), loop.status_writes) == (writes, status_writes), name
    assert loop.live_names("Service") == ["demo-adapter-nfs", "demo-adapter-smb", "demo-api", "demo-headless",
                                          "demo-metrics"]


@pytest.mark.parametrize("strategy", ["dynamic-apply", "server-side-apply"])
def test_every_input_converges_on_its_events_and_a_resync_finds_nothing(strategy):
    loop = Loop(SPEC, [NFS], strategy=strategy, groups=f.WITH_POLICIES)
    assert_nothing_left_for_a_resync(loop)
    assert loop.cluster.pod_template_writes() >= 3    # the steps did change the pod: not a vacuous run


def test_the_event_loop_does_tell_a_state_that_needs_a_resync(monkeypatch):
    """A hook whose answer changes with no event (here: with the clock) is caught: the resync
    writes. (The hook's answer changes with no event only when the hook itself changes: a new
    version or apply strategy reaches every parent at the next resync.)"""
    loop = Loop(SPEC, [NFS])
    loop.on_events()
    original = sync.desired_state

    def clocked(request, **kwargs):
        out = original(request, **kwargs)
        out["status"]["phase"] = kwargs["now"].isoformat()
        return out

    monkeypatch.setattr(sync, "desired_state", clocked)
    before = loop.status_writes
    loop.resync()
    assert loop.status_writes == before + 1


@pytest.mark.parametrize("broken", [None, "not json", '[{"type": "nfs"}]', '[{"type":"nfs","enabled":true,"running":true,"port":0}]'])
def test_unknown_or_malformed_annotation_deletes_and_writes_nothing(broken):
    loop = settled(Loop(SPEC, [NFS, SMB]))
    before = {key: obj for key, obj in loop.cluster.objects.items()}
    writes = len(loop.cluster.writes)
    loop.set_adapters(broken)
    loop.settle()
    assert len(loop.cluster.writes) == writes
    assert loop.cluster.objects == before
    conditions = {c["type"]: c for c in loop.parent["status"]["conditions"]}
    assert conditions["AdaptersKnown"]["status"] == "False"
    # and coming back to the same known state writes nothing either
    loop.set_adapters([NFS, SMB])
    loop.settle()
    assert len(loop.cluster.writes) == writes


def test_storage_change_never_touches_an_immutable_field():
    loop = settled(Loop(SPEC, [NFS]))
    claims = loop.live("StatefulSet", "demo")["spec"]["volumeClaimTemplates"]
    loop.set_spec({**SPEC, "storage": {"metadataSize": "50Gi", "contentSize": "1Ti", "storageClassName": "fast"}})
    loop.settle()   # raises ImmutableFieldError if the hook asked for a forbidden change
    assert loop.live("StatefulSet", "demo")["spec"]["volumeClaimTemplates"] == claims
    conditions = {c["type"]: c for c in loop.parent["status"]["conditions"]}
    assert conditions["StorageChangeIgnored"]["status"] == "True"


def test_a_config_change_rolls_the_pod_once_and_generation_alone_does_not():
    loop = settled(Loop(SPEC, [NFS]))
    loop.set_spec(SPEC)            # generation bump only
    loop.settle()
    assert loop.cluster.pod_template_writes() == 0
    loop.set_spec({**SPEC, "logging": {"level": "DEBUG"}})
    loop.settle()
    assert loop.cluster.pod_template_writes() == 1
    assert loop.live("ConfigMap", "demo-config")["data"]["config.yaml"].count("level: DEBUG") == 1


def test_generated_secrets_are_written_once():
    loop = settled(Loop(SPEC, [NFS]))
    secret_writes = [c for c in loop.cluster.writes if c.kind == "Secret"]
    assert [c.action for c in secret_writes] == ["create"] * 4
    loop.set_adapters([SMB])
    loop.settle()
    assert [c for c in loop.cluster.writes if c.kind == "Secret"] == secret_writes


def test_ports_added_by_others_are_left_alone():
    loop = settled(Loop(SPEC, [NFS]))
    loop.live_ports().append({"name": "sidecar", "containerPort": 7070, "protocol": "TCP"})
    writes = len(loop.cluster.writes)
    assert loop.sync() == [] and len(loop.cluster.writes) == writes
    loop.set_adapters([NFS, SMB])
    loop.settle()
    assert ("sidecar", 7070, "TCP") in loop.live_port_set()


def test_network_policies_converge_too():
    loop = settled(Loop(SPEC, [NFS, SMB], groups=f.WITH_POLICIES))
    assert loop.live_names("NetworkPolicy") == ["demo-adapter-nfs", "demo-adapter-smb", "demo-baseline"]
    loop.set_adapters([SMB])
    loop.settle()
    assert loop.live_names("NetworkPolicy") == ["demo-adapter-smb", "demo-baseline"]
    assert loop.sync() == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_hook_versions_converge_alike(version):
    loop = settled(Loop(SPEC, [NFS, WEBDAV], version=version))
    assert loop.sync() == []
    assert {p[0] for p in loop.live_port_set()} == {"adapter-mdns", "adapter-nfs", "adapter-nfs-pm", "adapter-webdav",
                                                    "api", "metrics"}


# StatefulSets made before this layout: claim templates and the mounts the hook must give them.
OLDER_LAYOUTS = {
    # This project before DittoFS v0.29: the control-plane database on the metadata volume.
    "dittofs-hooks-before-v029": (["metadata", "cache"], [
        {"name": "config", "mountPath": "/config", "readOnly": True},
        {"name": "cache", "mountPath": "/data/cache"},
        {"name": "metadata", "mountPath": "/data/controlplane", "subPath": "controlplane"},
        {"name": "metadata", "mountPath": "/data/metadata"},
    ]),
    # The DittoFS Go operator: the same layout as this project's now.
    "go-operator": (["controlplane", "metadata", "content"], [
        {"name": "config", "mountPath": "/config", "readOnly": True},
        {"name": "controlplane", "mountPath": "/data/controlplane"},
        {"name": "content", "mountPath": "/data/store/block"},
        {"name": "metadata", "mountPath": "/data/store/metadata"},
    ]),
}


@pytest.mark.parametrize("layout", sorted(OLDER_LAYOUTS))
def test_an_older_statefulset_keeps_its_claims_and_gets_mounts_that_match_them(layout):
    from hooks.children import statefulset

    claims, mounts = OLDER_LAYOUTS[layout]
    loop = settled(Loop(SPEC, [NFS]))
    live = loop.live("StatefulSet", "demo")
    # As the older controller created it (claim templates cannot change afterwards).
    live["spec"]["volumeClaimTemplates"] = [statefulset.claim(name, "5Gi", None) for name in claims]
    loop.settle()   # raises if an update touched an immutable field
    live = loop.live("StatefulSet", "demo")
    assert [c["metadata"]["name"] for c in live["spec"]["volumeClaimTemplates"]] == claims
    # Dynamic apply merges mounts by mountPath and keeps the live order: compare by path.
    live_mounts = live["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert sorted(live_mounts, key=lambda m: m["mountPath"]) == mounts
    # Every mount names a volume the pod has: a claim template or the ConfigMap.
    assert {m["name"] for m in mounts} <= set(claims) | {"config"}
    condition = next(c for c in loop.parent["status"]["conditions"] if c["type"] == "StorageChangeIgnored")
    assert condition["status"] == "True" and "volumeClaimTemplates" in condition["message"]
    assert loop.sync() == []


def test_a_server_made_by_this_hook_before_v029_upgrades_in_place():
    """The children the pre-v0.29 hook wrote (a fixture made at that revision), replayed through
    Metacontroller's dynamic apply with their last-applied annotations, then the hook of today."""
    import json
    from pathlib import Path

    old = json.loads((Path(__file__).parent / "fixtures" / "upgrades" / "pre_v029_children.json").read_text())
    loop = Loop(old["spec"], [NFS, f.entry("smb", 12445)])
    loop.cluster.apply(old["children"])
    loop.mark_ready()
    before = loop.live("StatefulSet", "demo")
    legacy = loop.live("Secret", "demo-admin-credentials")["data"]
    writes = loop.cluster.pod_template_writes()
    loop.settle()   # raises if an update touched an immutable field
    sts = loop.live("StatefulSet", "demo")
    assert sts["spec"]["volumeClaimTemplates"] == before["spec"]["volumeClaimTemplates"]
    assert loop.cluster.pod_template_writes() - writes == 1          # one roll, to the new binary
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/app/dfs"] and container["args"][0] == "start"
    assert sorted((m["mountPath"], m["name"], m.get("subPath")) for m in container["volumeMounts"]) == [
        ("/config", "config", None), ("/data/cache", "cache", None),
        ("/data/controlplane", "metadata", "controlplane"), ("/data/metadata", "metadata", None)]
    assert {e["name"] for e in container["env"]} == {"DITTOFS_CONTROLPLANE_SECRET", "DITTOFS_ADMIN_INITIAL_PASSWORD"}
    # The old admin Secret became the bootstrap Secret, same password, and is gone.
    assert loop.live("Secret", "demo-admin-bootstrap-credentials")["data"] == legacy
    assert loop.live("Secret", "demo-admin-credentials") is None
    assert loop.live("Secret", "demo-jwt-secret") is not None
    assert loop.sync() == []


def test_a_server_the_hook_wrote_before_the_go_operators_order_upgrades_without_a_roll():
    """The children of revision 0289217 (adapter Service ports by name, the baseline policy
    without its label, `metrics: {enabled: false}` in config.yaml), then today's hook: the
    Services, the policy and the ConfigMap are written once, the pod is not rolled (the config
    hash reads the file as before), and the next sync writes nothing."""
    old = json.loads((Path(__file__).parent / "fixtures" / "upgrades" / "before_go_operator_order.json").read_text())
    loop = Loop(old["spec"], [NFS, SMB], groups=f.WITH_POLICIES)
    loop.cluster.apply(old["children"]["dynamic-apply"])
    loop.mark_ready()
    writes, templates = len(loop.cluster.writes), loop.cluster.pod_template_writes()
    changes = loop.sync()
    # The manager account's Secret is new since that revision: made once, beside the pod.
    assert sorted((c.kind, c.name) for c in changes if c.action != "unchanged") == [
        ("ConfigMap", "demo-config"), ("NetworkPolicy", "demo-baseline"), ("Secret", "demo-manager-credentials"),
        ("Service", "demo-adapter-nfs")]
    assert loop.cluster.pod_template_writes() == templates
    assert "metrics" not in loop.live("ConfigMap", "demo-config")["data"]["config.yaml"]
    assert loop.live("NetworkPolicy", "demo-baseline")["metadata"]["labels"]["dittofs.io/baseline-networkpolicy"] == "true"
    # Dynamic apply keeps the live order of ports already there; the ports themselves are equal.
    live = loop.live("Service", "demo-adapter-nfs")["spec"]["ports"]
    assert sorted(p["name"] for p in live) == ["adapter-nfs", "mdns", "portmap"]
    assert loop.sync() == [] and len(loop.cluster.writes) == writes + 4


def test_a_status_flipping_between_int_and_float_never_settles(monkeypatch):
    """The harness compares status type-exactly, as Metacontroller's DeepEqual does: a hook
    answering 1 on one sync and 1.0 on the next writes status forever."""
    answer = sync.desired_state
    calls = []

    def flipping(*args, **kwargs):
        out = answer(*args, **kwargs)
        calls.append(None)
        out["status"]["replicas"] = 1.0 if len(calls) % 2 else 1
        return out

    monkeypatch.setattr(sync, "desired_state", flipping)
    loop = settled_children(Loop(SPEC, [NFS]))
    with pytest.raises(AssertionError, match="did not settle"):
        loop.settle()


def settled_children(loop: Loop) -> Loop:
    """Two syncs: the children exist as created; status may still be moving."""
    loop.sync()
    loop.sync()
    return loop


# --- hand-over from the DittoFS Go operator v0.29 ---------------------------------------------------

def go_world() -> Loop:
    loop = Loop(SPEC, [NFS, SMB], groups=f.WITH_POLICIES)   # the kinds the shipped controller declares
    harness.go_operator_world(loop)
    return loop


def test_without_the_label_every_go_operator_child_is_released_and_never_updated():
    """What was measured with Metacontroller 4.17.2: released, then `already exists`, silently."""
    loop = go_world()
    before = copy.deepcopy(loop.cluster.objects)
    # The one Secret the Go operator has no counterpart of is made; nothing else is written.
    assert [(c.kind, c.name, c.action) for c in loop.sync()] == [("Secret", "demo-manager-credentials", "create")]
    for _ in range(3):
        assert loop.sync() == []
    assert sorted(set(loop.cluster.released)) == sorted(before)
    assert sorted(set(loop.cluster.already_exists)) == sorted(before)
    for key, obj in loop.cluster.objects.items():
        if key not in before:
            continue
        assert obj["metadata"]["ownerReferences"] == []   # no garbage collection any more
        assert obj["spec" if "spec" in obj else "data"] == before[key]["spec" if "spec" in obj else "data"]


KINDS = {kind.lower(): kind for kind in ("StatefulSet", "Service", "ConfigMap", "Secret", "NetworkPolicy", "DittoServer")}


def kubectl_entry(line: str) -> dict:
    """A `kubectl -n NS label --overwrite KIND/NAME k=v` or `kubectl -n NS patch KIND/NAME
    --type=json -p '...'` line, as the patch entry `adopt --format json` gives for it."""
    words = shlex.split(line)
    assert words[:2] == ["kubectl", "-n"], line
    namespace, verb, rest = words[2], words[3], words[4:]
    resource = next(w for w in rest if "/" in w and not w.startswith("-"))
    kind, name = KINDS[resource.partition("/")[0].partition(".")[0]], resource.partition("/")[2]
    if verb == "label":
        key, _, value = rest[-1].partition("=")
        return {"kind": kind, "name": name, "namespace": namespace, "type": "merge",
                "patch": {"metadata": {"labels": {key: value}}}}
    assert verb == "patch" and "--type=json" in rest, line
    return {"kind": kind, "name": name, "namespace": namespace, "type": "json",
            "patch": json.loads(rest[rest.index("-p") + 1])}


def fix_commands(parent: dict) -> list[str]:
    """The commands the parent's status gives to fix what stands in a hand-over's way."""
    found = []
    for condition in parent["status"]["conditions"]:
        if condition["type"] in ("ChildrenNotAdopted", "FinalizerLeftOver") and condition["status"] == "True":
            fixes = re.findall(r"fix: (kubectl [^;)]*?'?\]?'?)(?:\)|$)", condition["message"])
            found += [command for fix in fixes for command in fix.split(" && ")]
    return found


def test_the_status_names_each_released_go_operator_child_and_its_commands_repair_the_hand_over():
    """Controllers installed before `adopt` ran: every child is released and stuck. The status
    says so, child by child, with the command that fixes it, and those commands run as given let
    the next sync adopt every child in place, each Secret value kept."""
    loop = go_world()
    operators = set(loop.cluster.objects)   # the first sync also makes the manager's Secret
    for _ in range(2):
        loop.sync()
    conditions = {c["type"]: c for c in loop.parent["status"]["conditions"]}
    assert conditions["Progressing"]["reason"] == "NotAdopted"
    message = conditions["ChildrenNotAdopted"]["message"]
    for kind, name in operators:
        assert f"{kind} {name} (released: no controller" in message, (kind, name)
    assert "FinalizerLeftOver" in conditions
    commands = fix_commands(loop.parent)
    assert len([c for c in commands if " label " in c]) == len(operators)
    # The Go operator's finalizer, and (dynamic apply) the UDP twins of the StatefulSet and the NFS Service.
    assert sorted(c.split()[4] for c in commands if " patch " in c) == \
        ["dittoserver.dittofs.dittofs.com/demo", "service/demo-adapter-nfs", "statefulset.apps/demo"]
    for line in commands:
        entry = kubectl_entry(line)
        target = loop.parent if entry["kind"] == "DittoServer" else loop.cluster.objects[(entry["kind"], entry["name"])]
        apply_patch(target, entry)
    assert loop.parent["metadata"]["finalizers"] == []
    before = len(loop.cluster.already_exists)
    loop.sync()
    assert sorted(loop.cluster.adopted) == sorted(operators)
    assert len(loop.cluster.already_exists) == before
    loop.settle()
    types = {c["type"] for c in loop.parent["status"]["conditions"]}
    assert not types & {"ChildrenNotAdopted", "FinalizerLeftOver"}
    for key, obj in loop.cluster.objects.items():
        if key[0] == "Secret" and key in operators:
            assert set(obj["data"].values()) == {harness.GO_OPERATOR_SECRET}, key


def apply_patch(obj: dict, entry: dict) -> None:
    """The two kinds of patch `adopt --format json` prints, as the API server applies them (a
    failed test operation raises)."""
    if entry["type"] == "merge":
        obj["metadata"]["labels"] = {**obj["metadata"].get("labels", {}), **entry["patch"]["metadata"]["labels"]}
        return
    patched = jsonpatch.apply_patch(obj, entry["patch"])
    obj.clear()
    obj.update(patched)


def adopt_plan(loop: Loop, tmp_path, capsys) -> dict:
    """What `adopt --format json` prints for the loop's parent and all that is live beside it
    (as `kubectl get ... -o json` gives them), under the loop's apply strategy."""
    (tmp_path / "ditto.json").write_text(json.dumps(loop.parent))
    (tmp_path / "live.json").write_text(json.dumps({"kind": "List", "items": list(loop.cluster.objects.values())}))
    assert cli.main(["adopt", str(tmp_path / "ditto.json"), "--observed", str(tmp_path / "live.json"),
                     "--format", "json", "--strategy", loop.strategy]) == 0
    return json.loads(capsys.readouterr().out)


def patches(plan: dict) -> list[dict]:
    return [entry for step in plan["steps"] for entry in step["patches"]]


def assert_handed_over(loop: Loop, plan: dict, written: list) -> None:
    """The first sync after the hand-over: updates only (an immutable field would have raised),
    those adopt predicted field for field (against a real server: what it stored), nothing
    released or refused, at most one roll as adopt said, the Go operator's Secret values kept,
    every child still the parent's alone (the manager account's Secret, which the Go operator
    does not make, is made)."""
    assert {(c.kind, c.name) for c in written if c.action == "create"} == {("Secret", "demo-manager-credentials")}
    assert {c.action for c in written} == {"create", "update"}
    assert loop.cluster.released == [] and loop.cluster.already_exists == []
    assert sorted((c.kind, c.name, list(c.fields)) for c in written) == \
        [(c["kind"], c["name"], c["fields"]) for c in plan["firstSync"]["changes"] if c["action"] != "unchanged"]
    assert loop.cluster.pod_template_writes() <= 1
    assert plan["firstSync"]["podRolls"] == (loop.cluster.pod_template_writes() == 1)
    for key, obj in loop.cluster.objects.items():
        if key[0] == "Secret" and key[1] != "demo-manager-credentials":
            assert set(obj["data"].values()) == {harness.GO_OPERATOR_SECRET}, key   # no password changes
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [loop.parent["metadata"]["uid"]], key


def test_the_adopt_hand_over_changes_no_immutable_field_deletes_nothing_and_rolls_at_most_once(tmp_path, capsys):
    loop = go_world()
    plan = adopt_plan(loop, tmp_path, capsys)
    for entry in patches(plan):
        target = loop.parent if entry["kind"] == "DittoServer" else loop.cluster.objects[(entry["kind"], entry["name"])]
        apply_patch(target, entry)
    assert "finalizers" not in loop.parent["metadata"] or loop.parent["metadata"]["finalizers"] == []
    assert_handed_over(loop, plan, loop.sync())   # ImmutableFieldError if it touched an immutable field
    loop.settle()
    assert loop.sync() == [] and loop.cluster.pod_template_writes() <= 1
