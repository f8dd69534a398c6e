"""A model of Metacontroller's server-side apply on its first write of an object another field
manager made: what the API server stores when Metacontroller applies a desired child (field
manager `metacontroller`, force on) to an object it has never applied, such as one the DittoFS
Go operator created and `adopt` hands over.

Metacontroller then owns no field yet, so the apply removes nothing it leaves out: the server
merges the desired object into the live one by the schema of each field. Objects and maps
merge key by key; a list of `listType=map` merges item by item on its keys; an atomic list,
struct or map (`x-kubernetes-map-type: atomic`: a Secret key selector, a label selector) is
replaced whole, and with it whatever another manager had set inside it. `SCHEMA` holds those
facts for the fields the hook writes; `tests/test_apiserver_real.py` checks each against the
real API server's OpenAPI and every prediction against what it stores.
"""
from __future__ import annotations

import copy
from typing import Any

from hooks.tools import applying

ATOMIC = "atomic"
_POD = "spec.template.spec"
_CONTAINERS = (f"{_POD}.containers[]", f"{_POD}.initContainers[]")

# Field paths ("[]" for a list's items) whose schema is not the default of their JSON type
# (objects merge by key, lists are atomic): the keys of a map list, or ATOMIC for a struct or
# map replaced whole.
SCHEMA: dict[str, tuple[str, ...] | str] = {
    "metadata.ownerReferences": ("uid",),
    "metadata.ownerReferences[]": ATOMIC,
    "spec.ports": ("port", "protocol"),                  # a Service's
    "spec.selector": ATOMIC,                             # a StatefulSet's label selector, a Service's map
    "spec.podSelector": ATOMIC,                          # a NetworkPolicy's label selector
    f"{_POD}.containers": ("name",),
    f"{_POD}.initContainers": ("name",),
    f"{_POD}.volumes": ("name",),
    f"{_POD}.imagePullSecrets": ("name",),
    **{f"{c}.ports": ("containerPort", "protocol") for c in _CONTAINERS},
    **{f"{c}.env": ("name",) for c in _CONTAINERS},
    **{f"{c}.volumeMounts": ("mountPath",) for c in _CONTAINERS},
    **{f"{c}.env[].valueFrom.{ref}": ATOMIC for c in _CONTAINERS
       for ref in ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")},
}
# What the server takes for a map-list key an item leaves out (a port's protocol).
KEY_DEFAULTS = {"protocol": "TCP"}


def merge(live: Any, desired: Any, path: str = "") -> Any:
    """`desired` applied over `live` by a manager that owns nothing in it; a new value."""
    rule = SCHEMA.get(path)
    if isinstance(live, dict) and isinstance(desired, dict) and rule != ATOMIC:
        found = copy.deepcopy(live)
        for key, value in desired.items():
            found[key] = merge(live.get(key), value, f"{path}.{key}" if path else key)
        return found
    if isinstance(live, list) and isinstance(desired, list) and isinstance(rule, tuple):
        return _merge_items(live, desired, rule, path)
    return copy.deepcopy(desired)


def _key(item: Any, keys: tuple[str, ...]) -> tuple:
    return tuple(applying.merge_key_string(item.get(k, KEY_DEFAULTS.get(k))) if isinstance(item, dict) else None
                 for k in keys)


def _merge_items(live: list, desired: list, keys: tuple[str, ...], path: str) -> list:
    """A map list, ordered as the API server orders it (measured on kube-apiserver 1.34): a
    live item desired does not name keeps its place among the live items; the desired items
    follow desired's order, each merged into the live item of its keys; a live item desired
    names is passed over until desired reaches it."""
    live_keys, desired_keys = [_key(i, keys) for i in live], [_key(i, keys) for i in desired]
    held, named = dict(zip(live_keys, live)), set(desired_keys)
    shared = iter([k for k in desired_keys if k in held])
    upcoming = next(shared, None)
    found, done, li, di = [], set(), 0, 0
    while li < len(live) or di < len(desired):
        if li < len(live) and di < len(desired) and live_keys[li] == desired_keys[di]:
            found.append(merge(live[li], desired[di], f"{path}[]"))
            done.add(desired_keys[di])
            li, di, upcoming = li + 1, di + 1, next(shared, None)
        elif li < len(live) and live_keys[li] in named and (live_keys[li] in done or upcoming != live_keys[li]):
            li += 1   # desired places it (or has placed it) elsewhere
        elif li < len(live) and live_keys[li] not in named:
            found.append(copy.deepcopy(live[li]))
            li += 1
        else:
            key = desired_keys[di]
            found.append(merge(held.get(key), desired[di], f"{path}[]"))
            done.add(key)
            di += 1
            if key == upcoming:
                upcoming = next(shared, None)
    return found


def first_apply(live: dict, desired: dict) -> dict:
    """What the server stores: `desired` (as Metacontroller sends it) merged into `live`, the
    server's defaults filled in; system metadata and status as they were."""
    found = applying.server_defaults(merge(live, desired))
    for key in applying.SYSTEM_METADATA:
        if key in live.get("metadata", {}):
            found["metadata"][key] = copy.deepcopy(live["metadata"][key])
    if "status" in live:
        found["status"] = copy.deepcopy(live["status"])
    return found


def plan(live_objects: list[dict], desired_children: list[dict], *, namespace: str, parent_uid: str,
         parent_name: str) -> list[applying.Change]:
    """What Metacontroller's first server-side apply of each child would change, sorted by
    (kind, name): created, updated (the fields that differ, and whether the pod template does)
    or unchanged. It deletes nothing the hook still desires; what it does not desire is deleted."""
    ref = applying.owner_ref(parent_name, parent_uid)
    desired = applying.prepare_desired(desired_children, namespace, parent_uid)
    live_by = {(obj.get("kind"), obj["metadata"]["name"]): obj for obj in live_objects}
    changes = []
    for child in desired:
        kind, name = child["kind"], child["metadata"]["name"]
        child["metadata"]["ownerReferences"] = [ref]
        live = live_by.pop((kind, name), None)
        if live is None:
            changes.append(applying.Change(kind, name, "create", (), kind == "StatefulSet"))
            continue
        stored = first_apply(live, child)
        fields = tuple(sorted(applying.diff_paths(_content(live), _content(stored))))
        restarts = kind == "StatefulSet" and not applying.same(live["spec"]["template"], stored["spec"]["template"])
        changes.append(applying.Change(kind, name, "update" if fields else "unchanged", fields, restarts))
    changes += [applying.Change(kind, name, "delete", (), kind == "StatefulSet") for kind, name in live_by]
    return sorted(changes, key=lambda c: (c.kind, c.name))


def _content(obj: dict) -> dict:
    found = {k: v for k, v in obj.items() if k != "status"}
    found["metadata"] = {k: v for k, v in obj.get("metadata", {}).items() if k not in applying.SYSTEM_METADATA}
    return found
