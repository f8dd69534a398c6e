"""The status of a declared `DittoShare`, `DittoUser` or `DittoGroup`: where it lives, and the
conditions `Synced` (DittoFS holds what the spec says; the message says what this poll changed,
or why it could not) and `Ready` (synced, and for a share, its data survives the pod).

As for the server's status, `lastTransitionTime` is the only clock read, and only when a
condition's status changes.
"""
from datetime import datetime

from hooks.children import status
from hooks.dittofs import decorate
from hooks.request import declared

EPHEMERAL_MESSAGE = "its metadata or blocks are kept in memory: they are lost whenever the pod restarts"


def build(outcome: decorate.Outcome, current: dict, now: datetime) -> dict:
    obj, result = outcome.obj, outcome.result
    generation = obj.generation or 0
    conditions = status.Conditions(current, generation, now)
    conditions.add("Synced", result.synced, result.reason, result.message)
    ready, reason, message = result.synced, result.reason, result.message
    if ready and outcome.ephemeral:
        reason, message = "Ephemeral", f"share {outcome.name} is ready; {EPHEMERAL_MESSAGE}"
    elif ready:
        message = f"{obj.kind[len('Ditto'):].lower()} {outcome.name} is in DittoFS as declared"
    conditions.add("Ready", ready, "Ready" if ready and not outcome.ephemeral else reason, message)
    found = {"observedGeneration": generation, "server": obj.spec.server, "conditions": conditions.items}
    found["shareName" if obj.kind == declared.SHARE else "name"] = outcome.name
    return found


def answer(outcome: decorate.Outcome, current: dict, now: datetime) -> dict:
    """The DecoratorController's answer: status, the attachments to keep, annotations, when to
    come back, and on deletion whether the object may go."""
    found = {"status": build(outcome, current, now), "attachments": outcome.attachments,
             "resyncAfterSeconds": outcome.resync}
    if outcome.annotations:
        found["annotations"] = outcome.annotations
    if outcome.obj.deleting:
        found["finalized"] = outcome.result.finalized
    return found


