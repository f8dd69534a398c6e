"""The CompositeController customize hook: which related objects each sync must carry.

The Secrets that the spec references feed the config hash, so rotating one rolls the pod.
"""
from hooks.request import spec


def related_resources(request: object) -> dict:
    _, namespace, _, parsed = spec.read_parent(request)
    wanted = parsed.referenced_secrets()
    if not wanted:
        return {"relatedResources": []}
    return {"relatedResources": [{"apiVersion": "v1", "resource": "secrets", "namespace": namespace, "names": wanted}]}
