"""The `DittoServer` parent: its spec with the contract's defaults, validated by pydantic.

Field names follow the established DittoFS operator CRD (camelCase in YAML, snake_case here).
Unknown fields are ignored: the CRD's structural schema prunes them before the hook sees them.
"""
import re
from typing import Annotated, Literal

import pydantic
from pydantic import AfterValidator, Field
from pydantic.alias_generators import to_camel

from hooks.request import caching, durations, errors, names, observed, stores

GROUP = "dittofs.dittofs.com"
KIND = "DittoServer"
NAME_MAX = 52                     # the StatefulSet controller appends a revision hash to pod labels
DEFAULT_POLLING_SECONDS = 30.0
MAX_GO_DURATION_SECONDS = (2**63 - 1) / 1e9   # Go's time.ParseDuration rejects anything longer
PASS_THROUGH_DEPTH = 32   # Kubernetes types nest a few levels; the answer must stay within orjson's 255

Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Size = Annotated[str, Field(pattern=r"^[0-9]+(Gi|Mi|Ti)$")]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]


def _shallow(value: dict) -> dict:
    if observed.too_deep(value, PASS_THROUGH_DEPTH):
        raise ValueError(f"nests more than {PASS_THROUGH_DEPTH} levels deep")
    return value


# resources / securityContext / podSecurityContext are Kubernetes types passed through as-is.
PassThrough = Annotated[dict[str, object], AfterValidator(_shallow)]


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class SecretKeyRef(Model):
    name: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)]
    # The Go operator's SecretKeySelector has it; a Secret the server needs cannot be optional.
    optional: Literal[False] = False


class SecretNameRef(Model):
    name: Annotated[str, Field(min_length=1)]


class Storage(Model):
    metadata_size: Size
    content_size: Size | None = None
    control_plane_size: Size = "1Gi"
    storage_class_name: str | None = None


class Sqlite(Model):
    path: str = "/data/controlplane/controlplane.db"


class PostgresSecretRef(Model):
    """The Secret whose keys `host`, `database`, `user`, `password` (and optional `port`,
    `sslmode`) DittoFS reads. `key` is accepted for the Go operator's CRD and not used."""

    name: Annotated[str, Field(min_length=1)]
    key: str | None = None
    optional: Literal[False] = False


class Database(Model):
    type: Literal["sqlite", "postgres"] = "sqlite"
    sqlite: Sqlite = Sqlite()
    postgres_secret_ref: PostgresSecretRef | None = None

    @property
    def uses_postgres(self) -> bool:
        """A postgres Secret wins over `type`, as in the Go operator."""
        return self.postgres_secret_ref is not None

    @pydantic.model_validator(mode="after")
    def _postgres_has_a_secret(self) -> "Database":
        # The Go operator runs SQLite then, and says nothing: a user who asked for PostgreSQL
        # would find out only when the pod's volume is lost.
        if self.type == "postgres" and self.postgres_secret_ref is None:
            raise ValueError("type postgres needs postgresSecretRef (the Secret with host, database, user, password)")
        return self


class ServiceMonitor(Model):
    """A prometheus-operator ServiceMonitor for the metrics Service (emitted only when the
    CompositeController declares the kind)."""

    enabled: bool = False
    interval: Annotated[str, Field(pattern=r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")] | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class Metrics(Model):
    enabled: bool = False
    port: Port = 9090
    path: Annotated[str, Field(pattern=r"^/")] = "/metrics"
    bearer_token_secret: SecretKeyRef | None = None   # scrapes must bring this token
    service_monitor: ServiceMonitor = Field(default_factory=ServiceMonitor)


class ControlPlane(Model):
    port: Port = 8080
    # The API speaks HTTPS (served natively with certSecretName, or by a mesh in front of it).
    tls: bool = False
    cert_secret_name: Annotated[str, Field(min_length=1)] | None = None      # tls.crt, tls.key, ca.crt
    client_ca_secret_name: Annotated[str | None, Field(min_length=1, alias="clientCASecretName")] = None  # ca.crt: mutual TLS

    @property
    def native_tls(self) -> bool:
        return self.cert_secret_name is not None

    @property
    def mutual_tls(self) -> bool:
        return self.client_ca_secret_name is not None

    @property
    def https(self) -> bool:
        return self.tls or self.native_tls

    @pydantic.model_validator(mode="after")
    def _client_ca_needs_a_cert(self) -> "ControlPlane":
        if self.client_ca_secret_name is not None and self.cert_secret_name is None:
            raise ValueError("clientCASecretName needs certSecretName (mutual TLS needs a server certificate)")
        return self


class Jwt(Model):
    secret_ref: SecretKeyRef | None = None
    access_token_duration: str = "15m"
    refresh_token_duration: str = "168h"


class Admin(Model):
    username: Annotated[str, Field(min_length=1)] = "admin"
    password_secret_ref: SecretKeyRef | None = None   # cleartext


def _refuse(rules: tuple[tuple[bool, str], ...]) -> None:
    """Raise the message of the first broken rule. The CRD has each as a CEL rule with the same
    message; this is for a CRD older than the hook."""
    for broken, message in rules:
        if broken:
            raise ValueError(message)


def _has_any(value: str | None, characters: str) -> bool:
    return value is not None and any(c in value for c in characters)


class Ldap(Model):
    """The LDAP/Active Directory identity provider (the Go operator's fields). DittoFS reads it
    from config.yaml at first boot only; `/discover` keeps its stored copy equal to this."""

    enabled: bool = False
    url: Annotated[str, Field(min_length=1)]
    start_tls: bool = Field(False, alias="startTLS")
    allow_plaintext: bool = False
    base_dn: Annotated[str, Field(min_length=1, alias="baseDN")]
    bind_dn: Annotated[str, Field(min_length=1, alias="bindDN")]
    bind_password_secret_ref: SecretKeyRef | None = None
    user_attr: str | None = None
    realm: str | None = None
    idmap: Literal["rfc2307", "rid"] | None = None
    nested_groups: bool = False
    ca_cert_file: str | None = None          # a path in the image
    ca_cert_secret_ref: SecretKeyRef | None = None   # or a Secret key the pod mounts (this project's)
    insecure_skip_verify: bool = False

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> "Ldap":
        scheme = self.url.strip().lower()
        _refuse((
            (self.enabled and not scheme.startswith(("ldap://", "ldaps://")),
             "identity.ldap.url must use the ldap:// or ldaps:// scheme"),
            (self.enabled and scheme.startswith("ldap://") and not (self.start_tls or self.allow_plaintext),
             "identity.ldap.url uses plaintext ldap://: set startTLS, or allowPlaintext to permit an unencrypted bind"),
            (self.enabled and self.bind_password_secret_ref is None,
             "identity.ldap.bindPasswordSecretRef is required when ldap is enabled (DittoFS refuses an anonymous bind)"),
            (self.user_attr is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", self.user_attr),
             "identity.ldap.userAttr must be an LDAP attribute name (a letter, then letters, digits or '-')"),
            (self.ca_cert_file is not None and self.ca_cert_secret_ref is not None,
             "identity.ldap: set caCertFile or caCertSecretRef, not both"),
        ))
        return self


class MachineAccount(Model):
    """An AD machine account for SMB's NETLOGON pass-through (the Go operator's fields)."""

    enabled: bool = False
    account_name: str | None = None
    secret_ref: SecretKeyRef | None = None
    keytab_secret_ref: SecretKeyRef | None = None
    dc_address: tuple[str, ...] = ()


class Kerberos(Model):
    """The Kerberos/Active Directory provider for NFSv4 (RPCSEC_GSS) and SMB (the Go operator's
    fields, with its webhook's rules and the shape checks DittoFS makes at start)."""

    enabled: bool = False
    service_principal: str | None = None
    realm: str | None = None
    netbios_domain: str | None = None
    dns_domain: str | None = None
    keytab_secret_ref: SecretKeyRef | None = None
    krb5_conf_secret_ref: SecretKeyRef | None = None
    krb5_conf: str | None = None    # a path in the image; a krb5ConfSecretRef wins
    machine_account: MachineAccount | None = None

    @property
    def machine_account_on(self) -> MachineAccount | None:
        """The machine account when it and Kerberos are enabled (DittoFS reads none otherwise)."""
        machine = self.machine_account
        return machine if self.enabled and machine is not None and machine.enabled else None

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> "Kerberos":
        machine = self.machine_account_on
        _refuse((
            (self.enabled and not self.service_principal,
             "identity.kerberos.servicePrincipal is required when kerberos is enabled"),
            (self.enabled and self.keytab_secret_ref is None,
             "identity.kerberos.keytabSecretRef is required when kerberos is enabled"),
            (_has_any(self.realm, "@/ "), "identity.kerberos.realm must not contain '@', '/' or spaces"),
            (_has_any(self.netbios_domain, ".@/ "),
             "identity.kerberos.netbiosDomain must be a single NetBIOS label (no '.', '@', '/' or spaces)"),
            (_has_any(self.dns_domain, "@/ "), "identity.kerberos.dnsDomain must not contain '@', '/' or spaces"),
            (machine is not None and not machine.account_name,
             "identity.kerberos.machineAccount.accountName is required when machineAccount is enabled"),
            (machine is not None and machine.secret_ref is None and machine.keytab_secret_ref is None,
             "identity.kerberos.machineAccount requires a secretRef or keytabSecretRef when enabled"),
        ))
        return self


class Identity(Model):
    type: Literal["memory"] = "memory"
    jwt: Jwt = Jwt()
    admin: Admin = Admin()
    ldap: Ldap | None = None
    kerberos: Kerberos | None = None

    @property
    def kerberos_on(self) -> Kerberos | None:
        """The Kerberos block when it is enabled (DittoFS reads none otherwise)."""
        return self.kerberos if self.kerberos is not None and self.kerberos.enabled else None

    @property
    def machine_account_on(self) -> MachineAccount | None:
        kerberos = self.kerberos_on
        return kerberos.machine_account_on if kerberos is not None else None


class Logging(Model):
    level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "json"
    output: Annotated[str, Field(min_length=1)] = "stdout"


def _interval(value: str) -> str:
    seconds = durations.parse(value)
    # Go keeps whole nanoseconds: anything shorter is 0, which DittoFS refuses.
    if value in ("@hourly", "@daily", "@weekly") or (seconds is not None and seconds >= 1e-9):
        return value
    raise ValueError("must be a Go duration of at least 1ns (24h) or @hourly, @daily, @weekly")


def _ttl(value: str | None) -> str | None:
    seconds = durations.parse(value) if value else 0.0
    if seconds is not None and seconds >= 0:
        return value
    raise ValueError("must be a Go duration (72h), or empty or 0 for no age bound")


class SnapshotPolicy(Model):
    """A scheduled snapshot policy for one share (DittoFS's `PUT /api/v1/shares/{share}/snapshot-policy`).
    Interval and ttl are checked here as DittoFS checks them, so a policy it would refuse (and
    the hook would send again on every poll) is refused where the user sees it."""

    share: Annotated[str, Field(min_length=1)]
    interval: Annotated[str, AfterValidator(_interval)]
    keep_last: Annotated[int, Field(ge=0, strict=True)] | None = None
    ttl: Annotated[str | None, AfterValidator(_ttl)] = None
    enabled: bool = True
    name_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,64}$")] | None = None


def _one_per_share(policies: tuple[SnapshotPolicy, ...]) -> tuple[SnapshotPolicy, ...]:
    shares = [p.share for p in policies]
    if len(set(shares)) != len(shares):
        raise ValueError("each share may have one snapshot policy")
    return tuple(sorted(policies, key=lambda p: p.share))


class AdapterDiscovery(Model):
    polling_interval: str = "30s"
    credentials_secret_ref: SecretNameRef | None = None

    @property
    def polling_seconds(self) -> float:
        seconds = durations.positive_or(self.polling_interval, DEFAULT_POLLING_SECONDS)
        # Longer than Go's time.Duration is invalid (and 1e400s would reach the answer as null).
        return seconds if seconds < MAX_GO_DURATION_SECONDS else DEFAULT_POLLING_SECONDS


class AdapterServices(Model):
    type: ServiceType = "LoadBalancer"
    annotations: dict[str, str] = Field(default_factory=dict)


class ApiService(Model):
    type: ServiceType = "ClusterIP"
    annotations: dict[str, str] = Field(default_factory=dict)


def _enabled(value: object) -> bool:
    return isinstance(value, dict) and value.get("enabled") is True


# Fields of the DittoFS Go operator's CRD that this hook does not build yet, and when a value
# asks for something: (path in the spec, test on its value). The CRD refuses them too (CEL);
# this is for a CRD older than the hook. Never dropped silently: a user would think them in force.
UNSUPPORTED = (
    ("percona", _enabled),
)
UNSUPPORTED_MESSAGE = "is a DittoFS operator field that this version of dittofs-hooks does not support yet; remove it"
# Refused for good, with what to do instead.
MESSAGES = {"percona": "percona cannot be a child of a Metacontroller parent (its database would be deleted with the server); create the PerconaPGCluster yourself and name its user Secret in database.postgresSecretRef (README: The DittoServer resource)"}


# The field `stores` below would hide the module inside the class body.
Stores = stores.Stores


class DittoServerSpec(Model):
    # None: the image of the DittoFS version the hook writes for (`dittofs.version.IMAGE`).
    image: Annotated[str, Field(min_length=1)] | None = None
    replicas: Literal[0, 1] = 1
    storage: Storage
    database: Database = Database()
    metrics: Metrics = Metrics()
    control_plane: ControlPlane = ControlPlane()
    identity: Identity = Identity()
    logging: Logging = Logging()
    adapter_discovery: AdapterDiscovery = AdapterDiscovery()
    # Defaults holding a dict are made by a factory: pydantic deep-copies a default that does
    # not hash on every validation, which costs several times as much.
    adapter_services: AdapterServices = Field(default_factory=AdapterServices)
    service: ApiService = Field(default_factory=ApiService)
    snapshot_policies: Annotated[tuple[SnapshotPolicy, ...], AfterValidator(_one_per_share)] = ()
    # Made through DittoFS's API by `/discover` (they live in its control-plane database).
    stores: Stores = Field(default_factory=Stores)
    resources: PassThrough | None = None
    # At least 36: 30 s gets the server killed mid-flush (DittoFS #938). The default covers the
    # preStop sleep, three shutdown stages of 30 s, and 10 s to spare.
    termination_grace_period_seconds: Annotated[int, Field(ge=36, strict=True)] = 105
    security_context: PassThrough | None = None
    pod_security_context: PassThrough = Field(default_factory=lambda: {"fsGroup": 65532})
    # The exact JSON text it was validated from (`caching.fingerprint`), set by `parse_spec`.
    _source_text: bytes | None = pydantic.PrivateAttr(default=None)

    @property
    def source_text(self) -> bytes | None:
        """The exact JSON text of the raw spec this was validated from; None when no text is exact."""
        return self._source_text

    @pydantic.model_validator(mode="after")
    def _ports_differ(self) -> "DittoServerSpec":
        if self.metrics.port == self.control_plane.port:
            raise ValueError("metrics.port must differ from controlPlane.port")
        return self

    @pydantic.model_validator(mode="after")
    def _stores_on_claims(self) -> "DittoServerSpec":
        self.stores.check_claims(self.storage.content_size is not None)
        ref = self.database.postgres_secret_ref
        self.stores.check_databases(ref.name if ref is not None else None)
        return self

    def referenced_secrets(self) -> list[str]:
        """Names of the user's Secrets that the pod or config depends on, sorted, unique."""
        found = set(self.restarting_secrets()) | set(self.api_kept_secrets())
        if self.control_plane.cert_secret_name is not None:
            found.add(self.control_plane.cert_secret_name)
        return sorted(found)

    def restarting_secrets(self) -> list[str]:
        """The referenced Secrets whose change needs the pod restarted (the config hash). Not the
        control plane's certificate, which DittoFS reloads from its files by itself (a
        cert-manager renewal must not cost an NFS outage), nor the LDAP bind password and the
        machine-account password, which `/discover` hands to the running server."""
        ldap, kerberos, machine = self.identity.ldap, self.identity.kerberos_on, self.identity.machine_account_on
        refs = [
            self.identity.jwt.secret_ref,
            self.identity.admin.password_secret_ref,
            self.database.postgres_secret_ref,
            ldap.ca_cert_secret_ref if ldap is not None else None,
            *((kerberos.keytab_secret_ref, kerberos.krb5_conf_secret_ref) if kerberos is not None else ()),
            machine.keytab_secret_ref if machine is not None else None,
        ]
        if self.metrics.enabled and self.metrics.bearer_token_secret is not None:
            refs.append(self.metrics.bearer_token_secret)
        found = {ref.name for ref in refs if ref is not None}
        if self.control_plane.client_ca_secret_name is not None:
            found.add(self.control_plane.client_ca_secret_name)
        return sorted(found)

    def api_kept_secrets(self) -> list[str]:
        """The Secrets whose values `/discover` hands to the running server (a password change
        reaches DittoFS without a restart)."""
        ldap, machine = self.identity.ldap, self.identity.machine_account_on
        refs = [ldap.bind_password_secret_ref if ldap is not None else None,
                machine.secret_ref if machine is not None else None]
        return sorted({*(ref.name for ref in refs if ref is not None), *self.stores.credentials_secrets()})


# Parsed specs by their exact JSON text. A parent's spec is the same on every sync until someone
# edits it, and validating it costs more than anything else the hook reads. A DittoServerSpec
# is immutable; the dicts it passes through (resources, securityContext, podSecurityContext)
# are copied where they go into an answer. Bounded by the size of the texts (a spec's is about
# half a kilobyte); a parsed spec is small next to its text.
_parsed: caching.Bounded[DittoServerSpec] = caching.Bounded(4 * 1024 * 1024)


def refuse_unsupported(raw: dict, field: str) -> None:
    """A 422 naming the first field of `UNSUPPORTED` whose value asks for something."""
    for path, asks in UNSUPPORTED:
        value: object = raw
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if asks(value):
            raise errors.invalid(MESSAGES.get(path, f"{path} {UNSUPPORTED_MESSAGE}"), f"{field}.{path}", "UnsupportedField")


def parse_spec(raw: object, field: str = "parent.spec") -> DittoServerSpec:
    """Validate a raw spec, raising a 422 `HookError` that names the first bad field."""
    if not isinstance(raw, dict):
        raise errors.invalid("spec must be an object", field, "InvalidSpec")
    refuse_unsupported(raw, field)
    key = caching.fingerprint(raw)
    found = _parsed.get(key) if key is not None else None
    if found is not None:
        return found
    try:
        found = DittoServerSpec.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise errors.from_validation(exc, field) from None
    found._source_text = key
    if key is not None:
        _parsed.put(key, found, cost=len(key))
    return found


def check_parent(parent: object, key: str = "parent") -> tuple[str, str, dict]:
    """(name, namespace, metadata) of the DittoServer at `request[key]`, or a 422 naming the field."""
    metadata = errors.checked_object(parent, key, KIND, GROUP, "InvalidParent")
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or not names.is_dns1035_label(name, NAME_MAX):
        raise errors.invalid(
            f"{key} name must be a DNS-1035 label of at most {NAME_MAX} characters",
            f"{key}.metadata.name", "InvalidName",
        )
    if not isinstance(namespace, str) or not namespace:
        raise errors.invalid(f"{key} has no namespace", f"{key}.metadata.namespace", "InvalidParent")
    return name, namespace, metadata


def read_parent(request: object, key: str = "parent") -> tuple[str, str, dict, DittoServerSpec]:
    """(name, namespace, metadata, spec) of the DittoServer at `request[key]`: the first thing
    every hook does (sync and customize read `parent`, the decorator `object`), or a 4xx."""
    if not isinstance(request, dict):
        raise errors.HookError(400, "InvalidJSON", "request body must be a JSON object")
    parent = request.get(key)
    name, namespace, metadata = check_parent(parent, key)
    return name, namespace, metadata, parse_spec(parent.get("spec"), f"{key}.spec")
