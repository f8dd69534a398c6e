"""The `dittofs.io/adapters` annotation: the running protocol adapters DittoFS reports.

It is the sync hook's only source of adapter state. Three outcomes, never confused:
known with adapters, known and empty (remove every adapter port and Service), and unknown
(absent, malformed or more than MAX_ACTIVE adapters: keep what is observed, delete nothing).
"""
import functools
import json
from dataclasses import dataclass
from typing import Annotated, NamedTuple

import pydantic
from pydantic import Field

from hooks.request import names

ANNOTATION = "dittofs.io/adapters"
NFS = "nfs"
# DittoFS v0.29 serves two protocols (NFS, SMB); the annotation is also written by people and
# GitOps. Each active adapter is a Service (a LoadBalancer by default) and container ports: past
# this many, the annotation is taken as a mistake and the state as unknown, so nothing is added
# or deleted until it is fixed.
MAX_ACTIVE = 16


class Entry(pydantic.BaseModel):
    """One item of `GET /api/v1/adapters`; fields other than these four are ignored."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    type: Annotated[str, Field(strict=True)]
    enabled: Annotated[bool, Field(strict=True)]
    running: Annotated[bool, Field(strict=True)]
    port: Annotated[int, Field(strict=True)]


_ENTRIES = pydantic.TypeAdapter(list[Entry])


class Adapter(NamedTuple):
    """An active adapter: sanitized type and its TCP port. (A NamedTuple: ordered by type then
    port, and hashed in C, which the sync hook's caches rely on.)"""

    type: str
    port: int

    @property
    def is_nfs(self) -> bool:
        return self.type == NFS


@dataclass(frozen=True)
class State:
    known: bool
    adapters: tuple[Adapter, ...] = ()   # sorted by type; empty when unknown
    reason: str = "AnnotationValid"
    message: str = ""


def _unknown(reason: str, message: str) -> State:
    return State(known=False, reason=reason, message=message)


def parse_entries(text: str) -> list[Entry]:
    """Entries of an annotation or API body; raises ValueError when it is not the right shape."""
    try:
        return _ENTRIES.validate_json(text)
    except pydantic.ValidationError as exc:
        raise ValueError(str(exc.errors(include_url=False)[0]["msg"])) from None


def active(entries: list[Entry]) -> tuple[Adapter, ...]:
    """Enabled and running adapters keyed by sanitized type; on a shared type the lowest port wins."""
    best: dict[str, int] = {}
    for entry in entries:
        if entry.enabled and entry.running:
            key = names.sanitize(entry.type)
            best[key] = min(entry.port, best.get(key, entry.port))
    return tuple(sorted(Adapter(key, port) for key, port in best.items()))


def state_from_annotations(annotations: dict | None) -> State:
    """Adapter state from the parent's annotations."""
    if annotations is not None and not isinstance(annotations, dict):
        return _unknown("AnnotationInvalid", "metadata.annotations is not a map")
    raw = (annotations or {}).get(ANNOTATION)
    if raw is None:
        return _unknown("AnnotationMissing", f"annotation {ANNOTATION} is not set")
    if not isinstance(raw, str):
        return _unknown("AnnotationInvalid", f"annotation {ANNOTATION} is not a string")
    return state_from_text(raw)


@functools.lru_cache(maxsize=256)
def state_from_text(raw: str) -> State:
    """Adapter state from the annotation's value.

    Cached by that value: a parent carries the same annotation on every sync until its
    adapters change, and a State is immutable. (Validating and sanitizing 256 adapters costs
    more than all the rest of a sync does.)
    """
    try:
        entries = parse_entries(raw)
    except ValueError as exc:
        return _unknown("AnnotationInvalid", f"annotation {ANNOTATION} is malformed: {exc}")
    found = active(entries)
    bad = [a for a in found if not 1 <= a.port <= 65535]
    if bad:
        return _unknown("AnnotationInvalid", f"adapter {bad[0].type} has port {bad[0].port} outside 1..65535")
    if len(found) > MAX_ACTIVE:
        return _unknown("TooManyAdapters", f"annotation {ANNOTATION} has {len(found)} active adapters; at most "
                                           f"{MAX_ACTIVE} are built (DittoFS serves NFS and SMB), so adapter "
                                           "ports and Services are left as they are")
    return State(known=True, adapters=found, message=f"{len(found)} active adapter(s)")


def canonical(entries: list[Entry]) -> str:
    """The annotation value for a list of entries: reduced, sorted by sanitized type, compact.

    Ids and timestamps never reach it, so it changes only when the adapter set changes.
    """
    reduced = sorted(
        (names.sanitize(e.type), e.port, e.type, e.enabled, e.running) for e in entries
    )
    items = [
        {"type": raw_type, "enabled": enabled, "running": running, "port": port}
        for _, port, raw_type, enabled, running in reduced
    ]
    return json.dumps(items, separators=(",", ":"))
