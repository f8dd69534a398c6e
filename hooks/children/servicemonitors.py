"""The prometheus-operator ServiceMonitor for the metrics Service, as the Go operator builds it.

Emitted only when the CompositeController declares the kind (the request then carries its
group) and `metrics.serviceMonitor.enabled`: on a cluster without prometheus-operator the kind
does not exist, and Metacontroller refuses children of a kind it was not told about.
"""
from hooks.children import services
from hooks.request import context, observed


def build(ctx: context.Context) -> list[dict]:
    metrics = ctx.spec.metrics
    if observed.SERVICEMONITOR not in ctx.observed.groups or not metrics.enabled or not metrics.service_monitor.enabled:
        return []
    endpoint: dict = {"port": "metrics", "path": metrics.path}
    if metrics.service_monitor.interval:
        endpoint["interval"] = metrics.service_monitor.interval
    if metrics.bearer_token_secret is not None:
        ref = metrics.bearer_token_secret
        endpoint["bearerTokenSecret"] = {"name": ref.name, "key": ref.key}
    # The user's labels first, then the hook's: a user label cannot take the selector's keys.
    labels = {**metrics.service_monitor.labels, services.METRICS_SERVICE_LABEL: "true"}
    meta = ctx.meta(ctx.child_name("metrics"))
    meta["labels"] = {**labels, **meta["labels"]}
    return [{
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {**ctx.selector, services.METRICS_SERVICE_LABEL: "true"}},
            "namespaceSelector": {"matchNames": [ctx.namespace]},
            "endpoints": [endpoint],
        },
    }]
