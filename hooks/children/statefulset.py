"""The DittoFS StatefulSet: one `dittofs` container with the merged port list.

`selector`, `serviceName` and `volumeClaimTemplates` cannot change after creation; when a
StatefulSet is observed they are copied from it verbatim. On creation the claim templates are
written in the form the API server stores, so the second sync returns exactly the first.
"""
from hooks.children import configmap
from hooks.dittofs import config, layout
from hooks.request import context, observed, ports

CONFIG_HASH_ANNOTATION = "dittofs.io/config-hash"
CONFIG_DIR = "/config"
COMMAND = ["/app/dittofs", "start", "--foreground", "--config", f"{CONFIG_DIR}/{config.FILE_NAME}"]
IMMUTABLE = ("selector", "serviceName", "volumeClaimTemplates")


def _secret_env(name: str, secret: str, key: str, optional: bool = False) -> dict:
    ref = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def env(ctx: context.Context) -> list[dict]:
    s = ctx.spec
    jwt = s.identity.jwt.secret_ref
    found = [_secret_env("DITTOFS_CONTROLPLANE_SECRET", *(
        (jwt.name, jwt.key) if jwt else (ctx.child_name(layout.JWT_SUFFIX), layout.JWT_KEY)))]
    admin = s.identity.admin.password_secret_ref
    if admin:
        found.append(_secret_env("DITTOFS_ADMIN_PASSWORD_HASH", admin.name, admin.key))
    else:
        found.append(_secret_env("DITTOFS_ADMIN_INITIAL_PASSWORD", ctx.child_name(layout.ADMIN_SUFFIX),
                                 layout.PASSWORD_KEY, optional=True))
    if s.database.postgres_secret_ref:
        ref = s.database.postgres_secret_ref
        found.append(_secret_env("DITTOFS_DATABASE_POSTGRES", ref.name, ref.key))
    if s.s3:
        found += s3_env(s.s3)
    return found


def s3_env(s3) -> list[dict]:
    found = []
    creds = s3.credentials_secret_ref
    if creds:
        found += [
            _secret_env("AWS_ACCESS_KEY_ID", creds.secret_name, creds.access_key_id_key),
            _secret_env("AWS_SECRET_ACCESS_KEY", creds.secret_name, creds.secret_access_key_key),
            _secret_env("AWS_ENDPOINT_URL", creds.secret_name, creds.endpoint_key, optional=True),
        ]
    if s3.region:
        found.append({"name": "AWS_REGION", "value": s3.region})
    if s3.bucket:
        found.append({"name": "AWS_S3_BUCKET", "value": s3.bucket})
    return found


def volume_names(ctx: context.Context) -> list[tuple[str, str]]:
    """(claim name, mount path) pairs, in a fixed order."""
    found = [("metadata", "/data/metadata"), ("cache", "/data/cache")]
    if ctx.spec.storage.content_size:
        found.append(("content", "/data/content"))
    return found


def mounts(ctx: context.Context) -> list[dict]:
    found = [{"name": claim, "mountPath": path} for claim, path in volume_names(ctx)]
    # The control-plane database (users, shares, adapter settings) lives on the metadata
    # volume, so a pod restart does not forget which adapters exist.
    found.append({"name": "metadata", "mountPath": "/data/controlplane", "subPath": "controlplane"})
    found.append({"name": "config", "mountPath": CONFIG_DIR, "readOnly": True})
    return found


def claim(name: str, size: str, storage_class: str | None) -> dict:
    """A volumeClaimTemplate in the API server's stored form."""
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, "volumeMode": "Filesystem"}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": spec, "status": {"phase": "Pending"}}


def claim_specs(ctx: context.Context) -> list[tuple[str, str, str | None]]:
    """(claim name, size, storage class) of each volumeClaimTemplate, in a fixed order."""
    st = ctx.spec.storage
    sizes = {"metadata": st.metadata_size, "cache": st.cache_size, "content": st.content_size}
    return [(name, sizes[name], st.storage_class_name) for name, _ in volume_names(ctx)]


def claims(ctx: context.Context) -> list[dict]:
    return [claim(name, size, storage_class) for name, size, storage_class in claim_specs(ctx)]


def _probe(path: str, **timing) -> dict:
    return {"httpGet": {"path": path, "port": "api"}, **timing}


def container(ctx: context.Context, plan: ports.Plan) -> dict:
    found = {
        "name": context.CONTAINER,
        "image": ctx.spec.image,
        "command": list(COMMAND),
        "ports": [p.as_container_port() for p in plan.ports],
        "env": env(ctx),
        "volumeMounts": mounts(ctx),
        "startupProbe": _probe("/health", periodSeconds=2, failureThreshold=60),
        "livenessProbe": _probe("/health", periodSeconds=10, failureThreshold=3),
        "readinessProbe": _probe("/health/ready", periodSeconds=5, failureThreshold=3),
        # Give Service endpoints time to drop the pod before DittoFS stops taking connections.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
    }
    if ctx.spec.resources:
        found["resources"] = copied(ctx.spec.resources)
    if ctx.spec.security_context:
        found["securityContext"] = copied(ctx.spec.security_context)
    return found


def copied(value):
    """A copy of a passed-through JSON value: the parsed spec is shared between syncs (see
    spec.parse_spec), so nothing of it goes into an answer that a caller might change."""
    if isinstance(value, dict):
        return {key: copied(item) if isinstance(item, (dict, list)) else item for key, item in value.items()}
    if isinstance(value, list):
        return [copied(item) if isinstance(item, (dict, list)) else item for item in value]
    return value


def observed_container_ports(sts: dict | None) -> list[dict]:
    """The `dittofs` container's ports in an observed StatefulSet."""
    for item in observed.listed(observed.dig(sts, "spec", "template", "spec", "containers")):
        if isinstance(item, dict) and item.get("name") == context.CONTAINER:
            return [p for p in observed.listed(item.get("ports")) if isinstance(p, dict)]
    return []


def storage_drift(ctx: context.Context) -> str | None:
    """What spec.storage asks for that the observed claim templates do not have, if anything."""
    if ctx.statefulset is None:
        return None
    templates = observed.listed(observed.dig(ctx.statefulset, "spec", "volumeClaimTemplates"))
    have = [(observed.dig(t, "metadata", "name"), observed.dig(t, "spec", "resources", "requests", "storage"),
             observed.dig(t, "spec", "storageClassName")) for t in templates if isinstance(t, dict)]
    # What claim() writes: no storageClassName when the class is empty.
    want = [(name, size, storage_class or None) for name, size, storage_class in claim_specs(ctx)]
    # Usually equal as written; else compare sorted by repr (observed values may be of any
    # JSON type, which do not compare), since the order of claim templates does not matter.
    if have == want or sorted(have, key=repr) == sorted(want, key=repr):
        return None
    return (f"spec.storage asks for {want} but the StatefulSet's volumeClaimTemplates are {have}; "
            "they cannot change in place, so the change is ignored")


def observed_fixed(ctx: context.Context) -> dict | None:
    """The immutable fields of the observed StatefulSet, as they are; None when there is none."""
    if ctx.statefulset is None:
        return None
    live = ctx.statefulset.get("spec")
    live = live if isinstance(live, dict) else {}
    return {key: live[key] for key in IMMUTABLE if live.get(key) is not None}


def build(ctx: context.Context, plan: ports.Plan, config_hash: str) -> dict:
    fixed = observed_fixed(ctx)
    if fixed is None:
        fixed = {"selector": {"matchLabels": ctx.selector}, "serviceName": ctx.child_name("headless"),
                 "volumeClaimTemplates": claims(ctx)}
    else:
        observed.checked_depth(fixed, f"children.{observed.STATEFULSET}.{ctx.name}.spec")
    match_labels = observed.dig(fixed, "selector", "matchLabels")
    pod_labels = {**ctx.labels, **(match_labels if isinstance(match_labels, dict) else {})}
    spec = {
        "replicas": ctx.spec.replicas,
        **fixed,
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "template": {
            "metadata": {"labels": pod_labels, "annotations": {CONFIG_HASH_ANNOTATION: config_hash}},
            "spec": {
                "securityContext": copied(ctx.spec.pod_security_context),
                "containers": [container(ctx, plan)],
                "volumes": [{"name": "config", "configMap": {"name": ctx.child_name(configmap.SUFFIX)}}],
            },
        },
    }
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": ctx.meta(ctx.name), "spec": spec}
