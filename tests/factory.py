"""Requests as Metacontroller sends them, built from small parts, for the tests."""
import copy
import json
from datetime import datetime, timezone

from hooks.children import sync
from hooks.dittofs import version

API_VERSION = "dittofs.dittofs.com/v1alpha1"
GROUPS = ("ConfigMap.v1", "Secret.v1", "Service.v1", "StatefulSet.apps/v1")
WITH_POLICIES = (*GROUPS, "NetworkPolicy.networking.k8s.io/v1")
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
SPEC = {"storage": {"metadataSize": "10Gi"}}
# Every field the hook supports, set away from its default (it references the Secrets `jwt`,
# key `signing`, and `admin-pw`, key `password`).
FULL_SPEC = {
    "image": version.IMAGE,
    "replicas": 1,
    "storage": {"metadataSize": "2Gi", "contentSize": "3Gi", "controlPlaneSize": "2Gi", "storageClassName": "fast"},
    "database": {"type": "sqlite", "sqlite": {"path": "/data/controlplane/db/cp.db"}},
    "metrics": {"enabled": True, "port": 9191, "path": "/prom/metrics"},
    "controlPlane": {"port": 8181},
    "identity": {
        "type": "memory",
        "jwt": {"secretRef": {"name": "jwt", "key": "signing"}, "accessTokenDuration": "20m",
                "refreshTokenDuration": "48h"},
        "admin": {"username": "admin", "passwordSecretRef": {"name": "admin-pw", "key": "password"}},
    },
    "logging": {"level": "DEBUG", "format": "text", "output": "stderr"},
    "adapterDiscovery": {"pollingInterval": "15s", "credentialsSecretRef": {"name": "creds"}},
    "adapterServices": {"type": "NodePort", "annotations": {"a": "b"}},
    "service": {"type": "LoadBalancer", "annotations": {"c": "d"}},
    "resources": {"requests": {"cpu": "100m"}},
    "terminationGracePeriodSeconds": 60,
    "securityContext": {"runAsUser": 65532},
    "podSecurityContext": {"fsGroup": 65532, "runAsNonRoot": True},
}


def entry(type_: str, port: int, enabled: bool = True, running: bool = True, **extra) -> dict:
    return {"type": type_, "enabled": enabled, "running": running, "port": port, **extra}


def annotation(*entries: dict) -> str:
    return json.dumps(list(entries))


def parent(name="demo", namespace="storage", spec=None, adapters=None, generation=1, status=None) -> dict:
    """A DittoServer; `adapters` is a list of entries, a raw annotation string, or None (absent)."""
    meta = {"name": name, "namespace": namespace, "generation": generation, "uid": "u-1", "annotations": {}}
    if adapters is not None:
        meta["annotations"]["dittofs.io/adapters"] = adapters if isinstance(adapters, str) else annotation(*adapters)
    found = {"apiVersion": API_VERSION, "kind": "DittoServer", "metadata": meta,
             "spec": copy.deepcopy(SPEC if spec is None else spec)}
    if status is not None:
        found["status"] = status
    return found


def group_of(obj: dict) -> str:
    return f"{obj['kind']}.{obj['apiVersion']}"


def children_map(objects: list[dict], version: str = "v1", groups: tuple[str, ...] = GROUPS) -> dict:
    found = {g: {} for g in groups}
    for obj in objects:
        meta = obj["metadata"]
        key = meta["name"] if version == "v1" else f"{meta.get('namespace', 'storage')}/{meta['name']}"
        found.setdefault(group_of(obj), {})[key] = copy.deepcopy(obj)
    return found


def request(parent_obj: dict, observed: list[dict] | None = None, related: list[dict] | None = None,
            version: str = "v1", groups: tuple[str, ...] = GROUPS) -> dict:
    return {
        "controller": {"metadata": {"name": "dittofs"}},
        "parent": parent_obj,
        "children": children_map(observed or [], version, groups),
        "related": children_map(related or [], version) if related else {},
        "finalizing": False,
    }


def fake_token(length: int) -> str:
    return ("x" * length)[:length]


def sync_of(req: dict, strategy: str = "dynamic-apply") -> dict:
    """desired_state with a fixed clock and fixed 'random' values."""
    return sync.desired_state(req, strategy=strategy, now=NOW, random_token=fake_token)


def child(response: dict, kind: str, name: str) -> dict | None:
    return next((c for c in response["children"] if c["kind"] == kind and c["metadata"]["name"] == name), None)


def names_of(response: dict, kind: str) -> list[str]:
    return sorted(c["metadata"]["name"] for c in response["children"] if c["kind"] == kind)


def container_ports(response: dict, name: str = "demo") -> list[dict]:
    sts = child(response, "StatefulSet", name)
    return sts["spec"]["template"]["spec"]["containers"][0]["ports"]


def port_names(response: dict, name: str = "demo") -> list[str]:
    return [p["name"] for p in container_ports(response, name)]


def condition(response: dict, type_: str) -> dict | None:
    return next((c for c in response["status"]["conditions"] if c["type"] == type_), None)


DECLARED_GROUPS = tuple(f"{kind}.dittofs.dittofs.com/v1alpha1" for kind in ("DittoShare", "DittoUser", "DittoGroup"))
DISCOVERY_GROUPS = ("Secret.v1", "StatefulSet.apps/v1", *DECLARED_GROUPS)   # what /discover/customize relates


def statefulset(name="demo", namespace="storage", ready=1, replicas=1) -> dict:
    """The StatefulSet `/discover` reads readiness from, as Metacontroller relates it (the
    fields readiness needs; the full object is the sync hook's)."""
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas, "readyReplicas": ready}}


def discovery_related(objects: list[dict], version: str = "v2") -> dict:
    """A DecoratorController's `related`: only the groups its customize answer names."""
    return children_map(objects, version, DISCOVERY_GROUPS)


def merge_annotations(obj: dict, answer: dict | None) -> None:
    """A DecoratorController answer's annotations, merged as Metacontroller merges them: listed
    keys set, a null deletes one, the others untouched."""
    annotations = obj["metadata"].setdefault("annotations", {})
    for key, value in (answer or {}).items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
