"""The `dittofs-hooks` command line: `render`, `diff` and `adopt`, previews without a cluster.

Both read a DittoServer manifest, build the sync request Metacontroller would send for it (the
live children, if given, as the observed ones) and answer it with `sync.desired_state`, the
same core as `POST /sync`. `render` prints the desired children as multi-document YAML and the
status on stderr. `diff` plans the children against the live objects with `applying.plan`
(Metacontroller's dynamic apply) and says what would be created, updated, deleted or left
alone, and whether the DittoFS pod would restart.

`adopt` prints the hand-over of a live DittoServer from the DittoFS Go operator v0.29 to
Metacontroller as kubectl commands (or JSON patches) for a person to run, then the first sync
(under dynamic apply, or Metacontroller's first server-side apply, `server_side`) and each pod
restart the hand-over causes; the hook itself never calls the Kubernetes API. It recognises the children by
what they are (the names the Go operator and the hook give them, in the parent's namespace):
owned by the parent, released by Metacontroller (installed before `adopt` ran: the same label
commands repair that), or owned by another controller (named, never touched).

Exit codes, as diff(1): 0 nothing would change, 1 something would (diff only), 2 bad input.
"""
import argparse
import copy
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

import jsonpatch
import jsonpointer
import yaml

from hooks.children import adoption, secrets, statefulset, sync
from hooks.dittofs import layout
from hooks.request import adapters, context, errors, names, observed, ports, spec
from hooks.tools import applying, server_side
from hooks.web import settings

DEFAULT_NAMESPACE = "default"
# The children groups the shipped CompositeController declares (metacontroller/).
CHILD_GROUPS = (observed.CONFIGMAP, observed.SECRET, observed.SERVICE, observed.STATEFULSET,
                observed.NETWORKPOLICY)
OK, CHANGES, FAILED = 0, 1, 2
ABSENT = object()
VALUE_WIDTH = 120
STUCK_CONDITION = "ChildrenNotUpdatable"   # hooks/children/status.py


class CliError(Exception):
    """Bad input to a command: printed as one line on stderr, exit code 2."""


# --------------------------------------------------------------------------- YAML in and out


class _Loader(yaml.SafeLoader):
    """YAML as kubectl reads it: unquoted timestamps stay strings."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None   # config.yaml reads as a block, not one escaped line
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


class _Dumper(yaml.SafeDumper):
    """Block-style YAML, multi-line strings as literal blocks, never anchors or aliases."""

    yaml_representers = {**yaml.SafeDumper.yaml_representers, str: _represent_str}

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 16)


def parse_documents(text: str, source: str) -> list:
    """The documents of a JSON or (multi-document) YAML text; empty documents dropped."""
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        raise CliError(f"{source} is neither JSON nor YAML: {exc}") from None


def flatten(doc: Any, source: str) -> list[dict]:
    """Objects of one document; a `List` (or `SecretList`, ...) gives its items."""
    if not isinstance(doc, dict):
        raise CliError(f"{source}: every document must be an object, not {type(doc).__name__}")
    kind = str(doc.get("kind", ""))
    if not kind.endswith("List") or not isinstance(doc.get("items"), list):
        return [doc]
    found = []
    for item in doc["items"]:
        if isinstance(item, dict) and kind != "List":   # typed lists leave out kind/apiVersion
            item = {"apiVersion": doc.get("apiVersion"), "kind": kind[:-len("List")], **item}
        found += flatten(item, source)
    return found


def read_objects(path: str) -> list[dict]:
    """Every object in a JSON or YAML file, as `kubectl get -o json|yaml` prints them."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"cannot read {path}: not UTF-8 text") from None
    return [obj for doc in parse_documents(text, path) for obj in flatten(doc, path)]


# --------------------------------------------------------------------------- the parent


def parse_adapters(text: str) -> str:
    """`nfs:12049,smb:12445` as the `dittofs.io/adapters` annotation (enabled and running), in
    the canonical form the discovery hook writes. An empty string means no adapter runs."""
    entries, seen = [], set()
    for item in (part.strip() for part in text.split(",") if part.strip()):
        adapter_type, colon, port = (part.strip() for part in item.partition(":"))
        if not colon or not adapter_type:
            raise argparse.ArgumentTypeError(f"{item!r} is not TYPE:PORT (e.g. nfs:12049)")
        if not re.fullmatch(r"[0-9]+", port) or not 1 <= int(port) <= 65535:
            raise argparse.ArgumentTypeError(f"port of {item!r} must be a number from 1 to 65535")
        if names.sanitize(adapter_type) in seen:
            raise argparse.ArgumentTypeError(f"adapter {adapter_type!r} is given twice")
        seen.add(names.sanitize(adapter_type))
        entries.append(adapters.Entry(type=adapter_type, enabled=True, running=True, port=int(port)))
    return adapters.canonical(entries)


def pick_parent(objects: list[dict], source: str) -> dict:
    found = [obj for obj in objects if obj.get("kind") == spec.KIND]
    if not found:
        raise CliError(f"{source} holds no {spec.KIND}")
    if len(found) > 1:
        note(f"{source} holds {len(found)} {spec.KIND}s; using the first, "
             f"{observed.dig(found[0], 'metadata', 'name')}")
    return found[0]


def prepare_parent(parent: dict, namespace: str | None, annotation: str | None) -> dict:
    """A copy of the manifest as the API server would hand it over: in a namespace, and with
    the `--adapters` annotation when one is given."""
    parent = copy.deepcopy(parent)
    metadata = parent.get("metadata")
    if not isinstance(metadata, dict):
        raise CliError(f"the {spec.KIND} has no metadata")
    own = metadata.get("namespace")
    if namespace and own and own != namespace:
        raise CliError(f"the {spec.KIND}'s namespace {own!r} does not match --namespace {namespace!r}")
    metadata["namespace"] = own or namespace or DEFAULT_NAMESPACE
    if annotation is not None:
        metadata["annotations"] = {**(metadata.get("annotations") or {}), adapters.ANNOTATION: annotation}
    return parent


def parent_uid(parent: dict, live: list[dict]) -> str | None:
    """The parent's uid: from the manifest, else from its live children's controller reference."""
    uid = observed.dig(parent, "metadata", "uid")
    if isinstance(uid, str) and uid:
        return uid
    name, namespace = parent["metadata"].get("name"), parent["metadata"]["namespace"]
    found = {ref.get("uid") for obj in live
             if namespace_of(obj, namespace) == namespace and (ref := observed.controller_of(obj))
             and is_parent_ref(ref, name, None)}
    return found.pop() if len(found) == 1 else None


# --------------------------------------------------------------------------- the request


def group_of(obj: dict) -> str:
    return f"{obj.get('kind')}.{obj.get('apiVersion')}"


def namespace_of(obj: dict, default: str) -> str:
    return observed.dig(obj, "metadata", "namespace") or default


def is_parent_ref(ref: dict, name: str, uid: str | None) -> bool:
    return (ref.get("kind") == spec.KIND and str(ref.get("apiVersion", "")).startswith(spec.GROUP + "/")
            and ref.get("name") == name and (uid is None or ref.get("uid") == uid))


def is_child(obj: dict, parent: dict, uid: str | None, groups: tuple[str, ...]) -> bool:
    """Whether Metacontroller would count `obj` among the parent's children: a declared kind
    in the parent's namespace, controlled by this parent, or uncontrolled and labelled as its
    child (Metacontroller's controller-uid label, or the hook's own instance labels)."""
    name, namespace = parent["metadata"]["name"], parent["metadata"]["namespace"]
    if group_of(obj) not in groups or namespace_of(obj, namespace) != namespace:
        return False
    ref = observed.controller_of(obj)
    if ref is not None:
        return is_parent_ref(ref, name, uid)
    labels = observed.labels(obj)
    if uid is not None and labels.get(observed.SELECTOR_LABEL) == uid:
        return True
    return labels.get("instance") == name and labels.get("app.kubernetes.io/managed-by") == context.MANAGED_BY


def keyed(objects: list[dict], namespace: str, groups: tuple[str, ...]) -> dict:
    """A children (or related) map as hook version v2 sends it: every group, `namespace/name` keys."""
    found: dict[str, dict] = {group: {} for group in groups}
    for obj in objects:
        name = observed.dig(obj, "metadata", "name")
        found.setdefault(group_of(obj), {})[f"{namespace_of(obj, namespace)}/{name}"] = obj
    return found


def referenced_secrets(parent: dict, live: list[dict]) -> tuple[list[dict], list[str]]:
    """(the live Secrets the customize hook would ask for, the names of those missing)."""
    namespace = parent["metadata"]["namespace"]
    wanted = spec.read_parent({"parent": parent})[3].referenced_secrets()
    have = {observed.dig(obj, "metadata", "name"): obj for obj in live
            if group_of(obj) == observed.SECRET and namespace_of(obj, namespace) == namespace}
    return [have[name] for name in wanted if name in have], [name for name in wanted if name not in have]


def sync_request(parent: dict, children: list[dict], related: list[dict],
                 groups: tuple[str, ...] = CHILD_GROUPS) -> dict:
    """The CompositeController sync request Metacontroller sends (hook version v2)."""
    namespace = parent["metadata"]["namespace"]
    return {
        "controller": {"apiVersion": "metacontroller.k8s.io/v1alpha1", "kind": "CompositeController",
                       "metadata": {"name": "dittoservers.dittofs.dittofs.com"}},
        "parent": parent,
        "children": keyed(children, namespace, groups),
        "related": keyed(related, namespace, (observed.SECRET,)) if related else {},
        "finalizing": False,
    }


@dataclass(frozen=True)
class Preview:
    parent: dict
    uid: str | None
    live_children: list[dict]
    request: dict
    response: dict


def preview(parent: dict, live: list[dict], strategy: ports.Strategy,
            groups: tuple[str, ...] = CHILD_GROUPS,
            random_token: Callable[[int], str] = secrets.random_token) -> Preview:
    """The sync request for `parent` with its children among `live`, and the hook's answer."""
    spec.check_parent(parent)   # name and namespace first, as the hook checks them
    uid = parent_uid(parent, live)
    children = [obj for obj in live if is_child(obj, parent, uid, groups)]
    ignored = sum(1 for obj in live if group_of(obj) in groups) - len(children)
    if ignored:
        note(f"{ignored} live object(s) are not children of {spec.KIND} "
             f"{parent['metadata']['namespace']}/{parent['metadata']['name']} and were left out"
             + ("" if children else " (is the namespace right? see --namespace)"))
    related, missing = referenced_secrets(parent, live)
    if live and missing:
        note(f"Secret(s) {', '.join(missing)} referenced by the spec are not among the live "
             "objects: the config hash may differ from the cluster's")
    request = sync_request(parent, children, related, groups)
    return Preview(parent, uid, children, request,
                   sync.desired_state(request, strategy=strategy, random_token=random_token))


# --------------------------------------------------------------------------- render


def render_children(children: list[dict]) -> str:
    """Multi-document YAML, `helm template` style."""
    return "".join(f"---\n# Source: {c.get('kind')}/{observed.dig(c, 'metadata', 'name')}\n{to_yaml(c)}"
                   for c in children)


# --------------------------------------------------------------------------- diff


def _item(items: Any, other: Any, text: str) -> Any:
    """The item `[text]` of a list: by its list-map key when the two versions share one (as
    `applying.diff_paths` names it), else by index."""
    if not isinstance(items, list):
        return ABSENT
    key = applying.list_map_key(items, other) if items and isinstance(other, list) and other else None
    if key is None:
        return items[int(text)] if text.isdigit() and int(text) < len(items) else ABSENT
    found = [x for x in items if applying.merge_key_string(x.get(key)) == text]
    return found[-1] if found else ABSENT


def _get(obj: Any, key: str) -> Any:
    return obj.get(key, ABSENT) if isinstance(obj, dict) else ABSENT


def values_at(old: Any, new: Any, path: str) -> tuple[Any, Any]:
    """The values at a `Change.fields` path in the live object and in the object written.
    Keys may contain dots (`metadata.annotations.dittofs.io/config-hash`): the longest key
    present that the path starts with is taken."""
    if not path:
        return old, new
    if path.startswith("["):
        text, _, rest = path[1:].partition("]")
        return values_at(_item(old, new, text), _item(new, old, text), rest.removeprefix("."))
    keys = sorted({str(k) for obj in (old, new) if isinstance(obj, dict) for k in obj}, key=len, reverse=True)
    for key in keys:
        if path == key or path.startswith((f"{key}.", f"{key}[")):
            return values_at(_get(old, key), _get(new, key), path[len(key):].removeprefix("."))
    return ABSENT, ABSENT


def _hide_last_applied(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "(last applied)" if k == applying.LAST_APPLIED else _hide_last_applied(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_last_applied(v) for v in value]
    return value


def show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(_hide_last_applied(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 1] + "…"


def field_line(kind: str, path: str, old: Any, new: Any) -> str:
    if path.endswith(applying.LAST_APPLIED):
        what = "set" if old is ABSENT else "rewritten"
        return f"{path}: {what} (Metacontroller's record of the object it applies)"
    if kind == "Secret" and re.split(r"[.\[]", path)[0] in ("data", "stringData"):
        return f"{path}: (secret value changed)"
    return f"{path}: {show(old)} → {show(new)}"


def _by_identity(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(obj.get("kind"), observed.dig(obj, "metadata", "name")): obj for obj in objects}


# Change.action as printed, in the summary's order.
WORDS = {"create": "created", "update": "updated", "delete": "deleted", "unchanged": "unchanged",
         "failed": "failed"}


def describe(changes: list[applying.Change], live: list[dict], stored: dict[tuple[str, str], dict]) -> list[str]:
    """One line per child, and under each update the fields that change with old → new
    (`stored`: each updated child as the server will store it)."""
    live_by = _by_identity(live)
    lines = []
    for change in changes:
        lines.append(f"{WORDS[change.action]:<10} {change.kind}/{change.name}")
        if change.action == "failed":   # Metacontroller skips this child on every sync
            lines += [f"    {reason}" for reason in change.fields]
        if change.action != "update":
            continue
        before, after = live_by[(change.kind, change.name)], stored[(change.kind, change.name)]
        for path in change.fields:
            lines.append("    " + field_line(change.kind, path, *values_at(before, after, path)))
    return lines


def summary(changes: list[applying.Change]) -> str:
    counts = [f"{sum(1 for c in changes if c.action == action)} {word}" for action, word in WORDS.items()]
    return ", ".join(counts) + "."


def restart_line(changes: list[applying.Change]) -> str:
    change = next((c for c in changes if c.restarts_pod), None)
    if change is None:
        return "The DittoFS pod would not restart."
    target = f"{change.kind}/{change.name}"
    reason = {"update": f"spec.template of {target} changes",
              "create": f"{target} would be created",
              "delete": f"{target} would be deleted"}[change.action]
    return f"The DittoFS pod would restart: {reason}."


def stuck_lines(result: Preview) -> list[str]:
    """What the hook's status says Metacontroller can never update (ports sharing a merge key)."""
    found = [c for c in observed.listed(result.response["status"].get("conditions"))
             if c.get("type") == STUCK_CONDITION and c.get("status") == "True"]
    return [f"Not updatable: {c['message']}" for c in found]


def changes_of(result: Preview, strategy: ports.Strategy = ports.DYNAMIC
               ) -> tuple[list[applying.Change], dict[tuple[str, str], dict]]:
    """The changes one sync would make, and each updated child as the server would store it:
    under dynamic apply, or (a first sync, `adopt`'s) Metacontroller's first server-side apply."""
    namespace, name = result.parent["metadata"]["namespace"], result.parent["metadata"]["name"]
    children = result.response["children"]
    desired = _by_identity(applying.prepare_desired(children, namespace, result.uid))
    live = _by_identity(result.live_children)
    if strategy == ports.SERVER_SIDE:
        changes = server_side.plan(result.live_children, children, namespace=namespace, parent_uid=result.uid,
                                   parent_name=name)
        write = server_side.first_apply
    else:
        changes = applying.plan(result.live_children, children, namespace=namespace, parent_uid=result.uid)
        write = applying.apply_update
    return changes, {(c.kind, c.name): write(live[(c.kind, c.name)], desired[(c.kind, c.name)])
                     for c in changes if c.action == "update"}


# --------------------------------------------------------------------------- adopt

GO_FINALIZER = layout.GO_OPERATOR_FINALIZER   # the Go operator v0.29's, on every DittoServer
# Where the Go operator's kustomize config (k8s/dittofs-operator/config/default) installs it.
GO_OPERATOR_NAMESPACE, GO_OPERATOR_DEPLOYMENT = "dittofs", "dittofs-operator-controller-manager"
GO_SECRET_SUFFIXES = ("admin-bootstrap-credentials", "operator-credentials", "jwt-secret")


@dataclass(frozen=True)
class Step:
    title: str
    commands: tuple[str, ...] = ()
    patches: tuple[dict, ...] = ()   # {kind, apiVersion, namespace, name, type, patch}
    notes: tuple[str, ...] = ()
    restarts_pod: bool = False       # a patch changes the StatefulSet's pod template


def resource_of(obj: dict) -> str:
    """`kind.group/name` as kubectl takes it (`statefulset.apps/demo`)."""
    return adoption.resource_of(str(obj.get("kind", "")), str(obj.get("apiVersion", "")), _name(obj))


def patch_of(obj: dict, kind: str, patch: Any) -> dict:
    return {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),
            "namespace": observed.dig(obj, "metadata", "namespace"),
            "name": observed.dig(obj, "metadata", "name"), "type": kind, "patch": patch}


def kubectl_patch(entry: dict, resource: str) -> str:
    return adoption.patch_command(entry["namespace"], resource, entry["type"], entry["patch"])


def labelled(obj: dict, uid: str) -> dict:
    """`obj` as it is once step 2 has run: with Metacontroller's selector label."""
    found = copy.deepcopy(obj)
    found.setdefault("metadata", {})["labels"] = {**observed.labels(found), observed.SELECTOR_LABEL: uid}
    return found


def stop_step(namespace: str, deployment: str) -> Step:
    return Step("Stop the Go operator, so that it neither writes the children nor re-adds its finalizer",
                (f"kubectl -n {namespace} scale deployment/{deployment} --replicas=0",))


def label_step(children: list[dict], uid: str) -> Step:
    patches = tuple(patch_of(c, "merge", {"metadata": {"labels": {observed.SELECTOR_LABEL: uid}}}) for c in children)
    commands = tuple(adoption.label_command(p["namespace"], c.get("kind"), c.get("apiVersion"), p["name"], uid)
                     for p, c in zip(patches, children))
    return Step("Label each child with Metacontroller's selector label: one controlled by the parent without it "
                "is released (its ownerReference removed) and never updated; one released already (the "
                "CompositeController was installed first) is adopted at the next sync once labelled; the Go "
                "operator's ownerReference names the same parent and stays",
                commands, patches)


def foreign_step(foreign: list[dict]) -> Step | None:
    """Objects of a child's name another controller owns: named, never touched."""
    if not foreign:
        return None
    notes = tuple(f"{obj.get('kind')} {observed.dig(obj, 'metadata', 'name')}: controlled by "
                  f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')}); adopt leaves it alone, and "
                  "Metacontroller cannot create this child while it exists"
                  for obj in foreign if (ref := observed.controller_of(obj)) is not None)
    return Step("Objects with a child's name that another controller owns (not touched: move them away or "
                "delete them if they are not needed)", notes=notes)


def twins_step(children: list[dict], strategy: ports.Strategy, templates: dict[str, dict] | None = None) -> Step | None:
    """Under dynamic apply, the ports two of which share a merge key (the Go operator's UDP twins
    for NFS): merged, they become two equal ports the API server refuses, so the object would
    never be updated. None when there are none, or under server-side apply (which keeps them).
    `templates`, by StatefulSet name: the pod template the first sync would write, which the
    patch then writes instead (tested against the config hash it replaces), so that the one
    restart the removed ports cause is the hand-over's only one."""
    if strategy != ports.DYNAMIC:
        return None
    found = [(obj, ops + template_ops(fixed, (templates or {}).get(_name(obj))))
             for obj in children for fixed, ops in [adoption.without_twins(obj)] if ops]
    if not found:
        return None
    entries = [(patch_of(obj, "json", ops), obj) for obj, ops in found]
    return Step("Remove the UDP port of each pair sharing dynamic apply's merge key (the Go operator's UDP "
                "twins for NFS): merged, they would be two equal ports, which the API server refuses, and the "
                "object would never be updated. A removed container port restarts the pod, so the StatefulSet's "
                "patch also writes the pod template the first sync would write: this is the hand-over's one "
                "restart. (Or run the hook and Metacontroller with server-side apply, which keeps the twins: then "
                "this step is not needed)",
                tuple(kubectl_patch(entry, resource_of(obj)) for entry, obj in entries),
                tuple(entry for entry, _ in entries), restarts_pod=any(obj.get("kind") == "StatefulSet" for obj, _ in found))


def template_ops(obj: dict, template: dict | None) -> list[dict]:
    """JSON patch operations that turn a StatefulSet's pod template into `template`, after a
    test of the config hash it holds now (so a template changed since is refused, not overwritten)."""
    if obj.get("kind") != "StatefulSet" or template is None:
        return []
    now = observed.dig(obj, "spec", "template")
    hash_now = observed.dig(now, "metadata", "annotations", statefulset.CONFIG_HASH_ANNOTATION)
    guard = [{"op": "test", "path": TEMPLATE + "/metadata/annotations/" + jsonpointer.escape(statefulset.CONFIG_HASH_ANNOTATION),
              "value": hash_now}] if hash_now else []
    return guard + [_under(op, TEMPLATE) for op in jsonpatch.make_patch(now, template)]


TEMPLATE = "/spec/template"


def _under(op: dict, prefix: str) -> dict:
    """A patch operation on a part of an object, made one on the whole object."""
    return {**op, "path": prefix + op["path"], **({"from": prefix + op["from"]} if "from" in op else {})}


def finalizer_step(parent: dict) -> Step:
    finalizers = observed.listed(observed.dig(parent, "metadata", "finalizers"))
    if GO_FINALIZER not in finalizers:
        return Step(f"The DittoServer carries no {GO_FINALIZER} finalizer: nothing to remove")
    index = finalizers.index(GO_FINALIZER)
    entry = patch_of(parent, "json", adoption.finalizer_patch(index))
    return Step("Remove the Go operator's finalizer: with the operator gone it would block deletion",
                (kubectl_patch(entry, resource_of(parent)),), (entry,))


def secrets_step(parent: dict, children: list[dict], live: list[dict]) -> Step:
    """What becomes of each Secret the Go operator made: an existing one is never called missing."""
    name, namespace = parent["metadata"]["name"], parent["metadata"]["namespace"]
    have = {observed.dig(c, "metadata", "name") for c in children if group_of(c) == observed.SECRET}
    present = {observed.dig(obj, "metadata", "name"): obj for obj in live
               if group_of(obj) == observed.SECRET and namespace_of(obj, namespace) == namespace}

    def fate(secret: str) -> str:
        if secret in have:
            return "kept as it is (labelled in step 2; the hook keeps every value it finds)"
        if secret in present:
            ref = observed.controller_of(present[secret])
            owner = f"{ref.get('kind')} {ref.get('name')}" if ref else "nobody"
            return f"exists, controlled by {owner}: not a child, left as it is (the hook cannot use it)"
        return "not found in the namespace: the hook will generate it"
    notes = tuple(f"{name}-{suffix}: {fate(f'{name}-{suffix}')}" for suffix in GO_SECRET_SUFFIXES)
    return Step("Keep the Go operator's Secrets, so that no password or JWT key changes", notes=notes)


def install_step() -> Step:
    return Step("Install the hook and the CompositeController (README, 'Run it on a cluster')",
                ("kubectl apply -k metacontroller/",))


def pod_template_fields(changes: list[applying.Change]) -> list[str]:
    return [path for c in changes if c.restarts_pod and c.action == "update"
            for path in c.fields if path.startswith("spec.template")]


def named_as_children(parent: dict, live: list[dict], groups: tuple[str, ...]) -> list[dict]:
    """Live objects in the parent's namespace, of a declared kind, named as a child of this
    parent would be (the names the Go operator and the hook give them), whoever owns them."""
    name, namespace = parent["metadata"]["name"], parent["metadata"]["namespace"]
    parsed = spec.read_parent({"parent": parent})[3]
    state = adapters.state_from_annotations(observed.dig(parent, "metadata", "annotations"))
    types = sorted({*adoption.KNOWN_ADAPTERS, *(a.type for a in state.adapters)})
    wanted = adoption.child_names(name, parsed, types)
    return [obj for obj in live if group_of(obj) in groups and namespace_of(obj, namespace) == namespace
            and observed.dig(obj, "metadata", "name") in wanted.get(group_of(obj), [])]


def handover(parent: dict, live: list[dict], strategy: ports.Strategy, groups: tuple[str, ...],
             operator: tuple[str, str]) -> tuple[list[Step], Preview, list[applying.Change], dict]:
    """The steps, and the first sync as it will find the children once they are labelled.

    Children are recognised by what they are: controlled by this parent, labelled as its
    children, or named as its children are and controlled by nobody (released: Metacontroller
    removed the ownerReference because the CompositeController came first). Those another
    controller owns are named and never touched."""
    uid = observed.dig(parent, "metadata", "uid")
    if not isinstance(uid, str) or not uid:
        raise CliError(f"the {spec.KIND} has no uid: give the live object (kubectl get dittoserver NAME -o json)")
    named = named_as_children(parent, live, groups)
    foreign = [obj for obj in named if (ref := observed.controller_of(obj)) is not None and ref.get("uid") != uid]
    released = [obj for obj in named if observed.controller_of(obj) is None]
    children = [obj for obj in live if is_child(obj, parent, uid, groups) or any(obj is r for r in released)]
    fixed = [adoption.without_twins(obj)[0] for obj in children] if strategy == ports.DYNAMIC else children
    result = first_sync(parent, live, fixed, uid, strategy, groups, originals=children)
    changes, stored = changes_of(result, strategy)
    twins = twins_step(children, strategy, {name: stored[("StatefulSet", name)]["spec"]["template"]
                                            for kind, name in stored if kind == "StatefulSet"})
    if twins:   # the StatefulSet's template is written by the patch: the first sync rolls nothing
        patched = [jsonpatch.apply_patch(obj, next((e["patch"] for e in twins.patches if e["name"] == _name(obj)
                                                    and e["kind"] == obj.get("kind")), [])) for obj in children]
        result = first_sync(parent, live, patched, uid, strategy, groups, originals=children)
        changes, stored = changes_of(result, strategy)
    steps = [stop_step(*operator), label_step(children, uid), *([twins] if twins else []), finalizer_step(parent),
             secrets_step(parent, children, live), *filter(None, [foreign_step(foreign)]), install_step()]
    return steps, result, changes, stored


def _name(obj: dict) -> str:
    return observed.dig(obj, "metadata", "name")


def first_sync(parent: dict, live: list[dict], children: list[dict], uid: str, strategy: ports.Strategy,
               groups: tuple[str, ...], originals: list[dict] | None = None) -> Preview:
    """The hook's answer to the first sync, once `children` (stand-ins for `originals`, the live
    objects they are, when given) carry the selector label."""
    originals = originals or children
    now = [labelled(children[i], uid) if (i := _index(originals, obj)) is not None else obj for obj in live]
    return preview(parent, now, strategy, groups)


def _index(items: list[dict], obj: dict) -> int | None:
    return next((i for i, item in enumerate(items) if item is obj), None)


def print_steps(steps: list[Step]) -> None:
    for number, step in enumerate(steps, 1):
        print(f"# {number}. {step.title}.")
        for note_line in step.notes:
            print(f"#    {note_line}")
        for command in step.commands:
            print(command)
        print()


def cmd_adopt(args: argparse.Namespace) -> int:
    strategy = strategy_of(args)
    parent = prepare_parent(pick_parent(read_objects(args.file), args.file), args.namespace, args.adapters)
    live = read_objects(args.observed)
    groups = tuple(g for g in CHILD_GROUPS if not (args.no_network_policies and g == observed.NETWORKPOLICY))
    try:
        steps, result, changes, stored = handover(parent, live, strategy, groups,
                                                   (args.operator_namespace, args.operator_deployment))
    except (ValueError, jsonpatch.JsonPatchException) as exc:
        raise CliError(str(exc)) from None
    restarts = pod_restarts(steps, changes, result)
    if args.format == "json":
        print(json.dumps({
            "steps": [{"title": s.title, "commands": list(s.commands), "patches": list(s.patches),
                       "notes": list(s.notes)} for s in steps],
            "firstSync": {"changes": [{"kind": c.kind, "name": c.name, "action": c.action, "fields": list(c.fields)}
                                      for c in changes],
                          "podRolls": any(c.restarts_pod for c in changes),
                          "podTemplateFields": pod_template_fields(changes)},
            "restarts": [{"when": when, "why": why} for when, why in restarts],
        }, indent=2, sort_keys=True))
        return OK
    print_steps(steps)
    print(f"# {len(steps) + 1}. What the first sync will write ({strategy}):")
    lines = describe(changes, result.live_children, stored)
    print("\n".join([*lines, "", summary(changes), *stuck_lines(result), "",
                     f"# {len(steps) + 2}. The DittoFS pod restarts {len(restarts)} time(s) in the whole hand-over:",
                     *(f"#    {n}. {when}: {why}" for n, (when, why) in enumerate(restarts, 1))]))
    return OK


def pod_restarts(steps: list[Step], changes: list[applying.Change], result: Preview) -> list[tuple[str, str]]:
    """Each restart of the DittoFS pod the hand-over causes, in order: (when, why)."""
    found = []
    for number, step in enumerate(steps, 1):
        if step.restarts_pod:
            found.append((f"at step {number}", "the StatefulSet's patch removes container ports and writes the pod "
                                               "template the first sync would write, so the first sync rolls nothing"))
    fields = pod_template_fields(changes)
    if fields:
        found.append(("at the first sync", "it writes the hook's pod template, which differs from the Go operator's "
                                           "in " + ", ".join(fields)))
    if portmapper_port(result):
        found.append(("seconds after the first sync, when the hook's discovery has polled the server",
                      "the NFS portmapper is off on a server the Go operator v0.29 ran (DittoFS refuses its request "
                      "to turn it on, 403); the hook turns it on, and DittoFS starts it only when it starts. Not if "
                      "it was turned on by hand"))
    return found


def portmapper_port(result: Preview) -> bool:
    """Whether the server the first sync describes runs NFS, so its portmapper is due."""
    sts = next((c for c in result.response["children"] if c.get("kind") == "StatefulSet"), {})
    containers = observed.listed(observed.dig(sts, "spec", "template", "spec", "containers"))
    return any(p.get("containerPort") == ports.PORTMAPPER_TARGET for c in containers if isinstance(c, dict)
               for p in observed.listed(c.get("ports")) if isinstance(p, dict))


# --------------------------------------------------------------------------- commands


def note(message: str) -> None:
    """A remark on stderr, as a YAML comment so that render's stderr stays YAML."""
    print(f"# note: {message}", file=sys.stderr)


def strategy_of(args: argparse.Namespace) -> ports.Strategy:
    """--strategy, else the server's own setting (DITTOFS_HOOK_APPLY_STRATEGY)."""
    if args.strategy:
        return args.strategy
    try:
        return settings.Settings.from_env(os.environ).apply_strategy
    except ValueError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace, strategy: ports.Strategy) -> Preview:
    """Read the files named by `args` and answer the sync request they make."""
    parent = pick_parent(read_objects(args.file), args.file)
    parent = prepare_parent(parent, args.namespace, args.adapters)
    live = read_objects(args.observed) if args.observed else []
    groups = tuple(g for g in CHILD_GROUPS if not (args.no_network_policies and g == observed.NETWORKPOLICY))
    return preview(parent, live, strategy, groups)


def cmd_render(args: argparse.Namespace) -> int:
    result = run(args, strategy_of(args))
    sys.stdout.write(render_children(result.response["children"]))
    sys.stderr.write(to_yaml({"status": result.response["status"]}))
    return OK


def cmd_diff(args: argparse.Namespace) -> int:
    strategy = strategy_of(args)
    result = run(args, strategy)
    if strategy == ports.SERVER_SIDE:
        note("the diff models Metacontroller's dynamic apply; under server-side apply the "
             "children are the same but the merge differs")
    try:
        changes, stored = changes_of(result)
    except ValueError as exc:   # duplicate live objects, or a last-applied annotation not JSON
        raise CliError(str(exc)) from None
    lines = describe(changes, result.live_children, stored)
    print("\n".join([*lines, "", summary(changes), restart_line(changes), *stuck_lines(result)]))
    return OK if all(c.action == "unchanged" for c in changes) else CHANGES


LIVE_HELP = "live objects as `kubectl get -o json|yaml` prints them (a List, or documents)"


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", metavar="FILE",
                        help="the DittoServer manifest, YAML or JSON (the first DittoServer in it)")
    common.add_argument("-n", "--namespace",
                        help=f"the DittoServer's namespace if the manifest has none ({DEFAULT_NAMESPACE})")
    common.add_argument("--adapters", type=parse_adapters, metavar="TYPE:PORT,...",
                        help="running adapters, e.g. nfs:12049,smb:12445 ('' for none); replaces "
                             f"the manifest's {adapters.ANNOTATION} annotation")
    common.add_argument("--strategy", choices=(ports.DYNAMIC, ports.SERVER_SIDE),
                        help="Metacontroller's apply strategy (default: "
                             "$DITTOFS_HOOK_APPLY_STRATEGY, else dynamic-apply)")
    common.add_argument("--no-network-policies", action="store_true",
                        help="the CompositeController declares no NetworkPolicy children")
    top = argparse.ArgumentParser(
        prog="dittofs-hooks",
        description="Preview what the sync hook does with a DittoServer, without a cluster.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    render = commands.add_parser("render", parents=[common],
                                 help="print the desired children as YAML (status on stderr)")
    render.add_argument("--observed", metavar="LIVE", help=LIVE_HELP)
    render.set_defaults(handler=cmd_render)
    diff = commands.add_parser("diff", parents=[common],
                               help="what one sync would change in the live children (exit 1 if anything)")
    diff.add_argument("--observed", metavar="LIVE", required=True, help=LIVE_HELP)
    diff.set_defaults(handler=cmd_diff)
    adopt = commands.add_parser("adopt", parents=[common],
                                help="the steps that hand a DittoServer over from the DittoFS Go operator "
                                     "v0.29 to Metacontroller, and what the first sync then writes")
    adopt.add_argument("--observed", metavar="LIVE", required=True,
                       help=LIVE_HELP + "; FILE must be the live DittoServer (it needs its uid)")
    adopt.add_argument("--format", choices=("text", "json"), default="text",
                       help="kubectl commands (text) or the patches as JSON")
    adopt.add_argument("--operator-namespace", default=GO_OPERATOR_NAMESPACE,
                       help=f"where the Go operator runs ({GO_OPERATOR_NAMESPACE})")
    adopt.add_argument("--operator-deployment", default=GO_OPERATOR_DEPLOYMENT,
                       help=f"the Go operator's Deployment ({GO_OPERATOR_DEPLOYMENT})")
    adopt.set_defaults(handler=cmd_adopt)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (argparse's usage errors included)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else FAILED
    try:
        return args.handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except errors.HookError as exc:
        where = f" (field: {exc.field})" if exc.field else ""
        print(f"error: {exc.code}: {exc.message}{where}", file=sys.stderr)
    return FAILED
