"""The stores a `DittoServer` declares (`spec.stores`): metadata stores, local block stores and
remote block stores, by name, as `dfsctl store ... add` makes them.

They are server infrastructure: their data lives on the server's claims, so their paths are not
given but derived (`dittofs.stores`). A durable store whose data would not be on a claim is
refused here; `memory` stores are allowed and reported as ephemeral.
"""
from typing import Annotated, Literal

import pydantic
from pydantic import AfterValidator, Field
from pydantic.alias_generators import to_camel

# A store's name becomes a folder name under its claim: a DNS label keeps it a single safe one.
StoreName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
EPHEMERAL = "memory"
# Keys of an S3 credentials Secret (DittoFS's access_key_id / secret_access_key).
ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY = "access-key-id", "secret-access-key"


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class SecretRef(Model):
    name: Annotated[str, Field(min_length=1)]


class Postgres(Model):
    # A Secret with the keys of `database.postgresSecretRef` (host, database, user, password, and
    # optional port, sslmode), naming a database of the store's own.
    secret_ref: SecretRef


class MetadataStore(Model):
    """`badger` keeps its files on the `metadata` claim; `postgres` in a PostgreSQL database of
    its own; `memory` loses everything on restart."""

    name: StoreName
    type: Literal["badger", "postgres", "memory"]
    postgres: Postgres | None = None

    @pydantic.field_validator("name")
    @classmethod
    def _not_the_control_plane(cls, name: str) -> str:
        # On a StatefulSet made before DittoFS v0.29 the control plane's database is the
        # folder `controlplane` of the metadata claim.
        if name == "controlplane":
            raise ValueError("controlplane is the control plane's folder on the metadata claim: name the store otherwise")
        return name

    @pydantic.model_validator(mode="after")
    def _postgres_has_a_database(self) -> "MetadataStore":
        if self.type == "postgres" and self.postgres is None:
            raise ValueError(f"metadata store {self.name} of type postgres needs postgres.secretRef (a Secret with "
                             "host, database, user, password of a database of its own)")
        return self


class LocalStore(Model):
    """`fs` keeps its blocks on the `content` claim (storage.contentSize); `memory` is ephemeral."""

    name: StoreName
    type: Literal["fs", "memory"]


class S3(Model):
    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    region: Annotated[str, Field(min_length=1)] = "us-east-1"
    endpoint: Annotated[str, Field(pattern=r"^https?://")] | None = None
    prefix: str | None = None
    # DittoFS refuses an endpoint on a loopback or private address (an SSRF guard) unless told:
    # an S3 service inside the cluster (MinIO, SeaweedFS) needs this.
    allow_private_endpoint: bool = False
    # The Secret with keys access-key-id and secret-access-key: DittoFS refuses an s3 store without.
    credentials_secret_ref: SecretRef


class RemoteStore(Model):
    """`s3` (an S3-compatible object store) or `memory`. DittoFS v0.29 has no remote `fs`
    (its type `filesystem` was removed), so none is offered."""

    name: StoreName
    type: Literal["s3", "memory"]
    s3: S3 | None = None

    @pydantic.model_validator(mode="after")
    def _s3_has_settings(self) -> "RemoteStore":
        if self.type == "s3" and self.s3 is None:
            raise ValueError(f"remote store {self.name} of type s3 needs s3 (bucket, credentialsSecretRef)")
        return self


def _unique(stores: tuple) -> tuple:
    names = [store.name for store in stores]
    if len(set(names)) != len(names):
        raise ValueError("store names must be unique within their kind")
    return tuple(sorted(stores, key=lambda store: store.name))


class Stores(Model):
    metadata: Annotated[tuple[MetadataStore, ...], AfterValidator(_unique)] = ()
    local: Annotated[tuple[LocalStore, ...], AfterValidator(_unique)] = ()
    remote: Annotated[tuple[RemoteStore, ...], AfterValidator(_unique)] = ()

    @property
    def empty(self) -> bool:
        return not (self.metadata or self.local or self.remote)

    def credentials_secrets(self) -> list[str]:
        """The Secrets `/discover` reads when it makes a store: S3 credentials, PostgreSQL connections."""
        return sorted({*(store.s3.credentials_secret_ref.name for store in self.remote if store.s3 is not None),
                       *(store.postgres.secret_ref.name for store in self.metadata if store.postgres is not None)})

    def ephemeral(self) -> list[str]:
        """`kind/name` of every store whose data goes with the pod."""
        return [f"{kind}/{store.name}" for kind, group in (("metadata", self.metadata), ("local", self.local),
                                                             ("remote", self.remote))
                for store in group if store.type == EPHEMERAL]

    def check_databases(self, control_plane_secret: str | None) -> None:
        """A postgres metadata store cannot share the control plane's database: both have a
        `shares` table."""
        for store in self.metadata:
            if store.postgres is not None and store.postgres.secret_ref.name == control_plane_secret:
                raise ValueError(f"metadata store {store.name} names the control plane's database Secret: DittoFS's "
                                 "metadata and control-plane tables would share one database (both have a table "
                                 "shares); give the store a database of its own")

    def check_claims(self, has_content_claim: bool) -> None:
        """A durable local store keeps its blocks on the content claim: without one they would
        vanish with the pod."""
        for store in self.local:
            if store.type == "fs" and not has_content_claim:
                raise ValueError(f"local store {store.name} of type fs keeps its blocks on the content claim: "
                                 "set storage.contentSize (or use type memory, whose data goes with the pod)")
