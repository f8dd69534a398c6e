"""The ConfigMap `{p}-config` that carries DittoFS's `config.yaml` (`dittofs.config`)."""
from hooks.dittofs import config
from hooks.request import context

SUFFIX = "config"


def build(ctx: context.Context, config_yaml: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ctx.meta(ctx.child_name(SUFFIX)),
        "data": {config.FILE_NAME: config_yaml},
    }
