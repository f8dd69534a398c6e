"""Services: headless (StatefulSet DNS), API, metrics, and one per active protocol adapter.

While adapter state is unknown the observed adapter Services are returned as they were last
applied, so Metacontroller neither deletes nor rewrites them.
"""
from hooks.request import context, names, observed, ports

def _tcp(name: str, port: int) -> dict:
    return {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}


def _service(ctx: context.Context, name: str, spec: dict, labels=None, annotations=None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.meta(name, labels, annotations),
        "spec": {"selector": ctx.selector, **spec},
    }


def headless(ctx: context.Context) -> dict:
    # publishNotReadyAddresses: the pod's DNS name must resolve before it is Ready, so that
    # the readiness probe's dependencies (and an operator debugging a stuck start) can reach it.
    return _service(ctx, ctx.child_name("headless"), {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "ports": [_tcp("api", ctx.api_port)],
    })


def api(ctx: context.Context) -> dict:
    svc = ctx.spec.service
    return _service(ctx, ctx.child_name("api"), {"type": svc.type, "ports": [_tcp("api", ctx.api_port)]},
                    annotations=svc.annotations)


METRICS_SERVICE_LABEL = "dittofs.io/metrics-service"


def metrics(ctx: context.Context) -> dict:
    """The metrics Service, with the prometheus.io annotations that annotation-based scrape
    discovery reads (as the Go operator writes them)."""
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(ctx.metrics_port),
              "prometheus.io/path": ctx.spec.metrics.path}
    return _service(ctx, ctx.child_name("metrics"), {"type": "ClusterIP", "ports": [_tcp("metrics", ctx.metrics_port)]},
                    labels={METRICS_SERVICE_LABEL: "true"}, annotations=scrape)


def adapter_labels(sanitized: str) -> dict:
    return {observed.ADAPTER_SERVICE_LABEL: "true", observed.ADAPTER_TYPE_LABEL: names.label_value(sanitized)}


def adapter(ctx: context.Context, adapter_type: str, plan: ports.Plan) -> dict:
    svc = ctx.spec.adapter_services
    return _service(
        ctx,
        names.adapter_resource_name(ctx.name, adapter_type),
        {"type": svc.type, "ports": ports.service_ports(plan.ports_of(adapter_type), ctx.strategy)},
        labels=adapter_labels(adapter_type),
        annotations=svc.annotations,
    )


def build(ctx: context.Context, plan: ports.Plan) -> list[dict]:
    found = [headless(ctx), api(ctx)]
    if ctx.metrics_port is not None:
        found.append(metrics(ctx))
    if ctx.state.known:
        found += [adapter(ctx, a.type, plan) for a in plan.adapters]
    else:
        found += [observed.as_last_applied(obj, ("ports",)) for obj in ctx.kept_adapter_children(observed.SERVICE, observed.ADAPTER_SERVICE_LABEL)]
    return found
