"""The sync hook's behaviour, call by call: children, adapter state, ports, Secrets, status."""
import base64
import copy
import json

import pytest
import yaml

from hooks.children import sync
from hooks.request import adapters as adapters_module
from hooks.request import errors, ports
from hooks.web import customize
from tests import factory as f
from tests import pod_security

NFS, SMB = f.entry("nfs", 12049), f.entry("smb", 12445)


def run(parent=None, observed=None, related=None, strategy="dynamic-apply", version="v1"):
    return f.sync_of(f.request(parent or f.parent(), observed, related, version), strategy)


def converge(parent, strategy="dynamic-apply"):
    """Two syncs: the second sees the first's children as observed (no server defaults)."""
    first = run(parent, strategy=strategy)
    return run(parent, observed=first["children"], strategy=strategy)


# --- response shape -------------------------------------------------------------------------

def test_response_has_exactly_the_three_keys():
    assert set(run()) == {"status", "children", "resyncAfterSeconds"}


def test_children_always_present():
    resp = run(f.parent(adapters=[]))
    assert f.names_of(resp, "Secret") == ["demo-admin-bootstrap-credentials", "demo-jwt-secret",
                                          "demo-manager-credentials", "demo-operator-credentials"]
    assert f.names_of(resp, "ConfigMap") == ["demo-config"]
    assert f.names_of(resp, "Service") == ["demo-api", "demo-headless"]
    assert f.names_of(resp, "StatefulSet") == ["demo"]


def test_metrics_service_only_when_enabled():
    spec = {**f.SPEC, "metrics": {"enabled": True, "port": 9100}}
    resp = run(f.parent(spec=spec, adapters=[]))
    assert f.child(resp, "Service", "demo-metrics")["spec"]["ports"][0]["port"] == 9100
    assert f.port_names(resp) == ["api", "metrics"]


def test_v1_and_v2_keying_give_identical_answers():
    p = f.parent(adapters=[NFS])
    first = run(p)
    assert run(p, first["children"], version="v1") == run(p, first["children"], version="v2")


# --- adapter state --------------------------------------------------------------------------

def test_only_enabled_and_running_adapters_count():
    p = f.parent(adapters=[NFS, f.entry("smb", 12445, running=False), f.entry("webdav", 8081, enabled=False)])
    resp = run(p)
    assert f.port_names(resp) == ["adapter-mdns", "adapter-nfs", "adapter-nfs-pm", "api"]
    assert resp["status"]["adapters"] == [{"type": "nfs", "port": 12049}]


def test_duplicate_sanitized_types_keep_the_lowest_port():
    resp = run(f.parent(adapters=[f.entry("NFS", 3000), f.entry("nfs", 2049)]))
    assert {"name": "adapter-nfs", "containerPort": 2049, "protocol": "TCP"} in f.container_ports(resp)
    assert resp["status"]["adapters"] == [{"type": "nfs", "port": 2049}]


@pytest.mark.parametrize("raw, reason", [
    (None, "AnnotationMissing"),
    ("not json", "AnnotationInvalid"),
    ('{"type": "nfs"}', "AnnotationInvalid"),
    ('[{"type": "nfs", "enabled": "yes", "running": true, "port": 1}]', "AnnotationInvalid"),
    ('[{"type": "nfs", "enabled": true, "running": true, "port": 70000}]', "AnnotationInvalid"),
    ('[{"type": "nfs", "enabled": true, "running": true, "port": 0}]', "AnnotationInvalid"),
    ('[{"type": "nfs", "enabled": true, "running": true}]', "AnnotationInvalid"),
    (f.annotation(*(f.entry(f"a{i}", 20000 + i) for i in range(adapters_module.MAX_ACTIVE + 1))), "TooManyAdapters"),
    (f.annotation(*(f.entry(f"a{i}", 20000 + i) for i in range(10_000))), "TooManyAdapters"),
])
def test_unknown_state_keeps_observed_adapter_services_and_ports(raw, reason):
    known = run(f.parent(adapters=[NFS, SMB]))
    resp = run(f.parent(adapters=raw), observed=known["children"])
    assert f.container_ports(resp) == f.container_ports(known)
    assert f.names_of(resp, "Service") == f.names_of(known, "Service")
    assert f.child(resp, "Service", "demo-adapter-smb") == f.child(known, "Service", "demo-adapter-smb")
    cond = f.condition(resp, "AdaptersKnown")
    assert cond["status"] == "False" and cond["reason"] == reason
    assert resp["status"]["adapters"] == [{"type": "nfs", "port": 12049}, {"type": "smb", "port": 12445}]


def test_unknown_state_prefers_the_last_applied_configuration():
    known = run(f.parent(adapters=[SMB]))
    live = copy.deepcopy(f.child(known, "Service", "demo-adapter-smb"))
    applied = copy.deepcopy(live)
    live["spec"]["clusterIP"] = "10.0.0.7"
    live["metadata"]["annotations"] = {"metacontroller.k8s.io/last-applied-configuration": json.dumps(applied)}
    others = [c for c in known["children"] if c["metadata"]["name"] != "demo-adapter-smb"]
    resp = run(f.parent(adapters=None), observed=others + [live])
    assert f.child(resp, "Service", "demo-adapter-smb") == applied


def test_unknown_state_with_nothing_observed_adds_nothing():
    resp = run(f.parent(adapters=None))
    assert f.port_names(resp) == ["api"]
    assert f.names_of(resp, "Service") == ["demo-api", "demo-headless"]


def test_valid_empty_array_removes_adapter_ports_and_services():
    known = run(f.parent(adapters=[NFS, SMB]))
    resp = run(f.parent(adapters=[]), observed=known["children"])
    assert f.port_names(resp) == ["api"]
    assert f.names_of(resp, "Service") == ["demo-api", "demo-headless"]
    assert f.condition(resp, "AdaptersKnown")["status"] == "True"


# --- ports and conflicts --------------------------------------------------------------------

def test_nfs_gets_portmapper_smb_gets_ws_discovery_and_both_mdns():
    """The ports clients discover adapters by, as the Go operator v0.29 gives them (#1609): one
    mDNS container port for all, on every adapter's Service; WS-Discovery for SMB."""
    resp = run(f.parent(adapters=[NFS, SMB]))
    nfs = f.child(resp, "Service", "demo-adapter-nfs")["spec"]["ports"]
    smb = f.child(resp, "Service", "demo-adapter-smb")["spec"]["ports"]
    mdns = {"name": "mdns", "port": 5353, "targetPort": 5353, "protocol": "UDP"}
    # In the Go operator's order (its tests expect the adapter's port first, then the portmapper).
    assert nfs == [
        {"name": "adapter-nfs", "port": 12049, "targetPort": 12049, "protocol": "TCP"},
        {"name": "portmap", "port": 111, "targetPort": 10111, "protocol": "TCP"},
        mdns,
    ]
    assert smb == [{"name": "adapter-smb", "port": 12445, "targetPort": 12445, "protocol": "TCP"}, mdns,
                   {"name": "wsd", "port": 3702, "targetPort": 3702, "protocol": "UDP"},
                   {"name": "wsd-meta", "port": 5357, "targetPort": 5357, "protocol": "TCP"}]
    assert [p for p in f.container_ports(resp) if p["name"].startswith(("adapter-mdns", "adapter-wsd"))] == [
        {"name": "adapter-mdns", "containerPort": 5353, "protocol": "UDP"},
        {"name": "adapter-wsd", "containerPort": 3702, "protocol": "UDP"},
        {"name": "adapter-wsdmeta", "containerPort": 5357, "protocol": "TCP"}]


def test_udp_portmapper_only_under_server_side_apply():
    dynamic = run(f.parent(adapters=[NFS]))
    ssa = run(f.parent(adapters=[NFS]), strategy="server-side-apply")
    assert "adapter-pm-udp" not in f.port_names(dynamic)
    assert {"name": "adapter-pm-udp", "containerPort": 10111, "protocol": "UDP"} in f.container_ports(ssa)
    service = f.child(ssa, "Service", "demo-adapter-nfs")["spec"]["ports"]
    # The data port over UDP too (NLM, NSM, MOUNT; the Go operator's #1356), on the Service only;
    # all in the Go operator's order: adapter, portmap, portmap-udp, the data port's twin, mDNS.
    assert [(p["name"], p["protocol"]) for p in service] == [
        ("adapter-nfs", "TCP"), ("portmap", "TCP"), ("portmap-udp", "UDP"), ("adapter-nfs-udp", "UDP"), ("mdns", "UDP")]
    udp = [p for p in service if p["protocol"] == "UDP"]
    assert udp == [{"name": "portmap-udp", "port": 111, "targetPort": 10111, "protocol": "UDP"},
                   {"name": "adapter-nfs-udp", "port": 12049, "targetPort": 12049, "protocol": "UDP"},
                   {"name": "mdns", "port": 5353, "targetPort": 5353, "protocol": "UDP"}]
    dynamic_udp = [p["name"] for p in f.child(dynamic, "Service", "demo-adapter-nfs")["spec"]["ports"] if p["protocol"] == "UDP"]
    assert dynamic_udp == ["mdns"]   # no UDP twin of a TCP port under dynamic apply


def test_adapter_on_the_api_port_is_left_out_and_reported():
    resp = run(f.parent(adapters=[f.entry("smb", 8080), NFS]))
    assert f.port_names(resp) == ["adapter-mdns", "adapter-nfs", "adapter-nfs-pm", "api"]   # no WSD for a lost SMB
    assert f.child(resp, "Service", "demo-adapter-smb") is None
    assert resp["status"]["adapters"] == [{"type": "nfs", "port": 12049}]
    cond = f.condition(resp, "PortConflict")
    assert cond["status"] == "True" and "adapter-smb" in cond["message"]


def test_two_adapters_on_one_port_the_name_sorting_first_wins():
    resp = run(f.parent(adapters=[f.entry("webdav", 9000), f.entry("smb", 9000)]))
    assert f.port_names(resp) == ["adapter-mdns", "adapter-smb", "adapter-wsd", "adapter-wsdmeta", "api"]
    assert f.names_of(resp, "Service") == ["demo-adapter-smb", "demo-api", "demo-headless"]


def test_adapter_on_the_portmapper_port_loses_to_nfs():
    resp = run(f.parent(adapters=[NFS, f.entry("smb", 10111)]))
    assert f.port_names(resp) == ["adapter-mdns", "adapter-nfs", "adapter-nfs-pm", "api"]
    assert f.condition(resp, "PortConflict") is not None


def test_nfs_on_the_portmapper_port_keeps_its_own_port():
    resp = run(f.parent(adapters=[f.entry("nfs", 10111)]))
    assert f.port_names(resp) == ["adapter-mdns", "adapter-nfs", "api"]
    ports = f.child(resp, "Service", "demo-adapter-nfs")["spec"]["ports"]
    assert [p["name"] for p in ports] == ["adapter-nfs", "mdns"]


def test_no_conflict_condition_when_ports_are_clean():
    assert f.condition(run(f.parent(adapters=[NFS, SMB])), "PortConflict") is None


def test_custom_adapter_service_type_and_annotations():
    spec = {**f.SPEC, "adapterServices": {"type": "NodePort", "annotations": {"lb.example/pool": "nas"}}}
    svc = f.child(run(f.parent(spec=spec, adapters=[SMB])), "Service", "demo-adapter-smb")
    assert svc["spec"]["type"] == "NodePort"
    assert svc["metadata"]["annotations"] == {"lb.example/pool": "nas"}
    assert svc["metadata"]["labels"]["dittofs.io/adapter-service"] == "true"
    assert svc["metadata"]["labels"]["dittofs.io/adapter-type"] == "smb"
    assert svc["spec"]["selector"] == {"app": "dittofs-server", "instance": "demo"}


# --- Secrets ---------------------------------------------------------------------------------

def test_generated_secrets_are_random_once_then_kept():
    first = sync.desired_state(f.request(f.parent()), now=f.NOW)
    jwt = f.child(first, "Secret", "demo-jwt-secret")
    value = base64.b64decode(jwt["data"]["jwt-secret"]).decode()
    assert len(value) == 64 and value.isalnum()
    again = sync.desired_state(f.request(f.parent()), now=f.NOW)
    assert f.child(again, "Secret", "demo-jwt-secret")["data"] != jwt["data"]   # random before it exists
    kept = sync.desired_state(f.request(f.parent(), observed=first["children"]), now=f.NOW)
    for name in ("demo-jwt-secret", "demo-admin-bootstrap-credentials"):
        assert f.child(kept, "Secret", name)["data"] == f.child(first, "Secret", name)["data"]
        assert "stringData" not in f.child(kept, "Secret", name)


def test_a_secret_of_a_childs_name_that_is_not_a_child_keeps_its_values():
    """The Go operator's Secrets, released by Metacontroller (the controllers came before
    `adopt`), are related by name, not children. Server-side apply takes them over at the next
    sync: the desired Secret must carry their values, or the admin password and JWT key change."""
    first = sync.desired_state(f.request(f.parent()), now=f.NOW)
    theirs = [{**c, "metadata": {"name": c["metadata"]["name"], "namespace": "storage"},
               "data": {k: base64.b64encode(b"set by the Go operator").decode() for k in c["data"]}}
              for c in first["children"] if c["kind"] == "Secret" and not c["metadata"]["name"].endswith("-manager-credentials")]
    for strategy in (ports.DYNAMIC, ports.SERVER_SIDE):
        kept = sync.desired_state(f.request(f.parent(), related=theirs, version="v2"), strategy=strategy, now=f.NOW)
        for secret in theirs:
            assert f.child(kept, "Secret", secret["metadata"]["name"])["data"] == secret["data"], strategy


@pytest.mark.parametrize("name", ["demo-jwt-secret", "demo-admin-credentials"])
def test_a_users_own_secret_of_a_childs_name_is_never_made_a_child(name):
    """A Secret the spec names as the user's own, whose name a generated Secret has (or the
    legacy admin Secret's): related, never a child. Handed back as a child, server-side apply
    would take it over and Metacontroller delete it once the hook stopped answering with it."""
    mine = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "storage"},
            "type": "kubernetes.io/opaque-of-mine", "data": {"jwt-secret": base64.b64encode(b"k" * 40).decode()}}
    p = f.parent(spec={**f.SPEC, "identity": {"jwt": {"secretRef": {"name": name, "key": "jwt-secret"}}}})
    for strategy in (ports.DYNAMIC, ports.SERVER_SIDE):
        answer = sync.desired_state(f.request(p, related=[mine], version="v2"), strategy=strategy, now=f.NOW)
        assert f.child(answer, "Secret", name) is None, strategy
        assert f.condition(answer, "ConfigReady")["status"] == "True", strategy


def test_a_missing_key_is_filled_and_existing_keys_kept():
    observed = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-admin-bootstrap-credentials"},
                "data": {"username": base64.b64encode(b"root").decode()}}
    secret = f.child(run(observed=[observed]), "Secret", "demo-admin-bootstrap-credentials")
    assert base64.b64decode(secret["data"]["username"]) == b"root"
    assert base64.b64decode(secret["data"]["password"]) == b"x" * 32


def test_referenced_secrets_replace_generated_ones():
    spec = {**f.SPEC, "identity": {"jwt": {"secretRef": {"name": "jwt", "key": "k"}},
                                   "admin": {"passwordSecretRef": {"name": "adm", "key": "pw"}}},
            "adapterDiscovery": {"credentialsSecretRef": {"name": "poll"}}}
    resp = run(f.parent(spec=spec))
    # A user's polling Secret: no operator account either. The manager account's is always made:
    # the DittoShare, DittoUser and DittoGroup hooks can only derive its name.
    assert f.names_of(resp, "Secret") == ["demo-manager-credentials"]
    env = _env(resp)
    assert env["DITTOFS_CONTROLPLANE_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "jwt", "key": "k"}
    # Cleartext, as DittoFS v0.29 and its operator read it; required, not optional.
    assert env["DITTOFS_ADMIN_INITIAL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "adm", "key": "pw"}
    assert "DITTOFS_ADMIN_PASSWORD_HASH" not in env


def _env(resp: dict) -> dict:
    container = f.child(resp, "StatefulSet", "demo")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_postgres_env_comes_from_the_secrets_keys_and_the_file_names_only_the_type():
    spec = {**f.SPEC, "database": {"type": "sqlite", "postgresSecretRef": {"name": "pg", "key": "dsn"}}}
    resp = run(f.parent(spec=spec))
    env = _env(resp)
    refs = {name: e["valueFrom"]["secretKeyRef"] for name, e in env.items() if name.startswith("DITTOFS_DATABASE")}
    assert refs == {
        "DITTOFS_DATABASE_POSTGRES_HOST": {"name": "pg", "key": "host"},
        "DITTOFS_DATABASE_POSTGRES_PORT": {"name": "pg", "key": "port", "optional": True},
        "DITTOFS_DATABASE_POSTGRES_DATABASE": {"name": "pg", "key": "database"},
        "DITTOFS_DATABASE_POSTGRES_USER": {"name": "pg", "key": "user"},
        "DITTOFS_DATABASE_POSTGRES_PASSWORD": {"name": "pg", "key": "password"},
        "DITTOFS_DATABASE_POSTGRES_SSLMODE": {"name": "pg", "key": "sslmode", "optional": True},
    }
    assert not any(name.startswith("AWS_") for name in env)
    config = yaml.safe_load(f.child(resp, "ConfigMap", "demo-config")["data"]["config.yaml"])
    assert config["database"] == {"type": "postgres"}   # a postgres Secret wins over type


def test_config_has_no_key_that_dittofs_v029_ignores():
    spec = {**f.SPEC, "metrics": {"enabled": True, "port": 9100, "path": "/m"},
            "logging": {"level": "WARN", "format": "text", "output": "/var/log/dfs.log"}}
    config = yaml.safe_load(f.child(run(f.parent(spec=spec)), "ConfigMap", "demo-config")["data"]["config.yaml"])
    assert set(config) == {"logging", "shutdown_timeout", "database", "metrics", "controlplane", "admin"}
    assert config["controlplane"]["host"] == "0.0.0.0" and "issuer" not in config["controlplane"]["jwt"]
    assert config["metrics"] == {"enabled": True, "host": "0.0.0.0", "port": 9100, "path": "/m", "auth": "none"}
    assert config["logging"] == {"level": "WARN", "format": "text", "output": "/var/log/dfs.log"}


def test_config_has_no_metrics_block_when_metrics_are_off():
    """As the Go operator writes it; DittoFS's metrics are off unless the file turns them on
    (tests/test_dittofs_real.py proves it on the real server)."""
    for metrics in (None, {"enabled": False, "port": 9191, "path": "/m"}):
        spec = f.SPEC if metrics is None else {**f.SPEC, "metrics": metrics}
        config = yaml.safe_load(f.child(run(f.parent(spec=spec)), "ConfigMap", "demo-config")["data"]["config.yaml"])
        assert "metrics" not in config and set(config) == {"logging", "shutdown_timeout", "database",
                                                           "controlplane", "admin"}


# configHash at 0289217, when config.yaml still had `metrics: {enabled: false}`: leaving the block
# out must not roll the pods of servers whose metrics are off when the hook is upgraded.
HASH_METRICS_OFF = "5010da8bd5a5df7f86a1255dfeeae621d5d9290df146d6299913483ca7210d57"
HASH_METRICS_ON = "49a5256c55ffbcf8deecbee298639c9fc196b3e69c0e2d4c895ca8495973ec20"


@pytest.mark.parametrize("spec, expected", [
    (f.SPEC, HASH_METRICS_OFF),
    ({**f.SPEC, "metrics": {"enabled": False, "port": 9191}}, HASH_METRICS_OFF),
    ({**f.SPEC, "metrics": {"enabled": True}}, HASH_METRICS_ON),
])
def test_config_hash_is_what_earlier_revisions_computed(spec, expected):
    resp = run(f.parent(spec=spec))
    assert resp["status"]["configHash"] == expected
    template = f.child(resp, "StatefulSet", "demo")["spec"]["template"]
    assert template["metadata"]["annotations"]["dittofs.io/config-hash"] == expected


def test_legacy_admin_secret_is_adopted_then_dropped_once_the_bootstrap_secret_exists():
    legacy = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-admin-credentials"},
              "data": {"username": base64.b64encode(b"admin").decode(), "password": base64.b64encode(b"old").decode()}}
    first = run(observed=[legacy])
    bootstrap = f.child(first, "Secret", "demo-admin-bootstrap-credentials")
    assert bootstrap["data"] == legacy["data"]
    assert f.child(first, "Secret", "demo-admin-credentials")["data"] == legacy["data"]   # kept this time
    second = run(observed=[legacy, bootstrap])
    assert f.child(second, "Secret", "demo-admin-credentials") is None   # Metacontroller deletes it
    assert f.child(second, "Secret", "demo-admin-bootstrap-credentials")["data"] == legacy["data"]


# --- StatefulSet -----------------------------------------------------------------------------

def test_claim_templates_are_emitted_in_stored_form():
    spec = {"storage": {"metadataSize": "10Gi", "controlPlaneSize": "2Gi", "contentSize": "1Ti",
                        "storageClassName": "fast"}}
    sts = f.child(run(f.parent(spec=spec)), "StatefulSet", "demo")
    claims = sts["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["controlplane", "metadata", "content"]
    for c in claims:
        assert c["apiVersion"] == "v1" and c["kind"] == "PersistentVolumeClaim"
        assert c["spec"]["volumeMode"] == "Filesystem" and c["status"] == {"phase": "Pending"}
        assert c["spec"]["storageClassName"] == "fast"
    assert claims[2]["spec"]["resources"]["requests"]["storage"] == "1Ti"
    mounts = sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert mounts == [{"name": "config", "mountPath": "/config", "readOnly": True},
                      {"name": "controlplane", "mountPath": "/data/controlplane"},
                      {"name": "content", "mountPath": "/data/store/block"},
                      {"name": "metadata", "mountPath": "/data/store/metadata"}]


def test_immutable_fields_come_from_the_observed_statefulset():
    first = run(f.parent())
    sts = copy.deepcopy(f.child(first, "StatefulSet", "demo"))
    sts["spec"]["selector"] = {"matchLabels": {"app": "legacy"}}
    sts["spec"]["serviceName"] = "legacy-headless"
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "3Gi"
    others = [c for c in first["children"] if c["kind"] != "StatefulSet"]
    resp = run(f.parent(), observed=others + [sts])
    out = f.child(resp, "StatefulSet", "demo")
    for key in ("selector", "serviceName", "volumeClaimTemplates"):
        assert out["spec"][key] == sts["spec"][key]
    assert out["spec"]["template"]["metadata"]["labels"]["app"] == "legacy"
    cond = f.condition(resp, "StorageChangeIgnored")
    assert cond["status"] == "True" and "10Gi" in cond["message"]


def test_no_storage_condition_when_storage_matches():
    resp = converge(f.parent())
    assert f.condition(resp, "StorageChangeIgnored") is None


def test_config_hash_follows_config_and_related_secrets_but_not_generation():
    spec = {**f.SPEC, "identity": {"jwt": {"secretRef": {"name": "jwt", "key": "k"}}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jwt"}, "data": {"k": "YQ=="}}
    base = run(f.parent(spec=spec), related=[secret])["status"]["configHash"]
    assert run(f.parent(spec=spec, generation=9), related=[secret])["status"]["configHash"] == base
    assert run(f.parent(spec=spec, adapters=[NFS]), related=[secret])["status"]["configHash"] == base
    rotated = copy.deepcopy(secret)
    rotated["data"]["k"] = "Yg=="
    assert run(f.parent(spec=spec), related=[rotated])["status"]["configHash"] != base
    changed = {**spec, "logging": {"level": "DEBUG"}}
    resp = run(f.parent(spec=changed), related=[secret])
    assert resp["status"]["configHash"] != base
    annotations = f.child(resp, "StatefulSet", "demo")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dittofs.io/config-hash"] == resp["status"]["configHash"]


# --- status ----------------------------------------------------------------------------------

def _with_status(children, ready, available=None, generation=1):
    out = copy.deepcopy(children)
    for c in out:
        if c["kind"] == "StatefulSet":
            c["metadata"]["generation"] = generation
            c["status"] = {"observedGeneration": generation, "replicas": 1, "readyReplicas": ready,
                           "availableReplicas": ready if available is None else available,
                           "currentRevision": "r1", "updateRevision": "r1"}
    return out


def test_phase_and_replica_counts_come_from_the_observed_statefulset():
    first = run(f.parent())
    assert first["status"]["phase"] == "Pending"
    running = run(f.parent(), observed=_with_status(first["children"], ready=1))
    assert running["status"]["phase"] == "Running"
    assert running["status"]["readyReplicas"] == 1 and running["status"]["availableReplicas"] == 1
    assert f.condition(running, "Available")["status"] == "True"
    assert f.condition(running, "Progressing")["status"] == "False"
    # Ready as the Go operator defines it: it also waits for discovery to authenticate.
    assert (f.condition(running, "Ready")["status"], f.condition(running, "Ready")["message"]) == \
        ("False", "not ready: Authenticated")
    authenticated = f.parent()
    authenticated["metadata"]["annotations"]["dittofs.io/control-plane"] = \
        '{"message":"polling as k8s-operator","reason":"Authenticated"}'
    ready = run(authenticated, observed=_with_status(first["children"], ready=1))
    assert f.condition(ready, "Ready")["status"] == "True" and f.condition(ready, "Ready")["reason"] == "AllConditionsMet"
    stopped = run(f.parent(spec={**f.SPEC, "replicas": 0}), observed=first["children"])
    assert stopped["status"]["phase"] == "Stopped"
    assert f.child(stopped, "StatefulSet", "demo")["spec"]["replicas"] == 0


def test_transition_time_is_kept_while_status_holds_and_moves_when_it_changes():
    earlier = "2026-01-01T00:00:00Z"
    first = run(f.parent(adapters=[]))
    conditions = [dict(c, lastTransitionTime=earlier) for c in first["status"]["conditions"]]
    p = f.parent(adapters=[], status={"conditions": conditions})
    same = run(p, observed=first["children"])
    assert f.condition(same, "AdaptersKnown")["lastTransitionTime"] == earlier
    flipped = run(f.parent(adapters=None, status={"conditions": conditions}), observed=first["children"])
    assert f.condition(flipped, "AdaptersKnown")["lastTransitionTime"] == "2026-11-26T12:00:00Z"
    assert f.condition(flipped, "ConfigReady")["lastTransitionTime"] == earlier


def test_status_generation_is_the_parents():
    resp = run(f.parent(generation=7))
    assert resp["status"]["observedGeneration"] == 7
    assert {c["observedGeneration"] for c in resp["status"]["conditions"]} == {7}


# --- bad input -------------------------------------------------------------------------------

def _error(req) -> errors.HookError:
    with pytest.raises(errors.HookError) as info:
        sync.desired_state(req)
    return info.value


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.pop("parent"), "parent"),
    (lambda r: r["parent"].update(kind="Pod"), "parent.kind"),
    (lambda r: r["parent"].update(apiVersion="other.io/v1"), "parent.kind"),
    (lambda r: r["parent"]["metadata"].update(name="x" * 53), "parent.metadata.name"),
    (lambda r: r["parent"]["metadata"].update(name="1abc"), "parent.metadata.name"),
    (lambda r: r["parent"]["metadata"].update(name="a.b"), "parent.metadata.name"),
    (lambda r: r["parent"]["metadata"].pop("namespace"), "parent.metadata.namespace"),
    (lambda r: r["parent"].update(spec=None), "parent.spec"),
    (lambda r: r["parent"]["spec"].update(replicas=2), "parent.spec.replicas"),
    (lambda r: r["parent"]["spec"].pop("storage"), "parent.spec.storage"),
    (lambda r: r["parent"]["spec"]["storage"].update(metadataSize="10GB"), "parent.spec.storage.metadataSize"),
    (lambda r: r["parent"]["spec"].update(controlPlane={"port": 0}), "parent.spec.controlPlane.port"),
    (lambda r: r["parent"]["spec"].update(service={"type": "Foo"}), "parent.spec.service.type"),
    (lambda r: r["parent"]["spec"].update(metrics={"port": 8080}), "parent.spec"),
    (lambda r: r.pop("children"), "children"),
    (lambda r: r["children"].pop("Secret.v1"), "children.Secret.v1"),
    (lambda r: r["children"].update({"Service.v1": []}), "children.Service.v1"),
    (lambda r: r["children"]["Service.v1"].update(x={"kind": "Service"}), "children.Service.v1.x"),
])
def test_bad_input_is_a_422_naming_the_field(mutate, field):
    req = f.request(f.parent())
    mutate(req)
    err = _error(req)
    assert err.status == 422
    assert err.field == field
    assert err.message


def test_a_non_object_request_is_a_400():
    assert _error([1, 2]).status == 400


# --- customize -------------------------------------------------------------------------------

def test_customize_lists_the_referenced_secrets():
    spec = {**f.SPEC, "identity": {"jwt": {"secretRef": {"name": "jwt", "key": "k"}},
                                   "admin": {"passwordSecretRef": {"name": "pw", "key": "p"}}},
            "database": {"postgresSecretRef": {"name": "jwt", "key": "dsn"}}}
    out = customize.related_resources({"parent": f.parent(spec=spec)})["relatedResources"]
    assert out[0] == {"apiVersion": "v1", "resource": "secrets", "namespace": "storage", "names": ["jwt", "pw"]}
    # The user's Secrets replace the generated JWT and admin Secrets: only the other two are made.
    generated = next(r for r in out[1:] if r["resource"] == "secrets")
    assert generated["names"] == ["demo-manager-credentials", "demo-operator-credentials"]
    assert [r["resource"] for r in customize.related_resources({"parent": f.parent()})["relatedResources"]] == [
        "statefulsets", "configmaps", "services", "secrets", "networkpolicies"]


def test_customize_relates_by_name_every_object_a_child_could_be():
    """Objects of the children's names are related, adapters DittoFS serves included (running
    or not: the answer is kept per generation), and those the annotation names beyond them."""
    p = f.parent(spec={**f.SPEC, "metrics": {"enabled": True}}, adapters=[f.entry("nfs", 12049), f.entry("x-proto", 9000)])
    rules = {r["resource"]: r for r in customize.related_resources({"parent": p})["relatedResources"]}
    assert {r["namespace"] for r in rules.values()} == {"storage"}
    assert rules["statefulsets"]["names"] == ["demo"] and rules["statefulsets"]["apiVersion"] == "apps/v1"
    assert rules["configmaps"]["names"] == ["demo-config"]
    assert rules["services"]["names"] == ["demo-adapter-nfs", "demo-adapter-smb", "demo-adapter-x-proto",
                                          "demo-api", "demo-headless", "demo-metrics"]
    assert rules["networkpolicies"]["names"] == ["demo-adapter-nfs", "demo-adapter-smb", "demo-adapter-x-proto",
                                                 "demo-baseline"]
    assert rules["secrets"]["names"] == ["demo-admin-bootstrap-credentials", "demo-jwt-secret",
                                         "demo-manager-credentials", "demo-operator-credentials"]
    # Every name is one the sync hook's children really carry (with the adapters running).
    children = run(p)["children"]
    for child in children:
        if child["kind"] != "ServiceMonitor":
            resource = {"StatefulSet": "statefulsets", "ConfigMap": "configmaps", "Service": "services",
                        "Secret": "secrets", "NetworkPolicy": "networkpolicies"}[child["kind"]]
            assert child["metadata"]["name"] in rules[resource]["names"], child["metadata"]["name"]
    # A controller that declares no NetworkPolicy children relates none.
    controller = {"spec": {"childResources": [{"apiVersion": v, "resource": r} for v, r in (
        ("v1", "secrets"), ("v1", "configmaps"), ("v1", "services"), ("apps/v1", "statefulsets"))]}}
    found = customize.related_resources({"parent": p, "controller": controller})["relatedResources"]
    assert "networkpolicies" not in {r["resource"] for r in found}


def test_adapter_summary_lists_every_applied_adapter():
    assert run(f.parent(adapters=[SMB, NFS]))["status"]["adapterSummary"] == "nfs:12049,smb:12445"
    assert run(f.parent(adapters=[]))["status"]["adapterSummary"] == ""


# --- Pod Security Standard `restricted` ---------------------------------------------------------

def _pod(spec: dict) -> dict:
    return f.child(run(f.parent(spec={**f.SPEC, **spec})), "StatefulSet", "demo")["spec"]["template"]["spec"]


@pytest.mark.parametrize("extra", [
    pytest.param({}, id="defaults"),
    pytest.param({"securityContext": {"runAsUser": 65532, "readOnlyRootFilesystem": False}}, id="user-fields-kept"),
    pytest.param({"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}, id="user-adds-a-capability"),
    pytest.param({"podSecurityContext": {"fsGroup": 2000, "runAsNonRoot": True}}, id="user-pod-context"),
])
def test_the_pod_passes_the_restricted_pod_security_standard(extra):
    pod = _pod(extra)
    assert pod_security.violations(pod) == []
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    for key, value in extra.get("securityContext", {}).items():
        if key != "capabilities":
            assert container["securityContext"][key] == value   # completed, not replaced
    if "capabilities" in extra.get("securityContext", {}):
        assert container["securityContext"]["capabilities"] == {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}


@pytest.mark.parametrize("context, left_out", [
    ({"privileged": True}, "allowPrivilegeEscalation"),
    ({"capabilities": {"add": ["SYS_ADMIN"]}}, "allowPrivilegeEscalation"),
    ({"runAsUser": 0}, "runAsNonRoot"),
])
def test_a_default_the_users_context_rules_out_is_left_out(context, left_out):
    """The API server refuses allowPrivilegeEscalation false beside privileged or CAP_SYS_ADMIN,
    and runAsNonRoot true with uid 0 never starts: the user's choice stands alone."""
    found = _pod({"securityContext": context})["containers"][0]["securityContext"]
    assert left_out not in found
    assert all(found[key] == value for key, value in context.items() if key != "capabilities")
    assert pod_security.violations(_pod({"securityContext": context}))   # not restricted, as asked


def test_database_type_postgres_without_its_secret_is_refused():
    err = _error(f.request(f.parent(spec={**f.SPEC, "database": {"type": "postgres"}})))
    assert err.status == 422 and err.field == "parent.spec.database"
    assert "postgresSecretRef" in err.message


def test_a_user_who_says_otherwise_wins_and_the_check_sees_it():
    pod = _pod({"securityContext": {"allowPrivilegeEscalation": True, "capabilities": {"drop": ["NET_RAW"]}}})
    assert pod_security.violations(pod) == ["dittofs: allowPrivilegeEscalation is not false",
                                            "dittofs: capabilities do not drop ALL"]


def test_pod_runs_as_the_images_user_with_the_operators_grace_period_and_probes():
    pod = _pod({})
    assert pod["securityContext"] == {"fsGroup": 65532}
    assert pod["terminationGracePeriodSeconds"] == 105
    assert _pod({"terminationGracePeriodSeconds": 36})["terminationGracePeriodSeconds"] == 36
    container = pod["containers"][0]
    assert container["command"] == ["/app/dfs"]
    assert container["args"] == ["start", "--foreground", "--config", "/config/config.yaml"]
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5"]}}}
    timing = {name: {k: v for k, v in container[name].items() if k != "httpGet"}
              for name in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert timing == {
        "livenessProbe": {"initialDelaySeconds": 15, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"initialDelaySeconds": 10, "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
        "startupProbe": {"periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 30},
    }
    assert [container[name]["httpGet"]["path"] for name in ("livenessProbe", "readinessProbe", "startupProbe")] == \
        ["/health", "/health/ready", "/health"]


@pytest.mark.parametrize("grace", [30, 0, "60"])
def test_a_grace_period_dittofs_cannot_shut_down_in_is_refused(grace):
    err = _error(f.request(f.parent(spec={**f.SPEC, "terminationGracePeriodSeconds": grace})))
    assert err.status == 422 and err.field == "parent.spec.terminationGracePeriodSeconds"


# --- control-plane TLS -------------------------------------------------------------------------------

def _tls(control_plane: dict) -> dict:
    return run(f.parent(spec={**f.SPEC, "controlPlane": control_plane}))


def test_native_tls_mounts_the_certificate_configures_it_and_probes_over_https():
    resp = _tls({"certSecretName": "api-tls"})
    pod = f.child(resp, "StatefulSet", "demo")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"name": "tls-cert", "secret": {"secretName": "api-tls"}} in pod["volumes"]
    assert {"name": "tls-cert", "mountPath": "/tls", "readOnly": True} in container["volumeMounts"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "api", "scheme": "HTTPS"}
    config = yaml.safe_load(f.child(resp, "ConfigMap", "demo-config")["data"]["config.yaml"])
    assert config["controlplane"]["tls"] == {"cert_file": "/tls/tls.crt", "key_file": "/tls/tls.key"}


def test_mutual_tls_mounts_the_client_ca_and_probes_the_port_only():
    resp = _tls({"certSecretName": "api-tls", "clientCASecretName": "clients"})
    pod = f.child(resp, "StatefulSet", "demo")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"name": "tls-client-ca", "mountPath": "/tls-client-ca", "readOnly": True} in container["volumeMounts"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["tcpSocket"] == {"port": "api"} and "httpGet" not in container[probe]
    config = yaml.safe_load(f.child(resp, "ConfigMap", "demo-config")["data"]["config.yaml"])
    assert config["controlplane"]["tls"]["client_ca"] == "/tls-client-ca/ca.crt"


def test_a_renewed_certificate_does_not_roll_the_pod_but_a_new_client_ca_does():
    """DittoFS reloads its certificate files by itself: a cert-manager renewal must not cost an
    NFS outage. The client CA is read at start."""
    spec = {**f.SPEC, "controlPlane": {"certSecretName": "api-tls", "clientCASecretName": "clients"}}
    cert = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-tls"}, "data": {"tls.crt": "YQ=="}}
    clients = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "clients"}, "data": {"ca.crt": "YQ=="}}
    base = run(f.parent(spec=spec), related=[cert, clients])["status"]["configHash"]
    renewed = copy.deepcopy(cert)
    renewed["data"]["tls.crt"] = "Yg=="
    assert run(f.parent(spec=spec), related=[renewed, clients])["status"]["configHash"] == base
    new_ca = copy.deepcopy(clients)
    new_ca["data"]["ca.crt"] = "Yg=="
    assert run(f.parent(spec=spec), related=[cert, new_ca])["status"]["configHash"] != base
    assert customize.related_resources({"parent": f.parent(spec=spec)})["relatedResources"][0]["names"] == \
        ["api-tls", "clients"]


def test_turning_the_portmapper_on_rolls_the_pod_once():
    """DittoFS starts the NFS portmapper only with the server: when discovery turned it on, the
    applied annotation it writes changes the pod template, once; a portmapper found on does not."""
    def with_applied(value: str) -> dict:
        found = f.parent(adapters=[NFS])
        found["metadata"]["annotations"]["dittofs.io/applied"] = value
        return found
    plain = run(f.parent(adapters=[NFS]))["status"]["configHash"]
    found_on = '{"portmapper":"nfs:12049","portmapperTurnedOn":false,"snapshotPolicies":{}}'
    assert run(with_applied(found_on))["status"]["configHash"] == plain
    turned_on = '{"portmapper":"nfs:12049","portmapperTurnedOn":true,"snapshotPolicies":{}}'
    rolled = run(with_applied(turned_on))["status"]["configHash"]
    assert rolled != plain
    moved = '{"portmapper":"nfs:2049","portmapperTurnedOn":true,"snapshotPolicies":{"/a":"x"}}'
    assert run(with_applied(moved))["status"]["configHash"] == rolled   # no second roll


def test_a_client_ca_without_a_server_certificate_is_refused():
    err = _error(f.request(f.parent(spec={**f.SPEC, "controlPlane": {"clientCASecretName": "clients"}})))
    assert err.status == 422 and err.field == "parent.spec.controlPlane" and "certSecretName" in err.message


# --- ConfigReady and DatabaseReady: a missing Secret is a status, not a 422 --------------------------

def test_a_missing_referenced_secret_is_a_condition_and_the_children_stay():
    spec = {**f.SPEC, "identity": {"admin": {"passwordSecretRef": {"name": "adm", "key": "pw"}}},
            "database": {"postgresSecretRef": {"name": "pg"}}}
    resp = run(f.parent(spec=spec))
    assert f.child(resp, "StatefulSet", "demo") is not None
    config = f.condition(resp, "ConfigReady")
    assert config["status"] == "False" and config["reason"] == "SecretMissing"
    assert "Secret adm is missing" in config["message"] and "Secret pg is missing" in config["message"]
    assert f.condition(resp, "DatabaseReady")["status"] == "False"
    pg = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg"},
          "data": {k: "eA==" for k in ("host", "database", "user")}}
    adm = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "adm"}, "data": {"pw": "eA=="}}
    partly = run(f.parent(spec=spec), related=[pg, adm])
    assert f.condition(partly, "ConfigReady")["message"] == "Secret pg has no key password"
    assert f.condition(partly, "DatabaseReady")["message"] == "Secret pg has no key password"
    pg["data"]["password"] = "eA=="
    whole = run(f.parent(spec=spec), related=[pg, adm])
    assert [f.condition(whole, c)["status"] for c in ("ConfigReady", "DatabaseReady")] == ["True", "True"]


def test_sqlite_is_database_ready_and_a_stopped_server_is_available():
    resp = run(f.parent(spec={**f.SPEC, "replicas": 0}))
    assert f.condition(resp, "DatabaseReady")["reason"] == "SQLite"
    assert f.condition(resp, "Available")["status"] == "True" and f.condition(resp, "Available")["reason"] == "Stopped"


def test_a_generated_secret_the_spec_now_names_is_kept_not_deleted():
    """Pointing passwordSecretRef at the bootstrap Secret (after editing it) must not make
    Metacontroller delete it: it is handed back as it is."""
    first = run()
    bootstrap = f.child(first, "Secret", "demo-admin-bootstrap-credentials")
    edited = copy.deepcopy(bootstrap)
    edited["data"]["password"] = base64.b64encode(b"changed by hand").decode()
    spec = {**f.SPEC, "identity": {"admin": {"passwordSecretRef": {"name": "demo-admin-bootstrap-credentials",
                                                                   "key": "password"}}}}
    later = run(f.parent(spec=spec), observed=[*first["children"][:1], edited, *first["children"][2:]])
    assert f.child(later, "Secret", "demo-admin-bootstrap-credentials")["data"] == edited["data"]


def test_an_emptied_generated_password_is_made_again():
    first = run()
    emptied = copy.deepcopy(f.child(first, "Secret", "demo-operator-credentials"))
    emptied["data"]["password"] = ""
    later = run(observed=[emptied])
    assert f.child(later, "Secret", "demo-operator-credentials")["data"]["password"] != ""


def test_the_shared_mdns_port_is_kept_when_the_adapter_that_placed_it_loses():
    """mDNS is one container port for all adapters: if the adapter that sorts first loses its own
    port, another adapter's Service still has mDNS and the container still has it once."""
    resp = run(f.parent(adapters=[f.entry("afp", 8080), SMB]))      # afp clashes with the API port
    assert f.port_names(resp).count("adapter-mdns") == 1
    assert f.child(resp, "Service", "demo-adapter-afp") is None
    smb = [p["name"] for p in f.child(resp, "Service", "demo-adapter-smb")["spec"]["ports"]]
    assert "mdns" in smb


def test_an_adapter_on_the_mdns_port_wins_it_and_the_others_report_the_clash():
    resp = run(f.parent(adapters=[f.entry("webdav", 5353), SMB]))
    ports = f.container_ports(resp)
    assert {"name": "adapter-webdav", "containerPort": 5353, "protocol": "TCP"} in ports
    # Under dynamic apply ports are keyed by number: mDNS (5353/UDP) cannot sit beside it.
    assert "adapter-mdns" not in [p["name"] for p in ports]
    assert "adapter-mdns" in f.condition(resp, "PortConflict")["message"]


# --- ServiceMonitor ---------------------------------------------------------------------------------

WITH_MONITORS = (*f.GROUPS, "ServiceMonitor.monitoring.coreos.com/v1")


def _monitor_spec(**monitor) -> dict:
    return {**f.SPEC, "metrics": {"enabled": True, "path": "/m", "serviceMonitor": monitor,
                                  "bearerTokenSecret": {"name": "scrape", "key": "tok"}}}


def test_a_service_monitor_only_when_declared_and_enabled():
    declared = f.request(f.parent(spec=_monitor_spec(enabled=True, interval="30s", labels={"release": "kps"})),
                         groups=WITH_MONITORS)
    (monitor,) = [c for c in f.sync_of(declared)["children"] if c["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["name"] == "demo-metrics"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"] == {
        "selector": {"matchLabels": {"app": "dittofs-server", "instance": "demo", "dittofs.io/metrics-service": "true"}},
        "namespaceSelector": {"matchNames": ["storage"]},
        "endpoints": [{"port": "metrics", "path": "/m", "interval": "30s",
                       "bearerTokenSecret": {"name": "scrape", "key": "tok"}}]}
    # It selects the metrics Service: every selector label is on that Service.
    service = f.child(f.sync_of(declared), "Service", "demo-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    undeclared = f.request(f.parent(spec=_monitor_spec(enabled=True)))
    assert [c for c in f.sync_of(undeclared)["children"] if c["kind"] == "ServiceMonitor"] == []
    off = f.request(f.parent(spec=_monitor_spec(enabled=False)), groups=WITH_MONITORS)
    assert [c for c in f.sync_of(off)["children"] if c["kind"] == "ServiceMonitor"] == []


def test_a_user_label_cannot_take_the_selectors_keys():
    req = f.request(f.parent(spec=_monitor_spec(enabled=True, labels={"instance": "other", "dittofs.io/metrics-service": "no"})),
                    groups=WITH_MONITORS)
    (monitor,) = [c for c in f.sync_of(req)["children"] if c["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["instance"] == "demo"
    assert monitor["metadata"]["labels"]["dittofs.io/metrics-service"] == "true"


def test_the_service_monitor_fits_the_prometheus_operator_schema():
    """Checked against prometheus-operator's ServiceMonitor (v1) models, generated from its CRD:
    nothing is dropped as unknown and every value passes its validation."""
    from cloudcoil.models.prometheus_operator import v1 as prometheus

    req = f.request(f.parent(spec=_monitor_spec(enabled=True, interval="1m30s", labels={"a": "b"})), groups=WITH_MONITORS)
    (monitor,) = [c for c in f.sync_of(req)["children"] if c["kind"] == "ServiceMonitor"]
    parsed = prometheus.ServiceMonitor.model_validate(monitor)
    assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == monitor
    with pytest.raises(Exception):
        prometheus.ServiceMonitor.model_validate({**monitor, "spec": {**monitor["spec"], "endpoints": [
            {**monitor["spec"]["endpoints"][0], "interval": "90 seconds"}]}})


def test_the_adapter_cap_counts_active_adapters_only_and_says_why():
    """16 active adapters are built, whatever else the annotation lists; one more is unknown
    state, with a condition that says why (and 10,000 would have been 10,005 children)."""
    cap = adapters_module.MAX_ACTIVE
    idle = [f.entry(f"idle{i}", 30000 + i, enabled=False) for i in range(200)]
    full = run(f.parent(adapters=[*(f.entry(f"a{i}", 20000 + i) for i in range(cap)), *idle]))
    assert len(full["status"]["adapters"]) == cap
    assert len(f.names_of(full, "Service")) == 2 + cap
    over = run(f.parent(adapters=[f.entry(f"a{i}", 20000 + i) for i in range(cap + 1)]), observed=full["children"])
    cond = f.condition(over, "AdaptersKnown")
    assert (cond["status"], cond["reason"]) == ("False", "TooManyAdapters")
    assert f"{cap + 1} active adapters" in cond["message"] and f"at most {cap}" in cond["message"]
    assert f.names_of(over, "Service") == f.names_of(full, "Service")   # nothing added or deleted



# --- edges a mutation sweep showed untested ---------------------------------------------------

@pytest.mark.parametrize("port, known", [(65535, True), (65536, False), (0, False)])
def test_an_annotation_port_outside_1_to_65535_makes_adapter_state_unknown(port, known):
    """65536 in a container port is refused by the API server on every sync: never planned."""
    resp = run(f.parent(adapters=[f.entry("webdav", port)]))
    cond = f.condition(resp, "AdaptersKnown")
    assert cond["status"] == ("True" if known else "False")
    assert ("adapter-webdav" in f.port_names(resp)) is known
    if not known:
        assert cond["reason"] == "AnnotationInvalid" and str(port) in cond["message"]


def test_nfs_whose_own_port_lost_keeps_no_portmapper():
    """The portmapper serves only NFS: kept without it, it would change the pod for nothing."""
    resp = run(f.parent(adapters=[f.entry("nfs", 8080)]))   # the API port
    assert f.port_names(resp) == ["api"]
    assert f.child(resp, "Service", "demo-adapter-nfs") is None
    assert "adapter-nfs" in f.condition(resp, "PortConflict")["message"]


def test_an_adapters_own_port_wins_over_another_adapters_portmapper_of_the_same_name():
    """An adapter typed `nfs-pm` is named adapter-nfs-pm, like NFS's portmapper: its own port
    comes first whatever the numbers, so the portmapper is the one left out."""
    resp = run(f.parent(adapters=[NFS, f.entry("nfs-pm", 20000)]))
    assert {"name": "adapter-nfs-pm", "containerPort": 20000, "protocol": "TCP"} in f.container_ports(resp)
    assert 10111 not in [p["containerPort"] for p in f.container_ports(resp)]
    assert {"type": "nfs-pm", "port": 20000} in resp["status"]["adapters"]
    assert "adapter-nfs-pm (10111/TCP)" in f.condition(resp, "PortConflict")["message"]


@pytest.mark.parametrize("suffix, key", [("jwt-secret", "jwt-secret"), ("admin-bootstrap-credentials", "password")])
def test_an_observed_empty_generated_value_other_than_the_operator_password_is_kept(suffix, key):
    """Only the operator password is made again when emptied (the discovery hook sets the account
    to it); rewriting the JWT key or the admin password could lock a running server out."""
    first = run()
    secret = copy.deepcopy(f.child(first, "Secret", f"demo-{suffix}"))
    assert key in secret["data"]
    secret["data"][key] = ""
    later = run(observed=[secret])
    assert f.child(later, "Secret", f"demo-{suffix}")["data"][key] == ""


def test_a_stopped_server_is_ready_without_authentication():
    """As the Go operator v0.29 has it: at replicas 0 there is no API to authenticate against."""
    spec = {**f.SPEC, "replicas": 0}
    first = run(f.parent(spec=spec))
    stopped = run(f.parent(spec=spec), observed=_with_status(first["children"], ready=0))
    assert f.condition(stopped, "Progressing")["status"] == "False"
    assert f.condition(stopped, "Authenticated")["status"] == "Unknown"
    ready = f.condition(stopped, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "AllConditionsMet")


def test_a_pending_revision_is_progressing_even_with_every_replica_ready():
    first = run(f.parent())
    observed = _with_status(first["children"], ready=1)
    sts = next(c for c in observed if c["kind"] == "StatefulSet")
    sts["status"]["updateRevision"] = "r2"
    resp = run(f.parent(), observed=observed)
    assert f.condition(resp, "Progressing")["status"] == "True"
    assert f.condition(resp, "Progressing")["reason"] == "RollingOut"
    assert f.condition(run(f.parent(), observed=_with_status(first["children"], ready=1)), "Progressing")["status"] == "False"


def test_live_ports_sharing_a_merge_key_are_reported_under_dynamic_apply_only():
    """What server-side apply leaves behind (NFS's portmapper over TCP and UDP on 10111 in the
    pod, on 111 in the Service) can never be updated by dynamic apply again: say so, and how."""
    p = f.parent(adapters=[NFS])
    left = run(p, strategy="server-side-apply")["children"]
    dynamic = run(p, observed=left, strategy="dynamic-apply")
    cond = f.condition(dynamic, "ChildrenNotUpdatable")
    assert (cond["status"], cond["reason"]) == ("True", "PortsShareAMergeKey")
    assert "StatefulSet demo container dittofs: containerPort 10111 (adapter-nfs-pm/TCP, adapter-pm-udp/UDP)" in cond["message"]
    assert "Service demo-adapter-nfs: port 111 (portmap/TCP, portmap-udp/UDP)" in cond["message"]
    assert "server-side-apply" in cond["message"]
    assert "fix: kubectl -n storage patch statefulset.apps/demo --type=json -p '[{\"op\":\"test\"" in cond["message"]
    assert "fix: kubectl -n storage patch service/demo-adapter-nfs --type=json" in cond["message"]
    assert f.condition(run(p, observed=left, strategy="server-side-apply"), "ChildrenNotUpdatable") is None
    assert f.condition(converge(p), "ChildrenNotUpdatable") is None


# --- objects of a child's name that are not children ------------------------------------------

def _go_made(obj: dict, **meta) -> dict:
    """A child as the Go operator leaves it once Metacontroller released it: no controller-uid
    label, no ownerReference (or `meta`'s)."""
    found = copy.deepcopy(obj)
    found["metadata"] = {**found["metadata"], "namespace": "storage", **meta}
    return found


def test_objects_of_a_childs_name_that_are_not_children_are_named_with_the_command_that_fixes_them():
    p = f.parent(adapters=[NFS])
    p["metadata"]["finalizers"] = ["keep.example.com/x", "dittofs.dittofs.com/finalizer"]
    children = run(p)["children"]
    by_name = {(c["kind"], c["metadata"]["name"]): c for c in children}
    other = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "other", "uid": "u-other", "controller": True}
    related = [
        _go_made(by_name[("StatefulSet", "demo")]),                               # released
        _go_made(by_name[("Service", "demo-api")], ownerReferences=[other]),      # another controller's
        _go_made(by_name[("Secret", "demo-jwt-secret")],                         # labelled: adopted next
                 labels={"controller-uid": "u-1"}),
        _go_made(by_name[("ConfigMap", "demo-config")], namespace="elsewhere"),   # not in this namespace
    ]
    observed = [c for c in children if (c["kind"], c["metadata"]["name"]) not in
                {("StatefulSet", "demo"), ("Service", "demo-api"), ("Secret", "demo-jwt-secret"),
                 ("ConfigMap", "demo-config")}]
    resp = run(p, observed=observed, related=related)
    cond = f.condition(resp, "ChildrenNotAdopted")
    assert cond["status"] == "True" and cond["reason"] == "NotClaimed"
    assert ("StatefulSet demo (released: no controller, and no controller-uid label; "
            "fix: kubectl -n storage label --overwrite statefulset.apps/demo controller-uid=u-1)") in cond["message"]
    assert "Service demo-api (controlled by ReplicaSet other (uid u-other); Metacontroller never takes it" in cond["message"]
    assert "demo-jwt-secret" not in cond["message"] and "demo-config" not in cond["message"]
    assert cond["message"].index("StatefulSet demo") < cond["message"].index("Service demo-api")   # by kind order
    progressing = f.condition(resp, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "NotAdopted")
    final = f.condition(resp, "FinalizerLeftOver")
    assert final["reason"] == "GoOperatorFinalizer"
    assert final["message"].endswith(
        "fix: kubectl -n storage patch dittoserver.dittofs.dittofs.com/demo --type=json -p "
        """'[{"op":"test","path":"/metadata/finalizers/1","value":"dittofs.dittofs.com/finalizer"},"""
        """{"op":"remove","path":"/metadata/finalizers/1"}]'""")
    # The same answer whatever the order of the related objects.
    assert run(p, observed=observed, related=related[::-1])["status"] == resp["status"]
    # Children, or nothing in the way: no condition, and Progressing as before.
    clean = run(p, observed=children, related=children)
    assert f.condition(clean, "ChildrenNotAdopted") is None
    p["metadata"]["finalizers"] = ["keep.example.com/x"]
    fresh = run(p)
    assert f.condition(fresh, "FinalizerLeftOver") is None and f.condition(fresh, "ChildrenNotAdopted") is None
    assert f.condition(fresh, "Progressing")["reason"] == "Creating"


def test_observed_children_and_related_secrets_of_another_namespace_are_ignored():
    """Metacontroller's v2 requests may carry objects of other namespaces (keyed namespace/name):
    only the parent's namespace counts, for children (a generated Secret is not read from
    elsewhere) and for the related Secrets the spec names."""
    p = f.parent(spec={**f.SPEC, "identity": {"jwt": {"secretRef": {"name": "jwt", "key": "k"}}}})
    mine = _secret("jwt", k=base64.b64encode(b"x" * 40).decode())
    theirs = copy.deepcopy(mine)
    theirs["metadata"]["namespace"] = "elsewhere"
    first = run(p, related=[mine], version="v2")
    operator = next(c for c in first["children"] if c["metadata"]["name"] == "demo-operator-credentials")
    foreign_operator = copy.deepcopy(operator)
    foreign_operator["metadata"]["namespace"] = "elsewhere"
    foreign_operator["data"] = {"username": base64.b64encode(b"k8s-operator").decode(),
                                "password": base64.b64encode(b"not-this-one").decode()}
    answer = run(p, observed=[foreign_operator], related=[theirs], version="v2")
    made = next(c for c in answer["children"] if c["metadata"]["name"] == "demo-operator-credentials")
    assert made["data"]["password"] != foreign_operator["data"]["password"]
    assert f.condition(answer, "ConfigReady")["reason"] == "SecretMissing"
    assert "Secret jwt is missing" in f.condition(answer, "ConfigReady")["message"]
    assert answer["status"]["configHash"] != first["status"]["configHash"]


def test_the_config_hash_does_not_depend_on_the_order_of_a_secrets_keys():
    spec = {**f.SPEC, "database": {"type": "postgres", "postgresSecretRef": {"name": "pg", "key": "dsn"}}}
    values = {"host": "db", "database": "d", "user": "u", "password": "p"}
    data = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    forward = _secret("pg", **data)
    backward = _secret("pg", **dict(reversed(list(data.items()))))
    assert list(forward["data"]) != list(backward["data"])
    first = run(f.parent(spec=spec), related=[forward])["status"]["configHash"]
    assert run(f.parent(spec=spec), related=[backward])["status"]["configHash"] == first
    changed = _secret("pg", **{**data, "password": base64.b64encode(b"q").decode()})
    assert run(f.parent(spec=spec), related=[changed])["status"]["configHash"] != first


def _secret(name: str, **data: str) -> dict:
    """A user's Secret in the parent's namespace, `data` already base64."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "storage"}, "data": data}
