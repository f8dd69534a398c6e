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
