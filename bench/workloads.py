"""Sync requests as Metacontroller sends them in steady state, for the benchmark.

Each workload is built the way a real cluster gets there: a `DittoServer` parent is synced
against `hooks.tools.applying.Cluster` (Metacontroller's dynamic apply plus API-server defaulting)
and every response is applied, until a sync writes nothing; then the StatefulSet reports its
pod ready and the parent's status settles. The request written out is the next one
Metacontroller would send: hook API v2 (children keyed by `namespace/name`), observed children
with every API-server field and last-applied annotation, the parent with the status of the
last response, the CompositeController object from `metacontroller/compositecontroller.yaml`.

    .venv/bin/python -m bench.workloads [OUT_DIR]     # default bench/results/workloads

writes `w1.json`, `w2.json`, `w3.json` (request bodies, sorted keys as Go's encoder writes
maps) and `w*.response.json` (the hook's answer, for the bare-Flask baseline). They are
generated at bench time, never committed: they follow the hook's output.

- W1, typical: metrics on, NFS + SMB + WebDAV active, NetworkPolicies declared (~20 KB).
- W2: 16 active adapters (the most the hook builds, `adapters.MAX_ACTIVE`).
- W3: 256 adapters in the annotation, 16 of them active and 240 stopped (distinct ports, none
  on 8080, 9090 or 10111): the largest annotation that still builds children.
"""
import copy
import sys
from datetime import datetime, timezone
from pathlib import Path

import orjson
import yaml

from hooks.children import sync
from hooks.request import adapters
from hooks.tools import applying

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "workloads"
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
NAME, NAMESPACE = "dittofs", "storage"
PARENT_UID = "5f1b7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a5b"
KINDS = ("ConfigMap.v1", "Secret.v1", "Service.v1", "StatefulSet.apps/v1",
         "NetworkPolicy.networking.k8s.io/v1")
RESERVED_PORTS = {8080, 9090, 10111}


def fixed_token(length: int) -> str:
    """Deterministic stand-in for the generated Secrets' random values."""
    return ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2)[:length]


def desired(request: dict) -> dict:
    """The hook's answer with a fixed clock and fixed random values (deterministic)."""
    return sync.desired_state(request, now=NOW, random_token=fixed_token)


def served(request: dict) -> bytes:
    """The same answer as /sync writes it (`sync.serialized_state`), with the same clock and values."""
    return sync.serialized_state(request, now=NOW, random_token=fixed_token).body


def adapter_entries(count: int, active: int | None = None) -> list[dict]:
    """`count` adapters, the first `active` (default all) running: NFS, SMB, WebDAV, then
    p004.. on distinct ports."""
    found = [{"type": "nfs", "port": 12049}, {"type": "smb", "port": 12445},
             {"type": "webdav", "port": 12080}][:count]
    port = 20000
    while len(found) < count:
        if port not in RESERVED_PORTS:
            found.append({"type": f"p{len(found) + 1:03d}", "port": port})
        port += 1
    running = count if active is None else active
    return [{**e, "enabled": True, "running": i < running} for i, e in enumerate(found)]


def spec() -> dict:
    return {
        "image": "marmos91c/dittofs:0.9.2",
        "replicas": 1,
        "storage": {"metadataSize": "10Gi", "cacheSize": "20Gi", "contentSize": "100Gi",
                    "storageClassName": "standard"},
        "metrics": {"enabled": True},
        "adapterServices": {"type": "LoadBalancer"},
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                      "limits": {"cpu": "2", "memory": "2Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 1000,
                            "capabilities": {"drop": ["ALL"]}},
    }


def parent(adapter_count: int, active: int | None = None) -> dict:
    """The DittoServer as the API server returns it (kubectl-applied, annotated by discovery)."""
    the_spec = spec()
    applied = {"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
               "metadata": {"name": NAME, "namespace": NAMESPACE}, "spec": the_spec}
    entries = adapters.parse_entries(orjson.dumps(adapter_entries(adapter_count, active)).decode())
    return {
        "apiVersion": "dittofs.dittofs.com/v1alpha1",
        "kind": "DittoServer",
        "metadata": {
            "name": NAME, "namespace": NAMESPACE, "uid": PARENT_UID, "generation": 2,
            "resourceVersion": "184467", "creationTimestamp": "2026-11-20T09:14:03Z",
            "annotations": {
                adapters.ANNOTATION: adapters.canonical(entries),
                "kubectl.kubernetes.io/last-applied-configuration":
                    orjson.dumps(applied, option=orjson.OPT_SORT_KEYS).decode() + "\n",
            },
            "managedFields": [
                {"manager": "kubectl-client-side-apply", "operation": "Update",
                 "apiVersion": "dittofs.dittofs.com/v1alpha1", "time": "2026-11-20T09:14:03Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {
                     ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                     "f:spec": {".": {}, "f:image": {}, "f:metrics": {".": {}, "f:enabled": {}},
                                "f:storage": {".": {}, "f:metadataSize": {}}}}},
                {"manager": "metacontroller", "operation": "Update",
                 "apiVersion": "dittofs.dittofs.com/v1alpha1", "time": "2026-11-20T09:15:41Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {
                     f"f:{adapters.ANNOTATION}": {}}}}},
                {"manager": "metacontroller", "operation": "Update", "subresource": "status",
                 "apiVersion": "dittofs.dittofs.com/v1alpha1", "time": "2026-11-20T09:15:44Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {
                     ".": {}, "f:adapters": {}, "f:availableReplicas": {}, "f:conditions": {},
                     "f:configHash": {}, "f:observedGeneration": {}, "f:phase": {},
                     "f:readyReplicas": {}, "f:replicas": {}}}},
            ],
        },
        "spec": the_spec,
    }


def controller() -> dict:
    """The CompositeController object, as Metacontroller passes it along."""
    found = yaml.safe_load((ROOT / "metacontroller" / "compositecontroller.yaml").read_text())
    found["metadata"].update(uid="9d2c4b1a-7e6f-4a3b-9c8d-1e2f3a4b5c6d", generation=1,
                             resourceVersion="1021", creationTimestamp="2026-11-20T09:00:00Z")
    return found


def request(controller_obj: dict, parent_obj: dict, cluster: applying.Cluster) -> dict:
    return {"controller": controller_obj, "parent": copy.deepcopy(parent_obj),
            "children": cluster.observed("v2", KINDS), "related": {}, "finalizing": False}


def settle(controller_obj: dict, parent_obj: dict, cluster: applying.Cluster, limit: int = 10) -> dict:
    """Sync and apply until nothing is written and the status holds; return the last answer.

    Like Metacontroller, the parent's status is replaced by the answer's after every sync.
    """
    for _ in range(limit):
        answer = desired(request(controller_obj, parent_obj, cluster))
        writes = cluster.apply(answer["children"])
        settled = not writes and parent_obj.get("status") == answer["status"]
        parent_obj["status"] = answer["status"]
        if settled:
            return answer
    raise RuntimeError(f"no steady state after {limit} syncs")


def null_creation_timestamps(sts: dict) -> None:
    """Mark the StatefulSet's embedded objects with `creationTimestamp: null`, as many API
    server versions return them (Go writes an empty metav1.Time as null)."""
    spec = sts["spec"]
    for embedded in [spec["template"], *spec["volumeClaimTemplates"]]:
        embedded.setdefault("metadata", {})["creationTimestamp"] = None


def build(adapter_count: int, active: int | None = None) -> tuple[bytes, bytes]:
    """(request body, response body) of the steady-state sync for `adapter_count` adapters in
    the annotation, `active` (default all) of them running."""
    controller_obj, parent_obj = controller(), parent(adapter_count, active)
    cluster = applying.Cluster(namespace=NAMESPACE, parent_uid=PARENT_UID, parent_name=NAME)
    settle(controller_obj, parent_obj, cluster)
    null_creation_timestamps(cluster.objects[("StatefulSet", NAME)])
    cluster.set_statefulset_status(NAME, ready=1)
    answer = settle(controller_obj, parent_obj, cluster)
    req = request(controller_obj, parent_obj, cluster)
    assert desired(req) == answer, "steady state must answer the same"
    assert answer["status"]["phase"] == "Running", answer["status"]["phase"]
    assert len(answer["status"]["adapters"]) == (adapter_count if active is None else active), \
        "every active adapter must apply"
    assert not any(c["type"] == "PortConflict" for c in answer["status"]["conditions"])
    return (orjson.dumps(req, option=orjson.OPT_SORT_KEYS),
            orjson.dumps(answer, option=orjson.OPT_SORT_KEYS))


# name: (adapters in the annotation, active ones)
WORKLOADS = {"w1": (3, 3), "w2": (16, 16), "w3": (256, adapters.MAX_ACTIVE)}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    for name, (count, active) in WORKLOADS.items():
        body, answer = build(count, active)
        (out / f"{name}.json").write_bytes(body)
        (out / f"{name}.response.json").write_bytes(answer)
        print(f"{name}: {count} adapters ({active} active), request {len(body)} bytes, response {len(answer)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
