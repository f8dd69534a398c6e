"""The observed side of a sync request: children and related objects, indexed by name.

Metacontroller keys objects by `name` (hook v1) or `namespace/name` (v2); the key is never
trusted, only each object's `metadata`. Only the few fields the hook needs are read later;
nothing here models a whole Kubernetes object.
"""
import json
from dataclasses import dataclass, field

import orjson

from hooks.request import errors, names

SECRET = "Secret.v1"
CONFIGMAP = "ConfigMap.v1"
SERVICE = "Service.v1"
STATEFULSET = "StatefulSet.apps/v1"
# Without any one of these the hook cannot tell what exists, and answering would risk
# overwriting a generated Secret or recreating an immutable StatefulSet.
REQUIRED_GROUPS = (CONFIGMAP, SECRET, SERVICE, STATEFULSET)
NETWORKPOLICY = "NetworkPolicy.networking.k8s.io/v1"
SERVICEMONITOR = "ServiceMonitor.monitoring.coreos.com/v1"   # only where prometheus-operator runs
LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
ADAPTER_SERVICE_LABEL = "dittofs.io/adapter-service"
ADAPTER_TYPE_LABEL = "dittofs.io/adapter-type"
# Observed objects handed back verbatim must nest no deeper than this: the answer must stay
# within orjson's 255 levels (Kubernetes objects nest a dozen or two).
MAX_DEPTH = 64


@dataclass(frozen=True)
class Objects:
    """Objects of one kind by name."""

    by_name: dict[str, dict] = field(default_factory=dict)

    def get(self, name: str) -> dict | None:
        return self.by_name.get(name)

    def labelled(self, label: str, value: str) -> list[dict]:
        """Objects carrying `label: value`, sorted by name."""
        return [obj for name, obj in sorted(self.by_name.items()) if labels(obj).get(label) == value]

    def labelled_or_named(self, label: str, value: str, prefix: str | None) -> list[dict]:
        """Objects carrying `label: value` or named `prefix...`, sorted by name.

        Adapter children are found by label and, should someone have removed or changed the
        label, by name: unknown adapter state must not delete them either way.
        """
        return [obj for name, obj in sorted(self.by_name.items())
                if labels(obj).get(label) == value or (prefix is not None and name.startswith(prefix))]


def metadata(obj: dict) -> dict:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def labels(obj: dict) -> dict:
    found = metadata(obj).get("labels")
    return found if isinstance(found, dict) else {}


def adapter_name_prefix(parent: str) -> str | None:
    """What the name of every adapter child of `parent` starts with (`names.adapter_resource_name`),
    or None for a parent name so long that shortening may cut into the prefix."""
    prefix = f"{parent}-adapter-"
    return prefix if len(prefix) <= names.DNS_LABEL_MAX - 9 else None


def listed(value: object) -> list:
    """`value` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests maps and lists more than `limit` levels deep (no recursion).

    Level by level: after `limit` levels, is anything left that still nests? (Three times
    faster than a stack of (item, depth) pairs; it runs on every sync.)
    """
    level = [value]
    for _ in range(limit):
        below: list = []
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
            elif isinstance(item, list):
                below.extend(item)
        if not below:
            return False
        level = below
    return any(isinstance(item, (dict, list)) for item in level)


def checked_depth(value, where: str):
    """`value`, or a 422 when it nests too deeply to hand back."""
    if too_deep(value):
        raise errors.invalid(f"nests more than {MAX_DEPTH} levels deep", where, "InvalidChildren")
    return value


def dig(obj: object, *path: str, default=None):
    """obj[path[0]][path[1]]... or `default` when any step is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def index(group: object, where: str, namespace: str) -> Objects:
    """Index one group of a children or related map by metadata.name, in the parent's namespace."""
    if not isinstance(group, dict):
        raise errors.invalid("must be an object of objects", where, "InvalidChildren")
    found: dict[str, dict] = {}
    for key, obj in group.items():
        # dig(), inlined: this runs for every observed object of every sync.
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise errors.invalid("observed object has no metadata.name", f"{where}.{key}", "InvalidChildren")
        if meta.get("namespace", namespace) == namespace:
            found[name] = obj
    return Objects(found)


@dataclass(frozen=True)
class Observed:
    groups: dict[str, Objects]
    related_secrets: Objects
    # Every related group by name (Secrets included): the customize hook also relates the
    # objects the children would be, by name, so that one not among the children shows.
    related: dict[str, Objects] = field(default_factory=dict)

    def of(self, group: str) -> Objects:
        return self.groups.get(group, Objects())

    def related_of(self, group: str) -> Objects:
        return self.related.get(group, Objects())


def parse(request: dict, namespace: str, required: tuple[str, ...] = REQUIRED_GROUPS) -> Observed:
    """The observed children and related Secrets of a sync request, or a 422."""
    children = request.get("children")
    if not isinstance(children, dict):
        raise errors.invalid("request has no children map", "children", "InvalidChildren")
    missing = [g for g in required if g not in children]
    if missing:
        raise errors.invalid(f"children has no {missing[0]} entry", f"children.{missing[0]}", "InvalidChildren")
    # Optional groups (NetworkPolicy) count only when the controller declares them.
    groups = {g: index(children[g], f"children.{g}", namespace) for g in children
              if g in required or isinstance(children[g], dict)}
    related = request.get("related") or {}
    if not isinstance(related, dict):
        raise errors.invalid("related must be an object", "related", "InvalidRelated")
    related_groups = {g: index(related[g] or {}, f"related.{g}", namespace) for g in related
                      if g == SECRET or related[g] is None or isinstance(related[g], dict)}
    secrets = related_groups.setdefault(SECRET, Objects())
    check_secret_data(groups.get(SECRET, Objects()), f"children.{SECRET}", "InvalidChildren")
    check_secret_data(secrets, f"related.{SECRET}", "InvalidRelated")
    return Observed(groups, secrets, related_groups)


def check_secret_data(objects: Objects, where: str, code: str) -> None:
    """A Secret's `data`, when present, maps keys to (base64) strings, as the API server writes it.

    Anything else cannot be read: answering would regenerate a generated Secret's values, or
    hash a referenced Secret wrongly, so the request is refused instead.
    """
    for name, obj in objects.by_name.items():
        data = obj.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
            raise errors.invalid("Secret data must map keys to base64 strings", f"{where}.{name}.data", code)


SELECTOR_LABEL = "controller-uid"   # Metacontroller's, on every child with generateSelector


def controller_of(obj: dict) -> dict | None:
    """The object's controller ownerReference, if it has one."""
    refs = listed(metadata(obj).get("ownerReferences"))
    return next((r for r in refs if isinstance(r, dict) and r.get("controller") is True), None)


def not_claimable(obj: dict, parent_uid: str) -> str | None:
    """Why Metacontroller's claim (ClaimObject, with generateSelector's `controller-uid` label as
    the selector) will never make `obj` a child of the parent with `parent_uid`, or None when it
    is one or becomes one at the next claim (controlled by the parent and labelled; or
    uncontrolled and labelled, which is adopted)."""
    ref = controller_of(obj)
    owner = ref.get("uid") if ref is not None else None
    if owner is not None and owner != parent_uid:
        return f"controlled by {ref.get('kind')} {ref.get('name')} (uid {owner})"
    if labels(obj).get(SELECTOR_LABEL) == parent_uid:
        return None
    if owner is None:
        return f"released: no controller, and no {SELECTOR_LABEL} label"
    return f"without the {SELECTOR_LABEL} label (released at the next claim)"


def _sorted_dicts(items: object) -> list[dict]:
    found = [item for item in items or [] if isinstance(item, dict)] if isinstance(items, list) else []
    return sorted(found, key=lambda item: json.dumps(item, sort_keys=True))


def as_last_applied(obj: dict, sorted_lists: tuple[str, ...] = ()) -> dict:
    """An observed child as the hook last applied it, to hand back unchanged.

    Metacontroller stores exactly what the hook returned in the last-applied annotation, so
    returning it again writes nothing. Without one, the observed object less what the API
    server owns is returned, with the named spec lists in a fixed order (their live order is
    the server's, and the answer must not depend on it).
    """
    meta = metadata(obj)
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    where = f"{meta.get('name')}.metadata.annotations.{LAST_APPLIED}"
    try:
        # orjson, as strict as Go's decoder: no NaN, no lone surrogates (which no answer could carry).
        last = orjson.loads(annotations.get(LAST_APPLIED) or "null")
    except (TypeError, ValueError):
        last = None
    if isinstance(last, dict) and dig(last, "metadata", "name") == meta.get("name"):
        return checked_depth(last, where)
    cleaned = {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}
    rest = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    if rest:
        cleaned["annotations"] = rest
    spec = dict(obj["spec"]) if isinstance(obj.get("spec"), dict) else {}
    found = checked_depth({"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": cleaned,
                           "spec": spec}, str(meta.get("name")))
    for key in sorted_lists:
        spec[key] = _sorted_dicts(spec.get(key))
    return found


def sharing_a_key(items: object, key: str) -> dict[str, list[int]]:
    """The indices of the items (objects) of a list that share their `key` value (a number or a
    string) with another item, by that value as text; the others are left out."""
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(listed(items)):
        # Numbers and strings only: str() of a value nested 1000 deep raises RecursionError.
        if isinstance(item, dict) and isinstance(item.get(key), (int, str)):
            groups.setdefault(str(item[key]), []).append(index)
    return {value: indices for value, indices in groups.items() if len(indices) > 1}


def _twins(items: object, key: str) -> list[str]:
    """`key value (name/protocol, ...)` for each value that two or more ports share."""
    ports = listed(items)
    found = []
    for value, indices in sharing_a_key(ports, key).items():
        described = []
        for item in (ports[i] for i in indices):
            name, protocol = item.get("name"), item.get("protocol", "TCP")
            described.append(f"{name if isinstance(name, str) else '?'}/{protocol if isinstance(protocol, str) else '?'}")
        found.append(f"{key} {value} ({', '.join(described)})")
    return found


def twin_ports(found: Observed) -> list[str]:
    """Live StatefulSets and Services holding two ports with one dynamic-apply merge key
    (containerPort, or a Service's port; what a switch from server-side apply leaves behind).
    Dynamic apply replaces each twin by the same merged item, which the API server refuses
    for a Service, so these objects are never updated again until one of each pair goes."""
    stuck = []
    for name, sts in sorted(found.of(STATEFULSET).by_name.items()):
        for container in listed(dig(sts, "spec", "template", "spec", "containers")):
            if isinstance(container, dict):
                stuck += [f"StatefulSet {name} container {container.get('name')}: {twin}"
                          for twin in _twins(container.get("ports"), "containerPort")]
    for name, svc in sorted(found.of(SERVICE).by_name.items()):
        stuck += [f"Service {name}: {twin}" for twin in _twins(dig(svc, "spec", "ports"), "port")]
    return stuck


def find(groups: object, group: str, name: str, namespace: str) -> dict | None:
    """The object called `name` in `group` of a related or attachments map, in `namespace`:
    the map's keys are not trusted, each object's metadata is."""
    objects = dig(groups, group, default={})
    for obj in objects.values() if isinstance(objects, dict) else ():
        meta = dig(obj, "metadata", default={})
        if isinstance(meta, dict) and meta.get("name") == name and meta.get("namespace", namespace) == namespace:
            return obj
    return None
