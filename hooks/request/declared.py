"""What a team declares on a `DittoServer`, one object each: `DittoShare`, `DittoUser` and
`DittoGroup` (the `KafkaTopic` / `Database` pattern), their specs with defaults, validated by
pydantic, and how a hook request carries them.

Each names its server (`spec.server`, same namespace) and a `deletionPolicy`: `Retain` (the
default: deleting the object leaves the share, user or group in DittoFS) or `Delete`.
Field names follow `dfsctl` and the DittoFS API (camelCase here, snake_case there).
"""
from dataclasses import dataclass
from typing import Annotated, Literal

import pydantic
from pydantic import Field
from pydantic.alias_generators import to_camel

from hooks.request import errors, names

SHARE, USER, GROUP = "DittoShare", "DittoUser", "DittoGroup"
KINDS = (SHARE, USER, GROUP)
# What DittoFS calls a collection of each (its API paths, the inventory's counts).
COLLECTIONS = {SHARE: "shares", USER: "users", GROUP: "groups"}
# The resource of each kind: its routes (`/dittoshares/sync`) and its rules.
RESOURCES = {SHARE: "dittoshares", USER: "dittousers", GROUP: "dittogroups"}
API_GROUP = "dittofs.dittofs.com"
RETAIN, DELETE = "Retain", "Delete"
PERMISSIONS = ("none", "read", "read-write", "admin")
# The key of a user's password in its Secret (the generated one and, by default, the user's own).
PASSWORD_KEY = "password"
PASSWORD_SUFFIX = "password"   # the generated Secret: {object name}-password

# DittoFS's own names: users and groups as Unix-like names, shares as paths of one segment or more.
AccountName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")]
# Lower case and one component: DittoFS lower-cases the SMB share name it looks up, and takes only
# the first component after the host, so any other name could never be reached over SMB.
ShareName = Annotated[str, Field(pattern=r"^/[a-z0-9._-]+$", max_length=80)]
# Not 0: DittoFS skips every permission check for uid 0, and gid 0 is root's group.
Id = Annotated[int, Field(ge=1, le=4294967295, strict=True)]
# Accounts and groups DittoFS or the hooks make: no declared object may take one over.
RESERVED_USERS = ("admin", "k8s-operator", "k8s-manager")
RESERVED_GROUPS = ("admins", "operators", "users")
# Groups a declared user may not join: their members administer the server.
PRIVILEGED_GROUPS = ("admins", "operators")
Permission = Literal["none", "read", "read-write", "admin"]
StoreName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
ServerName = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=52)]


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class Grant(Model):
    """One share permission: for a user or for a group (exactly one of them)."""

    user: AccountName | None = None
    group: AccountName | None = None
    level: Permission

    @pydantic.model_validator(mode="after")
    def _one_subject(self) -> "Grant":
        if (self.user is None) == (self.group is None):
            raise ValueError("a permission names exactly one of user or group")
        return self

    @property
    def subject(self) -> tuple[str, str]:
        """("users" or "groups", name): the API's path segment and the name."""
        return ("users", self.user) if self.user is not None else ("groups", self.group)


class ShareSpec(Model):
    server: ServerName
    # None: "/" + the object's name.
    name: ShareName | None = None
    metadata_store: StoreName
    local_store: StoreName
    remote_store: StoreName | None = None
    read_only: bool = False
    # The user whose uid and gid own the share's root directory (DittoFS sets it only when the
    # share is made). None: root owns it, and only root may create files at the top.
    owner: AccountName | None = None
    default_permission: Permission = "none"
    permissions: tuple[Grant, ...] = ()
    # Bytes; None or 0: no quota.
    quota_bytes: Annotated[int, Field(ge=0, strict=True)] | None = None
    deletion_policy: Literal["Retain", "Delete"] = RETAIN

    @pydantic.field_validator("permissions")
    @classmethod
    def _one_grant_each(cls, grants: tuple[Grant, ...]) -> tuple[Grant, ...]:
        subjects = [grant.subject for grant in grants]
        if len(set(subjects)) != len(subjects):
            raise ValueError("each user and each group may have one permission")
        return tuple(sorted(grants, key=lambda grant: grant.subject))

    def share_name(self, object_name: str) -> str:
        return self.name or f"/{object_name}"


class PasswordRef(Model):
    name: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)] = PASSWORD_KEY


class UserSpec(Model):
    server: ServerName
    # None: the object's name.
    username: AccountName | None = None
    uid: Id | None = None
    gid: Id | None = None
    groups: tuple[AccountName, ...] = ()
    # `admin` is not offered: an admin account made from a manifest would be a second key to
    # every share and user, held by whoever can write DittoUsers in the namespace.
    role: Literal["user"] = "user"
    enabled: bool = True
    # None: a generated Secret {object name}-password, kept once it exists.
    password_secret_ref: PasswordRef | None = None
    deletion_policy: Literal["Retain", "Delete"] = RETAIN

    @pydantic.field_validator("groups")
    @classmethod
    def _sorted_groups(cls, groups: tuple[str, ...]) -> tuple[str, ...]:
        privileged = sorted(set(groups) & set(PRIVILEGED_GROUPS))
        if privileged:
            raise ValueError(f"{', '.join(privileged)} administer the server: a declared user may not join them")
        return tuple(sorted(set(groups)))

    def account(self, object_name: str) -> str:
        return self.username or object_name

    def password_secret(self, object_name: str) -> tuple[str, str]:
        ref = self.password_secret_ref
        return (ref.name, ref.key) if ref is not None else (f"{object_name}-{PASSWORD_SUFFIX}", PASSWORD_KEY)


class GroupSpec(Model):
    server: ServerName
    # None: the object's name.
    name: AccountName | None = None
    gid: Id | None = None
    deletion_policy: Literal["Retain", "Delete"] = RETAIN

    def group_name(self, object_name: str) -> str:
        return self.name or object_name


SPECS = {SHARE: ShareSpec, USER: UserSpec, GROUP: GroupSpec}


@dataclass(frozen=True)
class Declared:
    """One declared object of a hook request."""

    kind: str
    name: str
    namespace: str
    generation: int | None
    deleting: bool
    spec: ShareSpec | UserSpec | GroupSpec

    @property
    def who(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def read(request: object, kind: str, key: str = "object") -> Declared:
    """The declared object at `request[key]`, or a 4xx naming the first bad field."""
    if not isinstance(request, dict):
        raise errors.HookError(400, "InvalidJSON", "request body must be a JSON object")
    found = request.get(key)
    metadata = errors.checked_object(found, key, kind, API_GROUP, "InvalidObject")
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or not names.is_dns1123_subdomain(name):
        raise errors.invalid(f"{key} name must be a DNS-1123 subdomain", f"{key}.metadata.name", "InvalidName")
    if not isinstance(namespace, str) or not namespace:
        raise errors.invalid(f"{key} has no namespace", f"{key}.metadata.namespace", "InvalidObject")
    raw = found.get("spec")
    if not isinstance(raw, dict):
        raise errors.invalid("spec must be an object", f"{key}.spec", "InvalidSpec")
    try:
        parsed = SPECS[kind].model_validate(raw)
    except pydantic.ValidationError as exc:
        raise errors.from_validation(exc, f"{key}.spec") from None
    generation = metadata.get("generation")
    return Declared(kind, name, namespace, generation if isinstance(generation, int) else None,
                    isinstance(metadata.get("deletionTimestamp"), str), parsed)
