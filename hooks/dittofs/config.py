"""DittoFS's own configuration file, `config.yaml`: the keys one DittoFS version reads.

Secrets never go in here; they reach DittoFS through environment variables.
"""
import functools

import orjson
import yaml

from hooks.dittofs import identity, layout
from hooks.request import spec

FILE_NAME = "config.yaml"
# libyaml's dumper is about ten times faster than PyYAML's pure-Python one and writes the same
# bytes for this document (plain scalars, block style, sorted keys).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# Both default to 127.0.0.1 in DittoFS itself: a pod must listen on its own address.
LISTEN_HOST = "0.0.0.0"
SHUTDOWN_TIMEOUT = "30s"   # per shutdown stage; terminationGracePeriodSeconds covers three


def document(s: spec.DittoServerSpec, seeds: bool = True) -> dict:
    """The config tree for a spec. Only keys DittoFS v0.29.0 reads: it warns about any other.

    Postgres is chosen here; its connection comes from the environment (layout.POSTGRES_KEYS),
    which DittoFS reads for every key of the file. `seeds`: with the identity-provider blocks,
    which DittoFS reads at first boot only (`dittofs.identity`).
    """
    database: dict = {"type": "postgres"} if s.database.uses_postgres else {
        "type": "sqlite", "sqlite": {"path": s.database.sqlite.path},
    }
    # Metrics off: no `metrics:` block, as the Go operator writes it (DittoFS's metrics are off
    # unless the file turns them on; tests/test_dittofs_real.py checks it on the real server).
    metrics: dict = {}
    if s.metrics.enabled:
        metrics = {"metrics": {"enabled": True, "host": LISTEN_HOST, "port": s.metrics.port,
                               "path": s.metrics.path, "auth": "none"}}
        if s.metrics.bearer_token_secret is not None:   # `none` and `token` are all DittoFS accepts
            metrics["metrics"].update(auth="token", token_file=f"{layout.METRICS_TOKEN_DIR}/{layout.METRICS_TOKEN_FILE}")
    controlplane: dict = {
        "host": LISTEN_HOST,
        "port": s.control_plane.port,
        "jwt": {
            "access_token_duration": s.identity.jwt.access_token_duration,
            "refresh_token_duration": s.identity.jwt.refresh_token_duration,
        },
    }
    if s.control_plane.native_tls:
        controlplane["tls"] = {"cert_file": f"{layout.TLS_DIR}/{layout.TLS_CERT_KEY}",
                               "key_file": f"{layout.TLS_DIR}/{layout.TLS_KEY_KEY}"}
        if s.control_plane.mutual_tls:
            controlplane["tls"]["client_ca"] = f"{layout.CLIENT_CA_DIR}/{layout.CA_KEY}"
    return {
        "logging": {"level": s.logging.level, "format": s.logging.format, "output": s.logging.output},
        "shutdown_timeout": SHUTDOWN_TIMEOUT,
        "database": database,
        **metrics,
        "controlplane": controlplane,
        "admin": {"username": s.identity.admin.username},
        **(identity.blocks(s) if seeds else {}),
    }


def render(s: spec.DittoServerSpec, seeds: bool = True) -> str:
    """config.yaml for a spec, cached by a fingerprint of the fields the document reads."""
    return _dump(orjson.dumps(document(s, seeds), option=orjson.OPT_SORT_KEYS))


def restarting(s: spec.DittoServerSpec, rendered: str) -> str:
    """The text the config hash reads: config.yaml (`rendered`, this spec's `render`) without
    what DittoFS reads at first boot only (`has_seeds`), and with metrics off written
    `metrics: {enabled: false}`, as this hook wrote the file before it left the block out like
    the Go operator. The two mean the same to DittoFS, so upgrading the hook must not roll
    every pod whose metrics are off."""
    if s.metrics.enabled and not has_seeds(s):
        return rendered   # the same text: spare a second rendering on every sync
    tree = document(s, seeds=False)
    tree.setdefault("metrics", {"enabled": False})
    return _dump(orjson.dumps(tree, option=orjson.OPT_SORT_KEYS))


def has_seeds(s: spec.DittoServerSpec) -> bool:
    return s.identity.ldap is not None or s.identity.kerberos_on is not None


@functools.lru_cache(maxsize=256)
def _dump(fingerprint: bytes) -> str:
    return yaml.dump(orjson.loads(fingerprint), Dumper=_DUMPER, sort_keys=True, default_flow_style=False)
