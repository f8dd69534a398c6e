"""The declared stores (`spec.stores`) as DittoFS v0.29's API takes them, and how `/discover`
makes them: `POST /api/v1/store/metadata` and `/api/v1/store/block/{local,remote}` with
`{name, type, config}`, `config` a JSON text (what `dfsctl store ... add` sends).

Paths are derived, never given: a badger store in a folder of its name on the `metadata` claim,
an `fs` store on the `content` claim, wherever the live StatefulSet mounts them (a StatefulSet
this project made before DittoFS v0.29 mounts them elsewhere, `layout.claim_paths`). A store is made once; one that exists already (made by
hand, or before the control-plane database was made anew) is taken as it is when its type
matches, and reported otherwise: the hook never rewrites a store that may hold data. Only an
s3 store's settings are sent again when they change (credentials rotate). Stores removed from
the spec are left in DittoFS, as shares may still use them.
"""
import hashlib
import json
from dataclasses import dataclass
from urllib.parse import quote

from hooks.dittofs import layout
from hooks.request import stores

METADATA, LOCAL, REMOTE = "metadata", "local", "remote"
PATHS = {METADATA: "/api/v1/store/metadata", LOCAL: "/api/v1/store/block/local", REMOTE: "/api/v1/store/block/remote"}


# What a store's Secret adds to its config: (key in the Secret, key in the config, required).
S3_KEYS = ((stores.ACCESS_KEY_ID_KEY, "access_key_id", True), (stores.SECRET_ACCESS_KEY_KEY, "secret_access_key", True))
# The keys of the control plane's database Secret (`layout.POSTGRES_KEYS`), DittoFS's names.
POSTGRES_KEYS = tuple((key, key, not optional) for key, optional in layout.POSTGRES_KEYS)


@dataclass(frozen=True)
class Wanted:
    """One store as DittoFS should hold it. `secret` names the Secret (S3 credentials, a
    PostgreSQL connection) whose values `secret_keys` adds to the config only when it is sent:
    they never reach a digest."""

    kind: str
    name: str
    type: str
    config: dict
    secret: str | None = None
    secret_keys: tuple = ()

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def path(self) -> str:
        return PATHS[self.kind]

    def body(self, credentials: dict | None = None) -> dict:
        config = {**self.config, **(credentials or {})}
        return {"name": self.name, "type": self.type, "config": json.dumps(config, sort_keys=True, separators=(",", ":"))}

    def digest(self, secret_version: str | None = None) -> str:
        text = json.dumps([self.body(), self.secret, secret_version], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _s3_config(s3: stores.S3) -> dict:
    config = {"bucket": s3.bucket, "region": s3.region}
    if s3.endpoint:
        config["endpoint"] = s3.endpoint
    if s3.prefix:
        config["prefix"] = s3.prefix
    if s3.allow_private_endpoint:
        config["allow_private_endpoint"] = True
    return config


def statefulset_claims(sts: object) -> list[str] | None:
    """The claim templates of a live StatefulSet; None when there is none, or it names none
    (then nothing says it has another layout than today's)."""
    if not isinstance(sts, dict):
        return None
    templates = sts.get("spec", {}).get("volumeClaimTemplates") if isinstance(sts.get("spec"), dict) else None
    found = [t["metadata"]["name"] for t in templates if isinstance(t, dict) and isinstance(t.get("metadata"), dict)
             and isinstance(t["metadata"].get("name"), str)] if isinstance(templates, list) else []
    return found or None


def wanted(declared: stores.Stores, claims: list[str] | None = None) -> list[Wanted]:
    """Every declared store, metadata first (a share needs its stores before it is made), with
    paths on the claims as a pod with these claim templates mounts them."""
    paths = layout.claim_paths(claims)
    found = [Wanted(METADATA, s.name, s.type, {"path": f"{paths['metadata']}/{s.name}"} if s.type == "badger" else {},
                    s.postgres.secret_ref.name if s.postgres is not None else None, POSTGRES_KEYS)
             for s in declared.metadata]
    found += [Wanted(LOCAL, s.name, s.type, {"path": f"{paths['content']}/{s.name}"} if s.type == "fs" else {})
              for s in declared.local]
    found += [Wanted(REMOTE, s.name, s.type, _s3_config(s.s3) if s.s3 is not None else {},
                     s.s3.credentials_secret_ref.name if s.s3 is not None else None, S3_KEYS)
              for s in declared.remote]
    return found


# What says where a store's data is, beside a path: changing it would leave the data behind.
WHERE = {"s3": (("bucket", ""), ("prefix", ""), ("endpoint", "")), "postgres": (("host", ""), ("port", 5432),
                                                                             ("database", ""))}


def mismatch(want: Wanted, held: dict, sent: dict | None = None) -> str | None:
    """Why an existing store cannot be taken for the declared one (`sent`: the config the hook
    would send, its Secret's values included), or None. The hook never moves a store's data."""
    if held.get("type") != want.type:
        return f"{want.kind} store {want.name} exists in DittoFS with type {held.get('type')!r}, not {want.type!r}"
    config = held.get("config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except (ValueError, RecursionError):
            config = None
    config = config if isinstance(config, dict) else {}
    if config.get("dbname") and not config.get("database"):   # dfsctl's name for it
        config = {**config, "database": config["dbname"]}
    for key, default in WHERE.get(want.type, ()):
        have, wanted = config.get(key, default), (sent or want.config).get(key, default)
        if str(have or default) != str(wanted or default):
            return (f"{want.kind} store {want.name} exists in DittoFS with {key} {have!r}, not {wanted!r}: its data is "
                    "there, so the hook does not move it; declare a new store under another name")
    path = config.get("path") if isinstance(config, dict) else None
    if "path" in want.config and path != want.config["path"] and not on_a_claim(path):
        return (f"{want.kind} store {want.name} exists in DittoFS with path {path!r}, which is on no claim "
                "(its data goes with the pod); it is left as it is")
    return None


def on_a_claim(path: object) -> bool:
    """Whether a store's folder is on one of the data claims, in either layout (a store made by
    hand, as Go operator users make them, is taken where it is: moving it would lose its data)."""
    claims = (layout.MOUNTS["metadata"], layout.MOUNTS["content"],
              layout.LEGACY_MOUNTS["metadata"], layout.LEGACY_MOUNTS["content"])
    return isinstance(path, str) and any(path == claim or path.startswith(claim + "/") for claim in claims)


def secret_config(want: Wanted, values: dict[str, str]) -> dict:
    """The config keys a store's Secret gives (DittoFS reads a PostgreSQL port as a number)."""
    found = {config_key: values[key] for key, config_key, _ in want.secret_keys if key in values}
    if "port" in found:
        found["port"] = int(found["port"]) if found["port"].isdigit() else found["port"]
    return found


def item_path(want: Wanted) -> str:
    return f"{want.path}/{quote(want.name, safe='')}"
