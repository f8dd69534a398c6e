"""The `dittofs.io/control-plane` and `dittofs.io/applied` annotations: what the discovery hook
found out about a server's control plane, and which admin-only writes it has applied.

`/discover` writes them; `/sync` turns the first into the `Authenticated` condition. Both are
compact JSON with sorted keys, so they change only when what they say changes.
"""
import functools
import json
from dataclasses import dataclass

STATE_ANNOTATION = "dittofs.io/control-plane"
APPLIED_ANNOTATION = "dittofs.io/applied"
# How many shares, users and groups DittoFS holds that no DittoShare, DittoUser or DittoGroup
# declares (left alone): written by `/discover` when the count changes, shown by `/sync`.
UNDECLARED_ANNOTATION = "dittofs.io/undeclared"
# Names two DittoShares (DittoUsers, DittoGroups) declare for one server: written by `/discover`,
# read by those kinds' hooks, so that only one of them keeps the name in step.
TWINS_ANNOTATION = "dittofs.io/declared-twice"

# Reasons. The first three mean the hook polls the server; the rest mean it cannot.
AUTHENTICATED = "Authenticated"
ADMIN_WRITE_BLOCKED = "AdminWriteBlocked"            # polling works, a write only admin may do waits
SNAPSHOT_POLICY_PENDING = "SnapshotPolicyPending"    # polling works, a policy's share does not exist yet
UNREACHABLE = "Unreachable"
TLS_FAILURE = "TLSFailure"
CREDENTIALS_REFUSED = "CredentialsRefused"           # the polling account's login is refused
CREDENTIALS_MISSING = "CredentialsMissing"           # a Secret or key the hook needs is not there
ADMIN_CREDENTIALS_REFUSED = "AdminCredentialsRefused"  # the account cannot be (re)made: admin refused
PASSWORD_CHANGE_REQUIRED = "PasswordChangeRequired"  # admin must change its password first
UNEXPECTED_ANSWER = "UnexpectedAnswer"
NOT_READY = "ServerNotReady"                         # no ready replica: not polled, nothing known of it
POLLING = (AUTHENTICATED, ADMIN_WRITE_BLOCKED, SNAPSHOT_POLICY_PENDING)


@dataclass(frozen=True)
class State:
    reason: str
    message: str

    @property
    def polling(self) -> bool:
        return self.reason in POLLING

    def encode(self) -> str:
        return json.dumps({"message": self.message, "reason": self.reason}, separators=(",", ":"), sort_keys=True)


def _object_in(annotations: object, key: str) -> dict | None:
    """The JSON object an annotation holds, or None."""
    raw = annotations.get(key) if isinstance(annotations, dict) else None
    try:
        found = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def read_state(annotations: object) -> State | None:
    """The state the annotation holds, or None when it is absent or not of this shape."""
    found = _object_in(annotations, STATE_ANNOTATION)
    if found is None or not all(isinstance(found.get(k), str) for k in ("reason", "message")):
        return None
    return State(found["reason"], found["message"])


@dataclass(frozen=True)
class Provider:
    """An identity provider's settings as last sent to DittoFS: their digest, the digest of the
    part DittoFS reads only when it starts, and what DittoFS said of them (`stage` and `message`
    of its test or its refusal)."""

    digest: str
    restart_digest: str
    ok: bool
    stage: str = ""
    message: str = ""

    def encoded(self) -> dict:
        return {"digest": self.digest, "restartDigest": self.restart_digest, "ok": self.ok,
                "stage": self.stage, "message": self.message}

    @classmethod
    def read(cls, found: object) -> "Provider | None":
        if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in ("digest", "restartDigest")):
            return None
        text = {k: found.get(k) if isinstance(found.get(k), str) else "" for k in ("stage", "message")}
        return cls(found["digest"], found["restartDigest"], found.get("ok") is True, **text)


@dataclass(frozen=True)
class Applied:
    """Admin writes done: the NFS adapter (type:port) whose portmapper was checked, whether the
    hook itself turned the portmapper on (then the pod rolls once, see `children.sync`), a
    digest of each snapshot policy as last applied, by share, and each identity provider's
    settings as last applied, by provider."""

    portmapper: str | None = None
    snapshot_policies: tuple[tuple[str, str], ...] = ()
    portmapper_turned_on: bool = False
    providers: tuple[tuple[str, Provider], ...] = ()
    # The declared stores made in DittoFS, by `kind/name`, each with a digest of what was sent.
    stores: tuple[tuple[str, str], ...] = ()
    # A digest of the manager account's Secret (name and resourceVersion) it was last provisioned with.
    manager: str | None = None

    def provider(self, name: str) -> Provider | None:
        return dict(self.providers).get(name)

    def encode(self) -> str:
        found: dict = {"portmapper": self.portmapper, "portmapperTurnedOn": self.portmapper_turned_on,
                       "snapshotPolicies": dict(self.snapshot_policies)}
        if self.providers:   # absent otherwise, so annotations written before it read the same
            found["identityProviders"] = {name: p.encoded() for name, p in self.providers}
        if self.stores:
            found["stores"] = dict(self.stores)
        if self.manager is not None:
            found["manager"] = self.manager
        return json.dumps(found, separators=(",", ":"), sort_keys=True)


def read_applied(annotations: object) -> Applied:
    """What the annotation says was applied; nothing when it is absent or malformed (so every
    write is due once more, which is safe: each one is idempotent)."""
    raw = annotations.get(APPLIED_ANNOTATION) if isinstance(annotations, dict) else None
    return applied_from_text(raw) if isinstance(raw, str) else Applied()


@functools.lru_cache(maxsize=256)
def applied_from_text(raw: str) -> Applied:
    """The annotation's value, read. Cached by that value: every sync reads it twice (the
    config hash, the IdentityProviderReady condition), and it changes only with a write."""
    try:
        found = json.loads(raw)
    except ValueError:
        return Applied()
    if not isinstance(found, dict):
        return Applied()
    portmapper = found.get("portmapper")
    policies = found.get("snapshotPolicies")
    providers = found.get("identityProviders")
    providers = providers if isinstance(providers, dict) else {}
    read = ((name, Provider.read(value)) for name, value in providers.items() if isinstance(name, str))
    manager = found.get("manager")
    return Applied(portmapper if isinstance(portmapper, str) else None, _pairs(policies),
                   found.get("portmapperTurnedOn") is True,
                   tuple(sorted((name, p) for name, p in read if p is not None)),
                   _pairs(found.get("stores")), manager if isinstance(manager, str) else None)


def _pairs(found: object) -> tuple[tuple[str, str], ...]:
    """A {str: str} object as sorted pairs; anything else in it is dropped."""
    items = found.items() if isinstance(found, dict) else ()
    return tuple(sorted((k, v) for k, v in items if isinstance(k, str) and isinstance(v, str)))


@dataclass(frozen=True)
class Undeclared:
    shares: int = 0
    users: int = 0
    groups: int = 0

    def encode(self) -> str:
        return json.dumps(self.status(), separators=(",", ":"), sort_keys=True)

    def status(self) -> dict:
        return {"shares": self.shares, "users": self.users, "groups": self.groups}


def read_undeclared(annotations: object) -> Undeclared | None:
    """The counts the annotation holds, or None when it is absent or not of this shape."""
    found = _object_in(annotations, UNDECLARED_ANNOTATION)
    keys = ("shares", "users", "groups")
    if found is None or not all(type(found.get(k)) is int and found[k] >= 0 for k in keys):
        return None
    return Undeclared(*(found[k] for k in keys))
