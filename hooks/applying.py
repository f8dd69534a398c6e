"""A model of how Metacontroller (v4, default "dynamic apply") writes a CompositeController's
desired children into the cluster, and of what the API server adds to what it stores.

Nothing here talks to a network or to Kubernetes. The pieces:

- `merge`: Metacontroller's three-way merge of (live, last applied, desired), ported from its
  Go code (`pkg/dynamic/apply/apply.go`), quirks included.
- `server_defaults`: what the API server fills in before it stores a Service, StatefulSet,
  Secret, ConfigMap or NetworkPolicy.
- `plan`: what Metacontroller would do with one sync response (create, update, delete or
  leave alone each child), without doing it.
- `Cluster`: a fake namespace that performs those plans and counts the writes, so tests can
  replay sync responses and check that the hook converges (a second identical sync writes
  nothing) and does not roll pods needlessly.

The facts it rests on are in METACONTROLLER_FACTS.md ("How Metacontroller applies a desired
child" and "What the API server fills in").
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
LIST_MAP_KEYS = ("containerPort", "port", "mountPath", "name", "uid", "ip", "path")

# Metadata that Metacontroller copies back from the live object after merging, so that a hook
# can never cause a diff through them (Go: objectMetaSystemFields). managedFields is added
# because the API server owns it too.
SYSTEM_METADATA = (
    "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
)
# The only StatefulSet spec fields the API server lets an update change.
STATEFULSET_MUTABLE = (
    "replicas", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
    "ordinals", "minReadySeconds",
)
CREATION_TIMESTAMP = "2026-01-01T00:00:00Z"


class ImmutableFieldError(Exception):
    """The API server rejected an update (e.g. a StatefulSet's selector or serviceName changed).
    Metacontroller then fails that sync on every retry."""


class MergeError(ValueError):
    """Metacontroller cannot apply this child at all (its last-applied annotation is not JSON)."""


# --------------------------------------------------------------------------- three-way merge


def merge(live: Any, last_applied: Any, desired: Any) -> Any:
    """Three-way merge as Metacontroller's dynamic apply does it; returns a new object.

    Objects: a key in last_applied but missing from desired is deleted, desired keys are
    merged recursively, keys nobody applied stay. Scalars: desired wins. Lists: a "list map"
    when every item of all three versions is an object and all share a key from LIST_MAP_KEYS
    (tried in order); items match by the key's string form; two items with the same key in
    one list collapse into one (the later item's content, at the first item's position); live
    order is kept and new desired items are appended in desired order. Any other list is
    replaced whole by desired.

    As in the Go code, the branch is chosen by the *live* value's type: where live holds no
    list, desired's list is taken verbatim (duplicates included) and only collapses on the
    next update; where live holds an object or list and desired holds something else, desired
    counts as absent (the live value stays, minus what was last applied).
    """
    return _merge(copy.deepcopy(live), last_applied, desired)


def _merge(live: Any, last: Any, desired: Any) -> Any:
    if isinstance(live, dict):
        return _merge_object(
            live, last if isinstance(last, dict) else None,
            desired if isinstance(desired, dict) else None,
        )
    if isinstance(live, list):
        return _merge_list(
            live, last if isinstance(last, list) else None,
            desired if isinstance(desired, list) else None,
        )
    return copy.deepcopy(desired)


def _merge_object(live: dict, last: dict | None, desired: dict | None) -> dict:
    # Mutates `live`, which is always a private copy (see merge()).
    desired = desired or {}
    for key in last or {}:
        if key not in desired:
            live.pop(key, None)
    for key, value in desired.items():
        live[key] = _merge(live.get(key), (last or {}).get(key), value)
    return live


def _merge_list(live: list, last: list | None, desired: list | None) -> list | None:
    key = list_map_key(live, last or [], desired or [])
    if key is None:
        return copy.deepcopy(desired)
    merged = _merge_object(
        _index(live, key), _index(last or [], key), _index(desired or [], key)
    )
    result = []
    for item in [*live, *(desired or [])]:
        item_key = merge_key_string(item[key])
        if item_key in merged:
            result.append(merged.pop(item_key))
    return result


def list_map_key(*lists: list) -> str | None:
    """The LIST_MAP_KEYS entry shared by every item of every list, or None (not a list map)."""
    common: set[str] | None = None
    for items in lists:
        for item in items:
            if not isinstance(item, dict):
                return None
            common = set(item) if common is None else common & set(item)
    return next((key for key in LIST_MAP_KEYS if common and key in common), None)


def merge_key_string(value: Any) -> str:
    """A merge key value as Go's fmt "%v" prints it, so 12049 and 12049.0 match."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _index(items: list, key: str) -> dict[str, Any]:
    # Later items overwrite earlier ones with the same key: that is the collapse.
    return {merge_key_string(item[key]): item for item in items}


def same(a: Any, b: Any) -> bool:
    """Equality as Go's reflect.DeepEqual sees decoded JSON: 1, 1.0 and True all differ."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


# --------------------------------------------------------------------------- API server


def server_defaults(obj: dict) -> dict:
    """A copy of `obj` with what the API server fills in for its kind. Never overwrites a value
    that is present (except that a Secret's stringData is folded into data, as the server
    does); idempotent. Unknown kinds are returned unchanged."""
    out = copy.deepcopy(obj)
    fill = _DEFAULTERS.get(out.get("kind"))
    if fill is None:
        return out
    # Every number in these built-in kinds is an integer field: the server stores 1.0 as 1.
    out = _integral_floats_to_int(out)
    fill(out)
    return out


def _integral_floats_to_int(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _dicts(container: dict, key: str) -> list[dict]:
    return [x for x in container.get(key) or [] if isinstance(x, dict)]


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _service_defaults(svc: dict) -> None:
    meta = svc.get("metadata") or {}
    seed = f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"
    spec = svc.setdefault("spec", {})
    svc_type = spec.setdefault("type", "ClusterIP")
    if svc_type != "ExternalName":
        h = _digest(seed)
        ip = spec.setdefault("clusterIP", f"10.96.{(h >> 8) % 256}.{h % 254 + 1}")
        spec.setdefault("clusterIPs", [ip])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    external = svc_type in ("NodePort", "LoadBalancer")
    for port in _dicts(spec, "ports"):
        port.setdefault("protocol", "TCP")
        if "port" in port:
            port.setdefault("targetPort", port["port"])
        if external:
            node_seed = f"{seed}/{port.get('port')}/{port['protocol']}"
            port.setdefault("nodePort", 30000 + _digest(node_seed) % 2768)
    if external:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    svc.setdefault("status", {"loadBalancer": {}})


def _statefulset_defaults(sts: dict) -> None:
    spec = sts.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    if strategy.setdefault("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    _pod_spec_defaults(spec.setdefault("template", {}).setdefault("spec", {}))
    for claim in _dicts(spec, "volumeClaimTemplates"):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        claim.setdefault("status", {"phase": "Pending"})


def _pod_spec_defaults(pod: dict) -> None:
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("securityContext", {})
    for container in _dicts(pod, "initContainers") + _dicts(pod, "containers"):
        _container_defaults(container)
    for volume in _dicts(pod, "volumes"):
        for source in ("configMap", "secret"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def _container_defaults(container: dict) -> None:
    container.setdefault("imagePullPolicy", pull_policy(container.get("image", "")))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in _dicts(container, "ports"):
        port.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(name)
        if isinstance(probe, dict):
            for field, value in (("timeoutSeconds", 1), ("periodSeconds", 10),
                                 ("successThreshold", 1), ("failureThreshold", 3)):
                probe.setdefault(field, value)
            if isinstance(probe.get("httpGet"), dict):
                probe["httpGet"].setdefault("scheme", "HTTP")


def pull_policy(image: str) -> str:
    """The server's default imagePullPolicy: Always for ":latest" or no tag, else IfNotPresent."""
    last_part = image.rsplit("/", 1)[-1]
    if "@" in last_part:
        return "IfNotPresent"
    tag = last_part.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _secret_defaults(secret: dict) -> None:
    # stringData is write-only: the server folds it into data (it wins over data) and drops it.
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.get("data") or {}
        for key, text in string_data.items():
            data[key] = base64.b64encode(str(text).encode()).decode()
        secret["data"] = data
    secret.setdefault("type", "Opaque")


def _network_policy_defaults(policy: dict) -> None:
    spec = policy.setdefault("spec", {})
    spec.setdefault("policyTypes", ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
    for rule in _dicts(spec, "ingress") + _dicts(spec, "egress"):
        for port in _dicts(rule, "ports"):
            port.setdefault("protocol", "TCP")


_DEFAULTERS = {
    "Service": _service_defaults,
    "StatefulSet": _statefulset_defaults,
    "Secret": _secret_defaults,
    "ConfigMap": lambda _configmap: None,
    "NetworkPolicy": _network_policy_defaults,
}


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # "create" | "update" | "delete" | "unchanged"
    fields: tuple[str, ...]  # dotted paths that differ between live and the merged result
    restarts_pod: bool  # a StatefulSet's stored pod template changes (or it is created/deleted)


def last_applied_json(desired: dict) -> str:
    """The annotation value Metacontroller stores: Go's json.Marshal of the desired object
    (sorted keys, compact, UTF-8 kept, and <, >, & and U+2028/9 escaped as Go does)."""
    text = json.dumps(desired, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def read_last_applied(live: dict) -> dict:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED) or ""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:  # Go: GetLastApplied fails, so every sync of the parent fails
        raise MergeError(f"{_describe(live)}: {LAST_APPLIED} is not JSON: {exc}") from exc
    return value if isinstance(value, dict) else {}


def apply_update(live: dict, desired: dict) -> dict:
    """The object Metacontroller would send to update `live` (Go: ApplyUpdate)."""
    desired = copy.deepcopy(desired)
    annotations = (desired.get("metadata") or {}).get("annotations") or {}
    if LAST_APPLIED in annotations:  # Go: nullifyLastAppliedAnnotation
        annotations[LAST_APPLIED] = ""
    result = merge(live, read_last_applied(live), desired)
    metadata = result.setdefault("metadata", {})
    for field in SYSTEM_METADATA:
        _revert(metadata, live.get("metadata") or {}, field)
    _revert(result, live, "status")
    metadata["annotations"] = {**(metadata.get("annotations") or {}),
                               LAST_APPLIED: last_applied_json(desired)}
    return result


def _revert(target: dict, original: dict, key: str) -> None:
    if key in original:
        target[key] = copy.deepcopy(original[key])
    else:
        target.pop(key, None)


def diff_paths(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where `old` and `new` differ; list-map items are named by their key."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in [*old, *(k for k in new if k not in old)]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                out.append(sub)
            else:
                out += diff_paths(old[key], new[key], sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and not same(old, new):
        out = _list_diff_paths(old, new, path)
        return out or [path]  # order or duplicates changed, not any one item
    return [] if same(old, new) else [path]


def _list_diff_paths(old: list, new: list, path: str) -> list[str]:
    key = list_map_key(old, new) if old and new else None
    if key is not None:
        old_map, new_map = _index(old, key), _index(new, key)
        pairs = [(k, old_map.get(k), new_map.get(k)) for k in {**old_map, **new_map}]
        return [p for k, a, b in pairs for p in
                ([f"{path}[{k}]"] if a is None or b is None else diff_paths(a, b, f"{path}[{k}]"))]
    if len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new)) for p in diff_paths(a, b, f"{path}[{i}]")]
    return []


def _describe(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}"


def _identity(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace") or "", meta.get("name", "")


def _pod_template(obj: dict | None) -> Any:
    return ((obj or {}).get("spec") or {}).get("template")


def prepare_desired(desired_children: list[dict], namespace: str | None = None,
                    parent_uid: str | None = None) -> list[dict]:
    """What Metacontroller does to the hook's children before applying them: a missing
    namespace becomes the parent's, and with generateSelector every child gets the label
    controller-uid (both end up in the last-applied annotation)."""
    prepared = copy.deepcopy(desired_children)
    for child in prepared:
        metadata = child.setdefault("metadata", {})
        if namespace and not metadata.get("namespace"):
            metadata["namespace"] = namespace
        if parent_uid:
            metadata["labels"] = {"controller-uid": parent_uid, **(metadata.get("labels") or {})}
    return prepared


def _match(live_objects: list[dict], desired: dict) -> dict | None:
    kind, namespace, name = _identity(desired)
    found = [obj for obj in live_objects
             if _identity(obj)[0] == kind and _identity(obj)[2] == name
             and (not namespace or not _identity(obj)[1] or _identity(obj)[1] == namespace)]
    if len(found) > 1:
        raise ValueError(f"{_describe(desired)} matches {len(found)} live objects; give a namespace")
    return found[0] if found else None


def _plan_with_results(live_objects: list[dict], desired_children: list[dict]
                       ) -> list[tuple[Change, dict | None, dict | None]]:
    """(change, live, object Metacontroller would send) for every child, sorted."""
    remaining = list(live_objects)
    seen: set[tuple[str, str, str]] = set()
    out: list[tuple[Change, dict | None, dict | None]] = []
    for desired in desired_children:
        kind, _, name = identity = _identity(desired)
        if identity in seen:
            raise ValueError(f"duplicate desired child {_describe(desired)}")
        seen.add(identity)
        is_sts = kind == "StatefulSet"
        live = _match(remaining, desired)
        if live is None:
            created = copy.deepcopy(desired)
            metadata = created.setdefault("metadata", {})
            metadata["annotations"] = {**(metadata.get("annotations") or {}),
                                       LAST_APPLIED: last_applied_json(desired)}
            out.append((Change(kind, name, "create", (), is_sts), None, created))
            continue
        remaining = [obj for obj in remaining if obj is not live]
        result = apply_update(live, desired)
        if same(result, live):
            out.append((Change(kind, name, "unchanged", (), False), live, result))
            continue
        restarts = is_sts and not same(
            _pod_template(live), _pod_template(server_defaults(result)))
        fields = tuple(sorted(diff_paths(live, result)))
        out.append((Change(kind, name, "update", fields, restarts), live, result))
    for live in remaining:
        kind, _, name = _identity(live)
        out.append((Change(kind, name, "delete", (), kind == "StatefulSet"), live, None))
    out.sort(key=lambda entry: (entry[0].kind, entry[0].name))
    return out


def plan(live_objects: list[dict], desired_children: list[dict], *,
         namespace: str | None = None, parent_uid: str | None = None) -> list[Change]:
    """What Metacontroller's dynamic apply would do for one sync response, without doing it.

    Desired children match live objects by kind, namespace and name; a child without a
    namespace matches the single live object of that kind and name. Pass the parent's
    `namespace` and `uid` to prepare the children exactly as Metacontroller does first (see
    prepare_desired), which is needed to get 'unchanged' against a real cluster. 'update'
    means the merged object differs from live (so Metacontroller writes it); its `fields`
    name what differs. Sorted by (kind, name).
    """
    desired = prepare_desired(desired_children, namespace, parent_uid)
    return [change for change, _, _ in _plan_with_results(live_objects, desired)]


def immutable_changes(live: dict, new: dict) -> list[str]:
    """StatefulSet spec fields an update would change that the API server forbids changing."""
    if live.get("kind") != "StatefulSet":
        return []
    old_spec, new_spec = live.get("spec") or {}, new.get("spec") or {}
    return sorted(f"spec.{key}" for key in {**old_spec, **new_spec}
                  if key not in STATEFULSET_MUTABLE and not same(old_spec.get(key), new_spec.get(key)))


# --------------------------------------------------------------------------- fake cluster


class Cluster:
    """A fake namespace holding live objects, mutated only through sync responses, like
    Metacontroller would (update strategy InPlace for every child kind)."""

    def __init__(self, namespace: str = "default",
                 parent_uid: str = "0c0ffee0-0000-4000-8000-000000000001",
                 parent_name: str = "dittoserver") -> None:
        self.namespace = namespace
        self.parent_uid = parent_uid
        self.parent_name = parent_name
        self.objects: dict[tuple[str, str], dict] = {}
        self.writes: list[Change] = []
        self._creations: dict[tuple[str, str], int] = {}

    def apply(self, desired_children: list[dict]) -> list[Change]:
        """Process one sync response: plan, then perform it (deletes first, as Metacontroller
        does). A rejected StatefulSet update does not stop the other writes; the
        ImmutableFieldError is raised after them, and that StatefulSet stays as it was."""
        desired = prepare_desired(desired_children, self.namespace, self.parent_uid)
        entries = _plan_with_results(list(self.objects.values()), desired)
        entries.sort(key=lambda entry: entry[0].action != "delete")
        done: list[Change] = []
        rejected: list[str] = []
        for change, live, result in entries:
            key = (change.kind, change.name)
            if change.action == "delete":
                del self.objects[key]
            elif change.action == "create":
                self.objects[key] = self._created(result)
            elif change.action == "update":
                stored = server_defaults(result)
                forbidden = immutable_changes(live, stored)
                if forbidden:
                    rejected.append(f"{_describe(live)}: may not change {', '.join(forbidden)}")
                    continue
                self.objects[key] = self._updated(live, stored)
            else:
                continue
            done.append(change)
            self.writes.append(change)
        if rejected:
            raise ImmutableFieldError("; ".join(rejected))
        return done

    def _created(self, obj: dict) -> dict:
        key = (obj["kind"], obj["metadata"]["name"])
        count = self._creations[key] = self._creations.get(key, 0) + 1
        # A re-created object gets a new uid, like in a real cluster.
        seed = f"{key[0]}/{key[1]}" + (f"#{count}" if count > 1 else "")
        metadata = obj.setdefault("metadata", {})
        metadata.setdefault("namespace", self.namespace)
        metadata["ownerReferences"] = [*(metadata.get("ownerReferences") or []), {
            "apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
            "name": self.parent_name, "uid": self.parent_uid,
            "controller": True, "blockOwnerDeletion": True,
        }]
        obj = server_defaults(obj)
        obj["metadata"].update({
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, seed)), "resourceVersion": "1",
            "generation": 1, "creationTimestamp": CREATION_TIMESTAMP,
        })
        return obj

    @staticmethod
    def _updated(live: dict, stored: dict) -> dict:
        if same(stored, live):  # a no-op update: the server keeps the resourceVersion
            return stored
        metadata = stored["metadata"]
        metadata["resourceVersion"] = str(int(metadata.get("resourceVersion", "0")) + 1)
        if not same(live.get("spec"), stored.get("spec")):
            metadata["generation"] = int(metadata.get("generation", 0)) + 1
        return stored

    def observed(self, version: str = "v1",
                 kinds: tuple[str, ...] = ("ConfigMap.v1", "Secret.v1", "Service.v1",
                                           "StatefulSet.apps/v1")) -> dict:
        """The `children` map of a sync request; every kind in `kinds` present even when
        empty; keyed by name (v1) or namespace/name (v2). Deep copies."""
        if version not in ("v1", "v2"):
            raise ValueError(f"unknown hook version {version!r}")
        children: dict[str, dict] = {group: {} for group in kinds}
        for obj in self.objects.values():
            group = f"{obj['kind']}.{obj['apiVersion']}"
            if group in children:
                meta = obj["metadata"]
                key = meta["name"] if version == "v1" else f"{meta['namespace']}/{meta['name']}"
                children[group][key] = copy.deepcopy(obj)
        return children

    def set_statefulset_status(self, name: str, ready: int) -> None:
        """Simulate the StatefulSet controller reporting `ready` pods (not a hook write). Like
        the real API, zero-valued optional counts (readyReplicas, currentReplicas,
        updatedReplicas) are left out of the status."""
        sts = self.objects[("StatefulSet", name)]
        replicas = (sts.get("spec") or {}).get("replicas", 1)
        status = {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                  "currentReplicas": replicas, "updatedReplicas": replicas,
                  "observedGeneration": sts["metadata"]["generation"]}
        sts["status"] = {k: v for k, v in status.items()
                         if v or k in ("replicas", "availableReplicas")}
        sts["metadata"]["resourceVersion"] = str(int(sts["metadata"]["resourceVersion"]) + 1)

    def pod_template_writes(self) -> int:
        """Updates that changed a StatefulSet's pod template, i.e. rolled its pods."""
        return sum(1 for c in self.writes if c.action == "update" and c.restarts_pod)
