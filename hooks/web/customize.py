"""The CompositeController customize hook: which related objects each sync must carry.

The Secrets that the spec references: those the pod needs feed the config hash (rotating one
rolls the pod), and the ones `/discover` hands to a running server feed `IdentityProviderReady`.
"""
from hooks.request import spec


def related_resources(request: object) -> dict:
    _, namespace, _, parsed = spec.read_parent(request)
    wanted = parsed.referenced_secrets()
    if not wanted:
        return {"relatedResources": []}
    return {"relatedResources": [{"apiVersion": "v1", "resource": "secrets", "namespace": namespace, "names": wanted}]}
