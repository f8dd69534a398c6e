"""The parent's status: what was observed, with Kubernetes-style conditions.

`lastTransitionTime` is the only clock read, and only when a condition's status changes;
otherwise it is copied from the parent's current status, so a resync never rewrites status.
"""
from datetime import datetime

from hooks.request import context, controlplane, names, observed, ports


def _time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def previous_conditions(parent: dict) -> dict[str, dict]:
    found = observed.listed(observed.dig(parent, "status", "conditions"))
    return {c["type"]: c for c in found if isinstance(c, dict) and isinstance(c.get("type"), str)}


class Conditions:
    """Builds conditions, keeping each one's transition time while its status holds."""

    def __init__(self, parent: dict, generation: int, now: datetime):
        self.previous = previous_conditions(parent)
        self.generation = generation
        self.now = now
        self.items: list[dict] = []

    def add(self, type_: str, true: bool | None, reason: str, message: str) -> None:
        status = "Unknown" if true is None else "True" if true else "False"
        before = self.previous.get(type_, {})
        since = before.get("lastTransitionTime")
        if before.get("status") != status or not isinstance(since, str):
            since = _time(self.now)
        self.items.append({"type": type_, "status": status, "reason": reason, "message": message,
                           "lastTransitionTime": since, "observedGeneration": self.generation})


def phase(desired: int, ready: int) -> str:
    if desired == 0:
        return "Stopped"
    return "Running" if ready >= desired else "Pending"


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def rollout(sts: dict | None, desired: int, ready: int) -> tuple[bool, str, str]:
    """(progressing, reason, message) from the observed StatefulSet's status."""
    if sts is None:
        return True, "Creating", "the StatefulSet does not exist yet"
    st = sts.get("status") if isinstance(sts.get("status"), dict) else {}
    stale = _int(st.get("observedGeneration")) < _int(observed.dig(sts, "metadata", "generation"))
    revision_pending = st.get("updateRevision") not in (None, st.get("currentRevision"))
    if stale or revision_pending or ready < desired:
        return True, "RollingOut", f"{ready}/{desired} replicas ready"
    return False, "Stable", f"{ready}/{desired} replicas ready"


def authenticated(ctx: context.Context) -> tuple[bool | None, str, str]:
    """The `Authenticated` condition from what the discovery hook reported of the control plane."""
    state = controlplane.read_state(observed.dig(ctx.parent, "metadata", "annotations"))
    if state is None:
        return None, "NotReported", f"the discovery hook has not reported on the control plane yet ({controlplane.STATE_ANNOTATION})"
    return state.polling, state.reason, state.message


def applied_adapters(ctx: context.Context, plan: ports.Plan) -> list[dict]:
    """Adapters in effect: from the plan when state is known, else from the kept Services."""
    if ctx.state.known:
        return [{"type": a.type, "port": a.port} for a in plan.adapters]
    found = []
    for svc in ctx.kept_adapter_children(observed.SERVICE, observed.ADAPTER_SERVICE_LABEL):
        adapter_type = observed.labels(svc).get(observed.ADAPTER_TYPE_LABEL)
        port = next((p.get("port") for p in observed.listed(observed.dig(svc, "spec", "ports"))
                     if isinstance(p, dict) and isinstance(p.get("name"), str)
                     and p["name"].startswith(names.ADAPTER_PORT_PREFIX)), None)
        if isinstance(adapter_type, str) and isinstance(port, int):
            found.append({"type": adapter_type, "port": port})
    return sorted(found, key=lambda a: (a["type"], a["port"]))


def build(ctx: context.Context, plan: ports.Plan, config_hash: str, storage_drift: str | None,
          now: datetime) -> dict:
    sts = ctx.statefulset
    desired = ctx.spec.replicas
    ready = _int(observed.dig(sts, "status", "readyReplicas"))
    available = _int(observed.dig(sts, "status", "availableReplicas"))
    generation = _int(observed.dig(ctx.parent, "metadata", "generation"))
    current = phase(desired, ready)
    conditions = Conditions(ctx.parent, generation, now)
    conditions.add("Ready", desired > 0 and ready >= desired, current, f"{ready}/{desired} replicas ready")
    conditions.add("Available", desired > 0 and available >= desired, current, f"{available}/{desired} replicas available")
    conditions.add("Progressing", *rollout(sts, desired, ready))
    conditions.add("AdaptersKnown", ctx.state.known, ctx.state.reason, ctx.state.message)
    conditions.add("Authenticated", *authenticated(ctx))
    if plan.conflicts:
        conditions.add("PortConflict", True, "PortsLeftOut", "; ".join(plan.conflicts))
    if storage_drift:
        conditions.add("StorageChangeIgnored", True, "ImmutableVolumeClaimTemplates", storage_drift)
    applied = applied_adapters(ctx, plan)
    return {
        "observedGeneration": generation,
        "replicas": desired,
        "readyReplicas": ready,
        "availableReplicas": available,
        "phase": current,
        "configHash": config_hash,
        "adapters": applied,
        # One string, because kubectl's printer columns show only the first match of a list.
        "adapterSummary": ",".join(f"{a['type']}:{a['port']}" for a in applied),
        "conditions": conditions.items,
    }
