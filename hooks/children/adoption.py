"""The objects the children would be, by name, and those of them Metacontroller will not adopt.

The customize hook relates, by name, every object a child of this parent could be (`rules`), so
the sync request carries such an object even when Metacontroller's claim does not count it among
the children: left unowned or unlabelled by a hand-over from the Go operator (Metacontroller
released it), or controlled by another controller. Metacontroller then fails `already exists`
on every sync, and nothing else says why. `stranded` names each such object of a child the
hook wants, with the command that lets the next sync adopt it in place: its label and, under
dynamic apply, the patch that removes the Go operator's UDP twin ports (`without_twins`), which
dynamic apply would merge into two equal ports the API server refuses.
"""
import copy
import json
import shlex
from dataclasses import dataclass

from hooks.children import configmap, secrets
from hooks.dittofs import layout
from hooks.request import adapters, names, observed, ports, spec

# (children group, apiVersion, resource) of each kind whose objects are related by name. Not
# ServiceMonitor: a related rule for a resource the cluster does not serve fails every sync.
KINDS = (
    (observed.STATEFULSET, "apps/v1", "statefulsets"),
    (observed.CONFIGMAP, "v1", "configmaps"),
    (observed.SERVICE, "v1", "services"),
    (observed.SECRET, "v1", "secrets"),
    (observed.NETWORKPOLICY, "networking.k8s.io/v1", "networkpolicies"),
)
# The adapters DittoFS v0.29 serves: their children are related whether or not they run now (the
# customize answer is kept per parent generation, and adapters change without one).
KNOWN_ADAPTERS = (adapters.NFS, ports.SMB)


def child_names(name: str, s: spec.DittoServerSpec, adapter_types: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Children group -> the names of the children this spec gives, with these adapters."""
    adapter_names = sorted({names.adapter_resource_name(name, t) for t in adapter_types})
    services = [f"{name}-headless", f"{name}-api", *([f"{name}-metrics"] if s.metrics.enabled else [])]
    return {
        observed.STATEFULSET: [name],
        observed.CONFIGMAP: [f"{name}-{configmap.SUFFIX}"],
        observed.SERVICE: sorted([*services, *adapter_names]),
        observed.SECRET: sorted(f"{name}-{suffix}" for suffix in secrets.generated_suffixes(s)),
        observed.NETWORKPOLICY: sorted([f"{name}-baseline", *adapter_names]),
    }


def declared_groups(controller: object) -> set[str] | None:
    """The children groups a CompositeController declares (`Kind.apiVersion` is not known from a
    resource name, so by resource), or None when the request does not say."""
    rules = observed.dig(controller, "spec", "childResources")
    if not isinstance(rules, list):
        return None
    declared = {(r.get("apiVersion"), r.get("resource")) for r in rules if isinstance(r, dict)}
    return {group for group, api_version, resource in KINDS if (api_version, resource) in declared}


def rules(name: str, namespace: str, s: spec.DittoServerSpec, adapter_types: list[str],
          controller: object = None) -> list[dict]:
    """Related resource rules for every object a child could be, by name, in the parent's namespace."""
    wanted = child_names(name, s, sorted({*KNOWN_ADAPTERS, *adapter_types}))
    declared = declared_groups(controller)
    return [{"apiVersion": api_version, "resource": resource, "namespace": namespace, "names": wanted[group]}
            for group, api_version, resource in KINDS if declared is None or group in declared]


@dataclass(frozen=True)
class Stranded:
    """A live object with a child's name that Metacontroller's claim will not adopt."""

    kind: str
    api_version: str
    name: str
    why: str
    command: str | None   # what lets the next sync adopt it; None when another controller owns it

    def line(self) -> str:
        fix = f"fix: {self.command}" if self.command else "Metacontroller never takes it: remove it or its owner"
        return f"{self.kind} {self.name} ({self.why}; {fix})"


def resource_of(kind: str, api_version: str, name: str) -> str:
    """`kind.group/name` as kubectl takes it (`statefulset.apps/demo`)."""
    group = api_version.rpartition("/")[0]
    return f"{kind.lower()}{'.' + group if group else ''}/{name}"


def label_command(namespace: str, kind: str, api_version: str, name: str, uid: str) -> str:
    return (f"kubectl -n {namespace} label --overwrite {resource_of(kind, api_version, name)} "
            f"{observed.SELECTOR_LABEL}={uid}")


def patch_command(namespace: str, resource: str, patch_type: str, patch: object) -> str:
    """`kubectl patch` of one object, its patch quoted for the shell."""
    text = json.dumps(patch, separators=(",", ":"))
    return f"kubectl -n {namespace} patch {resource} --type={patch_type} -p {shlex.quote(text)}"


def fix_command(namespace: str, kind: str, api_version: str, obj: dict, uid: str, strategy: ports.Strategy) -> str:
    """The label command; under dynamic apply, then the patch that removes the Go operator's UDP
    twin ports, which dynamic apply would merge into two equal ports the API server refuses."""
    name = observed.dig(obj, "metadata", "name")
    command = label_command(namespace, kind, api_version, name, uid)
    ops = without_twins(obj)[1] if strategy == ports.DYNAMIC else []
    return command + (f" && {patch_command(namespace, resource_of(kind, api_version, name), 'json', ops)}" if ops else "")


def port_lists(obj: dict) -> list[tuple[str, list, str]]:
    """(JSON pointer, items, dynamic apply's merge key) of each port list of a child."""
    if obj.get("kind") == "StatefulSet":
        containers = observed.listed(observed.dig(obj, "spec", "template", "spec", "containers"))
        return [(f"/spec/template/spec/containers/{i}/ports", observed.listed(c.get("ports")), "containerPort")
                for i, c in enumerate(containers) if isinstance(c, dict)]
    if obj.get("kind") == "Service":
        return [("/spec/ports", observed.listed(observed.dig(obj, "spec", "ports")), "port")]
    return []


def twins_to_remove(items: list, key: str) -> list[int]:
    """Indices of the ports to remove so that no two share `key`: of each pair the UDP one
    (the Go operator's NFS twins; the hook writes TCP under dynamic apply), else all but the first."""
    doomed = []
    for indices in observed.sharing_a_key(items, key).values():
        udp = [i for i in indices if items[i].get("protocol") == "UDP"]
        doomed += udp if 0 < len(udp) < len(indices) else indices[1:]
    return sorted(doomed, reverse=True)   # removed from the end, so each index still holds


def without_twins(obj: dict) -> tuple[dict, list[dict]]:
    """`obj` without its twin ports, and the JSON patch that makes it so (each removal tested
    against the whole port, named or not, so a changed object refuses the patch)."""
    found, ops = copy.deepcopy(obj), []
    for (path, items, key), (_, kept, _) in zip(port_lists(obj), port_lists(found)):
        for index in twins_to_remove(items, key):
            ops += [{"op": "test", "path": f"{path}/{index}", "value": items[index]},
                    {"op": "remove", "path": f"{path}/{index}"}]
            del kept[index]
    return found, ops


def stranded(found: observed.Observed, wanted: dict[str, list[str]], namespace: str, uid: str,
             strategy: ports.Strategy = ports.DYNAMIC) -> list[Stranded]:
    """Objects named as a wanted child, related but not among the children, that the claim will
    not make children, by kind and name."""
    out = []
    for group, api_version, _ in KINDS:
        if group not in found.groups:
            continue   # not a child kind of this controller: never created, never in the way
        children, related = found.of(group), found.related_of(group)
        for name in sorted(wanted.get(group, [])):
            obj = related.get(name)
            if obj is None or children.get(name) is not None:
                continue
            why = observed.not_claimable(obj, uid)
            if why is None:
                continue   # adopted at the next claim
            kind = group.partition(".")[0]
            owned_elsewhere = why.startswith("controlled by")
            out.append(Stranded(kind, api_version, name, why,
                                None if owned_elsewhere else fix_command(namespace, kind, api_version, obj, uid, strategy)))
    return out


def go_finalizer_command(parent: dict, namespace: str, name: str) -> str | None:
    """The command that removes the Go operator's finalizer from the parent, or None without it."""
    finalizers = observed.listed(observed.dig(parent, "metadata", "finalizers"))
    if layout.GO_OPERATOR_FINALIZER not in finalizers:
        return None
    index = finalizers.index(layout.GO_OPERATOR_FINALIZER)
    return patch_command(namespace, f"{spec.KIND.lower()}.{spec.GROUP}/{name}", "json", finalizer_patch(index))


def finalizer_patch(index: int) -> list[dict]:
    """The JSON patch that removes the Go operator's finalizer at `index` (tested first, so a
    changed list refuses it)."""
    return [{"op": "test", "path": f"/metadata/finalizers/{index}", "value": layout.GO_OPERATOR_FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"}]
