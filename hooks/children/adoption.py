"""The objects the children would be, by name, and those of them Metacontroller will not adopt.

The customize hook relates, by name, every object a child of this parent could be (`rules`), so
the sync request carries such an object even when Metacontroller's claim does not count it among
the children: left unowned or unlabelled by a hand-over from the Go operator (Metacontroller
released it), or controlled by another controller. Metacontroller then fails `already exists`
on every sync, and nothing else says why. `not_adopted` names each such object of a child the
hook wants, with the one command that lets the next sync adopt it in place.
"""
import json
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


def stranded(found: observed.Observed, wanted: dict[str, list[str]], namespace: str, uid: str) -> list[Stranded]:
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
                                None if owned_elsewhere else label_command(namespace, kind, api_version, name, uid)))
    return out


def go_finalizer_command(parent: dict, namespace: str, name: str) -> str | None:
    """The command that removes the Go operator's finalizer from the parent, or None without it."""
    finalizers = observed.listed(observed.dig(parent, "metadata", "finalizers"))
    if layout.GO_OPERATOR_FINALIZER not in finalizers:
        return None
    index = finalizers.index(layout.GO_OPERATOR_FINALIZER)
    return (f"kubectl -n {namespace} patch {spec.KIND.lower()}.{spec.GROUP}/{name} --type=json "
            f"-p '{json.dumps(finalizer_patch(index), separators=(',', ':'))}'")


def finalizer_patch(index: int) -> list[dict]:
    """The JSON patch that removes the Go operator's finalizer at `index` (tested first, so a
    changed list refuses it)."""
    return [{"op": "test", "path": f"/metadata/finalizers/{index}", "value": layout.GO_OPERATOR_FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"}]
