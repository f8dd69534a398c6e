"""Adapter discovery: ask a running DittoFS which protocol adapters it serves, and write the
answer into the parent's `dittofs.io/adapters` annotation (a DecoratorController sync hook).

That annotation is the sync hook's input (contract sections 2 and 7), so a failed poll must
never change it: every failure answers without an `annotations` key, which Metacontroller
reads as "leave the current value". This is the only module that does network I/O. Deciding
which Secret, which URL, which credentials and which answer are plain functions beside it.
"""
import base64
import http.cookiejar
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import requests

from hooks.dittofs import layout
from hooks.request import adapters, observed, spec

log = logging.getLogger("hooks.dittofs.discovery")

EXTENSION = "dittofs_discovery"          # the app's Client in flask's `app.extensions`
SERVER_URL_KEY = "server-url"
LOGIN_PATH = "/api/v1/auth/login"
ADAPTERS_PATH = "/api/v1/adapters"
NFS_SETTINGS_PATH = f"/api/v1/adapters/{adapters.NFS}/settings"
PORTMAPPER_FIELD = "portmapper_enabled"

CONNECT_TIMEOUT = 1.5
READ_TIMEOUT = 2.0
BUDGET_SECONDS = 4.0           # the whole poll; Metacontroller abandons a hook call after 10 s
MIN_CALL_SECONDS = 0.2         # a call with less time than this left cannot finish: not started
PORTMAPPER_MIN_SECONDS = 1.0   # the optional step needs up to two calls; skipped when time is short
TOKEN_REUSE_FRACTION = 0.8     # renew before expiry, so a token never dies between check and use

TokenKey = tuple[str, str]     # (API URL, username)


class Unavailable(Exception):
    """The poll failed. The message is safe to log: it never holds credentials, tokens or Secret data."""


# --- pure parts: what to ask, and what to answer ---------------------------------------------

@dataclass(frozen=True)
class Credentials:
    url: str
    username: str
    password: str = field(repr=False)   # kept out of repr, so no log line or traceback shows it

    @property
    def token_key(self) -> TokenKey:
        return (self.url, self.username)


def secret_name(name: str, parsed: spec.DittoServerSpec) -> str:
    """The credentials Secret: the one the spec names, else the generated admin credentials."""
    ref = parsed.adapter_discovery.credentials_secret_ref
    return ref.name if ref is not None else f"{name}-{layout.ADMIN_SUFFIX}"


def default_url(name: str, namespace: str, port: int) -> str:
    """The in-cluster address of the parent's API Service."""
    return f"http://{name}-api.{namespace}.svc.cluster.local:{port}"


def find_secret(related: object, name: str, namespace: str) -> dict | None:
    """The related Secret called `name`; keys (name or namespace/name) are not trusted, metadata is."""
    group = observed.dig(related, observed.SECRET, default={})
    for obj in group.values() if isinstance(group, dict) else ():
        meta = observed.dig(obj, "metadata", default={})
        if isinstance(meta, dict) and meta.get("name") == name and meta.get("namespace", namespace) == namespace:
            return obj
    return None


def _decoded(data: dict, secret: str, key: str) -> str | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        if not isinstance(raw, str):
            raise TypeError
        return base64.b64decode(raw, validate=True).decode()
    except (TypeError, ValueError):   # binascii.Error, UnicodeDecodeError, and non-ASCII text
        raise Unavailable(f"Secret {secret} key {key} is not base64-encoded text") from None


def _checked_url(text: str, secret: str) -> str:
    try:
        parts = urlsplit(text)   # ValueError for "http://[::1" or a netloc unsafe under NFKC
    except ValueError:
        raise Unavailable(f"Secret {secret} key {SERVER_URL_KEY} is not an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unavailable(f"Secret {secret} key {SERVER_URL_KEY} is not an http(s) URL")
    if parts.username or parts.password:
        # Credentials travel only in the login body; a URL may end up in a log line.
        raise Unavailable(f"Secret {secret} key {SERVER_URL_KEY} must not carry credentials")
    return text


def read_credentials(found: dict | None, secret: str, fallback_url: str) -> Credentials:
    """Username, password and API URL from the credentials Secret's `data`, or Unavailable."""
    if found is None:
        raise Unavailable(f"Secret {secret} not found among the related objects")
    data = found.get("data")
    data = data if isinstance(data, dict) else {}
    username = _decoded(data, secret, layout.USERNAME_KEY)
    password = _decoded(data, secret, layout.PASSWORD_KEY)
    for key, value in ((layout.USERNAME_KEY, username), (layout.PASSWORD_KEY, password)):
        if not value:
            raise Unavailable(f"Secret {secret} key {key} is missing or empty")
    url = (_decoded(data, secret, SERVER_URL_KEY) or "").strip().rstrip("/")
    return Credentials(_checked_url(url, secret) if url else fallback_url, username, password)


def answer(polling_seconds: float, annotation: str | None = None) -> dict:
    """The decorator's answer. Without an annotation Metacontroller keeps the current value;
    `status` is never set, because the CompositeController owns it."""
    body: dict = {"attachments": [], "resyncAfterSeconds": polling_seconds}
    if annotation is not None:
        body["annotations"] = {adapters.ANNOTATION: annotation}
    return body


def _target(request: object, key: str) -> tuple[str, str, spec.DittoServerSpec]:
    """(name, namespace, spec) of the DittoServer under `request[key]`, or a 4xx HookError."""
    name, namespace, _, parsed = spec.read_parent(request, key)
    return name, namespace, parsed


# --- network parts ----------------------------------------------------------------------------

class TokenCache:
    """Access tokens by (API URL, username), reused until 80% of their lifetime has passed.

    One per process, shared by the worker's threads; nothing but tokens is cached.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, reuse_fraction: float = TOKEN_REUSE_FRACTION):
        self._clock = clock
        self._reuse_fraction = reuse_fraction
        self._lock = threading.Lock()
        self._tokens: dict[TokenKey, tuple[str, float]] = {}

    def get(self, key: TokenKey) -> str | None:
        with self._lock:
            found = self._tokens.get(key)
            if found is not None and self._clock() >= found[1]:
                del self._tokens[key]
                found = None
        return found[0] if found else None

    def put(self, key: TokenKey, token: str, expires_in: float) -> None:
        if expires_in <= 0:
            return   # lifetime unknown: good for this poll only
        with self._lock:
            self._tokens[key] = (token, self._clock() + self._reuse_fraction * expires_in)

    def drop(self, key: TokenKey, token: str) -> None:
        """Forget `token`, unless another thread already replaced it with a fresh one."""
        with self._lock:
            if self._tokens.get(key, ("",))[0] == token:
                del self._tokens[key]


def new_session() -> requests.Session:
    session = requests.Session()
    # Cookies would be state shared between parents and threads; the API needs none.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _cause(exc: requests.RequestException) -> str:
    """The class name of the underlying failure (NameResolutionError, ...): names only, no values."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__


def _expect_ok(response: requests.Response, step: str) -> None:
    if 200 <= response.status_code < 300:
        return
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        code = None
    suffix = f" {code[:64]}" if isinstance(code, str) else ""
    raise Unavailable(f"{step}: HTTP {response.status_code}{suffix}")


def _json_object(response: requests.Response, step: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Unavailable(f"{step}: answer is not a JSON object")
    return body


def _lifetime(value: object) -> float:
    """`expires_in` in seconds, or 0 when it is not a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if value > 0 else 0.0


def _nfs_active(entries: list[adapters.Entry]) -> bool:
    return any(adapter.is_nfs for adapter in adapters.active(entries))


class Client:
    """Talks to DittoFS control-plane APIs: one pooled Session and one token cache per process.

    Every poll is bounded by `budget` seconds in total, whatever the API does.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        tokens: TokenCache | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        budget: float = BUDGET_SECONDS,
    ):
        self.session = session or new_session()
        self.tokens = tokens or TokenCache()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.budget = budget

    def poll(self, creds: Credentials, who: str) -> list[adapters.Entry]:
        """The adapters the server reports, then the best-effort portmapper step; or Unavailable."""
        deadline = time.monotonic() + self.budget
        token, entries = self._adapters(creds, deadline)
        if _nfs_active(entries):
            try:
                self._enable_portmapper(creds, token, deadline, who)
            except Unavailable as exc:
                log.warning("NFS portmapper check for %s failed (adapters still reported): %s", who, exc)
        return entries

    def _call(self, method: str, url: str, step: str, deadline: float, **kwargs) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining < MIN_CALL_SECONDS:
            raise Unavailable(f"{step}: out of time")
        # Connect and read waits add up, so each gets at most half of what is left.
        timeout = (min(self.connect_timeout, remaining / 2), min(self.read_timeout, remaining / 2))
        where = urlsplit(url).netloc
        try:
            # No redirects: the login body and the bearer token go to the configured server only.
            return self.session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
        except requests.Timeout:
            raise Unavailable(f"{step}: {where} timed out") from None
        except requests.ConnectionError as exc:
            raise Unavailable(f"{step}: cannot reach {where} ({_cause(exc)})") from None
        except requests.RequestException as exc:
            raise Unavailable(f"{step}: {type(exc).__name__}") from None

    def _login(self, creds: Credentials, deadline: float) -> str:
        body = {"username": creds.username, "password": creds.password}
        response = self._call("POST", creds.url + LOGIN_PATH, "login", deadline, json=body)
        _expect_ok(response, "login")
        found = _json_object(response, "login")
        token = found.get("access_token")
        if not isinstance(token, str) or not token:
            raise Unavailable("login: answer has no access_token")
        self.tokens.put(creds.token_key, token, _lifetime(found.get("expires_in")))
        return token

    def _list(self, creds: Credentials, token: str, deadline: float) -> requests.Response:
        return self._call("GET", creds.url + ADAPTERS_PATH, "list adapters", deadline, headers=_bearer(token))

    def _adapters(self, creds: Credentials, deadline: float) -> tuple[str, list[adapters.Entry]]:
        token = self.tokens.get(creds.token_key) or self._login(creds, deadline)
        response = self._list(creds, token, deadline)
        if response.status_code == 401:
            # The server no longer knows the token (restart, new signing key): log in once more.
            self.tokens.drop(creds.token_key, token)
            token = self._login(creds, deadline)
            response = self._list(creds, token, deadline)
        _expect_ok(response, "list adapters")
        try:
            return token, adapters.parse_entries(response.text)
        except ValueError as exc:
            raise Unavailable(f"list adapters: answer is not a list of adapters ({exc})") from None

    def _enable_portmapper(self, creds: Credentials, token: str, deadline: float, who: str) -> None:
        """macOS clients need the NFS portmapper; turn it on when the server reports it off."""
        if deadline - time.monotonic() < PORTMAPPER_MIN_SECONDS:
            raise Unavailable("skipped: too little time left")
        url = creds.url + NFS_SETTINGS_PATH
        response = self._call("GET", url, "read NFS settings", deadline, headers=_bearer(token))
        _expect_ok(response, "read NFS settings")
        if _json_object(response, "read NFS settings").get(PORTMAPPER_FIELD) is not False:
            return
        response = self._call("PATCH", url, "enable portmapper", deadline, headers=_bearer(token),
                              json={PORTMAPPER_FIELD: True})
        _expect_ok(response, "enable portmapper")
        log.info("enabled the NFS portmapper of %s", who)


# --- the hooks -----------------------------------------------------------------------------------

def discover(request: object, client: Client) -> dict:
    """DecoratorController sync: the adapter annotation, or no annotation when the poll fails."""
    name, namespace, parsed = _target(request, "object")
    polling = parsed.adapter_discovery.polling_seconds
    who = f"{namespace}/{name}"
    wanted = secret_name(name, parsed)
    try:
        creds = read_credentials(find_secret(request.get("related"), wanted, namespace), wanted,
                                 default_url(name, namespace, parsed.control_plane.port))
        entries = client.poll(creds, who)
    except Unavailable as exc:
        log.warning("adapter discovery for %s failed, annotation left as it is: %s", who, exc)
        return answer(polling)
    return answer(polling, adapters.canonical(entries))


def related_resources(request: object) -> dict:
    """DecoratorController customize: the credentials Secret, in the parent's namespace."""
    name, namespace, parsed = _target(request, "parent")
    return {"relatedResources": [
        {"apiVersion": "v1", "resource": "secrets", "namespace": namespace, "names": [secret_name(name, parsed)]},
    ]}
