"""The parent's status: what was observed, with Kubernetes-style conditions.

`lastTransitionTime` is the only clock read, and only when a condition's status changes;
otherwise it is copied from the parent's current status, so a resync never rewrites status.
"""
from datetime import datetime

from hooks.children import adoption, statefulset
from hooks.dittofs import discovery, identity, layout, stores
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


def rollout(sts: dict | None, desired: int, ready: int, stranded: bool = False) -> tuple[bool, str, str]:
    """(progressing, reason, message) from the observed StatefulSet's status; `stranded`: a
    StatefulSet of its name exists that is not a child (nothing progresses until it is)."""
    if sts is None and stranded:
        return False, "NotAdopted", ("a StatefulSet of this name exists but is not this DittoServer's child, "
                                     "so it is neither created nor updated (see ChildrenNotAdopted)")
    if sts is None:
        return True, "Creating", "the StatefulSet does not exist yet"
    st = sts.get("status") if isinstance(sts.get("status"), dict) else {}
    stale = _int(st.get("observedGeneration")) < _int(observed.dig(sts, "metadata", "generation"))
    revision_pending = st.get("updateRevision") not in (None, st.get("currentRevision"))
    if stale or revision_pending or ready < desired:
        return True, "RollingOut", f"{ready}/{desired} replicas ready"
    return False, "Stable", f"{ready}/{desired} replicas ready"


def _missing(ctx: context.Context, keys: list[tuple[str, str]]) -> list[str]:
    """`Secret name, key k` for each needed key the related Secrets do not have."""
    found = []
    for secret, key in keys:
        data = observed.dig(ctx.observed.related_secrets.get(secret), "data", default=None)
        if not isinstance(data, dict):
            found.append(f"Secret {secret} is missing")
        elif key not in data:
            found.append(f"Secret {secret} has no key {key}")
    return list(dict.fromkeys(found))


def config_ready(ctx: context.Context) -> tuple[bool, str, str]:
    """Whether every Secret the pod needs exists with its keys (the kubelet would not start it)."""
    missing = _missing(ctx, statefulset.needed_secret_keys(ctx))
    if missing:
        return False, "SecretMissing", "; ".join(missing)
    return True, "ConfigValid", "config.yaml is built and every referenced Secret has the keys the pod needs"


def database_ready(ctx: context.Context) -> tuple[bool, str, str]:
    ref = ctx.spec.database.postgres_secret_ref
    if ref is None:
        return True, "SQLite", f"SQLite at {ctx.spec.database.sqlite.path}, on the control-plane volume"
    required = [(ref.name, key) for key, optional in layout.POSTGRES_KEYS if not optional]
    missing = _missing(ctx, required)
    if missing:
        return False, "PostgresSecretIncomplete", "; ".join(missing)
    return True, "PostgresSecretReady", f"PostgreSQL, connection from Secret {ref.name}"


def available_condition(desired: int, ready: int) -> tuple[bool, str, str]:
    """As the Go operator says it: a stopped server is available, else one ready replica is enough."""
    if desired == 0:
        return True, "Stopped", "the DittoServer is stopped (replicas 0)"
    if ready >= 1:
        return True, "MinimumReplicasAvailable", f"{ready}/{desired} replicas ready"
    return False, "NoReplicasAvailable", f"waiting for replicas: {ready}/{desired} ready"


def ready_condition(items: list[dict], desired: int) -> tuple[bool, str, str]:
    """The Go operator's Ready: ConfigReady, Available, not Progressing, DatabaseReady, and
    Authenticated while the server runs."""
    status = {c["type"]: c["status"] for c in items}
    wanted = {"ConfigReady": "True", "Available": "True", "Progressing": "False", "DatabaseReady": "True"}
    if desired > 0:
        wanted["Authenticated"] = "True"
    unmet = [name for name, value in wanted.items() if status.get(name) != value]
    if unmet:
        return False, "ConditionsNotMet", "not ready: " + ", ".join(unmet)
    return True, "AllConditionsMet", "the DittoServer is fully operational"


def authenticated(ctx: context.Context) -> tuple[bool | None, str, str]:
    """The `Authenticated` condition from what the discovery hook reported of the control plane."""
    state = controlplane.read_state(observed.dig(ctx.parent, "metadata", "annotations"))
    if state is None:
        return None, "NotReported", f"the discovery hook has not reported on the control plane yet ({controlplane.STATE_ANNOTATION})"
    # Not polled while no replica is ready: whether it would authenticate is not known.
    return None if state.reason == controlplane.NOT_READY else state.polling, state.reason, state.message


def stores_ready(ctx: context.Context) -> tuple[bool | None, str, str] | None:
    """`StoresReady` when the spec declares stores: whether `/discover` has made each of them as
    the spec (and its Secrets' versions) now says, and which keep their data in memory."""
    wanted = stores.wanted(ctx.spec.stores, stores.statefulset_claims(ctx.statefulset))
    if not wanted:
        return None
    made = dict(controlplane.read_applied(observed.dig(ctx.parent, "metadata", "annotations")).stores)
    pending = []
    for want in wanted:
        secret = ctx.observed.related_secrets.get(want.secret) if want.secret else None
        if made.get(want.key) != want.digest(discovery.secret_digest(secret) if secret is not None else None):
            pending.append(want.key)
    if pending:
        return None, "Applying", (f"the discovery hook has not made {', '.join(pending)} yet (it does once the server "
                                  "answers; the Authenticated condition says what waits)")
    ephemeral = ctx.spec.stores.ephemeral()
    if ephemeral:
        return True, "Ephemeral", (f"every store is made; {', '.join(ephemeral)} keep their data in memory: it is lost "
                                   "whenever the pod restarts")
    return True, "StoresMade", f"every store is made: {', '.join(want.key for want in wanted)}"


def identity_providers(ctx: context.Context) -> tuple[bool | None, str, str] | None:
    """`IdentityProviderReady` when the spec sets a provider: whether `/discover` has given the
    running server this spec's settings, and what DittoFS said of them (its LDAP test dials and
    binds). None when the spec sets none."""
    applied = controlplane.read_applied(observed.dig(ctx.parent, "metadata", "annotations"))
    failed, pending, done = [], [], []
    for want in identity.wanted(ctx.spec, ctx.observed.related_secrets, {}):
        given = applied.provider(want.provider)
        if given is None or given.digest != want.digest:
            pending.append(want.provider)
        elif not given.ok:
            failed.append(f"{want.provider}: {given.stage + ': ' if given.stage else ''}{given.message}")
        else:
            done.append(f"{want.provider}: {given.message}")
    if failed:
        return False, "ProviderFailed", "; ".join(failed)
    if pending:
        return None, "Applying", (f"the discovery hook has not given the server this spec's {' and '.join(pending)} "
                                  "settings yet (it does once the server answers and admin credentials work)")
    return (True, "ProvidersApplied", "; ".join(done)) if done else None


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


def twin_ports_message(ctx: context.Context, twins: list[str]) -> str:
    fixes = [f"fix: {adoption.patch_command(ctx.namespace, adoption.resource_of(kind, api_version, name), 'json', ops)}"
             for group, api_version, _ in adoption.KINDS if group in (observed.STATEFULSET, observed.SERVICE)
             for name, obj in sorted(ctx.observed.of(group).by_name.items())
             for kind in [group.partition(".")[0]] if (ops := adoption.without_twins(obj)[1])]
    return ("; ".join(twins) + ": dynamic apply merges ports by number alone and cannot update these "
            "objects again. Remove the UDP port of each pair (a removed container port restarts the pod): "
            + "; ".join(fixes) + "; or run the CompositeController with server-side apply and the hook with "
            "DITTOFS_HOOK_APPLY_STRATEGY=server-side-apply")


def stranded_children(ctx: context.Context, plan: ports.Plan) -> list[adoption.Stranded]:
    """Objects named as the children this sync wants that Metacontroller will not adopt."""
    uid = observed.dig(ctx.parent, "metadata", "uid")
    if not isinstance(uid, str) or not uid:
        return []
    types = [a.type for a in plan.adapters] if ctx.state.known else []
    return adoption.stranded(ctx.observed, adoption.child_names(ctx.name, ctx.spec, types), ctx.namespace, uid,
                             ctx.strategy)


def not_adopted_message(found: list[adoption.Stranded]) -> str:
    return ("Metacontroller fails `already exists` creating these children and never updates them: "
            + "; ".join(item.line() for item in found)
            + ". (python -m hooks adopt prints every step of a hand-over)")


def finalizer_message(command: str) -> str:
    return (f"the Go operator's finalizer {layout.GO_OPERATOR_FINALIZER} is still on this DittoServer: with the "
            "operator stopped nothing removes it, and deleting the DittoServer would hang (stop the operator first: "
            f"while it runs it writes these children too and puts the finalizer back); fix: {command}")


def build(ctx: context.Context, plan: ports.Plan, config_hash: str, storage_drift: str | None,
          now: datetime) -> dict:
    sts = ctx.statefulset
    desired = ctx.spec.replicas
    ready = _int(observed.dig(sts, "status", "readyReplicas"))
    available = _int(observed.dig(sts, "status", "availableReplicas"))
    generation = _int(observed.dig(ctx.parent, "metadata", "generation"))
    current = phase(desired, ready)
    conditions = Conditions(ctx.parent, generation, now)
    conditions.add("ConfigReady", *config_ready(ctx))
    conditions.add("DatabaseReady", *database_ready(ctx))
    conditions.add("Available", *available_condition(desired, ready))
    stranded = stranded_children(ctx, plan)
    conditions.add("Progressing", *rollout(sts, desired, ready, any(s.kind == "StatefulSet" for s in stranded)))
    conditions.add("AdaptersKnown", ctx.state.known, ctx.state.reason, ctx.state.message)
    conditions.add("Authenticated", *authenticated(ctx))
    conditions.add("Ready", *ready_condition(conditions.items, desired))
    providers = identity_providers(ctx)
    if providers is not None:
        conditions.add("IdentityProviderReady", *providers)
    made = stores_ready(ctx)
    if made is not None:
        conditions.add("StoresReady", *made)
    if plan.conflicts:
        conditions.add("PortConflict", True, "PortsLeftOut", "; ".join(plan.conflicts))
    if storage_drift:
        conditions.add("StorageChangeIgnored", True, "ImmutableVolumeClaimTemplates", storage_drift)
    if stranded:
        conditions.add("ChildrenNotAdopted", True, "NotClaimed", not_adopted_message(stranded))
    finalizer = adoption.go_finalizer_command(ctx.parent, ctx.namespace, ctx.name)
    if finalizer is not None:
        conditions.add("FinalizerLeftOver", True, "GoOperatorFinalizer", finalizer_message(finalizer))
    twins = observed.twin_ports(ctx.observed) if ctx.strategy == ports.DYNAMIC else []
    if twins:
        conditions.add("ChildrenNotUpdatable", True, "PortsShareAMergeKey", twin_ports_message(ctx, twins))
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
        **undeclared(ctx),
    }


def undeclared(ctx: context.Context) -> dict:
    """`undeclared`: what DittoFS holds that no DittoShare, DittoUser or DittoGroup declares, as
    `/discover` last counted it (only for a server that something declared names)."""
    found = controlplane.read_undeclared(observed.dig(ctx.parent, "metadata", "annotations"))
    return {"undeclared": found.status()} if found is not None else {}
