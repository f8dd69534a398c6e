"""Webhook authentication: the bearer token Metacontroller's webhook `authorization` sends.

The accepted tokens come from DITTOFS_HOOK_TOKEN or from a file (a mounted Secret) named by
DITTOFS_HOOK_TOKEN_FILE, re-read whenever the file changes so a rotated Secret takes effect
without a restart.

Either may hold several tokens, so that a rotation can accept the current and the next token
at once. One rule for both: tokens are separated by commas or whitespace (newlines included), so
a file lists one token per line and the variable takes `old,new` or `old new`; empty entries are
skipped. A token therefore never contains a comma or whitespace (a bearer token, RFC 6750's
b64token, cannot anyway).

The scheme is matched case-insensitively (`Bearer`, `bearer`, `BEARER`: RFC 9110 section 11.1),
and the credential is compared, in constant time, with every accepted token.
"""
import hmac
import logging
import os
import re
import threading

log = logging.getLogger("hooks.web.auth")
SCHEME = "bearer"                  # compared with the header's scheme in lower case
SEPARATORS = re.compile(rb"[\s,]+")


class Unavailable(Exception):
    """The token file cannot be read or holds no token: refuse every call rather than let one through."""


def parse(raw: bytes | str) -> tuple[bytes, ...]:
    """The tokens in a file's contents or a variable's value: split on commas and whitespace,
    empty entries skipped, duplicates dropped, order kept."""
    if isinstance(raw, str):
        raw = raw.encode()
    return tuple(dict.fromkeys(part for part in SEPARATORS.split(raw) if part))


class FileToken:
    """Tokens read from a file, reloaded when the file's identity, mtime or size changes."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._tokens: tuple[bytes, ...] = ()

    def current(self) -> tuple[bytes, ...]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise Unavailable(f"token file {self.path}: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    with open(self.path, "rb") as fh:
                        tokens = parse(fh.read())
                except OSError as exc:
                    raise Unavailable(f"token file {self.path}: {exc.strerror}") from None
                if not tokens:
                    raise Unavailable(f"token file {self.path} is empty")
                self._tokens, self._stamp = tokens, stamp
                log.info("webhook tokens loaded from %s: %d accepted", self.path, len(tokens))
            return self._tokens


class StaticToken:
    """Tokens given directly (DITTOFS_HOOK_TOKEN)."""

    def __init__(self, token: str):
        self._tokens = parse(token)
        if not self._tokens:
            raise ValueError("DITTOFS_HOOK_TOKEN holds no token (only commas and whitespace)")

    def current(self) -> tuple[bytes, ...]:
        return self._tokens


def source(token: str | None, token_file: str | None) -> StaticToken | FileToken | None:
    """Where the accepted tokens come from; None means the hook runs unauthenticated."""
    if token_file:
        return FileToken(token_file)
    if token and token.strip():
        return StaticToken(token)
    return None


def allowed(expected: tuple[bytes, ...], header: str | None) -> bool:
    """Whether an Authorization header carries a bearer token equal to one of `expected`.

    Every accepted token is compared (no early exit on a match), each in constant time.
    """
    if not header:
        return False
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != SCHEME or not credential:
        return False
    presented = credential.encode()
    matched = False
    for token in expected:
        matched |= hmac.compare_digest(presented, token)
    return matched
