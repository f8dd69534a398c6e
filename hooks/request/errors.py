"""The one error type the core raises for bad input, and how it maps to an HTTP answer.

A hook must never answer 200 to input it cannot act on safely: Metacontroller deletes every
observed child missing from a 200 answer. Every refusal is therefore a `HookError`, turned into
a 4xx JSON body by the app, which makes Metacontroller retry later and change nothing.
"""
from dataclasses import dataclass


@dataclass
class HookError(Exception):
    status: int
    code: str
    message: str
    field: str | None = None

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def invalid(message: str, field: str | None = None, code: str = "InvalidRequest") -> HookError:
    """422: the request is JSON but cannot yield a safe desired state."""
    return HookError(422, code, message, field)


def from_validation(exc, field: str) -> HookError:
    """A 422 naming the first field a pydantic model refused, under `field`. A rule of ours
    says it all; pydantic's "Value error, " prefix says nothing more."""
    first = exc.errors(include_url=False)[0]
    path = ".".join([field, *(str(part) for part in first["loc"])])
    message = str(first["ctx"]["error"]) if first["type"] == "value_error" else first["msg"]
    return invalid(message, path, "InvalidSpec")


def checked_object(found: object, key: str, kind: str, group: str, code: str) -> dict:
    """The metadata of the `group` `kind` object at `request[key]`, or a 422 naming what is
    wrong (`code` for a missing object or metadata)."""
    if not isinstance(found, dict):
        raise invalid(f"request has no {key} object", key, code.replace("Invalid", "Missing"))
    api_version = found.get("apiVersion")
    if found.get("kind") != kind or not isinstance(api_version, str) or not api_version.startswith(group + "/"):
        raise invalid(f"{key} must be a {group} {kind}", f"{key}.kind", "WrongKind")
    metadata = found.get("metadata")
    if not isinstance(metadata, dict):
        raise invalid(f"{key} has no metadata", f"{key}.metadata", code)
    return metadata
