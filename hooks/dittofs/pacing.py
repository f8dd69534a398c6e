"""When `/discover` may call a server's DittoFS: only once its StatefulSet has a ready replica,
and after the server stopped answering, at a pace that backs off.

- Readiness comes from the StatefulSet `{name}`, which `/discover/customize` relates by name.
  Metacontroller re-runs the DecoratorController's sync when a related object changes (its
  status included: `onRelatedUpdate` enqueues every parent whose customize answer names it), so
  the first poll follows the first ready replica within one call, while the parent's own
  status changes stay ignored (`ignoreStatusChanges`). Without the StatefulSet group in
  `related` (a customize answer cached from before it related StatefulSets) readiness is not
  known, and the server is polled as before.
- Backoff lives in the annotation `dittofs.io/discovery-backoff` (`{"failures", "retryAt"}`),
  not in a worker's memory: every worker and replica reads the same request. Metacontroller
  calls the hook again right after its own annotation write (it cannot tell its writes from
  others'); before `retryAt` that call answers without a request to DittoFS and without a
  write. Once the delay reaches its cap the annotation stops changing, so a long outage writes
  nothing more. `retryAt` is a transition time, like a condition's: written only when a failure
  raises the delay.
"""
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from hooks.request import controlplane, observed

BACKOFF_ANNOTATION = "dittofs.io/discovery-backoff"
NOT_READY_RESYNC_SECONDS = 600.0   # a safety net: the StatefulSet's watch brings the first poll
MAX_BACKOFF_SECONDS = 300.0
CLOCK_SKEW_SECONDS = 2.0           # replicas' clocks and the timer's rounding: a call this early still polls
# Failures of reaching the server, which asking again soon does not fix. A refused login or a
# missing Secret is not among them: a Secret created or fixed must be tried at once.
BACKS_OFF = (controlplane.UNREACHABLE, controlplane.TLS_FAILURE, controlplane.UNEXPECTED_ANSWER)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# --- readiness -------------------------------------------------------------------------------

def statefulset(related: object, name: str, namespace: str) -> dict | None | bool:
    """The related StatefulSet `name`; None when it does not exist, False when `related` has no
    StatefulSet group at all (readiness unknown)."""
    if not isinstance(observed.dig(related, observed.STATEFULSET), dict):
        return False
    return observed.find(related, observed.STATEFULSET, name, namespace)


def not_ready(related: object, name: str, namespace: str) -> str | None:
    """Why the server cannot answer yet (the state's message), or None when it may be polled."""
    found = statefulset(related, name, namespace)
    if found is False:
        return None
    if found is None:
        return f"StatefulSet {name} does not exist yet: DittoFS is polled once a replica is ready"
    ready = observed.dig(found, "status", "readyReplicas", default=0)
    if isinstance(ready, int) and not isinstance(ready, bool) and ready >= 1:
        return None
    if observed.dig(found, "spec", "replicas", default=1) == 0:
        return f"StatefulSet {name} is scaled to 0: DittoFS is polled once a replica is ready"
    return f"StatefulSet {name} has no ready replica yet: DittoFS is polled once one is ready"


def not_ready_answer(message: str, annotations: dict) -> dict:
    """No request to DittoFS: the state says why, a backoff is forgotten (a new pod starts
    afresh), every other annotation stays as it is (Metacontroller merges annotations)."""
    found = {controlplane.STATE_ANNOTATION: controlplane.State(controlplane.NOT_READY, message).encode()}
    if BACKOFF_ANNOTATION in annotations:
        found[BACKOFF_ANNOTATION] = None
    return {"annotations": found, "attachments": [], "resyncAfterSeconds": NOT_READY_RESYNC_SECONDS}


# --- backoff ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backoff:
    failures: int
    retry_at: str   # UTC, whole seconds (TIME_FORMAT)

    def encode(self) -> str:
        return orjson.dumps({"failures": self.failures, "retryAt": self.retry_at}, option=orjson.OPT_SORT_KEYS).decode()

    def seconds_until(self, now: float) -> float:
        at = datetime.strptime(self.retry_at, TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp()
        return at - now


def read_backoff(annotations: object) -> Backoff | None:
    raw = annotations.get(BACKOFF_ANNOTATION) if isinstance(annotations, dict) else None
    try:
        found = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        return None
    failures = found.get("failures") if isinstance(found, dict) else None
    retry_at = found.get("retryAt") if isinstance(found, dict) else None
    if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1 or not isinstance(retry_at, str):
        return None
    try:
        datetime.strptime(retry_at, TIME_FORMAT)
    except ValueError:
        return None
    return Backoff(failures, retry_at)


def cap(base: float) -> float:
    return max(MAX_BACKOFF_SECONDS, base)


def delay(failures: int, base: float) -> float:
    """base, 2 base, 4 base, ... up to the cap (30 s, 60, 120, 240, 300 with the default interval)."""
    return min(base * 2 ** min(failures - 1, 16), cap(base))


def waiting(backoff: Backoff | None, now: float) -> bool:
    """Whether a call now comes before the backed-off retry (then it polls nothing)."""
    return backoff is not None and backoff.seconds_until(now) > CLOCK_SKEW_SECONDS


def after_failure(previous: Backoff | None, now: float, base: float) -> Backoff:
    """The backoff after one more failure. At the cap it stays as it was: no write per poll."""
    if previous is not None and delay(previous.failures, base) >= cap(base):
        return previous
    failures = (previous.failures if previous is not None else 0) + 1
    at = datetime.fromtimestamp(math.ceil(now + delay(failures, base)), timezone.utc)
    return Backoff(failures, at.strftime(TIME_FORMAT))


def paced(answer: dict, reason: str, previous: Backoff | None, now: float, base: float) -> dict:
    """A poll's answer with the backoff it leads to: raised after a failure to reach the
    server, removed after anything else."""
    annotations = answer["annotations"]
    if reason in BACKS_OFF:
        found = after_failure(previous, now, base)
        if found != previous:
            annotations[BACKOFF_ANNOTATION] = found.encode()
        return {**answer, "resyncAfterSeconds": delay(found.failures, base)}
    if previous is not None:
        annotations[BACKOFF_ANNOTATION] = None
    return answer


def waiting_answer(backoff: Backoff, base: float) -> dict:
    """A call before the retry (the echo of the hook's own write, or another event): nothing
    changes. The delay is the step's whole delay, not what is left of it, so the answer is a
    function of the request; Metacontroller's queue keeps the earlier of two timers."""
    return {"annotations": {}, "attachments": [], "resyncAfterSeconds": delay(backoff.failures, base)}
