"""DittoFS's own configuration file, `config.yaml`: the keys one DittoFS version reads.

Secrets never go in here; they reach DittoFS through environment variables.
"""
import functools

import orjson
import yaml

from hooks.request import spec

FILE_NAME = "config.yaml"
# libyaml's dumper is about ten times faster than PyYAML's pure-Python one and writes the same
# bytes for this document (plain scalars, block style, sorted keys).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def document(s: spec.DittoServerSpec) -> dict:
    """The config tree for a spec."""
    database: dict = {"type": "postgres"} if s.database.uses_postgres else {
        "type": "sqlite", "sqlite": {"path": s.database.sqlite.path},
    }
    return {
        "logging": {"level": "INFO", "format": "json", "output": "stdout"},
        "telemetry": {"enabled": False},
        "shutdown_timeout": "30s",
        "database": database,
        "metrics": {"enabled": s.metrics.enabled, "port": s.metrics.port},
        "controlplane": {
            "port": s.control_plane.port,
            "jwt": {
                "access_token_duration": s.identity.jwt.access_token_duration,
                "refresh_token_duration": s.identity.jwt.refresh_token_duration,
                "issuer": s.identity.jwt.issuer,
            },
        },
        "cache": {"path": s.cache.path, "size": s.cache.size},
        "admin": {"username": s.identity.admin.username},
    }


def render(s: spec.DittoServerSpec) -> str:
    """config.yaml for a spec, cached by a fingerprint of the fields the document reads."""
    return _dump(orjson.dumps(document(s), option=orjson.OPT_SORT_KEYS))


@functools.lru_cache(maxsize=256)
def _dump(fingerprint: bytes) -> str:
    return yaml.dump(orjson.loads(fingerprint), Dumper=_DUMPER, sort_keys=True, default_flow_style=False)
