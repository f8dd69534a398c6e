"""The DittoFS v0.29 control-plane API, as the hooks use it: log in, refresh, list adapters,
manage the operator and manager accounts, the NFS settings and snapshot policies, and read and
write declared stores, shares, users and groups (`read`, `send`).

Every call of one poll shares one deadline. Failures raise `Unavailable`, whose reason is one of
`request.controlplane`'s and whose message never holds a credential, a token or Secret data.
Errors are RFC 7807 problem+json, except a few plain-text ones (`Admin access required`); both
are read defensively.
"""
import http.cookiejar
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote, urlsplit

import requests

from hooks.request import adapters, controlplane

LOGIN_PATH = "/api/v1/auth/login"
REFRESH_PATH = "/api/v1/auth/refresh"
ADAPTERS_PATH = "/api/v1/adapters"
USERS_PATH = "/api/v1/users"
OWN_PASSWORD_PATH = "/api/v1/users/me/password"
IDENTITY_PROVIDERS_PATH = "/api/v1/identity-providers"
NFS_SETTINGS_PATH = f"/api/v1/adapters/{adapters.NFS}/settings"
PORTMAPPER_FIELD = "portmapper_enabled"

CONNECT_TIMEOUT = 1.5
READ_TIMEOUT = 2.0
BUDGET_SECONDS = 6.0           # one poll, writes included; Metacontroller abandons a call after 10 s
MIN_CALL_SECONDS = 0.2         # a call with less time than this left cannot finish: not started
TOKEN_REUSE_FRACTION = 0.8     # renew before expiry, so a token never dies between check and use

TokenKey = tuple[str, str]     # (API URL, username)
log = logging.getLogger("hooks.dittofs.client")


class Unavailable(Exception):
    """A call failed. `reason` says why (controlplane.UNREACHABLE, ...); the message is safe to log."""

    def __init__(self, message: str, reason: str = controlplane.UNEXPECTED_ANSWER, status: int | None = None):
        super().__init__(message)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class Credentials:
    url: str
    username: str
    password: str = field(repr=False)   # kept out of repr, so no log line or traceback shows it

    @property
    def token_key(self) -> TokenKey:
        return (self.url, self.username)


@dataclass(frozen=True)
class Tokens:
    access: str = field(repr=False)
    refresh: str | None = field(repr=False)
    renew_at: float          # the access token is used until then
    refresh_until: float     # the refresh token is tried until then


class TokenCache:
    """Tokens by (API URL, username), in memory, shared by the worker's threads. Nothing else
    is kept between polls, and nothing of it is written to the cluster."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, reuse_fraction: float = TOKEN_REUSE_FRACTION):
        self.clock = clock
        self._reuse_fraction = reuse_fraction
        self._lock = threading.Lock()
        self._tokens: dict[TokenKey, Tokens] = {}

    def get(self, key: TokenKey) -> Tokens | None:
        with self._lock:
            found = self._tokens.get(key)
            if found is not None and self.clock() >= max(found.renew_at, found.refresh_until):
                del self._tokens[key]
                found = None
        return found

    def access(self, key: TokenKey) -> str | None:
        found = self.get(key)
        return found.access if found is not None and self.clock() < found.renew_at else None

    def put(self, key: TokenKey, access: str, refresh: str | None, expires_in: float,
            refresh_expires_in: float | None = None) -> None:
        now = self.clock()
        renew_at = now + self._reuse_fraction * expires_in if expires_in > 0 else now
        # The login answer does not say how long the refresh token lives: the spec does
        # (refreshTokenDuration); without it, one more access lifetime. A refused refresh falls
        # back to a login anyway.
        refresh_until = renew_at + max(expires_in, 0) if refresh_expires_in is None else \
            max(renew_at, now + self._reuse_fraction * refresh_expires_in)
        with self._lock:
            self._tokens[key] = Tokens(access, refresh, renew_at, refresh_until)

    def drop(self, key: TokenKey, access: str | None = None) -> None:
        """Forget the tokens, unless another thread already replaced `access` with a fresh one."""
        with self._lock:
            found = self._tokens.get(key)
            if found is not None and (access is None or found.access == access):
                del self._tokens[key]


def new_session() -> requests.Session:
    session = requests.Session()
    # Cookies would be state shared between parents and threads; the API needs none.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    # Nothing from the environment per request: with trust_env, requests scans every variable
    # (a pod has one set per Service in its namespace) for proxies twice and looks for a .netrc
    # on each call, a fifth of a refused poll's CPU. The API is a Service in the cluster, and
    # a login must not travel through a proxy anyway; a CA bundle from the environment is read
    # once (`environment_ca_bundle`).
    session.trust_env = False
    return session


def environment_ca_bundle() -> bool | str:
    """What `verify=True` means: the bundle REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names (as
    requests reads them with trust_env), else requests' own roots."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _cause(exc: requests.RequestException) -> str:
    """The class name of the underlying failure (NameResolutionError, ...): names only, no values."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__


def problem(response: requests.Response) -> str:
    """What the server said went wrong, short: problem+json's title and detail, or the first line
    of a plain-text body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [body.get(key) for key in ("title", "detail")]
        text = ": ".join(part for part in parts if isinstance(part, str) and part)
        code = body.get("code")
        text = text or (code if isinstance(code, str) else "")
    else:
        text = (response.text or "").strip().splitlines()[0] if (response.text or "").strip() else ""
    return text[:160]


def expect_ok(response: requests.Response, step: str, reason: str = controlplane.UNEXPECTED_ANSWER) -> None:
    if 200 <= response.status_code < 300:
        return
    said = problem(response)
    raise Unavailable(f"{step}: HTTP {response.status_code}" + (f" ({said})" if said else ""), reason,
                      response.status_code)


def json_body(response: requests.Response, step: str, kind: type | tuple[type, ...] = dict):
    """The JSON answer when it is a `kind` (a type, or a tuple of them), else Unavailable."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, kind):
        named = kind if isinstance(kind, type) else kind[0]
        raise Unavailable(f"{step}: answer is not a JSON {named.__name__}")
    return body


def _lifetime(value: object) -> float:
    """`expires_in` in seconds, or 0 when it is not a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if value > 0 else 0.0


class Client:
    """One pooled Session and one token cache per process. A `Call` is one poll's view of it."""

    def __init__(self, session: requests.Session | None = None, tokens: TokenCache | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                 budget: float = BUDGET_SECONDS):
        self.session = session or new_session()
        self.system_roots = environment_ca_bundle()   # what `verify=True` means, read once
        self.tokens = tokens or TokenCache()
        self.connect_timeout, self.read_timeout, self.budget = connect_timeout, read_timeout, budget

    def call(self, verify: bool | str = True, refresh_lifetime: float | None = None) -> "Call":
        return Call(self, time.monotonic() + self.budget, self.system_roots if verify is True else verify,
                    refresh_lifetime)


@dataclass
class Call:
    """The requests of one poll: one deadline, one TLS trust setting (`verify`: True for the
    system roots, or the path of a CA bundle)."""

    client: Client
    deadline: float
    verify: bool | str = True
    refresh_lifetime: float | None = None   # seconds a refresh token lives (the spec's refreshTokenDuration)

    def request(self, method: str, url: str, step: str, **kwargs) -> requests.Response:
        remaining = self.deadline - time.monotonic()
        if remaining < MIN_CALL_SECONDS:
            raise Unavailable(f"cannot reach {urlsplit(url).netloc}", controlplane.UNREACHABLE)
        # Connect and read waits add up, so each gets at most half of what is left.
        timeout = (min(self.client.connect_timeout, remaining / 2), min(self.client.read_timeout, remaining / 2))
        where = urlsplit(url).netloc
        try:
            # No redirects: the login body and the bearer token go to the configured server only.
            return self.client.session.request(method, url, timeout=timeout, allow_redirects=False,
                                               verify=self.verify, **kwargs)
        # The messages name the server, not the step: the state annotation quotes them, and it
        # must read the same in one outage whichever step of whichever worker hit it first.
        except requests.exceptions.SSLError as exc:
            verify_failed = any(isinstance(arg, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(arg)
                                for arg in _chain(exc))
            what = "certificate not trusted" if verify_failed else "TLS handshake failed"
            raise Unavailable(f"{where}: {what}", controlplane.TLS_FAILURE) from None
        except requests.RequestException as exc:
            # One text for every way of not reaching it (refused, timed out, no such name): which
            # one a worker meets first can differ. The cause goes to the log only.
            log.info("%s: %s: %s", step, where, _cause(exc) if isinstance(exc, requests.ConnectionError) else type(exc).__name__)
            raise Unavailable(f"cannot reach {where}", controlplane.UNREACHABLE) from None

    # --- tokens ---------------------------------------------------------------------------------

    def login(self, creds: Credentials, refused: str) -> str:
        """A fresh access token; a refused login raises Unavailable with reason `refused`."""
        response = self.request("POST", creds.url + LOGIN_PATH, f"login as {creds.username}",
                                json={"username": creds.username, "password": creds.password})
        if response.status_code in (401, 403):
            expect_ok(response, f"login as {creds.username}", refused)
        expect_ok(response, f"login as {creds.username}")
        return self._keep(creds, json_body(response, "login"))

    def _keep(self, creds: Credentials, found: dict) -> str:
        token = found.get("access_token")
        if not isinstance(token, str) or not token:
            raise Unavailable("login: answer has no access_token")
        user = found.get("user")
        if isinstance(user, dict) and user.get("must_change_password") is True:
            self.client.tokens.drop(creds.token_key)
            raise Unavailable(f"{creds.username} must change its password before it can do anything else",
                              controlplane.PASSWORD_CHANGE_REQUIRED)
        refresh = found.get("refresh_token")
        self.client.tokens.put(creds.token_key, token, refresh if isinstance(refresh, str) else None,
                               _lifetime(found.get("expires_in")), self.refresh_lifetime)
        return token

    def token(self, creds: Credentials, refused: str) -> str:
        """An access token: the cached one, else a refreshed one, else a login."""
        cache = self.client.tokens
        access = cache.access(creds.token_key)
        if access is not None:
            return access
        held = cache.get(creds.token_key)
        if held is not None and held.refresh:
            response = self.request("POST", creds.url + REFRESH_PATH, "refresh token",
                                    json={"refresh_token": held.refresh})
            if 200 <= response.status_code < 300:
                return self._keep(creds, json_body(response, "refresh token"))
            cache.drop(creds.token_key)
        return self.login(creds, refused)

    def authorized(self, method: str, creds: Credentials, path: str, step: str, refused: str,
                   **kwargs) -> requests.Response:
        """A call with a bearer token; a token the server no longer knows (restart, new signing
        key) is dropped and the call made once more with a new login."""
        token = self.token(creds, refused)
        response = self.request(method, creds.url + path, step, headers=bearer(token), **kwargs)
        if response.status_code == 401:
            self.client.tokens.drop(creds.token_key, token)
            response = self.request(method, creds.url + path, step, headers=bearer(self.login(creds, refused)),
                                    **kwargs)
        return response

    # --- the API ------------------------------------------------------------------------------

    def adapters(self, creds: Credentials, refused: str) -> list[adapters.Entry]:
        response = self.authorized("GET", creds, ADAPTERS_PATH, "list adapters", refused)
        expect_ok(response, "list adapters", _refusal(response, refused))
        try:
            return adapters.parse_entries(response.text)
        except ValueError as exc:
            raise Unavailable(f"list adapters: answer is not a list of adapters ({exc})") from None

    def ensure_user(self, admin: Credentials, username: str, password: str, role: str, refused: str) -> None:
        """Create the user with this password and role; an existing one gets the password."""
        response = self.authorized("POST", admin, USERS_PATH, f"create user {username}", refused,
                                   json={"username": username, "password": password, "role": role})
        if response.status_code == 409:
            response = self.authorized("POST", admin, f"{USERS_PATH}/{quote(username, safe='')}/password",
                                       f"reset the password of {username}", refused,
                                       json={"new_password": password})
        expect_ok(response, f"provision user {username}", _refusal(response, refused))

    def settle_password(self, creds: Credentials, refused: str) -> None:
        """Clear the must-change flag DittoFS sets on an admin-role account that an admin made or
        reset, by setting the same password (DittoFS asks for no current one then)."""
        response = self.request("POST", creds.url + LOGIN_PATH, f"login as {creds.username}",
                                json={"username": creds.username, "password": creds.password})
        expect_ok(response, f"login as {creds.username}", refused if response.status_code in (401, 403) else
                  controlplane.UNEXPECTED_ANSWER)
        token = json_body(response, "login").get("access_token")
        if not isinstance(token, str) or not token:
            raise Unavailable("login: answer has no access_token")
        response = self.request("POST", creds.url + OWN_PASSWORD_PATH, f"set the password of {creds.username}",
                                headers=bearer(token), json={"current_password": creds.password,
                                                             "new_password": creds.password})
        expect_ok(response, f"set the password of {creds.username}", _refusal(response, refused))
        self._keep(creds, json_body(response, f"set the password of {creds.username}"))

    def read(self, creds: Credentials, path: str, step: str, refused: str, kind: type = dict):
        """GET a JSON answer; None when DittoFS has no such object (404)."""
        response = self.authorized("GET", creds, path, step, refused)
        if response.status_code == 404:
            return None
        expect_ok(response, step, _refusal(response, refused))
        return json_body(response, step, kind)

    def send(self, method: str, creds: Credentials, path: str, step: str, refused: str, body: dict | None = None,
             accept: tuple[int, ...] = ()) -> requests.Response:
        """A write; a status in `accept` (409 for "exists", 404 for "gone") is the caller's to read,
        any other failure raises Unavailable."""
        response = self.authorized(method, creds, path, step, refused, **({"json": body} if body is not None else {}))
        if response.status_code not in accept:
            expect_ok(response, step, _refusal(response, refused))
        return response

    def nfs_portmapper_enabled(self, admin: Credentials, refused: str) -> bool:
        response = self.authorized("GET", admin, NFS_SETTINGS_PATH, "read NFS settings", refused)
        expect_ok(response, "read NFS settings", _refusal(response, refused))
        return json_body(response, "read NFS settings").get(PORTMAPPER_FIELD) is not False

    def enable_nfs_portmapper(self, admin: Credentials, refused: str) -> None:
        response = self.authorized("PATCH", admin, NFS_SETTINGS_PATH, "enable the NFS portmapper", refused,
                                   json={PORTMAPPER_FIELD: True})
        expect_ok(response, "enable the NFS portmapper", _refusal(response, refused))

    def put_snapshot_policy(self, admin: Credentials, share: str, body: dict, refused: str) -> None:
        """PUT the policy; a share that does not exist yet is reason SNAPSHOT_POLICY_PENDING."""
        path = f"/api/v1/shares/{quote(share, safe='')}/snapshot-policy"
        response = self.authorized("PUT", admin, path, f"set the snapshot policy of share {share}", refused,
                                   json=body)
        if response.status_code == 404:
            raise Unavailable(f"share {share} does not exist yet", controlplane.SNAPSHOT_POLICY_PENDING, 404)
        expect_ok(response, f"set the snapshot policy of share {share}", _refusal(response, refused))

    def put_identity_provider(self, admin: Credentials, provider: str, body: dict, refused: str) -> str | None:
        """PUT a provider's settings: None when DittoFS took them, else what it said against
        them (a 400: the settings, not the call, are wrong; sending them again will not help)."""
        step = f"set the {provider} identity provider"
        response = self.authorized("PUT", admin, f"{IDENTITY_PROVIDERS_PATH}/{provider}/config", step, refused,
                                   json=body)
        if response.status_code == 400:
            return problem(response) or "refused"
        expect_ok(response, step, _refusal(response, refused))
        return None

    def test_identity_provider(self, admin: Credentials, provider: str, body: dict, refused: str) -> dict:
        """POST .../test: DittoFS dials and binds with the settings, and says how it went
        (`ok`, `stage`, `message`)."""
        step = f"test the {provider} identity provider"
        response = self.authorized("POST", admin, f"{IDENTITY_PROVIDERS_PATH}/{provider}/test", step, refused,
                                   json=body)
        expect_ok(response, step, _refusal(response, refused))
        return json_body(response, step)


def _refusal(response: requests.Response, refused: str) -> str:
    """The reason for an authorization failure of a call made with a valid token."""
    if response.status_code == 403 and "must set a new password" in (response.text or ""):
        return controlplane.PASSWORD_CHANGE_REQUIRED
    return refused if response.status_code in (401, 403) else controlplane.UNEXPECTED_ANSWER


def _chain(exc: BaseException):
    """An exception, its args and its causes (requests wraps urllib3 wraps ssl)."""
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        yield from (arg for arg in getattr(exc, "args", ()) if isinstance(arg, BaseException))
        for arg in getattr(exc, "args", ()):
            inner = getattr(arg, "reason", None)
            if isinstance(inner, BaseException):
                yield inner
        exc = exc.__cause__ or exc.__context__
        seen += 1
