"""The CompositeController customize hook: which related objects each sync must carry.

The Secrets that the spec references: those the pod needs feed the config hash (rotating one
rolls the pod), and the ones `/discover` hands to a running server feed `IdentityProviderReady`.
And, by name, every object a child could be (`children.adoption`): one that exists but is not
among the children (released by a hand-over, or another controller's) is named in the status
as `ChildrenNotAdopted`, with the command that lets the next sync adopt it.

Two rules of one resource are merged by Metacontroller (v4.17: `GetRelatedObjects` inserts every
rule's objects into one map per kind), so a referenced Secret and a generated one share `related`.
"""
from hooks.children import adoption
from hooks.request import adapters, spec


def related_resources(request: object) -> dict:
    name, namespace, metadata, parsed = spec.read_parent(request)
    wanted = parsed.referenced_secrets()
    found = [{"apiVersion": "v1", "resource": "secrets", "namespace": namespace, "names": wanted}] if wanted else []
    state = adapters.state_from_annotations(metadata.get("annotations"))
    controller = request.get("controller") if isinstance(request, dict) else None
    found += adoption.rules(name, namespace, parsed, [a.type for a in state.adapters], controller)
    return {"relatedResources": found}
