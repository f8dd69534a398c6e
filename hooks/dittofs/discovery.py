"""Adapter discovery, a DecoratorController sync hook on `DittoServer`: ask a running DittoFS
which protocol adapters it serves, with the least privilege that works, and write what it found
into the parent's annotations.

- Polling reads with an `operator`-role account, `k8s-operator`, whose password is in the Secret
  `{p}-operator-credentials` (the Go operator's name and keys). The sync hook makes that Secret
  (a child of the DittoServer, random only until it exists); this hook reads it and makes the
  account in DittoFS with it when a login is refused. It never invents a password.
  A user-given `adapterDiscovery.credentialsSecretRef` wins: then nothing is provisioned.
- Admin credentials (`identity.admin.passwordSecretRef`, else the bootstrap Secret) are used only
  for a write that is due: (re)provisioning the account, turning on the NFS portmapper, applying a
  snapshot policy or identity-provider settings that changed (`dittofs.identity`: DittoFS reads
  config.yaml's only at first boot). A steady state never logs in as admin.
- Annotations: `dittofs.io/adapters` (only from a successful poll: a failed one never changes
  adapter state), `dittofs.io/control-plane` (the state, for the `Authenticated` condition) and
  `dittofs.io/applied` (which admin writes are done, so a steady state repeats none).
- No attachments: the CompositeController owns this parent's Secrets and would release one.
- When to call DittoFS at all (a ready replica, a backoff after failures) is `dittofs.pacing`'s.
"""
import base64
import functools
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from hooks.dittofs import client, identity, keeping, layout, pacing, stores
from hooks.request import adapters, controlplane, declared, durations, errors, observed, spec

log = logging.getLogger("hooks.dittofs.discovery")

EXTENSION = "dittofs_discovery"          # the app's Discovery in flask's `app.extensions`
SERVER_URL_KEY = "server-url"
OPERATOR_ROLE = "operator"
MANAGER_ROLE = "admin"   # DittoFS lets only admins write stores, shares, users and groups
# What the inventory lists: (count, path, the field holding the name).
INVENTORY = (("shares", "/api/v1/shares", "name"), ("users", "/api/v1/users", "username"),
             ("groups", "/api/v1/groups", "name"))
# What DittoFS and the hooks make themselves: never counted as undeclared.
SYSTEM_NAMES = {"shares": set(), "users": {layout.ADMIN_USER, layout.OPERATOR_USER, layout.MANAGER_USER},
                "groups": {"admins", "operators", "users"}}
DEFAULT_URL_TEMPLATE = "{scheme}://{name}-api.{namespace}.svc.cluster.local:{port}"
Unavailable = client.Unavailable
Credentials = client.Credentials


# --- pure parts: what to ask, and what to answer ---------------------------------------------

@dataclass(frozen=True)
class Target:
    """What one call is about, read from the request."""

    name: str
    namespace: str
    spec: spec.DittoServerSpec
    annotations: dict
    related: object
    url: str

    @property
    def who(self) -> str:
        return f"{self.namespace}/{self.name}"

    @functools.cached_property
    def declared(self) -> tuple[bool, list[tuple[declared.Declared, str]]]:
        """The namespace's declared objects that name this server, read once per call."""
        return parsed_declared(self.related, self.name, self.namespace)

    @property
    def operator_secret(self) -> str:
        return f"{self.name}-{layout.OPERATOR_SUFFIX}"


def credentials_secret(name: str, parsed: spec.DittoServerSpec) -> str | None:
    """The user-given polling credentials Secret, if the spec names one."""
    ref = parsed.adapter_discovery.credentials_secret_ref
    return ref.name if ref is not None else None


def admin_secret(name: str, parsed: spec.DittoServerSpec) -> tuple[str, str | None]:
    """(Secret, key of the password) of the admin credentials; key None: the bootstrap Secret."""
    ref = parsed.identity.admin.password_secret_ref
    return (ref.name, ref.key) if ref is not None else (f"{name}-{layout.ADMIN_SUFFIX}", None)


def default_url(name: str, namespace: str, port: int, template: str = DEFAULT_URL_TEMPLATE, https: bool = False) -> str:
    """The API Service's address (the template lets a cluster with another domain, or a test,
    say where it is)."""
    return template.format(scheme="https" if https else "http", name=name, namespace=namespace, port=port)


class TrustStore:
    """CA bundles as files (what `requests` verifies against), one per distinct PEM, made once
    per process in a private temporary folder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: str | None = None
        self._files: dict[str, str] = {}

    def path(self, pem: str) -> str:
        digest = hashlib.sha256(pem.encode()).hexdigest()
        with self._lock:
            found = self._files.get(digest)
            if found is None:
                if self._dir is None:
                    self._dir = tempfile.mkdtemp(prefix="dittofs-hooks-ca-")
                found = os.path.join(self._dir, f"{digest}.pem")
                with open(found, "w") as fh:
                    fh.write(pem)
                self._files[digest] = found
            return found


def find_secret(group: object, name: str, namespace: str) -> dict | None:
    """The Secret called `name` in a related or attachments map."""
    return observed.find(group, observed.SECRET, name, namespace)


def secret_digest(found: dict) -> str:
    """A Secret's name and resourceVersion, digested: what changes when its values do, without them."""
    meta = observed.dig(found, "metadata", default={})
    text = f"{meta.get('name')}\0{meta.get('resourceVersion')}" if isinstance(meta, dict) else ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _decoded(data: dict, secret: str, key: str) -> str | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        if not isinstance(raw, str):
            raise TypeError
        return base64.b64decode(raw, validate=True).decode()
    except (TypeError, ValueError):   # binascii.Error, UnicodeDecodeError, and non-ASCII text
        raise Unavailable(f"Secret {secret} key {key} is not base64-encoded text", controlplane.CREDENTIALS_MISSING) from None


def _checked_url(text: str, secret: str) -> str:
    try:
        parts = urlsplit(text)   # ValueError for "http://[::1" or a netloc unsafe under NFKC
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unavailable(f"Secret {secret} key {SERVER_URL_KEY} is not an http(s) URL", controlplane.CREDENTIALS_MISSING)
    if parts.username or parts.password:
        # Credentials travel only in the login body; a URL may end up in a log line.
        raise Unavailable(f"Secret {secret} key {SERVER_URL_KEY} must not carry credentials",
                          controlplane.CREDENTIALS_MISSING)
    return text


def _data(found: dict | None, secret: str) -> dict:
    if found is None:
        raise Unavailable(f"Secret {secret} not found", controlplane.CREDENTIALS_MISSING)
    data = found.get("data")
    return data if isinstance(data, dict) else {}


def _required(data: dict, secret: str, key: str) -> str:
    value = _decoded(data, secret, key)
    if not value:
        raise Unavailable(f"Secret {secret} key {key} is missing or empty", controlplane.CREDENTIALS_MISSING)
    return value


def secret_value(found: dict | None, secret: str, key: str) -> str:
    """One non-empty value of a Secret, or Unavailable saying which is missing."""
    return _required(_data(found, secret), secret, key)


def read_credentials(found: dict | None, secret: str, fallback_url: str) -> Credentials:
    """Username, password and API URL from a credentials Secret's `data`, or Unavailable."""
    data = _data(found, secret)
    username, password = (_required(data, secret, key) for key in (layout.USERNAME_KEY, layout.PASSWORD_KEY))
    url = (_decoded(data, secret, SERVER_URL_KEY) or "").strip().rstrip("/")
    return Credentials(_checked_url(url, secret) if url else fallback_url, username, password)


def read_admin(target: Target, url: str) -> Credentials:
    """The admin's credentials: the user's current password, else the bootstrap Secret's."""
    secret, key = admin_secret(target.name, target.spec)
    try:
        data = _data(find_secret(target.related, secret, target.namespace), secret)
        if key is not None:
            return Credentials(url, layout.ADMIN_USER, _required(data, secret, key))
        return Credentials(url, _required(data, secret, layout.USERNAME_KEY),
                           _required(data, secret, layout.PASSWORD_KEY))
    except Unavailable as exc:
        raise Unavailable(f"no admin credentials: {exc} (set identity.admin.passwordSecretRef to a Secret "
                          "with the admin's current password)", controlplane.ADMIN_CREDENTIALS_REFUSED) from None


def policy_body(policy: spec.SnapshotPolicy) -> dict:
    """The body of `PUT .../snapshot-policy` for a spec's policy (DittoFS's field names)."""
    body: dict = {"interval": policy.interval, "enabled": policy.enabled}
    if policy.keep_last is not None:
        body["keep_last"] = policy.keep_last
    if policy.ttl:
        body["ttl"] = policy.ttl
    if policy.name_prefix:
        body["name_prefix"] = policy.name_prefix
    return body


def policy_digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def nfs_signature(entries: list[adapters.Entry]) -> str | None:
    """`nfs:<port>` of the active NFS adapter: the portmapper is checked again when it changes."""
    nfs = [a for a in adapters.active(entries) if a.is_nfs]
    return f"{nfs[0].type}:{nfs[0].port}" if nfs else None


@dataclass
class Outcome:
    """What one poll found and did."""

    state: controlplane.State
    applied: controlplane.Applied
    entries: list[adapters.Entry] | None = None    # None: adapter state not read
    notes: list[tuple[str, str]] = field(default_factory=list)   # (reason, text) of each write that waits
    undeclared: controlplane.Undeclared | None = None   # None: not counted in this poll


def answer(target: Target, outcome: Outcome) -> dict:
    """The decorator's answer. `status` is never set: the CompositeController owns it."""
    annotations = {controlplane.STATE_ANNOTATION: outcome.state.encode()}
    if outcome.applied != controlplane.read_applied(target.annotations):
        # Only when it changed: Metacontroller merges annotations, so the current value stays,
        # and a stale copy of the parent can never turn a recorded write back.
        annotations[controlplane.APPLIED_ANNOTATION] = outcome.applied.encode()
    if outcome.entries is not None:
        annotations[adapters.ANNOTATION] = adapters.canonical(outcome.entries)
    if outcome.undeclared is not None and outcome.undeclared != controlplane.read_undeclared(target.annotations):
        annotations[controlplane.UNDECLARED_ANNOTATION] = outcome.undeclared.encode()
    return {"annotations": annotations, "attachments": [],
            "resyncAfterSeconds": target.spec.adapter_discovery.polling_seconds}


# --- one poll ------------------------------------------------------------------------------------

# What a person can do about a refused admin write (the message of a refused login says what failed).
ADMIN_HINT = {
    controlplane.ADMIN_CREDENTIALS_REFUSED: "the admin password the hook has no longer works: set "
                                            "identity.admin.passwordSecretRef to a Secret with the current one",
    controlplane.PASSWORD_CHANGE_REQUIRED: "the admin user must change its password first: change it, then set "
                                           "identity.admin.passwordSecretRef to a Secret with the new one",
}


class Poll:
    """One call of the hook: provision if due, read adapters as the polling account, then the
    admin writes that are due."""

    def __init__(self, target: Target, call: client.Call):
        self.target, self.call = target, call
        self.applied = controlplane.read_applied(target.annotations)
        self.url = target.url    # a user's credentials Secret may name another (its server-url)
        self._admin: Credentials | None = None
        self.provisioned = False   # the account was made (again) in this poll
        self.turned_on = False     # this poll turned the portmapper on

    def admin(self) -> Credentials:
        if self._admin is None:
            self._admin = read_admin(self.target, self.url)
        return self._admin

    def run(self) -> Outcome:
        outcome = Outcome(controlplane.State(controlplane.UNEXPECTED_ANSWER, ""), self.applied)
        try:
            creds = self.polling_account()
            outcome.entries = self.read_adapters(creds)
        except Unavailable as exc:
            outcome.state = controlplane.State(exc.reason, self._explained(exc))
            return outcome
        self.admin_writes(outcome)
        outcome.state = self._polling_state(creds, outcome.notes)
        return outcome

    # The polling account --------------------------------------------------------------------

    def polling_account(self) -> Credentials:
        """The credentials to poll with: the user's Secret, else the operator account, made in
        DittoFS (with admin) when its login is refused."""
        user_secret = credentials_secret(self.target.name, self.target.spec)
        if user_secret is not None:
            found = read_credentials(find_secret(self.target.related, user_secret, self.target.namespace),
                                     user_secret, self.target.url)
            self.url = found.url
            return found
        secret = self.target.operator_secret
        found = find_secret(self.target.related, secret, self.target.namespace)
        if found is None:
            raise Unavailable(f"Secret {secret} does not exist yet (the sync hook makes it)",
                              controlplane.CREDENTIALS_MISSING)
        password = _required(_data(found, secret), secret, layout.PASSWORD_KEY)
        creds = Credentials(self.target.url, layout.OPERATOR_USER, password)
        if not self._works(creds):
            self.provision(creds)   # not made yet, deleted in DittoFS, or another password: this one
        return creds

    def _works(self, creds: Credentials) -> bool:
        """Whether the account logs in (or already holds a token). Only a 401 (no such user, or
        another password) is for provisioning to fix; a disabled account (403) is reported."""
        try:
            self.call.token(creds, controlplane.CREDENTIALS_REFUSED)
            return True
        except Unavailable as exc:
            if exc.reason == controlplane.CREDENTIALS_REFUSED and exc.status == 401:
                return False
            raise

    def provision(self, creds: Credentials) -> None:
        """Create the operator user with this password, or give an existing one this password."""
        self.call.ensure_user(self.admin(), creds.username, creds.password, OPERATOR_ROLE,
                              controlplane.ADMIN_CREDENTIALS_REFUSED)
        self.provisioned = True
        log.info("provisioned DittoFS user %s (role %s) for %s", creds.username, OPERATOR_ROLE, self.target.who)

    def read_adapters(self, creds: Credentials) -> list[adapters.Entry]:
        return self.call.adapters(creds, controlplane.CREDENTIALS_REFUSED)

    # Admin writes -------------------------------------------------------------------------------

    def admin_writes(self, outcome: Outcome) -> None:
        """The writes that are due, each as admin; one that fails waits for the next poll."""
        signature = nfs_signature(outcome.entries)
        # Checked again when the NFS adapter changes, and after the account had to be made: a
        # control-plane store made anew has the portmapper off again.
        if signature is not None and (self.applied.portmapper != signature or self.provisioned):
            if self._attempt(outcome, "enable the NFS portmapper", self.portmapper):
                outcome.applied = replace(outcome.applied, portmapper=signature,
                                          portmapper_turned_on=outcome.applied.portmapper_turned_on or self.turned_on)
        done = dict(self.applied.snapshot_policies)
        wanted = {}
        for policy in self.target.spec.snapshot_policies:
            body = policy_body(policy)
            wanted[policy.share] = digest = policy_digest(body)
            if done.get(policy.share) != digest:
                if self._attempt(outcome, f"apply the snapshot policy of share {policy.share}",
                                 lambda share=policy.share, body=body: self.call.put_snapshot_policy(
                                     self.admin(), share, body, controlplane.ADMIN_CREDENTIALS_REFUSED)):
                    done[policy.share] = digest
        # Policies no longer in the spec are left on the server (as the Go operator does) and forgotten here.
        kept = tuple(sorted((share, digest) for share, digest in done.items() if share in wanted))
        outcome.applied = replace(outcome.applied, snapshot_policies=kept)
        self.identity_writes(outcome)
        self.manager_writes(outcome)
        self.store_writes(outcome)
        self.inventory(outcome)

    def inventory(self, outcome: Outcome) -> None:
        """Count what DittoFS holds that nothing declares (left alone, never deleted): three list
        reads as the manager account, for a server that something declared names."""
        names = names_of(*self.target.declared)
        secret, found = self.manager_secret()
        if names is None or found is None or outcome.applied.manager is None:
            return
        creds = Credentials(self.url, layout.MANAGER_USER, secret_value(found, secret, layout.PASSWORD_KEY))
        counts = {}
        try:
            for kind, path, field_name in INVENTORY:
                listed = self.call.read(creds, path, f"list {kind}", controlplane.ADMIN_CREDENTIALS_REFUSED, list) or []
                held = {item.get(field_name) for item in listed if isinstance(item, dict)}
                counts[kind] = len(held - names[kind] - SYSTEM_NAMES[kind] - {None})
        except Unavailable as exc:
            log.info("could not count the undeclared objects of %s: %s", self.target.who, exc)
            return
        outcome.undeclared = controlplane.Undeclared(**counts)

    def manager_secret(self) -> tuple[str, dict | None]:
        """The manager account's Secret: its name, and the object when it exists."""
        secret = f"{self.target.name}-{layout.MANAGER_SUFFIX}"
        return secret, find_secret(self.target.related, secret, self.target.namespace)

    def manager_writes(self, outcome: Outcome) -> None:
        """Make the `k8s-manager` account (role admin) with its Secret's password when that
        Secret is new or changed, or the operator account had to be made again (a control-plane
        store made anew has lost it too). Only for a server that a share, user or group names:
        no other server gets a second admin-role account."""
        if not self.target.declared[0]:
            return
        secret, found = self.manager_secret()
        if found is None:
            return   # the sync hook makes it; the next poll provisions it
        digest = secret_digest(found)
        if outcome.applied.manager == digest and not self.provisioned:
            return

        def provision() -> None:
            password = _required(_data(found, secret), secret, layout.PASSWORD_KEY)
            creds = Credentials(self.url, layout.MANAGER_USER, password)
            refused = controlplane.ADMIN_CREDENTIALS_REFUSED
            self.call.ensure_user(self.admin(), creds.username, creds.password, MANAGER_ROLE, refused)
            # DittoFS makes an admin-role account (or resets its password) with a password to change.
            self.call.settle_password(creds, refused)
            log.info("provisioned DittoFS user %s (role %s) for %s", creds.username, MANAGER_ROLE, self.target.who)

        if self._attempt(outcome, f"provision the {layout.MANAGER_USER} account", provision):
            outcome.applied = replace(outcome.applied, manager=digest)

    def store_writes(self, outcome: Outcome) -> None:
        """Make each declared store that is new or changed since the hook last made it."""
        done = dict(outcome.applied.stores)
        claims = stores.statefulset_claims(pacing.statefulset(self.target.related, self.target.name,
                                                              self.target.namespace))
        wanted = stores.wanted(self.target.spec.stores, claims)
        for want in wanted:
            secret = find_secret(self.target.related, want.secret, self.target.namespace) if want.secret else None
            digest = want.digest(secret_digest(secret) if secret is not None else None)
            if done.get(want.key) == digest and not self.provisioned:
                continue
            if self._attempt(outcome, f"make the {want.kind} store {want.name}",
                             lambda want=want, secret=secret: self.make_store(want, secret)):
                done[want.key] = digest
        kept = {want.key for want in wanted}
        outcome.applied = replace(outcome.applied, stores=tuple(sorted(
            (key, digest) for key, digest in done.items() if key in kept)))

    def make_store(self, want: stores.Wanted, secret: dict | None) -> None:
        refused = controlplane.ADMIN_CREDENTIALS_REFUSED
        credentials = None
        if want.secret is not None:
            data = _data(secret, want.secret)
            values = {key: _required(data, want.secret, key) if required else _decoded(data, want.secret, key)
                      for key, _, required in want.secret_keys}
            credentials = stores.secret_config(want, {k: v for k, v in values.items() if v})
        step = f"make the {want.kind} store {want.name}"
        # Read first: DittoFS opens a store before it checks the name, so a second POST for a
        # badger store in use answers 400 ("locked by another process"), not 409.
        held = self.call.read(self.admin(), stores.item_path(want), f"read the {want.kind} store {want.name}", refused)
        if held is None:
            self.call.send("POST", self.admin(), want.path, step, refused, want.body(credentials))
            log.info("made the %s store %s of %s", want.kind, want.name, self.target.who)
            return
        why = stores.mismatch(want, held, {**want.config, **(credentials or {})})
        if why is not None:
            raise Unavailable(why, controlplane.ADMIN_WRITE_BLOCKED)
        if credentials is not None:   # settings from a Secret (rotated keys, a new password) follow it
            body = want.body(credentials)
            self.call.send("PUT", self.admin(), stores.item_path(want), step, refused,
                           {"type": body["type"], "config": body["config"]})

    def identity_writes(self, outcome: Outcome) -> None:
        """Give the server the spec's identity-provider settings where they changed since the
        hook last gave them (a new bind password included: its Secret's version is in the digest)."""
        done = dict(outcome.applied.providers)
        secrets = observed.Objects({name: found for name in self.target.spec.api_kept_secrets()
                                    if (found := find_secret(self.target.related, name, self.target.namespace))})
        for want in identity.wanted(self.target.spec, secrets, {name: p.digest for name, p in done.items()}):
            before = done.get(want.provider)
            if before is not None and before.digest == want.digest:
                continue
            result: list[controlplane.Provider] = []
            if self._attempt(outcome, f"set the {want.provider} identity provider",
                             lambda want=want: result.append(self.set_provider(want, secrets))):
                done[want.provider] = result[0]
        outcome.applied = replace(outcome.applied, providers=tuple(sorted(done.items())))

    def set_provider(self, want: identity.Wanted, secrets: observed.Objects) -> controlplane.Provider:
        """PUT one provider's settings, then (LDAP) have DittoFS dial and bind with them."""
        password = None
        if want.password is not None:
            name, key = want.password
            password = _required(_data(secrets.get(name), name), name, key)
        refused = controlplane.ADMIN_CREDENTIALS_REFUSED
        said = self.call.put_identity_provider(self.admin(), want.provider, want.with_password(password), refused)
        if said is not None:
            return controlplane.Provider(want.digest, want.restart_digest, False, "validate", said)
        log.info("set the %s identity provider of %s", want.provider, self.target.who)
        if want.provider == identity.LDAP and want.body.get("enabled"):
            found = self.call.test_identity_provider(self.admin(), want.provider, identity.test_body(want.body), refused)
            return controlplane.Provider(want.digest, want.restart_digest, found.get("ok") is True,
                                         *(str(found.get(key) or "") for key in ("stage", "message")))
        return controlplane.Provider(want.digest, want.restart_digest, True, "", identity.APPLIED_MESSAGE[want.provider])

    def portmapper(self) -> None:
        """macOS clients need the NFS portmapper. DittoFS starts it only when the server starts:
        the `applied` annotation this leads to rolls the pod once (`children.sync`), gracefully,
        rather than a disable and enable of the adapter through the API, which can hang on
        connected clients and leave NFS off."""
        refused = controlplane.ADMIN_CREDENTIALS_REFUSED
        if not self.call.nfs_portmapper_enabled(self.admin(), refused):
            self.call.enable_nfs_portmapper(self.admin(), refused)
            self.turned_on = True
            log.info("enabled the NFS portmapper of %s (it starts with the next pod)", self.target.who)

    def _attempt(self, outcome: Outcome, what: str, write) -> bool:
        try:
            write()
            return True
        except Unavailable as exc:
            log.warning("%s for %s waits: %s", what, self.target.who, exc)
            outcome.notes.append((exc.reason, f"{what} waits: {self._explained(exc)}"))
            return False

    @staticmethod
    def _explained(exc: Unavailable) -> str:
        hint = ADMIN_HINT.get(exc.reason)
        return f"{exc}: {hint}" if hint and "identity.admin.passwordSecretRef" not in str(exc) else str(exc)

    def _polling_state(self, creds: Credentials, notes: list) -> controlplane.State:
        polling = f"polling as {creds.username}"
        if not notes:
            return controlplane.State(controlplane.AUTHENTICATED, polling)
        pending_only = all(reason == controlplane.SNAPSHOT_POLICY_PENDING for reason, _ in notes)
        reason = controlplane.SNAPSHOT_POLICY_PENDING if pending_only else controlplane.ADMIN_WRITE_BLOCKED
        return controlplane.State(reason, "; ".join([polling, *(text for _, text in notes)]))


# --- the hooks -----------------------------------------------------------------------------------

# What one call did: polled and read the adapters, polled and failed, or called nothing.
OK, FAILED, NOT_READY, BACKING_OFF = "ok", "failed", "not_ready", "backing_off"


class Discovery:
    """The decorator hook's long-lived parts: the API client (its pooled connections and tokens)
    and where the API Services are."""

    def __init__(self, api: client.Client | None = None, url_template: str = DEFAULT_URL_TEMPLATE,
                 clock=time.time):
        self.api = api or client.Client()
        self.url_template = url_template
        self.trust = TrustStore()
        self.clock = clock   # wall clock: backoff's retry time is read by every replica

    def target(self, request: object) -> Target:
        name, namespace, metadata, parsed = spec.read_parent(request, "object")
        url = default_url(name, namespace, parsed.control_plane.port, self.url_template, parsed.control_plane.https)
        annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), dict) else {}
        return Target(name, namespace, parsed, annotations, request.get("related"), url)

    def verify(self, target: Target) -> bool | str:
        """What a TLS certificate is checked against: the `ca.crt` of the certificate Secret
        when it has one, else the system's roots."""
        secret = target.spec.control_plane.cert_secret_name
        found = find_secret(target.related, secret, target.namespace) if secret else None
        data = found.get("data") if isinstance(found, dict) and isinstance(found.get("data"), dict) else {}
        try:
            pem = _decoded(data, secret or "", layout.CA_KEY)
        except Unavailable:
            pem = None
        return self.trust.path(pem) if pem and "-----BEGIN CERTIFICATE-----" in pem else True

    def decide(self, request: object) -> tuple[dict, str]:
        """The answer, and what the call did (OK, FAILED, NOT_READY or BACKING_OFF), for the metrics."""
        target = self.target(request)
        found, did = self._decide(target)
        return with_twins(found, target), did

    def _decide(self, target: Target) -> tuple[dict, str]:
        why = pacing.not_ready(target.related, target.name, target.namespace)
        if why is not None:
            return pacing.not_ready_answer(why, target.annotations), NOT_READY
        backoff = pacing.read_backoff(target.annotations)
        now = self.clock()
        base = target.spec.adapter_discovery.polling_seconds
        if pacing.waiting(backoff, now):
            return pacing.waiting_answer(backoff, base), BACKING_OFF
        refresh = durations.positive_or(target.spec.identity.jwt.refresh_token_duration, 0.0) or None
        outcome = Poll(target, self.api.call(self.verify(target), refresh)).run()
        if outcome.entries is None:
            log.warning("adapter discovery for %s failed, adapter state left as it is: %s", target.who,
                        outcome.state.message)
        found = pacing.paced(answer(target, outcome), outcome.state.reason, backoff, now, base)
        return found, OK if outcome.entries is not None else FAILED


def related_resources(request: object) -> dict:
    """DecoratorController customize: the Secrets a poll may read and the StatefulSet that says
    whether it can be answered, in the parent's namespace."""
    name, namespace, _, parsed = spec.read_parent(request, "parent")
    polling = credentials_secret(name, parsed) or f"{name}-{layout.OPERATOR_SUFFIX}"
    names = {admin_secret(name, parsed)[0], polling, f"{name}-{layout.MANAGER_SUFFIX}", *parsed.api_kept_secrets()}
    if parsed.control_plane.cert_secret_name is not None:
        names.add(parsed.control_plane.cert_secret_name)
    return {"relatedResources": [
        {"apiVersion": "v1", "resource": "secrets", "namespace": namespace, "names": sorted(names)},
        # Its readiness decides whether a poll can be answered (`dittofs.pacing`); its changes,
        # status included, call this hook again.
        {"apiVersion": "apps/v1", "resource": "statefulsets", "namespace": namespace, "names": [name]},
        # Every share, user and group of the namespace (no names: all of them): the manager
        # account is made only for a server that something declared names.
        *({"apiVersion": f"{spec.GROUP}/v1alpha1", "resource": resource, "namespace": namespace}
          for resource in declared.RESOURCES.values()),
    ]}


def declared_objects(related: object, name: str, namespace: str):
    """(kind, object) of each DittoShare, DittoUser and DittoGroup in the namespace that names
    this server."""
    groups = related.items() if isinstance(related, dict) else ()
    for group, objects in groups:
        kind = group.split(".")[0] if isinstance(group, str) else None
        if kind not in declared.KINDS or not isinstance(objects, dict):
            continue
        for obj in objects.values():
            meta = observed.dig(obj, "metadata", default={})
            if observed.dig(obj, "spec", "server") == name and isinstance(meta, dict) and \
                    meta.get("namespace", namespace) == namespace:
                yield kind, obj


def parsed_declared(related: object, name: str, namespace: str) -> tuple[bool, list[tuple[declared.Declared, str]]]:
    """Whether anything in the namespace names this server, and each such object whose spec is
    valid, read once, with its creation time."""
    seen, found = False, []
    for kind, obj in declared_objects(related, name, namespace):
        seen = True
        try:
            parsed = declared.read({"object": obj}, kind)
        except errors.HookError:
            continue   # an object whose spec is not valid names nothing
        created = observed.dig(obj, "metadata", "creationTimestamp")
        found.append((parsed, created if isinstance(created, str) else ""))
    return seen, found


def twins_of(found: list[tuple[declared.Declared, str]]) -> dict[str, dict[str, list[str]]]:
    """Names in DittoFS that two or more live objects of one kind declare for this server: by
    inventory count and name, the declaring objects' names, the one kept in step first (the
    oldest, then by name). The others' hooks refuse, and none of them deletes what another
    still declares."""
    names: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for parsed, created in found:
        if not parsed.deleting:
            names.setdefault(declared.COLLECTIONS[parsed.kind], {}).setdefault(keeping.name_of(parsed), []).append(
                (created, parsed.name))
    return {count: {held: [obj for _, obj in sorted(objs)] for held, objs in sorted(by_name.items()) if len(objs) > 1}
            for count, by_name in sorted(names.items()) if any(len(objs) > 1 for objs in by_name.values())}


def with_twins(answer: dict, target: Target) -> dict:
    """The answer, with `dittofs.io/declared-twice` set to what `twins` finds when that changed
    (removed when nothing is declared twice)."""
    found = twins_of(target.declared[1])
    text = json.dumps(found, sort_keys=True, separators=(",", ":")) if found else None
    if target.annotations.get(controlplane.TWINS_ANNOTATION) != text and (text or controlplane.TWINS_ANNOTATION
                                                                           in target.annotations):
        answer["annotations"][controlplane.TWINS_ANNOTATION] = text
    return answer


def names_of(seen: bool, found: list[tuple[declared.Declared, str]]) -> dict[str, set] | None:
    """The names in DittoFS of what is declared for this server, by inventory count; None when
    nothing is."""
    if not seen:
        return None
    names: dict[str, set] = {count: set() for count in declared.COLLECTIONS.values()}
    for parsed, _ in found:
        names[declared.COLLECTIONS[parsed.kind]].add(keeping.name_of(parsed))
    return names

