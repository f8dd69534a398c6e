"""The DecoratorController hooks of `DittoShare`, `DittoUser` and `DittoGroup`: which objects a
poll needs (customize), and one poll (sync, and finalize on deletion).

A customize hook sees only its own object, so everything it relates has a name it can derive:
the server (`spec.server`), the server's manager-account Secret `{server}-manager-credentials`
(made by the server's sync hook, provisioned in DittoFS by `/discover`), and a user's password
Secret (its own `passwordSecretRef`, or the generated `{object}-password`, an attachment kept
once it exists). The answer's `status` is built by `children.declared_status` from the Outcome.
"""
import base64
import json
import logging
import secrets
from dataclasses import dataclass, field

from hooks.dittofs import client, discovery, keeping, layout, pacing
from hooks.request import controlplane, declared, errors, observed, spec

log = logging.getLogger("hooks.dittofs.decorate")

SERVER_RESOURCE = "dittoservers"
APPLIED_ANNOTATION = "dittofs.io/applied"      # on a DittoUser: which password DittoFS holds
GRANTED_ANNOTATION = "dittofs.io/granted"      # on a DittoShare: the grants the hook answers for
QUOTA_ANNOTATION = "dittofs.io/quota"          # on a DittoShare: the quota in bytes it last set
PASSWORD_LENGTH = 32
REFUSED = controlplane.ADMIN_CREDENTIALS_REFUSED


@dataclass
class Outcome:
    """What one call found and did, for the status and the answer."""

    obj: declared.Declared
    result: keeping.Result
    name: str                                   # the share, user or group name in DittoFS
    resync: float = spec.DEFAULT_POLLING_SECONDS
    attachments: list[dict] = field(default_factory=list)
    annotations: dict = field(default_factory=dict)
    ephemeral: bool = False                     # a share whose stores lose data with the pod


def related_resources(request: object, kind: str) -> dict:
    obj = declared.read(request, kind, "parent")
    server = obj.spec.server
    secrets = [f"{server}-{layout.MANAGER_SUFFIX}"]
    if kind == declared.USER:
        secrets.append(obj.spec.password_secret(obj.name)[0])
    return {"relatedResources": [
        {"apiVersion": f"{declared.API_GROUP}/v1alpha1", "resource": SERVER_RESOURCE, "namespace": obj.namespace,
         "names": [server]},
        # The server's pod: whether its DittoFS can answer (`dittofs.pacing`), as for /discover.
        {"apiVersion": "apps/v1", "resource": "statefulsets", "namespace": obj.namespace, "names": [server]},
        {"apiVersion": "v1", "resource": "secrets", "namespace": obj.namespace, "names": sorted(set(secrets))},
    ]}


def find_object(group: object, kind: str, name: str, namespace: str) -> dict | None:
    """The object of `kind` called `name` in a related or attachments map."""
    return observed.find(group, kind, name, namespace)


def find_server(related: object, name: str, namespace: str) -> dict | None:
    objects = related.items() if isinstance(related, dict) else ()
    for group, _ in objects:
        if isinstance(group, str) and group.startswith("DittoServer."):
            return find_object(related, group, name, namespace)
    return None


class Keeper:
    """The hooks' long-lived parts: the API client (shared with discovery: one pool of
    connections, one token cache) and where the API Services are."""

    def __init__(self, api: client.Client, url_template: str = discovery.DEFAULT_URL_TEMPLATE, random_token=None,
                 trust: discovery.TrustStore | None = None):
        self.api, self.url_template = api, url_template
        self.trust = trust or discovery.TrustStore()
        self.random_token = random_token or (lambda length: secrets.token_urlsafe(length)[:length])

    def sync(self, request: object, kind: str) -> Outcome:
        obj = declared.read(request, kind)
        outcome = Outcome(obj, keeping.Result(), keeping.name_of(obj))
        finalizing = request.get("finalizing") is True
        taken = keeping.reserved(obj)
        if taken is not None:
            # Never written, never deleted: a deletion has nothing of this object's to undo.
            outcome.result = keeping.Result(keeping.RESERVED_NAME, taken, finalized=finalizing)
            return outcome
        if kind == declared.USER:
            outcome.attachments = self.password_attachment(request, obj)
        server = find_server(request.get("related"), obj.spec.server, obj.namespace)
        if server is None or isinstance(observed.dig(server, "metadata", "deletionTimestamp"), str):
            gone = server is None
            outcome.result = keeping.Result(keeping.SERVER_NOT_FOUND if gone else keeping.SERVER_DELETING,
                                            f"DittoServer {obj.spec.server} " + ("does not exist in this namespace"
                                                                                  if gone else "is being deleted"))
            # No server to ask: a deletion is done here. What its DittoFS held stays on its claims
            # (kept after the server goes): a server made again on them still has it.
            outcome.result.finalized = finalizing
            return outcome
        twin = twin_of(server, obj)
        if twin is not None:
            others, first = twin
            if finalizing:   # another object still declares it: nothing of it is deleted
                outcome.result = keeping.Result(keeping.CONFLICT, f"{outcome.name} is still declared by "
                                                f"{obj.kind} {', '.join(others)}: left in DittoFS", finalized=True)
                return outcome
            if not first:
                outcome.result = keeping.Result(keeping.CONFLICT, (
                    f"{outcome.name} is declared by {obj.kind} {', '.join(others)} too, which came first: only "
                    "that one is kept in step; delete one of them"))
                return outcome
        try:
            parsed = spec.parse_spec(server.get("spec"), "related.spec")
        except errors.HookError as exc:
            outcome.result = keeping.Result(keeping.SERVER_INVALID, f"DittoServer {obj.spec.server}: {exc.message}")
            return outcome
        outcome.resync = parsed.adapter_discovery.polling_seconds
        if kind == declared.SHARE:
            outcome.ephemeral = ephemeral(obj.spec, parsed)
        if finalizing and obj.spec.deletion_policy == declared.RETAIN:
            outcome.result.finalized = True
            return outcome
        waits = pacing.not_ready(request.get("related"), obj.spec.server, obj.namespace)
        if waits is not None:
            # Nothing can answer: no call, and the StatefulSet's first ready replica (a related
            # object) calls this hook again. A deletion waits too: nothing is dropped unseen.
            outcome.result = keeping.Result(controlplane.NOT_READY, waits)
            outcome.resync = pacing.NOT_READY_RESYNC_SECONDS
            return outcome
        try:
            self.apply(request, obj, parsed, outcome, finalizing)
        except keeping.Refused as exc:
            outcome.result.reason, outcome.result.message = exc.reason, str(exc)
        except client.Unavailable as exc:
            outcome.result.reason, outcome.result.message = exc.reason, str(exc)
        if outcome.result.synced and not outcome.result.message:
            outcome.result.message = "; ".join(outcome.result.changed) or f"DittoFS holds {outcome.name} as declared"
        return outcome

    def apply(self, request: dict, obj: declared.Declared, parsed: spec.DittoServerSpec, outcome: Outcome,
              finalizing: bool) -> None:
        if obj.kind == declared.SHARE:
            check_stores(obj.spec, parsed)
        creds, verify = self.manager(request, obj, parsed)
        call = self.api.call(verify, None)
        if obj.kind == declared.SHARE:
            work = keeping.ShareApply(obj, call, creds, REFUSED)
        elif obj.kind == declared.GROUP:
            work = keeping.GroupApply(obj, call, creds, REFUSED)
        else:
            # A deletion needs no password (its Secret may be deleted with the user).
            password, version = ("", "") if finalizing else self.password(request, obj, outcome)
            work = keeping.UserApply(obj, call, creds, REFUSED, password=password, password_version=version)
        outcome.result = work.result
        if finalizing:
            work.remove()
            work.result.finalized = True
            return
        if obj.kind == declared.USER:
            applied = observed.dig(request, "object", "metadata", "annotations", APPLIED_ANNOTATION)
            held = work.ensure(applied if isinstance(applied, str) else None)
            if held != applied:
                outcome.annotations[APPLIED_ANNOTATION] = held
        elif obj.kind == declared.SHARE:
            annotations = observed.dig(request, "object", "metadata", "annotations", default={})
            annotations = annotations if isinstance(annotations, dict) else {}
            raw = annotations.get(GRANTED_ANNOTATION)
            before = read_granted(raw)
            quota = annotations.get(QUOTA_ANNOTATION)
            now = work.ensure(before, int(quota) if isinstance(quota, str) and quota.isdigit() else None)
            if now != before or raw is None:
                outcome.annotations[GRANTED_ANNOTATION] = json.dumps(sorted(now), separators=(",", ":"))
            if quota != str(obj.spec.quota_bytes or 0):
                outcome.annotations[QUOTA_ANNOTATION] = str(obj.spec.quota_bytes or 0)
        else:
            work.ensure()

    def manager(self, request: dict, obj: declared.Declared,
                parsed: spec.DittoServerSpec) -> tuple[client.Credentials, bool | str]:
        """The manager account's credentials, and what the server's certificate is checked
        against: the control plane's CA that the manager Secret carries, else the system's roots."""
        server = obj.spec.server
        secret = f"{server}-{layout.MANAGER_SUFFIX}"
        found = find_object(request.get("related"), "Secret.v1", secret, obj.namespace)
        url = discovery.default_url(server, obj.namespace, parsed.control_plane.port, self.url_template,
                                    parsed.control_plane.https)
        password = discovery.secret_value(found, secret, layout.PASSWORD_KEY)
        try:
            pem = discovery.secret_value(found, secret, layout.CA_KEY)
        except client.Unavailable:
            pem = None
        verify = self.trust.path(pem) if pem and "-----BEGIN CERTIFICATE-----" in pem else True
        return client.Credentials(url, layout.MANAGER_USER, password), verify

    # A user's password ----------------------------------------------------------------------------

    def password_attachment(self, request: dict, obj: declared.Declared) -> list[dict]:
        """The generated password Secret (random only until it exists), or none for a user's own."""
        if obj.spec.password_secret_ref is not None:
            return []
        name, key = obj.spec.password_secret(obj.name)
        found = find_object(request.get("attachments"), "Secret.v1", name, obj.namespace)
        data = observed.dig(found, "data", default={})
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            value = base64.b64encode(self.random_token(PASSWORD_LENGTH).encode()).decode()
        return [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": name, "namespace": obj.namespace,
                              "labels": {"app.kubernetes.io/managed-by": "dittofs-hooks"}},
                 "data": {key: value}}]

    def password(self, request: dict, obj: declared.Declared, outcome: Outcome) -> tuple[str, str]:
        """(password, digest of its Secret's version) from the Secret as the cluster holds it."""
        name, key = obj.spec.password_secret(obj.name)
        group = "attachments" if obj.spec.password_secret_ref is None else "related"
        found = find_object(request.get(group), "Secret.v1", name, obj.namespace)
        if found is None:
            waits = "is made by this hook; the next poll uses it" if group == "attachments" else "does not exist"
            if group == "attachments" and find_object(request.get("related"), "Secret.v1", name, obj.namespace):
                # Metacontroller never takes over a Secret it did not make (its create is refused).
                waits = ("exists but is not this DittoUser's: name it in passwordSecretRef, or delete it so that "
                         "the hook makes its own")
            raise keeping.Refused(keeping.PASSWORD_MISSING, f"Secret {name} {waits}")
        try:
            password = discovery.secret_value(found, name, key)
        except client.Unavailable as exc:
            raise keeping.Refused(keeping.PASSWORD_MISSING, str(exc)) from None
        version = observed.dig(found, "metadata", "resourceVersion")
        return password, keeping.password_digest(name, key, version)


def read_granted(raw: object) -> frozenset[str]:
    """The grants a share's annotation says the hook made; none when it is absent or malformed
    (then nothing is revoked: only what the hook is sure it made)."""
    try:
        found = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        return frozenset()
    return frozenset(item for item in found if isinstance(item, str) and "/" in item) if isinstance(found, list) \
        else frozenset()


def twin_of(server: dict, obj: declared.Declared) -> tuple[list[str], bool] | None:
    """(the other objects that declare this object's name on its server, whether this one is
    the one kept in step), from the server's `dittofs.io/declared-twice`; None when none does."""
    raw = observed.dig(server, "metadata", "annotations", controlplane.TWINS_ANNOTATION)
    try:
        found = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        return None
    count = declared.COLLECTIONS[obj.kind]
    names = observed.dig(found, count, keeping.name_of(obj)) if isinstance(found, dict) else None
    if not isinstance(names, list) or obj.name not in names or len(names) < 2:
        return None
    return [n for n in names if n != obj.name and isinstance(n, str)], names[0] == obj.name


def check_stores(share: declared.ShareSpec, server: spec.DittoServerSpec) -> None:
    """A share's stores must be declared on its server (`spec.stores`)."""
    declared_stores = server.stores
    wanted = (("metadata", share.metadata_store, declared_stores.metadata),
              ("local", share.local_store, declared_stores.local),
              ("remote", share.remote_store, declared_stores.remote))
    for kind, name, group in wanted:
        if name is not None and name not in {store.name for store in group}:
            raise keeping.Refused(keeping.STORE_NOT_DECLARED,
                                  f"{kind} store {name} is not declared in DittoServer {share.server} spec.stores.{kind}")


def ephemeral(share: declared.ShareSpec, server: spec.DittoServerSpec) -> bool:
    """Whether some of a share's data goes with the pod: any of its stores keeps it in memory
    (a remote store in memory loses the blocks it was handed; a local one, those not yet sent)."""
    found = server.stores.ephemeral()
    return any(f"{kind}/{name}" in found for kind, name in (("metadata", share.metadata_store),
                                                             ("local", share.local_store), ("remote", share.remote_store)))
