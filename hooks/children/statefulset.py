"""The DittoFS StatefulSet: one `dittofs` container with the merged port list.

`selector`, `serviceName` and `volumeClaimTemplates` cannot change after creation; when a
StatefulSet is observed they are copied from it verbatim. On creation the claim templates are
written in the form the API server stores, so the second sync returns exactly the first.
"""
from hooks.children import configmap
from hooks.dittofs import config, layout, version
from hooks.request import context, observed, ports

CONFIG_HASH_ANNOTATION = "dittofs.io/config-hash"
IMMUTABLE = ("selector", "serviceName", "volumeClaimTemplates")
PRE_STOP_SECONDS = 5   # Service endpoints drop the pod before DittoFS stops taking connections
# Filled in under the user's own container securityContext, field by field: with them the pod
# passes the `restricted` Pod Security Standard. No read-only root: dfs writes to its temp dir.
SECURE_DEFAULTS = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _secret_env(name: str, secret: str, key: str, optional: bool = False) -> dict:
    ref = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def env(ctx: context.Context) -> list[dict]:
    s = ctx.spec
    jwt = s.identity.jwt.secret_ref
    found = [_secret_env(layout.ENV_JWT_SECRET, *(
        (jwt.name, jwt.key) if jwt else (ctx.child_name(layout.JWT_SUFFIX), layout.JWT_KEY)))]
    admin = s.identity.admin.password_secret_ref
    if admin:
        found.append(_secret_env(layout.ENV_ADMIN_PASSWORD, admin.name, admin.key))
    else:
        # Not optional (the Go operator's is): a pod started before the Secret exists would boot
        # with a password DittoFS makes up, which nobody knows. The kubelet waits for it instead,
        # and the hook makes it again should it be deleted.
        found.append(_secret_env(layout.ENV_ADMIN_PASSWORD, ctx.child_name(layout.ADMIN_SUFFIX),
                                 layout.PASSWORD_KEY))
    if s.database.postgres_secret_ref:
        name = s.database.postgres_secret_ref.name
        found += [_secret_env(layout.ENV_POSTGRES_PREFIX + key.upper(), name, key, optional)
                  for key, optional in layout.POSTGRES_KEYS]
    # Read at first boot only; `/discover` gives a running server a changed password.
    ldap, machine = s.identity.ldap, s.identity.machine_account_on
    if ldap is not None and (ref := ldap.bind_password_secret_ref) is not None:
        found.append(_secret_env(layout.ENV_LDAP_BIND_PASSWORD, ref.name, ref.key))
    if machine is not None and (ref := machine.secret_ref) is not None:
        found.append(_secret_env(layout.ENV_MACHINE_ACCOUNT_SECRET, ref.name, ref.key))
    return found


def claim_names(ctx: context.Context) -> list[str]:
    """The claim templates the pod has: the observed StatefulSet's (they cannot change), else
    the spec's."""
    if ctx.statefulset is None:
        return [name for name, _, _ in claim_specs(ctx)]
    templates = observed.listed(observed.dig(ctx.statefulset, "spec", "volumeClaimTemplates"))
    return [name for t in templates if isinstance(name := observed.dig(t, "metadata", "name"), str)]


def mounts(ctx: context.Context) -> list[dict]:
    """Where each claim template is mounted. A StatefulSet without a `controlplane` claim was made
    by this project before DittoFS v0.29: its volumes keep their paths, and the control-plane
    database stays where it is, on the metadata volume."""
    have = claim_names(ctx)
    paths = layout.claim_paths(have)
    legacy = paths is layout.LEGACY_MOUNTS
    found = [{"name": name, "mountPath": paths[name]} for name in sorted(have) if name in paths]
    if legacy and "metadata" in have:
        found.append({"name": "metadata", "mountPath": layout.CONTROLPLANE_DIR,
                      "subPath": layout.LEGACY_CONTROLPLANE_SUBPATH})
    found.append({"name": "config", "mountPath": layout.CONFIG_DIR, "readOnly": True})
    found += [{"name": name, "mountPath": path, "readOnly": True} for name, path, _ in secret_volumes(ctx)]
    return sorted(found, key=lambda m: m["mountPath"])


def _one_key(ref, path: str, mode: int | None = None) -> dict:
    """A Secret volume source projecting one key to one file."""
    found: dict = {"secretName": ref.name, "items": [{"key": ref.key, "path": path}]}
    if mode is not None:
        found["defaultMode"] = mode
    return found


def secret_volumes(ctx: context.Context) -> list[tuple[str, str, dict]]:
    """(volume, mount path, secret volume source) of each Secret the pod mounts: the control
    plane's certificate, for mutual TLS the clients' CA, the metrics scrape token (only while
    metrics are on: a listener that is off needs no token in the pod), the directory's CA, and
    while Kerberos is on its keytab, krb5.conf and machine-account keytab (the Go operator's
    volumes; keytabs readable by owner and group only)."""
    cp, metrics = ctx.spec.control_plane, ctx.spec.metrics
    ldap, kerberos = ctx.spec.identity.ldap, ctx.spec.identity.kerberos_on
    found = []
    if cp.native_tls:
        found.append(("tls-cert", layout.TLS_DIR, {"secretName": cp.cert_secret_name}))
        if cp.mutual_tls:
            found.append(("tls-client-ca", layout.CLIENT_CA_DIR, {"secretName": cp.client_ca_secret_name}))
    if metrics.enabled and metrics.bearer_token_secret is not None:
        found.append(("metrics-token", layout.METRICS_TOKEN_DIR,
                      _one_key(metrics.bearer_token_secret, layout.METRICS_TOKEN_FILE)))
    if ldap is not None and ldap.ca_cert_secret_ref is not None:
        found.append(("ldap-ca", layout.LDAP_CA_DIR, _one_key(ldap.ca_cert_secret_ref, layout.LDAP_CA_FILE)))
    if kerberos is not None:
        if kerberos.keytab_secret_ref is not None:
            found.append(("kerberos-keytab", layout.KEYTAB_DIR,
                          _one_key(kerberos.keytab_secret_ref, layout.KEYTAB_FILE, layout.KEYTAB_MODE)))
        if kerberos.krb5_conf_secret_ref is not None:
            found.append(("kerberos-krb5", layout.KRB5_CONF_DIR,
                          _one_key(kerberos.krb5_conf_secret_ref, layout.KRB5_CONF_FILE)))
        machine = kerberos.machine_account_on
        if machine is not None and machine.keytab_secret_ref is not None:
            found.append(("kerberos-machine-keytab", layout.MACHINE_KEYTAB_DIR,
                          _one_key(machine.keytab_secret_ref, layout.MACHINE_KEYTAB_FILE, layout.KEYTAB_MODE)))
    return found


def claim(name: str, size: str, storage_class: str | None) -> dict:
    """A volumeClaimTemplate in the API server's stored form."""
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, "volumeMode": "Filesystem"}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": spec, "status": {"phase": "Pending"}}


def claim_specs(ctx: context.Context) -> list[tuple[str, str, str | None]]:
    """(claim name, size, storage class) of each volumeClaimTemplate the spec asks for, in the
    Go operator's order."""
    st = ctx.spec.storage
    found = [("controlplane", st.control_plane_size), ("metadata", st.metadata_size)]
    if st.content_size:
        found.append(("content", st.content_size))
    return [(name, size, st.storage_class_name) for name, size in found]


def claims(ctx: context.Context) -> list[dict]:
    return [claim(name, size, storage_class) for name, size, storage_class in claim_specs(ctx)]


def _probe(ctx: context.Context, path: str, delay: int, period: int, failures: int) -> dict:
    cp = ctx.spec.control_plane
    if cp.mutual_tls:
        # The kubelet has no client certificate: a TCP check is all it can do, as the Go operator does.
        found: dict = {"tcpSocket": {"port": "api"}}
    else:
        found = {"httpGet": {"path": path, "port": "api", **({"scheme": "HTTPS"} if cp.native_tls else {})}}
    found.update(periodSeconds=period, timeoutSeconds=5, failureThreshold=failures)
    if delay:   # the API server stores no zero delay: writing one would differ on every sync
        found["initialDelaySeconds"] = delay
    return found


def _says_otherwise(found: dict, key: str) -> bool:
    """Whether the user's context rules out a default: the API server refuses
    `allowPrivilegeEscalation: false` beside `privileged` or CAP_SYS_ADMIN, and a container asked
    to run as uid 0 with `runAsNonRoot: true` never starts."""
    if key == "allowPrivilegeEscalation":
        added = observed.dig(found, "capabilities", "add", default=[])
        return found.get("privileged") is True or (
            isinstance(added, list) and bool({"SYS_ADMIN", "CAP_SYS_ADMIN"} & set(map(str, added))))
    if key == "runAsNonRoot":
        return found.get("runAsUser") == 0
    return False


def security_context(ctx: context.Context) -> dict:
    """The user's container securityContext, completed with SECURE_DEFAULTS where it is silent."""
    found = copied(ctx.spec.security_context or {})
    for key, value in SECURE_DEFAULTS.items():
        if key == "capabilities" and isinstance(found.get(key), dict):
            found[key].setdefault("drop", ["ALL"])   # a user who only adds one still drops the rest
        elif not _says_otherwise(found, key):
            found.setdefault(key, copied(value))
    return found


def container(ctx: context.Context, plan: ports.Plan) -> dict:
    found = {
        "name": context.CONTAINER,
        "image": ctx.spec.image or version.IMAGE,
        "command": [version.BINARY],
        "args": version.start_args(f"{layout.CONFIG_DIR}/{config.FILE_NAME}"),
        "ports": [p.as_container_port() for p in plan.ports],
        "env": env(ctx),
        "volumeMounts": mounts(ctx),
        # The startup probe allows 150 s; liveness and readiness take over after it passes.
        "startupProbe": _probe(ctx, layout.HEALTH_PATH, 0, 5, 30),
        "livenessProbe": _probe(ctx, layout.HEALTH_PATH, 15, 10, 3),
        "readinessProbe": _probe(ctx, layout.READY_PATH, 10, 5, 3),
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", f"sleep {PRE_STOP_SECONDS}"]}}},
        "securityContext": security_context(ctx),
    }
    if ctx.spec.resources:
        found["resources"] = copied(ctx.spec.resources)
    return found


def copied(value):
    """A copy of a passed-through JSON value: the parsed spec is shared between syncs (see
    spec.parse_spec), so nothing of it goes into an answer that a caller might change."""
    if isinstance(value, dict):
        return {key: copied(item) if isinstance(item, (dict, list)) else item for key, item in value.items()}
    if isinstance(value, list):
        return [copied(item) if isinstance(item, (dict, list)) else item for item in value]
    return value


def needed_secret_keys(ctx: context.Context) -> list[tuple[str, str]]:
    """(Secret, key) of every user Secret the pod cannot start without: the env's required
    references and the Secret volumes' keys (the hook's own generated Secrets left out: it
    makes them)."""
    generated = {ctx.child_name(layout.JWT_SUFFIX), ctx.child_name(layout.ADMIN_SUFFIX)}
    found = [(ref["name"], ref["key"]) for item in env(ctx)
             if not (ref := item["valueFrom"]["secretKeyRef"]).get("optional") and ref["name"] not in generated]
    for name, _, source in secret_volumes(ctx):
        keys = [i["key"] for i in source["items"]] if "items" in source else \
            [layout.CA_KEY] if name == "tls-client-ca" else [layout.TLS_CERT_KEY, layout.TLS_KEY_KEY]
        found += [(source["secretName"], key) for key in keys]
    return sorted(set(found))


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
                # dfs never calls the Kubernetes API: no token for it to leak.
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": ctx.spec.termination_grace_period_seconds,
                "securityContext": copied(ctx.spec.pod_security_context),
                "containers": [container(ctx, plan)],
                "volumes": [{"name": "config", "configMap": {"name": ctx.child_name(configmap.SUFFIX)}},
                            *({"name": name, "secret": source} for name, _, source in secret_volumes(ctx))],
            },
        },
    }
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": ctx.meta(ctx.name), "spec": spec}
