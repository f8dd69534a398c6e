"""Webhook authentication: the bearer token Metacontroller's webhook `authorization` sends.

The expected token comes from DITTOFS_HOOK_TOKEN or from a file (a mounted Secret) named by
DITTOFS_HOOK_TOKEN_FILE, re-read whenever the file changes so a rotated Secret takes effect
without a restart. Comparison is constant-time.
"""
import hmac
import logging
import os
import threading

log = logging.getLogger("hooks.web.auth")
SCHEME = "Bearer "


class Unavailable(Exception):
    """The token file cannot be read: refuse every call rather than let one through."""


class FileToken:
    """A token read from a file, reloaded when the file's identity or mtime changes."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._token = b""

    def current(self) -> bytes:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise Unavailable(f"token file {self.path}: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    with open(self.path, "rb") as fh:
                        token = fh.read().strip()
                except OSError as exc:
                    raise Unavailable(f"token file {self.path}: {exc.strerror}") from None
                if not token:
                    raise Unavailable(f"token file {self.path} is empty")
                self._token, self._stamp = token, stamp
                log.info("webhook token loaded from %s", self.path)
            return self._token


class StaticToken:
    def __init__(self, token: str):
        self._token = token.strip().encode()

    def current(self) -> bytes:
        return self._token


def source(token: str | None, token_file: str | None) -> StaticToken | FileToken | None:
    """Where the expected token comes from; None means the hook runs unauthenticated."""
    if token_file:
        return FileToken(token_file)
    if token and token.strip():
        return StaticToken(token)
    return None


def allowed(expected: bytes, header: str | None) -> bool:
    """Whether an Authorization header carries exactly the expected bearer token."""
    if not header or not header.startswith(SCHEME):
        return False
    return hmac.compare_digest(header[len(SCHEME):].strip().encode(), expected)
