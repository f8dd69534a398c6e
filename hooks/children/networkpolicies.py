"""NetworkPolicies that lock the DittoFS pod down to the ports it serves, as the reference
operator does: a baseline for the API (and metrics) port, and one policy per active adapter.

They are emitted only when the CompositeController declares NetworkPolicy children (the request
then carries that group): Metacontroller refuses children of a kind it was not told about.
"""
from hooks.request import context, names, observed, ports

ADAPTER_LABEL = "dittofs.io/adapter-networkpolicy"
BASELINE_LABEL = "dittofs.io/baseline-networkpolicy"   # the Go operator's, so its tooling finds it


def _policy(ctx: context.Context, name: str, allowed: list[dict], labels: dict | None = None) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": ctx.meta(name, labels),
        "spec": {
            "podSelector": {"matchLabels": ctx.selector},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": allowed}],
        },
    }


def _allow(port: int, protocol: str = "TCP") -> dict:
    return {"port": port, "protocol": protocol}


def baseline(ctx: context.Context) -> dict:
    allowed = [_allow(ctx.api_port)]
    if ctx.metrics_port is not None:
        allowed.append(_allow(ctx.metrics_port))
    return _policy(ctx, ctx.child_name("baseline"), allowed, {BASELINE_LABEL: "true"})


def adapter(ctx: context.Context, adapter_type: str, plan: ports.Plan) -> dict:
    allowed = [_allow(p.container_port, p.protocol) for p in plan.ports_of(adapter_type)]
    labels = {ADAPTER_LABEL: "true", observed.ADAPTER_TYPE_LABEL: names.label_value(adapter_type)}
    return _policy(ctx, names.adapter_resource_name(ctx.name, adapter_type), allowed, labels)


def build(ctx: context.Context, plan: ports.Plan) -> list[dict]:
    if observed.NETWORKPOLICY not in ctx.observed.groups:
        return []
    found = [baseline(ctx)]
    if ctx.state.known:
        found += [adapter(ctx, a.type, plan) for a in plan.adapters]
    else:
        found += [observed.as_last_applied(obj, ("ingress",)) for obj in ctx.kept_adapter_children(observed.NETWORKPOLICY, ADAPTER_LABEL)]
    return found
