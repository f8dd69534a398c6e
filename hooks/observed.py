"""The observed side of a sync request: children and related objects, indexed by name.

Metacontroller keys objects by `name` (hook v1) or `namespace/name` (v2); the key is never
trusted, only each object's `metadata`. Only the few fields the hook needs are read later;
nothing here models a whole Kubernetes object.
"""
import json
from dataclasses import dataclass, field

from hooks import errors

SECRET = "Secret.v1"
CONFIGMAP = "ConfigMap.v1"
SERVICE = "Service.v1"
STATEFULSET = "StatefulSet.apps/v1"
# Without any one of these the hook cannot tell what exists, and answering would risk
# overwriting a generated Secret or recreating an immutable StatefulSet.
REQUIRED_GROUPS = (CONFIGMAP, SECRET, SERVICE, STATEFULSET)
NETWORKPOLICY = "NetworkPolicy.networking.k8s.io/v1"
LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
ADAPTER_SERVICE_LABEL = "dittofs.io/adapter-service"
ADAPTER_TYPE_LABEL = "dittofs.io/adapter-type"


@dataclass(frozen=True)
class Objects:
    """Objects of one kind by name."""

    by_name: dict[str, dict] = field(default_factory=dict)

    def get(self, name: str) -> dict | None:
        return self.by_name.get(name)

    def labelled(self, label: str, value: str) -> list[dict]:
        """Objects carrying `label: value`, sorted by name."""
        return [obj for name, obj in sorted(self.by_name.items()) if labels(obj).get(label) == value]


def metadata(obj: dict) -> dict:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def labels(obj: dict) -> dict:
    found = metadata(obj).get("labels")
    return found if isinstance(found, dict) else {}


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
        name = dig(obj, "metadata", "name")
        if not isinstance(name, str) or not name:
            raise errors.invalid("observed object has no metadata.name", f"{where}.{key}", "InvalidChildren")
        if dig(obj, "metadata", "namespace", default=namespace) == namespace:
            found[name] = obj
    return Objects(found)


@dataclass(frozen=True)
class Observed:
    groups: dict[str, Objects]
    related_secrets: Objects

    def of(self, group: str) -> Objects:
        return self.groups.get(group, Objects())


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
    secrets = index(related.get(SECRET) or {}, f"related.{SECRET}", namespace)
    return Observed(groups, secrets)


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
    try:
        last = json.loads(annotations.get(LAST_APPLIED) or "null")
    except (TypeError, ValueError):
        last = None
    if isinstance(last, dict) and dig(last, "metadata", "name") == meta.get("name"):
        return last
    cleaned = {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}
    rest = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    if rest:
        cleaned["annotations"] = rest
    spec = dict(obj["spec"]) if isinstance(obj.get("spec"), dict) else {}
    for key in sorted_lists:
        spec[key] = _sorted_dicts(spec.get(key))
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": cleaned, "spec": spec}
