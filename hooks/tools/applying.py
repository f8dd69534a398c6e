"""A model of Metacontroller's "dynamic apply": how Metacontroller v4 writes the children a
CompositeController's sync hook desires, and what the API server adds to what it stores.

No network, no Kubernetes client. `merge` is Metacontroller's three-way merge, ported from its
Go code (pkg/dynamic/apply) with its quirks; `server_defaults` is API-server defaulting;
`plan` says what one sync response would do to each child; `Cluster` is a fake namespace that
performs those plans and counts writes, so tests can check that a hook converges (an
identical second sync writes nothing) and does not roll pods needlessly.
Facts: METACONTROLLER_FACTS.md, "How Metacontroller applies a desired child" and "What the
API server fills in".
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from hooks.request import observed

LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
SELECTOR_LABEL = observed.SELECTOR_LABEL   # generateSelector: the label a parent's children are selected by
LIST_MAP_KEYS = ("containerPort", "port", "mountPath", "name", "uid", "ip", "path")

# Metadata Metacontroller copies back from the live object after merging (Go:
# objectMetaSystemFields), so a hook can never cause a diff through it; plus managedFields,
# which the API server owns.
SYSTEM_METADATA = ("selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields")
# The only StatefulSet spec fields an update may change (kube-apiserver 1.34 names them in
# its refusal; tests/test_apiserver_real.py compares).
STATEFULSET_MUTABLE = ("replicas", "template", "updateStrategy", "revisionHistoryLimit",
                       "persistentVolumeClaimRetentionPolicy", "ordinals", "minReadySeconds")
CREATION_TIMESTAMP = "2026-01-01T00:00:00Z"


class ImmutableFieldError(Exception):
    """The API server rejected an update (e.g. a StatefulSet's selector, serviceName or
    volumeClaimTemplates changed); Metacontroller then fails that sync on every retry."""


class MergeError(ValueError):
    """Metacontroller cannot apply the child: its last-applied annotation is not JSON."""


# --------------------------------------------------------------------------- three-way merge


def merge(live: Any, last_applied: Any, desired: Any) -> Any:
    """Three-way merge as dynamic apply does it; returns a new object, mutates nothing.

    Objects: a key in last_applied but not in desired is deleted; desired keys merge
    recursively; keys nobody applied stay. Scalars: desired wins. Lists whose items (in all
    three versions) are objects sharing a LIST_MAP_KEYS key (tried in order) merge as maps by
    that key's string form (pkg/dynamic/apply/apply.go, mergeListMap): each key's merged item
    is the later item of that key; every live item whose key survives is replaced by it, so
    live twins stay two (identical) items; desired items whose key no live item had are
    appended in desired order, once. Other lists are replaced whole. As in the Go code, the live value's type picks the
    branch: where live has no list, desired's list is taken verbatim (duplicates and all, to
    collapse on the next update); where live has an object or list and desired has another
    type, desired counts as absent.
    """
    return _merge(copy.deepcopy(live), last_applied, desired)


def _merge(live: Any, last: Any, desired: Any) -> Any:
    if isinstance(live, dict):
        return _merge_object(live, last if isinstance(last, dict) else None,
                             desired if isinstance(desired, dict) else None)
    if isinstance(live, list):
        return _merge_list(live, last if isinstance(last, list) else None,
                           desired if isinstance(desired, list) else None)
    return copy.deepcopy(desired)


def _merge_object(live: dict, last: dict | None, desired: dict | None) -> dict:
    # Mutates `live`, which merge() made a private copy of.
    last, desired = last or {}, desired or {}
    for key in last:
        if key not in desired:
            live.pop(key, None)
    for key, value in desired.items():
        live[key] = _merge(live.get(key), last.get(key), value)
    return live


def _merge_list(live: list, last: list | None, desired: list | None) -> list | None:
    key = list_map_key(live, last or [], desired or [])
    if key is None:
        return copy.deepcopy(desired)
    merged = _merge_object(_index(live, key), _index(last or [], key), _index(desired or [], key))
    result, added = [], set()
    for item in live:   # no check of `added`: Go puts a live key's merged item in every place it held
        item_key = merge_key_string(item[key])
        if item_key in merged:
            result.append(copy.deepcopy(merged[item_key]))
            added.add(item_key)
    for item in desired or []:
        item_key = merge_key_string(item[key])
        if item_key not in added:
            result.append(copy.deepcopy(merged[item_key]))
            added.add(item_key)
    return result


def list_map_key(*lists: list) -> str | None:
    """The first LIST_MAP_KEYS entry that every item of every list has, or None."""
    common: set[str] | None = None
    for items in lists:
        for item in items:
            if not isinstance(item, dict):
                return None
            common = set(item) if common is None else common & set(item)
    return next((key for key in LIST_MAP_KEYS if key in (common or ())), None)


def merge_key_string(value: Any) -> str:
    """A merge key as Go's fmt "%v" prints it (so 12049 and 12049.0 match)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _index(items: list, key: str) -> dict[str, Any]:
    # A later item overwrites an earlier one with the same key.
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
    """A copy of `obj` with what the API server fills in for its kind (Service, StatefulSet,
    Secret, ConfigMap, NetworkPolicy; other kinds come back unchanged). Never overwrites a
    present value, except that a Secret's stringData is folded into data. Idempotent."""
    fill = _DEFAULTERS.get(obj.get("kind"))
    if fill is None:
        return copy.deepcopy(obj)
    # All numbers in these kinds are integer fields: the server stores 8080.0 as 8080.
    out = _integral_floats_to_int(obj)
    fill(out)
    return out


def _integral_floats_to_int(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(v) for v in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _fill(target: dict, **defaults: Any) -> dict:
    for key, value in defaults.items():
        target.setdefault(key, value)
    return target


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
        _fill(spec, clusterIPs=[ip], ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack",
              internalTrafficPolicy="Cluster")
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
    spec = _fill(sts.setdefault("spec", {}), replicas=1, podManagementPolicy="OrderedReady",
                 revisionHistoryLimit=10)
    strategy = _fill(spec.setdefault("updateStrategy", {}), type="RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _fill(strategy.setdefault("rollingUpdate", {}), partition=0)
    _fill(spec.setdefault("persistentVolumeClaimRetentionPolicy", {}),
          whenDeleted="Retain", whenScaled="Retain")
    _pod_spec_defaults(spec.setdefault("template", {}).setdefault("spec", {}))
    for claim in _dicts(spec, "volumeClaimTemplates"):
        _fill(claim, apiVersion="v1", kind="PersistentVolumeClaim", status={"phase": "Pending"})
        _fill(claim.setdefault("spec", {}), volumeMode="Filesystem")
    # What a new StatefulSet's status reads before its controller writes one (zeros left out).
    sts.setdefault("status", {"replicas": 0, "availableReplicas": 0})


def _pod_spec_defaults(pod: dict) -> None:
    _fill(pod, restartPolicy="Always", dnsPolicy="ClusterFirst",
          schedulerName="default-scheduler", terminationGracePeriodSeconds=30,
          securityContext={})
    for container in _dicts(pod, "initContainers") + _dicts(pod, "containers"):
        _container_defaults(container)
    for volume in _dicts(pod, "volumes"):
        for source in ("configMap", "secret"):
            if isinstance(volume.get(source), dict):
                _fill(volume[source], defaultMode=420)


def _container_defaults(container: dict) -> None:
    _fill(container, imagePullPolicy=pull_policy(str(container.get("image", ""))),
          terminationMessagePath="/dev/termination-log", terminationMessagePolicy="File",
          resources={})
    for port in _dicts(container, "ports"):
        port.setdefault("protocol", "TCP")
    for probe in (container.get(name) for name in ("livenessProbe", "readinessProbe",
                                                   "startupProbe")):
        if isinstance(probe, dict):
            _fill(probe, timeoutSeconds=1, periodSeconds=10, successThreshold=1,
                  failureThreshold=3)
            if isinstance(probe.get("httpGet"), dict):
                probe["httpGet"].setdefault("scheme", "HTTP")


def pull_policy(image: str) -> str:
    """The default imagePullPolicy: Always for ":latest" or no tag, else IfNotPresent."""
    last_part = image.rsplit("/", 1)[-1]
    if "@" in last_part:
        return "IfNotPresent"
    return "Always" if last_part.partition(":")[2] in ("", "latest") else "IfNotPresent"


def _secret_defaults(secret: dict) -> None:
    # stringData is write-only: the server folds it into data (winning over data) and drops it.
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        secret["data"] = {**(secret.get("data") or {}), **{
            key: base64.b64encode(str(text).encode()).decode()
            for key, text in string_data.items()}}
    secret.setdefault("type", "Opaque")


def _network_policy_defaults(policy: dict) -> None:
    spec = policy.setdefault("spec", {})
    spec.setdefault("policyTypes", ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
    for rule in _dicts(spec, "ingress") + _dicts(spec, "egress"):
        for port in _dicts(rule, "ports"):
            port.setdefault("protocol", "TCP")


_DEFAULTERS = {"Service": _service_defaults, "StatefulSet": _statefulset_defaults,
               "Secret": _secret_defaults, "ConfigMap": lambda _: None,
               "NetworkPolicy": _network_policy_defaults}


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # "create" | "update" | "delete" | "unchanged" | "failed"
    # Dotted paths that differ between live and the merged result; for "failed", the reason.
    fields: tuple[str, ...]
    restarts_pod: bool  # a StatefulSet's stored pod template changes, or it is created/deleted


def last_applied_json(desired: dict) -> str:
    """The annotation value: Go's json.Marshal of the desired object (sorted keys, compact,
    UTF-8 kept, <, >, & and U+2028/2029 escaped, a whole float written as an integer)."""
    text = json.dumps(_integral_floats_to_int(desired), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def read_last_applied(live: dict) -> dict:
    """The last-applied object (Go: GetLastApplied). Empty or JSON null is none; text that is
    not JSON, or JSON that is not an object, fails the update of this child (and only it:
    Metacontroller collects each child's error and goes on with the others)."""
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED) or ""
    try:
        value = json.loads(text) if text else None
    except ValueError as exc:
        raise MergeError(f"{_describe(live)}: {LAST_APPLIED} is not JSON: {exc}") from exc
    if value is not None and not isinstance(value, dict):
        raise MergeError(f"{_describe(live)}: {LAST_APPLIED} is JSON but not an object")
    return value or {}


def apply_update(live: dict, desired: dict) -> dict:
    """The object Metacontroller would send to update `live` (Go: ApplyUpdate)."""
    desired = copy.deepcopy(desired)
    annotations = (desired.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):   # Go: nullifyLastAppliedAnnotation deletes the key
        annotations.pop(LAST_APPLIED, None)
    result = merge(live, read_last_applied(live), desired)
    metadata = result.setdefault("metadata", {})
    for field in SYSTEM_METADATA:
        _revert(metadata, live.get("metadata") or {}, field)
    _revert(result, live, "status")
    _set_last_applied(result, desired)
    return result


def _set_last_applied(obj: dict, desired: dict) -> None:
    metadata = obj.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}),
                               LAST_APPLIED: last_applied_json(desired)}


def _revert(target: dict, original: dict, key: str) -> None:
    if key in original:
        target[key] = copy.deepcopy(original[key])
    else:
        target.pop(key, None)


def diff_paths(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where `old` and `new` differ; list-map items are named by their key
    (containers[dittofs].ports[12049].name), other list items by index."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in [*old, *(k for k in new if k not in old)]:
            sub = f"{path}.{key}" if path else str(key)
            both = key in old and key in new
            out += diff_paths(old[key], new[key], sub) if both else [sub]
        return out
    if isinstance(old, list) and isinstance(new, list) and not same(old, new):
        # No single item differs when only order or duplicates changed: name the list.
        return _list_diff_paths(old, new, path) or [path]
    return [] if same(old, new) else [path]


def _list_diff_paths(old: list, new: list, path: str) -> list[str]:
    key = list_map_key(old, new) if old and new else None
    if key is not None and not (_repeats(old, key) or _repeats(new, key)):
        old_map, new_map = _index(old, key), _index(new, key)
        return [p for k in {**old_map, **new_map} for p in (
            diff_paths(old_map[k], new_map[k], f"{path}[{k}]")
            if k in old_map and k in new_map else [f"{path}[{k}]"])]
    if len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new))
                for p in diff_paths(a, b, f"{path}[{i}]")]
    return []


def _repeats(items: list, key: str) -> bool:
    """Whether two items share `key` (the Go operator's TCP and UDP twins of one port): by key
    they would show as one item changing, so the list is named whole."""
    keys = [merge_key_string(item[key]) for item in items]
    return len(set(keys)) < len(keys)


def _describe(obj: dict) -> str:
    kind, namespace, name = _identity(obj)
    return f"{kind} {namespace}/{name}"


def _identity(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace") or "", meta.get("name", "")


def _pod_template(obj: dict) -> Any:
    return (obj.get("spec") or {}).get("template")


def prepare_desired(desired_children: list[dict], namespace: str | None = None,
                    parent_uid: str | None = None) -> list[dict]:
    """Copies of the hook's children as Metacontroller applies them: a missing namespace
    becomes the parent's, and (generateSelector) each gets the label controller-uid. Both
    end up in the last-applied annotation."""
    prepared = copy.deepcopy(desired_children)
    for child in prepared:
        metadata = child.setdefault("metadata", {})
        if namespace and not metadata.get("namespace"):
            metadata["namespace"] = namespace
        if parent_uid:
            metadata["labels"] = {SELECTOR_LABEL: parent_uid, **(metadata.get("labels") or {})}
    return prepared


def _same_child(a: dict, b: dict) -> bool:
    (kind_a, ns_a, name_a), (kind_b, ns_b, name_b) = _identity(a), _identity(b)
    # A missing namespace (the parent's, to be filled in) matches any namespace.
    return (kind_a, name_a) == (kind_b, name_b) and (not ns_a or not ns_b or ns_a == ns_b)


def _match(live_objects: list[dict], desired: dict) -> dict | None:
    found = [obj for obj in live_objects if _same_child(obj, desired)]
    if len(found) > 1:
        raise ValueError(f"{_describe(desired)} matches {len(found)} live objects")
    return found[0] if found else None


def _decide(live: dict | None, desired: dict) -> tuple[Change, dict]:
    """The change for one desired child, and the object Metacontroller would send."""
    kind, _, name = _identity(desired)
    is_sts = kind == "StatefulSet"
    if live is None:
        created = copy.deepcopy(desired)
        _set_last_applied(created, desired)
        return Change(kind, name, "create", (), is_sts), created
    try:
        result = apply_update(live, desired)
    except MergeError as exc:   # this child is not updated; the others still are
        return Change(kind, name, "failed", (str(exc),), False), None
    if same(result, live):
        return Change(kind, name, "unchanged", (), False), result
    # What rolls pods is the template the server stores, defaults included.
    restarts = is_sts and not same(_pod_template(live), _pod_template(server_defaults(result)))
    return Change(kind, name, "update", tuple(sorted(diff_paths(live, result))), restarts), result


def writes(live_objects: list[dict], desired_children: list[dict]
           ) -> list[tuple[Change, dict | None, dict | None]]:
    """(change, live object, object to send) for every child, as a store performs them (the
    children as prepare_desired makes them), sorted by (kind, name)."""
    remaining, seen, out = list(live_objects), set(), []
    for desired in desired_children:
        if _identity(desired) in seen:
            raise ValueError(f"duplicate desired child {_describe(desired)}")
        seen.add(_identity(desired))
        live = _match(remaining, desired)
        remaining = [obj for obj in remaining if obj is not live]
        change, result = _decide(live, desired)
        out.append((change, live, result))
    for live in remaining:
        kind, _, name = _identity(live)
        out.append((Change(kind, name, "delete", (), kind == "StatefulSet"), live, None))
    return sorted(out, key=lambda entry: (entry[0].kind, entry[0].name))


def plan(live_objects: list[dict], desired_children: list[dict], *,
         namespace: str | None = None, parent_uid: str | None = None) -> list[Change]:
    """What dynamic apply would do for one sync response, without doing it. Children match
    live objects by kind, namespace and name (no namespace: the single live object of that
    kind and name). Give the parent's `namespace` and `parent_uid` to prepare the children as
    Metacontroller does (prepare_desired); against a real cluster that is needed to see
    'unchanged'. Sorted by (kind, name)."""
    desired = prepare_desired(desired_children, namespace, parent_uid)
    return [change for change, _, _ in writes(live_objects, desired)]


def immutable_changes(live: dict, new: dict) -> list[str]:
    """The StatefulSet spec fields an update changes that the API server forbids changing."""
    if live.get("kind") != "StatefulSet":
        return []
    old_spec, new_spec = live.get("spec") or {}, new.get("spec") or {}
    return sorted(f"spec.{key}" for key in {**old_spec, **new_spec} if key not in
                  STATEFULSET_MUTABLE and not same(old_spec.get(key), new_spec.get(key)))


# --------------------------------------------------------------------------- fake cluster


def owner_ref(parent_name: str, parent_uid: str) -> dict:
    """The controller ownerReference Metacontroller gives a child of a DittoServer."""
    return {"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
            "name": parent_name, "uid": parent_uid, "controller": True, "blockOwnerDeletion": True}


def controller_uid(obj: dict) -> str | None:
    ref = observed.controller_of(obj)
    return ref.get("uid") if ref is not None else None


def claim_verdict(obj: dict, parent_uid: str) -> str | None:
    """What the parent's claim does with a live object of a child kind (ClaimObject in
    pkg/third_party/kubernetes/controller_ref_manager.go, with generateSelector's label as the
    selector): "release" one it controls without the label, "adopt" an uncontrolled one with
    it, "child" one it controls with it; None: not its child (another's, or an unlabelled
    orphan)."""
    labelled = ((obj.get("metadata") or {}).get("labels") or {}).get(SELECTOR_LABEL) == parent_uid
    owner = controller_uid(obj)
    if owner == parent_uid:
        return "child" if labelled else "release"
    return "adopt" if owner is None and labelled else None


def claimed_refs(obj: dict, verdict: str, ref: dict) -> list[dict]:
    """`obj`'s ownerReferences once the parent whose controller reference is `ref` has released
    or adopted it. Go: removeOwnerReference drops every one with the parent's uid;
    addOwnerReference replaces one with that uid in place, else appends."""
    refs = obj["metadata"].get("ownerReferences") or []
    if verdict == "release":
        return [old for old in refs if old.get("uid") != ref["uid"]]
    if any(old.get("uid") == ref["uid"] for old in refs):
        return [ref if old.get("uid") == ref["uid"] else old for old in refs]
    return [*refs, ref]


class Cluster:
    """A fake namespace holding live objects, mutated only through sync responses, like
    Metacontroller would (child update strategy InPlace for every kind).

    Before each sync the parent claims its children as Metacontroller does with
    generateSelector (pkg/controller/composite/controller.go claimChildren, the rules of
    pkg/third_party/kubernetes/controller_ref_manager.go ClaimObject; `claim_verdict`): an
    object controlled by the parent but without the label `controller-uid=<uid>` is released
    (its ownerReference removed); an uncontrolled object with the label is adopted (given
    one); anything else is not a child. Only children are observed, updated or deleted; creating
    a name a non-child holds fails with `already exists`, which Metacontroller swallows."""

    def __init__(self, namespace: str = "default",
                 parent_uid: str = "0c0ffee0-0000-4000-8000-000000000001",
                 parent_name: str = "dittoserver") -> None:
        self.namespace, self.parent_uid, self.parent_name = namespace, parent_uid, parent_name
        self.objects: dict[tuple[str, str], dict] = {}
        self.writes: list[Change] = []
        self._created_count: dict[tuple[str, str], int] = {}
        self.released: list[tuple[str, str]] = []
        self.adopted: list[tuple[str, str]] = []
        self.already_exists: list[tuple[str, str]] = []

    def claim(self) -> dict[tuple[str, str], dict]:
        """Release, adopt, and return the parent's children by (kind, name)."""
        children = {}
        for key, obj in self.objects.items():
            verdict = claim_verdict(obj, self.parent_uid)
            if verdict in ("release", "adopt"):
                obj["metadata"]["ownerReferences"] = claimed_refs(obj, verdict, self.owner_ref())
                (self.released if verdict == "release" else self.adopted).append(key)
            if verdict in ("adopt", "child"):
                children[key] = obj
        return children

    def owner_ref(self) -> dict:
        return owner_ref(self.parent_name, self.parent_uid)

    def apply(self, desired_children: list[dict]) -> list[Change]:
        """Process one sync response: plan it, then perform it, deletes first as Metacontroller
        does. A rejected StatefulSet update, or a child whose last-applied annotation cannot
        be read, stays as it was and does not stop the other writes; ImmutableFieldError or
        MergeError is raised after them. Returns the writes performed."""
        desired = prepare_desired(desired_children, self.namespace, self.parent_uid)
        done, rejected, failed = [], [], []
        for change, live, result in sorted(writes(list(self.claim().values()), desired),
                                           key=lambda entry: entry[0].action != "delete"):
            key = (change.kind, change.name)
            if change.action == "delete":
                del self.objects[key]
            elif change.action == "create" and key in self.objects:
                self.already_exists.append(key)   # a non-child holds the name: nothing is written
                continue
            elif change.action == "create":
                self.objects[key] = self._create(result)
            elif change.action == "update":
                stored = server_defaults(result)
                forbidden = immutable_changes(live, stored)
                if forbidden:
                    rejected.append(f"{_describe(live)}: may not change {', '.join(forbidden)}")
                    continue
                self.objects[key] = self._update(live, stored)
            else:
                failed += [*change.fields] if change.action == "failed" else []
                continue
            done.append(change)
        self.writes += done
        if failed:
            raise MergeError("; ".join(failed + rejected))
        if rejected:
            raise ImmutableFieldError("; ".join(rejected))
        return done

    def _create(self, obj: dict) -> dict:
        key = (obj["kind"], obj["metadata"]["name"])
        count = self._created_count[key] = self._created_count.get(key, 0) + 1
        # Deterministic, yet a re-created object gets a new uid as in a real cluster.
        seed = f"{key[0]}/{key[1]}" + (f"#{count}" if count > 1 else "")
        metadata = obj["metadata"]
        metadata.setdefault("namespace", self.namespace)
        metadata["ownerReferences"] = [*(metadata.get("ownerReferences") or []), self.owner_ref()]
        obj = server_defaults(obj)
        obj["metadata"].update(uid=str(uuid.uuid5(uuid.NAMESPACE_URL, seed)),
                               resourceVersion="1", generation=1,
                               creationTimestamp=CREATION_TIMESTAMP)
        return obj

    @staticmethod
    def _update(live: dict, stored: dict) -> dict:
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
        """The `children` map of a sync request, every kind in `kinds` present even when
        empty, keyed by name (v1) or namespace/name (v2). Deep copies."""
        if version not in ("v1", "v2"):
            raise ValueError(f"unknown hook version {version!r}")
        children: dict[str, dict] = {group: {} for group in kinds}
        for obj in self.claim().values():
            group = children.get(f"{obj['kind']}.{obj['apiVersion']}")
            if group is not None:
                _, namespace, name = _identity(obj)
                group[name if version == "v1" else f"{namespace}/{name}"] = copy.deepcopy(obj)
        return children

    def set_statefulset_status(self, name: str, ready: int) -> None:
        """Simulate the StatefulSet controller (not a hook write). As the real API does,
        zero readyReplicas/currentReplicas/updatedReplicas are left out."""
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
