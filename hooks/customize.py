"""The CompositeController customize hook: which related objects each sync must carry.

The Secrets that the spec references feed the config hash, so rotating one rolls the pod.
"""
from hooks import errors, spec


def related_resources(request: object) -> dict:
    if not isinstance(request, dict):
        raise errors.HookError(400, "InvalidJSON", "request body must be a JSON object")
    parent = request.get("parent")
    _, namespace, _ = spec.check_parent(parent)
    wanted = spec.parse_spec(parent.get("spec")).referenced_secrets()
    if not wanted:
        return {"relatedResources": []}
    return {"relatedResources": [{"apiVersion": "v1", "resource": "secrets", "namespace": namespace, "names": wanted}]}
