"""The CompositeController sync hook: "if the world looked like this, what should it be?"

`desired_state` is a pure function of the request (plus a clock for condition transitions and
a random source for Secrets that do not exist yet): it never calls Kubernetes and keeps no
state, so any worker of any replica can answer any call.
"""
import hashlib
from datetime import datetime, timezone
from typing import Callable

from hooks import (adapters, configmap, context, networkpolicies, observed, ports, secrets,
                   services, spec, statefulset, status)

RESYNC_AFTER_SECONDS = 0.0   # Metacontroller's watches and resyncPeriodSeconds suffice


def config_hash(config_yaml: str, related: observed.Objects, referenced: list[str]) -> str:
    """SHA-256 of config.yaml and the referenced Secrets' data, in a fixed order."""
    digest = hashlib.sha256(config_yaml.encode())
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


def desired_state(
    request: object,
    strategy: ports.Strategy = ports.DYNAMIC,
    now: datetime | None = None,
    random_token: Callable[[int], str] = secrets.random_token,
) -> dict:
    """The sync response: exactly `status`, `children` and `resyncAfterSeconds`."""
    ctx = read_context(request, strategy, random_token)
    plan = ports.plan(ctx.state, ctx.api_port, ctx.metrics_port,
                      statefulset.observed_container_ports(ctx.statefulset), strategy)
    config_yaml = configmap.render(ctx.spec)
    digest = config_hash(config_yaml, ctx.observed.related_secrets, ctx.spec.referenced_secrets())
    children = [
        *secrets.build(ctx),
        configmap.build(ctx, config_yaml),
        *services.build(ctx, plan),
        statefulset.build(ctx, plan, digest),
        *networkpolicies.build(ctx, plan),
    ]
    return {
        "status": status.build(ctx, plan, digest, statefulset.storage_drift(ctx),
                               now or datetime.now(timezone.utc)),
        "children": children,
        "resyncAfterSeconds": RESYNC_AFTER_SECONDS,
    }
