"""Names that DittoFS and its Go operator fix: the generated Secrets and their keys, the
environment variables DittoFS reads, the volumes and where they are mounted.

The Secret builder (`children.secrets`), the StatefulSet and the control-plane client all read
these, so they live here, under both.
"""
JWT_SUFFIX = "jwt-secret"
JWT_KEY = "jwt-secret"
# Consumed once at first boot, not kept in step with the live password (DittoFS #1548).
ADMIN_SUFFIX = "admin-bootstrap-credentials"
# What this project and the Go operator called it before; adopted, then dropped.
LEGACY_ADMIN_SUFFIX = "admin-credentials"
USERNAME_KEY, PASSWORD_KEY = "username", "password"
# The account the discovery hook polls with (role operator), and the Secret with its password
# (a child of the sync hook): the Go operator's names, so a server it made keeps working.
OPERATOR_USER = "k8s-operator"
OPERATOR_SUFFIX = "operator-credentials"
# The account declared shares, users and groups are written with (role admin: DittoFS lets no
# other role write them), and its Secret (a child of the sync hook, provisioned by discovery).
MANAGER_USER = "k8s-manager"
MANAGER_SUFFIX = "manager-credentials"
ACCOUNT_SUFFIXES = (OPERATOR_SUFFIX, MANAGER_SUFFIX)

# Environment variables (viper: prefix DITTOFS, keys joined by `_`).
ENV_JWT_SECRET = "DITTOFS_CONTROLPLANE_SECRET"            # at least 32 characters
ENV_ADMIN_PASSWORD = "DITTOFS_ADMIN_INITIAL_PASSWORD"     # cleartext, hashed on first boot
ENV_POSTGRES_PREFIX = "DITTOFS_DATABASE_POSTGRES_"
# (key in the user's postgres Secret, whether DittoFS can do without it)
POSTGRES_KEYS = (("host", False), ("port", True), ("database", False), ("user", False),
                 ("password", False), ("sslmode", True))

# Mount points. A StatefulSet of this layout has the claim `controlplane`; one made by this
# project before DittoFS v0.29 (claims `metadata`, `cache`) keeps its own paths (LEGACY_MOUNTS).
CONFIG_DIR = "/config"
CONTROLPLANE_DIR = "/data/controlplane"
MOUNTS = {"controlplane": CONTROLPLANE_DIR, "metadata": "/data/store/metadata", "content": "/data/store/block"}
LEGACY_MOUNTS = {"metadata": "/data/metadata", "content": "/data/content", "cache": "/data/cache"}
LEGACY_CONTROLPLANE_SUBPATH = "controlplane"   # the database lived on the metadata volume


def claim_paths(claims: list[str] | None) -> dict[str, str]:
    """Where a pod with these claim templates mounts each claim: one without a `controlplane`
    claim was made by this project before DittoFS v0.29 and keeps its paths. None: the claims
    of a StatefulSet not made yet, today's layout."""
    return LEGACY_MOUNTS if claims is not None and "controlplane" not in claims else MOUNTS

# Native TLS of the control plane: the Secrets' standard keys, where they are mounted.
TLS_DIR, TLS_CERT_KEY, TLS_KEY_KEY = "/tls", "tls.crt", "tls.key"
CLIENT_CA_DIR, CA_KEY = "/tls-client-ca", "ca.crt"

# The metrics scrape token (metrics.auth token): the Secret's key, projected to one file.
METRICS_TOKEN_DIR, METRICS_TOKEN_FILE = "/metrics-token", "token"

# Control-plane routes that need no token: what the kubelet probes.
HEALTH_PATH = "/health"
READY_PATH = "/health/ready"
ADMIN_USER = "admin"   # DittoFS always creates this user, whatever admin.username says

# Directory identity (LDAP) and Kerberos. The passwords reach DittoFS as environment variables
# (read at first boot only: later the hook keeps DittoFS's stored copy in step through its API);
# the keytabs and krb5.conf as files, at the Go operator's paths.
ENV_LDAP_BIND_PASSWORD = "DITTOFS_LDAP_BIND_PASSWORD"
ENV_MACHINE_ACCOUNT_SECRET = "DITTOFS_KERBEROS_MACHINE_ACCOUNT_SECRET"
LDAP_CA_DIR, LDAP_CA_FILE = "/ldap-ca", "ca.crt"
KEYTAB_DIR, KEYTAB_FILE = "/kerberos", "dittofs.keytab"
KRB5_CONF_DIR, KRB5_CONF_FILE = "/kerberos-krb5", "krb5.conf"
MACHINE_KEYTAB_DIR, MACHINE_KEYTAB_FILE = "/kerberos-machine", "machine.keytab"
KEYTAB_MODE = 0o440   # keytabs are credentials: owner and group (the pod's fsGroup) only

# The Go operator v0.29's finalizer (internal/controller/dittoserver_controller.go), on every
# DittoServer it reconciled: once the operator is stopped nothing removes it, and deleting
# the DittoServer hangs.
GO_OPERATOR_FINALIZER = "dittofs.dittofs.com/finalizer"
