"""The CompositeController sync hook: "if the world looked like this, what should it be?"

`desired_state` is a pure function of the request (plus a clock for condition transitions and
a random source for Secrets that do not exist yet): it never calls Kubernetes and keeps no
state that changes an answer, so any worker of any replica can answer any call.

`serialized_state` is the same answer as `/sync` sends it, JSON with sorted keys. It keeps the
serialized children of recent syncs by everything they depend on (`children_key`): a parent's
syncs mostly differ only in what status reads (replicas ready, the resourceVersion), and
building and serializing the children is most of a sync's work.
"""
import collections
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import orjson

from hooks.children import configmap, networkpolicies, secrets, servicemonitors, services, statefulset, status
from hooks.dittofs import config, identity
from hooks.request import adapters, caching, context, controlplane, errors, observed, ports, spec

RESYNC_AFTER_SECONDS = 0.0   # Metacontroller's watches and resyncPeriodSeconds suffice


def config_hash(config_yaml: str, related: observed.Objects, referenced: list[str], portmapper: bool = False,
                kerberos: str | None = None) -> str:
    """SHA-256 of config.yaml (less what DittoFS reads at first boot only) and the referenced
    Secrets' data, in a fixed order; whether the NFS portmapper was turned on, and the digest of
    the Kerberos settings the server was given (DittoFS reads both only when it starts, so each
    change rolls the pod once, after `/discover` made it)."""
    digest = hashlib.sha256(config_yaml.encode() + (b"\0portmapper" if portmapper else b"")
                            + (b"\0kerberos " + kerberos.encode() if kerberos else b""))
    for name in referenced:
        data = observed.dig(related.get(name), "data", default={}) or {}
        for key in sorted(data):
            digest.update(f"\0{name}\0{key}\0{data[key]}".encode())
    return digest.hexdigest()


def read_context(request: object, strategy: ports.Strategy, random_token: Callable[[int], str]) -> context.Context:
    """Validate the request and read it into a Context, or raise a 422 HookError."""
    name, namespace, metadata, parsed = spec.read_parent(request)
    return context.Context(
        name=name,
        namespace=namespace,
        parent=request["parent"],
        spec=parsed,
        state=adapters.state_from_annotations(metadata.get("annotations")),
        observed=observed.parse(request, namespace),
        strategy=strategy,
        random_token=random_token,
    )


@dataclass(frozen=True)
class Sync:
    """One request, read: what its children and its status are built from."""

    ctx: context.Context
    plan: ports.Plan
    config_yaml: str
    digest: str

    def children(self) -> list[dict]:
        ctx, plan = self.ctx, self.plan
        return [
            *secrets.build(ctx),
            configmap.build(ctx, self.config_yaml),
            *services.build(ctx, plan),
            statefulset.build(ctx, plan, self.digest),
            *networkpolicies.build(ctx, plan),
            *servicemonitors.build(ctx),
        ]

    def status(self, now: datetime | None) -> dict:
        return status.build(self.ctx, self.plan, self.digest, statefulset.storage_drift(self.ctx),
                            now or datetime.now(timezone.utc))


def read(request: object, strategy: ports.Strategy, random_token: Callable[[int], str]) -> Sync:
    ctx = read_context(request, strategy, random_token)
    plan = ports.plan(ctx.state, ctx.api_port, ctx.metrics_port,
                      statefulset.observed_container_ports(ctx.statefulset), strategy)
    config_yaml = config.render(ctx.spec)
    applied = controlplane.read_applied(observed.dig(ctx.parent, "metadata", "annotations"))
    return Sync(ctx, plan, config_yaml,
                config_hash(config.restarting(ctx.spec, config_yaml), ctx.observed.related_secrets, ctx.spec.restarting_secrets(),
                            applied.portmapper_turned_on, kerberos_in_force(ctx.spec, applied)))


def kerberos_in_force(s: spec.DittoServerSpec, applied: controlplane.Applied) -> str | None:
    """The Kerberos settings the server runs with once restarted: those `/discover` gave it
    last, else (before it gave any) the spec's, which a first boot reads from config.yaml."""
    given = applied.provider(identity.KERBEROS)
    return given.restart_digest if given is not None else identity.kerberos_restart_digest(s)


def desired_state(
    request: object,
    strategy: ports.Strategy = ports.DYNAMIC,
    now: datetime | None = None,
    random_token: Callable[[int], str] = secrets.random_token,
) -> dict:
    """The sync response: exactly `status`, `children` and `resyncAfterSeconds`."""
    found = read(request, strategy, random_token)
    children = found.children()   # first: a child's refusal (422) comes before status's work
    return {"status": found.status(now), "children": children, "resyncAfterSeconds": RESYNC_AFTER_SECONDS}


def encode(value: object) -> bytes:
    """JSON with sorted keys, so equal answers are equal bytes; a 422 for what cannot be written."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # An answer that echoes input nested past orjson's 255 levels: refuse the input (a 422
        # changes nothing in the cluster) rather than fail with a 500.
        raise errors.HookError(422, "Unencodable", "the answer cannot be written as JSON (input nested too deeply?)") from None


@dataclass(frozen=True)
class Encoded:
    """Children as JSON with sorted keys, and how many there are of each kind (for metrics)."""

    text: bytes
    kinds: tuple[tuple[str, int], ...]   # (kind, count), by kind


@dataclass(frozen=True)
class Answer:
    """A sync response as `/sync` sends it, and what its metrics and call log read."""

    body: bytes                 # orjson.dumps(desired_state(...), option=OPT_SORT_KEYS)
    kinds: tuple[tuple[str, int], ...]   # (kind, count of children of that kind), by kind
    status: dict

    @property
    def children(self) -> int:
        return sum(count for _, count in self.kinds)


# Encoded children by `children_key`, at most 32 MiB of them and their keys per worker: a few
# thousand typical parents (10 KiB of children, 1 KiB of key each).
_children: caching.Bounded[Encoded] = caching.Bounded(32 * 1024 * 1024)


def children_key(ctx: context.Context, digest: str) -> tuple | None:
    """Everything the children depend on, or None when they must be built afresh: while adapter
    state is unknown (observed objects are handed back as they are) and while a generated
    Secret does not exist yet (its value is made up)."""
    if not ctx.state.known:
        return None
    secret_values = secrets.existing_values(ctx)
    spec_text = ctx.spec.source_text
    fixed = statefulset.observed_fixed(ctx)
    # Copied into the answer as they are (and read for nothing else but their selector labels,
    # which are copied too): their JSON text is all of them that matters.
    fixed_text = b"" if fixed is None else caching.written(fixed)
    if secret_values is None or spec_text is None or fixed_text is None:
        return None
    # The spec gives config.yaml, the ports and every other field; with the adapters and the
    # strategy it gives the port plan; the digest adds the referenced Secrets.
    return (ctx.name, ctx.namespace, ctx.strategy, spec_text, ctx.state.adapters, digest,
            observed.NETWORKPOLICY in ctx.observed.groups, observed.SERVICEMONITOR in ctx.observed.groups,
            fixed_text, secret_values)


def encoded_children(found: Sync) -> Encoded:
    key = children_key(found.ctx, found.digest)
    known = _children.get(key) if key is not None else None
    if known is not None:
        return known
    built = found.children()
    kinds = collections.Counter(child["kind"] for child in built)
    encoded = Encoded(encode(built), tuple(sorted(kinds.items())))
    if key is not None:
        key_bytes = sum(len(part) for part in key if isinstance(part, (str, bytes)))
        _children.put(key, encoded, cost=len(encoded.text) + key_bytes)
    return encoded


def forget() -> None:
    """Drop every kept child (for tests and benchmarks of a first sync)."""
    _children.clear()


def serialized_state(
    request: object,
    strategy: ports.Strategy = ports.DYNAMIC,
    now: datetime | None = None,
    random_token: Callable[[int], str] = secrets.random_token,
) -> Answer:
    """`desired_state`, serialized as `encode` would, with the children of an earlier sync with
    the same inputs reused as they were written."""
    found = read(request, strategy, random_token)
    children = encoded_children(found)
    answer_status = found.status(now)
    body = encode({"status": answer_status, "children": orjson.Fragment(children.text),
                   "resyncAfterSeconds": RESYNC_AFTER_SECONDS})
    return Answer(body, children.kinds, answer_status)
