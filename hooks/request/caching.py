"""Caches for what a parent's syncs repeat: exact keys for JSON values, and a bounded store.

Metacontroller calls the sync hook for a parent on every change to it or its children and on
every resync; between two calls usually only status fields differ. What is derived from the
rest (the validated spec, the children) can be kept, provided the key is exact: two inputs
with the same key must give the same result, byte for byte.
"""
import math
import threading
from typing import Generic, Hashable, TypeVar

import orjson

Value = TypeVar("Value")

# orjson refuses what it could not write back (non-string keys, integers past 64 bits, lone
# surrogates) and, with these options, Python types it would write as something else
# (subclasses, dates, dataclasses).
_EXACT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def fingerprint(value: object) -> bytes | None:
    """JSON text that identifies a value parsed from JSON or YAML exactly, or None when no text
    does.

    (Values only Python code makes, such as tuples, UUIDs or enums, are written like the lists
    and strings they stand for; nothing the hook reads from a request is one.)
    """
    try:
        text = orjson.dumps(value, option=_EXACT)
    except (TypeError, orjson.JSONEncodeError):
        return None
    # orjson writes NaN and infinities (which YAML can hold, JSON cannot) as null. Requests
    # carry real nulls (`creationTimestamp: null` in every claim template), so look closer.
    if b"null" in text and _non_finite(value):
        return None
    return text


def written(value: object) -> bytes | None:
    """The JSON text of a value that goes into an answer as it is, or None when it cannot be
    written. Values that write alike answer alike, so this text is key enough for them."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _non_finite(value: object) -> bool:
    """Whether a float NaN or infinity is anywhere in a JSON-like value."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False


class Bounded(Generic[Value]):
    """A map that forgets everything once what it holds costs more than `limit` (each `put`
    says what its key and value cost, in bytes or in entries).

    Simpler than least-recently-used order, and enough: a cluster has few DittoServers, and
    refilling costs one computation per parent. Safe to share between a worker's threads.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: dict[Hashable, Value] = {}
        self.used = 0
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Value | None:
        return self.items.get(key)

    def put(self, key: Hashable, value: Value, cost: int = 1) -> None:
        if cost > self.limit:
            return
        with self.lock:
            if self.used + cost > self.limit:
                self.items.clear()
                self.used = 0
            self.items[key] = value
            self.used += cost

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.used = 0
