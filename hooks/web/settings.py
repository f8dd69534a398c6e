"""The hook's own configuration, read from the environment once when the app is built."""
import os
from dataclasses import dataclass
from typing import Mapping

from hooks.dittofs import discovery
from hooks.request import ports

DEFAULT_MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    apply_strategy: ports.Strategy = ports.DYNAMIC
    max_body_bytes: int = DEFAULT_MAX_BODY
    token: str | None = None          # DITTOFS_HOOK_TOKEN
    token_file: str | None = None     # DITTOFS_HOOK_TOKEN_FILE, a mounted Secret; wins over token
    log_level: str = "INFO"
    # Where a DittoServer's API Service answers (DITTOFS_HOOK_API_URL_TEMPLATE): another cluster
    # domain, or a test's address. Fields: {scheme}, {name}, {namespace}, {port}.
    api_url_template: str = discovery.DEFAULT_URL_TEMPLATE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        """Settings from DITTOFS_HOOK_* variables; a bad value stops the server at start."""
        strategy = environ.get("DITTOFS_HOOK_APPLY_STRATEGY", "").strip() or ports.DYNAMIC
        if strategy == "dynamic":
            strategy = ports.DYNAMIC
        if strategy not in (ports.DYNAMIC, ports.SERVER_SIDE):
            raise ValueError(f"DITTOFS_HOOK_APPLY_STRATEGY must be {ports.DYNAMIC} or {ports.SERVER_SIDE}, not {strategy!r}")
        max_body = int(environ.get("DITTOFS_HOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY))
        if max_body <= 0:
            raise ValueError("DITTOFS_HOOK_MAX_BODY_BYTES must be positive")
        return cls(
            apply_strategy=strategy,
            max_body_bytes=max_body,
            token=environ.get("DITTOFS_HOOK_TOKEN") or None,
            token_file=environ.get("DITTOFS_HOOK_TOKEN_FILE") or None,
            log_level=environ.get("LOG_LEVEL", "INFO"),
            api_url_template=_url_template(environ.get("DITTOFS_HOOK_API_URL_TEMPLATE", "").strip()
                                           or cls.api_url_template),
        )


def _url_template(template: str) -> str:
    """The template, checked once at start: a typo must not turn into a failed poll per server."""
    try:
        template.format(scheme="http", name="n", namespace="ns", port=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"DITTOFS_HOOK_API_URL_TEMPLATE may use {{scheme}}, {{name}}, {{namespace}}, {{port}}: {exc}") from None
    return template
