"""The hook's own configuration, read from the environment once when the app is built."""
import os
from dataclasses import dataclass
from typing import Mapping

from hooks.request import ports

DEFAULT_MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    apply_strategy: ports.Strategy = ports.DYNAMIC
    max_body_bytes: int = DEFAULT_MAX_BODY
    token: str | None = None          # DITTOFS_HOOK_TOKEN
    token_file: str | None = None     # DITTOFS_HOOK_TOKEN_FILE, a mounted Secret; wins over token
    log_level: str = "INFO"

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
        )
