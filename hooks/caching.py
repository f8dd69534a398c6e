"""Caches for what a parent's syncs repeat: exact keys for JSON values, and a bounded store.

Metacontroller calls the sync hook for a parent on every change to it or its children and on
every resync; between two calls usually only status fields differ. What is derived from the
rest (the validated spec, the children) can be kept, provided the key is exact: two inputs
with the same key must give the same result, byte for byte.
"""
import threading
from typing import Callable, Generic, Hashable, TypeVar

import orjson

Value = TypeVar("Value")

# orjson refuses what it could not write back (non-string keys, integers past 64 bits, lone
# surrogates) and, with these options, Python types it would write as something else
# (subclasses, dates, dataclasses).
_EXACT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def fingerprint(value: object, option: int = 0) -> bytes | None:
    """JSON text that identifies a JSON value exactly, or None when no text does.

    NaN and infinities would be written as null, so text with a null is never a fingerprint
    (a false refusal costs a cache miss, never a wrong answer). `option`: more orjson options,
    such as OPT_SORT_KEYS.
    """
    try:
        text = orjson.dumps(value, option=_EXACT | option)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return None if b"null" in text else text


class Bounded(Generic[Value]):
    """A map that forgets everything once its values outgrow `limit` (counted by `size`).

    Simpler than least-recently-used order, and enough: a cluster has few DittoServers, and
    refilling costs one computation per parent. Safe to share between a worker's threads.
    """

    def __init__(self, limit: int, size: Callable[[Value], int] = lambda _value: 1) -> None:
        self.limit = limit
        self.size = size
        self.items: dict[Hashable, Value] = {}
        self.used = 0
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Value | None:
        return self.items.get(key)

    def put(self, key: Hashable, value: Value) -> None:
        cost = self.size(value)
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
