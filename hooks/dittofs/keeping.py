"""Keeping one declared `DittoShare`, `DittoUser` or `DittoGroup` in step with its server's
DittoFS, as the `k8s-manager` account: the DecoratorController hooks of those kinds call this.

Each poll reads the object once from DittoFS (a share also its permissions), puts back what
differs from the spec and says what it changed; an object that does not exist is made (one that
exists under the declared name is adopted, never made again). Deletion follows the object's
`deletionPolicy`: `Retain` leaves it in DittoFS, `Delete` removes it. Nothing is ever removed
because the input was bad or the server could not be reached: those end in a status reason.
"""
import hashlib
from dataclasses import dataclass, field
from urllib.parse import quote

from hooks.dittofs import client
from hooks.request import declared

SHARES, USERS, GROUPS = "/api/v1/shares", "/api/v1/users", "/api/v1/groups"
KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

# Reasons of the `Synced` condition a person can act on.
SYNCED = "Synced"
SERVER_NOT_FOUND = "ServerNotFound"
SERVER_DELETING = "ServerDeleting"
SERVER_INVALID = "ServerInvalid"
STORE_NOT_DECLARED = "StoreNotDeclared"
REFUSED = "RefusedByDittoFS"
NOT_FOUND_IN_DITTOFS = "UnknownReference"     # a permission or a group names what DittoFS lacks
PASSWORD_MISSING = "PasswordMissing"
PASSWORD_INVALID = "PasswordInvalid"
ACCOUNT_NOT_ADOPTABLE = "AccountNotAdoptable"
CONFLICT = "DeclaredTwice"
RESERVED_NAME = "ReservedName"


def name_of(obj: declared.Declared) -> str:
    """The share, user or group name in DittoFS of a declared object."""
    s = obj.spec
    if obj.kind == declared.SHARE:
        return s.share_name(obj.name)
    return s.account(obj.name) if obj.kind == declared.USER else s.group_name(obj.name)


def reserved(obj: declared.Declared) -> str | None:
    """Why a declared user or group may not be kept in step: the name is one DittoFS or the
    hooks make themselves (taking it over would hand the server to a manifest's author)."""
    name = name_of(obj)
    if obj.kind == declared.USER and name in declared.RESERVED_USERS:
        return f"user {name} is DittoFS's or the hooks' own: a DittoUser may not take it over"
    if obj.kind == declared.GROUP and name in declared.RESERVED_GROUPS:
        return f"group {name} is one DittoFS makes itself: a DittoGroup may not take it over"
    return None


def size_text(value: int) -> str:
    """A byte count as DittoFS v0.29 shows it (`bytesize.ByteSize.String`)."""
    for unit, name in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if value >= unit:
            return f"{value / unit:.2f}{name}"
    return f"{value}B"


def segment(name: str) -> str:
    return quote(name, safe="")


@dataclass
class Result:
    """What one poll found and did: the reason (SYNCED when DittoFS holds the spec), a message,
    what it changed, and for a deletion whether it is done."""

    reason: str = SYNCED
    message: str = ""
    changed: list[str] = field(default_factory=list)
    finalized: bool = False

    @property
    def synced(self) -> bool:
        return self.reason == SYNCED


class Refused(Exception):
    """DittoFS or the spec says no in a way the next poll would repeat: a status reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _checked(response, step: str) -> None:
    """A 400 from DittoFS is its refusal of what was declared: say it as it said it."""
    if response.status_code == 400:
        raise Refused(REFUSED, f"{step}: {client.problem(response) or 'refused'}")


class Apply:
    """One poll of one declared object: `creds` is the manager account, `call` one deadline.
    Each kind says where DittoFS keeps its objects, what it calls one, and which answers to a
    DELETE mean it is gone (or was never there)."""

    COLLECTION, NOUN, GONE = "", "", (400, 404)

    def __init__(self, obj: declared.Declared, call: client.Call, creds: client.Credentials, refused: str):
        self.obj, self.call, self.creds, self.refused = obj, call, creds, refused
        self.result = Result()

    @property
    def spec(self):
        return self.obj.spec

    @property
    def name(self) -> str:
        return name_of(self.obj)

    @property
    def path(self) -> str:
        return f"{self.COLLECTION}/{segment(self.name)}"

    def remove(self) -> None:
        self.send("DELETE", self.path, f"delete {self.NOUN} {self.name}", accept=self.GONE)
        self.note(f"deleted {self.NOUN} {self.name}")

    def read(self, path: str, step: str, kind: type = dict):
        return self.call.read(self.creds, path, step, self.refused, kind)

    def send(self, method: str, path: str, step: str, body: dict | None = None, accept=(400,)):
        response = self.call.send(method, self.creds, path, step, self.refused, body, accept=accept)
        _checked(response, step)
        return response

    def note(self, text: str) -> None:
        self.result.changed.append(text)


class ShareApply(Apply):
    COLLECTION, NOUN, GONE = SHARES, "share", (400, 404)

    def create_body(self) -> dict:
        s = self.spec
        body = {"name": self.name, "metadata_store_id": s.metadata_store, "local_block_store": s.local_store,
                "read_only": s.read_only, "default_permission": s.default_permission}
        if s.remote_store is not None:
            body["remote_block_store"] = s.remote_store
        if s.owner is not None:
            body["owner"] = s.owner
        if s.quota_bytes:
            body["quota_bytes"] = str(s.quota_bytes)
        return body

    def drift(self, held: dict, quota_before: int | None = None) -> dict:
        """The fields of `PUT /shares/{name}` that differ from the spec (stores are fixed at
        creation). DittoFS shows a quota rounded to two decimals: one changed by less than that
        since the hook last set it (`quota_before`) is set again too."""
        s, found = self.spec, {}
        if held.get("read_only") is not s.read_only:
            found["read_only"] = s.read_only
        if held.get("default_permission") != s.default_permission:
            found["default_permission"] = s.default_permission
        want_quota = size_text(s.quota_bytes) if s.quota_bytes else ""
        changed = quota_before is not None and quota_before != (s.quota_bytes or 0)
        if (held.get("quota_bytes") or "") != want_quota or changed:
            found["quota_bytes"] = str(s.quota_bytes or 0)
        return found

    def ensure(self, granted_before: frozenset[str] = frozenset(), quota_before: int | None = None) -> frozenset[str]:
        """Returns the grants the hook now answers for (`users/NAME`, `groups/NAME`): those the
        spec declares. Of those it answered for before, the ones the spec no longer names are
        revoked first (a grant that cannot be made must not keep one that should go); grants it
        never made (by hand, an AD SID) are left alone. `quota_before`: the quota it last set."""
        held = self.read(self.path, f"read share {self.name}")
        if held is None:
            self.send("POST", SHARES, f"create share {self.name}", self.create_body())
            self.note(f"created share {self.name}")
            granted = {}
        else:
            changes = self.drift(held, quota_before)
            if changes:
                self.send("PUT", self.path, f"update share {self.name}", changes)
                self.note(f"share {self.name}: set {', '.join(sorted(changes))}")
            # DittoFS answers null for a share without grants.
            listed = self.read(f"{self.path}/permissions", f"read the permissions of {self.name}",
                               (list, type(None))) or []
            granted = {(f"{p.get('type')}s", p.get("name")): p.get("level") for p in listed if isinstance(p, dict)}
        declared_now = frozenset(f"{scope}/{who}" for scope, who in (g.subject for g in self.spec.permissions))
        for subject in sorted(granted_before - declared_now):
            scope, who = subject.split("/", 1)
            if (scope, who) in granted:
                self.send("DELETE", f"{self.path}/permissions/{scope}/{segment(who)}",
                          f"revoke the permission of {scope[:-1]} {who} on {self.name}", accept=(400, 404))
                self.note(f"revoked the permission of {scope[:-1]} {who}")
        self.grant(granted)
        return declared_now

    def grant(self, granted: dict) -> None:
        """Put each declared permission in place. Grants nothing declares are left alone."""
        for grant in self.spec.permissions:
            scope, who = grant.subject
            if granted.get((scope, who)) == grant.level:
                continue
            step = f"grant {grant.level} on {self.name} to {scope[:-1]} {who}"
            response = self.send("PUT", f"{self.path}/permissions/{scope}/{segment(who)}", step,
                                 {"level": grant.level}, accept=(400, 404))
            if response.status_code == 404:
                raise Refused(NOT_FOUND_IN_DITTOFS, f"{step}: {client.problem(response) or 'not found'} "
                                                    f"(declare the {scope[:-1]} with a Ditto{scope[:-1].title()})")
            self.note(f"granted {grant.level} to {scope[:-1]} {who}")


class UserApply(Apply):
    COLLECTION, NOUN, GONE = USERS, "user", (400, 404)

    def __init__(self, *args, password: str, password_version: str):
        super().__init__(*args)
        self.password, self.password_version = password, password_version

    def fields(self) -> dict:
        s = self.spec
        body = {"role": s.role, "enabled": s.enabled, "groups": list(s.groups)}
        if s.uid is not None:
            body["uid"] = s.uid
        if s.gid is not None:
            body["gid"] = s.gid
        return body

    def drift(self, held: dict) -> dict:
        wanted = self.fields()
        found = {key: value for key, value in wanted.items() if key != "groups" and held.get(key) != value}
        if sorted(held.get("groups") or []) != wanted["groups"]:
            found["groups"] = wanted["groups"]
        return found

    def ensure(self, password_applied: str | None) -> str:
        """Returns the password version DittoFS now holds (the digest recorded on the object)."""
        check_password(self.password)
        held = self.read(self.path, f"read user {self.name}")
        if held is None:
            response = self.send("POST", USERS, f"create user {self.name}",
                                 {"username": self.name, "password": self.password, **self.fields()})
            self.note(f"created user {self.name}")
            held = client.json_body(response, f"create user {self.name}")
            password_applied = self.password_version
        if held.get("role") != self.spec.role:
            # An admin or operator account made by hand is not turned into a user, nor given a
            # password from a manifest: that would hand it to whoever may write DittoUsers.
            raise Refused(ACCOUNT_NOT_ADOPTABLE, f"user {self.name} exists in DittoFS with role {held.get('role')!r}: "
                                                 "a DittoUser takes over only accounts of role user")
        changes = self.drift(held)   # DittoFS v0.29 ignores `enabled: false` on create: set it after
        if changes:
            self.send("PUT", self.path, f"update user {self.name}", changes)
            self.note(f"user {self.name}: set {', '.join(sorted(changes))}")
        if password_applied != self.password_version:
            self.send("POST", f"{self.path}/password", f"set the password of {self.name}",
                      {"new_password": self.password})
            self.note(f"set the password of {self.name}")
        return self.password_version


class GroupApply(Apply):
    COLLECTION, NOUN, GONE = GROUPS, "group", (400, 404)

    def ensure(self) -> None:
        held = self.read(self.path, f"read group {self.name}")
        gid = self.spec.gid
        if held is None:
            self.send("POST", GROUPS, f"create group {self.name}", {"name": self.name, **({"gid": gid} if gid is not None else {})})
            self.note(f"created group {self.name}")
        elif gid is not None and held.get("gid") != gid:
            self.send("PUT", self.path, f"update group {self.name}", {"gid": gid})
            self.note(f"group {self.name}: set gid")


PASSWORD_MIN, PASSWORD_MAX = 8, 72   # DittoFS answers 500 outside (bcrypt's limit and its own minimum)


def check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password.encode()) <= PASSWORD_MAX:
        raise Refused(PASSWORD_INVALID, f"the password must be {PASSWORD_MIN} to {PASSWORD_MAX} bytes long "
                                        f"(DittoFS cannot hash it otherwise); it is {len(password.encode())}")


def password_digest(secret_name: str, key: str, resource_version: object) -> str:
    """Which password a user was last given: its Secret, key and resourceVersion, never its value."""
    return hashlib.sha256(f"{secret_name}\0{key}\0{resource_version}".encode()).hexdigest()[:16]
