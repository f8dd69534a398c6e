"""The DittoServers the CRD must accept or refuse, and how the fast tier judges them: one list
for the fast tier (the CRD's schema as a JSON schema, its CEL rules in cel-python,
tests/test_manifests.py) and for the real API server (tests/test_apiserver_real.py), so the two
tiers cannot drift apart.
"""
from __future__ import annotations

import copy

MINIMAL = {"storage": {"metadataSize": "10Gi"}}


def with_field(path: str, value) -> dict:
    """The minimal spec with the dotted `path` set to `value`."""
    spec = copy.deepcopy(MINIMAL)
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return spec


# Specs the structural schema refuses (types, enums, patterns, ranges, unknown fields).
SCHEMA_REJECTS = {
    "replicas-2": with_field("replicas", 2),
    "replicas-negative": with_field("replicas", -1),
    "metadataSize-10GB": with_field("storage.metadataSize", "10GB"),
    "controlPlaneSize-5G": with_field("storage.controlPlaneSize", "5G"),
    "cacheSize-gone-in-v029": with_field("storage.cacheSize", "5Gi"),
    "s3-gone-in-v029": with_field("s3", {}),
    "jwt-issuer-gone-in-v029": with_field("identity.jwt.issuer", "me"),
    "grace-below-36": with_field("terminationGracePeriodSeconds", 30),
    "logging-level": with_field("logging.level", "TRACE"),
    "metrics-path-relative": with_field("metrics.path", "metrics"),
    "snapshot-policy-without-interval": with_field("snapshotPolicies", [{"share": "/a"}]),
    "snapshot-policy-keepLast-negative": with_field(
        "snapshotPolicies", [{"share": "/a", "interval": "1h", "keepLast": -1}]),
    "snapshot-policy-namePrefix": with_field(
        "snapshotPolicies", [{"share": "/a", "interval": "1h", "namePrefix": "a b"}]),
    "contentSize-fraction": with_field("storage.contentSize", "1.5Ti"),
    "metadataSize-missing": {"storage": {"contentSize": "5Gi"}},
    "storage-missing": {"image": "x"},
    "service-type-Foo": with_field("service.type", "Foo"),
    "adapterServices-type": with_field("adapterServices.type", "ExternalName"),
    "database-type": with_field("database.type", "mysql"),
    "metrics-port-0": with_field("metrics.port", 0),
    "controlPlane-port-65536": with_field("controlPlane.port", 65536),
    "port-as-string": with_field("controlPlane.port", "8080"),
    "metrics-enabled-string": with_field("metrics.enabled", "yes"),
    "unknown-spec-field": with_field("unknownField", True),
    "unknown-storage-field": with_field("storage.size", "10Gi"),
    "secretRef-without-key": with_field("identity.jwt.secretRef", {"name": "jwt"}),
    "annotation-not-string": with_field("adapterServices.annotations", {"a": 1}),
    "store-type-unknown": with_field("stores.metadata", [{"name": "meta", "type": "sqlite"}]),
    "store-name-uppercase": with_field("stores.metadata", [{"name": "Meta", "type": "badger"}]),
    "remote-store-fs-gone-in-v029": with_field("stores.remote", [{"name": "r", "type": "fs"}]),
    "s3-without-bucket": with_field("stores.remote", [{"name": "r", "type": "s3", "s3": {"credentialsSecretRef": {"name": "c"}}}]),
    "s3-without-credentials": with_field("stores.remote", [{"name": "r", "type": "s3", "s3": {"bucket": "data"}}]),
}

# The root rule: the name, a DNS-1035 label of at most 52 characters.
NAME_CASES = [
    ("dittofs", True), ("a", True), ("a" * 52, True), ("web-1", True),
    ("a" * 53, False), ("Demo", False), ("1abc", False), ("abc-", False), ("a.b", False),
    ("a_b", False), ("-a", False),
]

# The first spec rule: the metrics port differs from the API port (defaults 9090 and 8080).
PORT_CASES = [
    ({}, True),
    ({"metrics": {"enabled": True}}, True),
    ({"metrics": {"port": 8080}}, False),
    ({"controlPlane": {"port": 9090}}, False),
    ({"metrics": {"port": 9100}, "controlPlane": {"port": 9100}}, False),
    ({"metrics": {"port": 9100}, "controlPlane": {"port": 9090}}, True),
    ({"metrics": {"enabled": False, "port": 9090}, "controlPlane": {"port": 8080}}, True),
]

# Each field of the Go operator's CRD the hook does not build yet, set as a user moving over
# would set it (asking for something), and set so that it asks for nothing.
UNSUPPORTED_CASES = {
    "percona": ({"enabled": True}, {"enabled": False}),
}

# The identity providers: the Go operator's webhook rules and DittoFS's start-up checks, as CEL
# rules on the `ldap` and `kerberos` objects.
LDAP_OK = {"enabled": True, "url": "ldaps://dc.example.com:636", "baseDN": "dc=example,dc=com",
           "bindDN": "cn=svc,dc=example,dc=com", "bindPasswordSecretRef": {"name": "ldap", "key": "password"}}
KERBEROS_OK = {"enabled": True, "servicePrincipal": "nfs/files.example.com@EXAMPLE.COM",
               "keytabSecretRef": {"name": "krb", "key": "keytab"}}
MACHINE_OK = {"enabled": True, "accountName": "DITTOFS$", "secretRef": {"name": "machine", "key": "password"}}

# (identity, the message both the CRD and the hook refuse it with; None: both accept it)
IDENTITY_CASES = [
    ({"ldap": LDAP_OK}, None),
    ({"ldap": {**LDAP_OK, "url": "LDAPS://dc:636", "userAttr": "uid", "idmap": "rid"}}, None),
    ({"ldap": {**LDAP_OK, "url": "ldap://dc:389", "startTLS": True}}, None),
    ({"ldap": {**LDAP_OK, "url": "ldap://dc:389", "allowPlaintext": True}}, None),
    ({"ldap": {**LDAP_OK, "enabled": False, "url": "http://dc", "bindPasswordSecretRef": None}}, None),
    ({"ldap": {**LDAP_OK, "url": "http://dc"}}, "identity.ldap.url must use the ldap:// or ldaps:// scheme"),
    ({"ldap": {**LDAP_OK, "url": "ldap://dc:389"}},
     "identity.ldap.url uses plaintext ldap://: set startTLS, or allowPlaintext to permit an unencrypted bind"),
    ({"ldap": {**LDAP_OK, "bindPasswordSecretRef": None}},
     "identity.ldap.bindPasswordSecretRef is required when ldap is enabled (DittoFS refuses an anonymous bind)"),
    ({"ldap": {**LDAP_OK, "userAttr": "1uid"}},
     "identity.ldap.userAttr must be an LDAP attribute name (a letter, then letters, digits or '-')"),
    ({"ldap": {**LDAP_OK, "caCertFile": "/etc/ssl/ca.pem", "caCertSecretRef": {"name": "ca", "key": "ca.crt"}}},
     "identity.ldap: set caCertFile or caCertSecretRef, not both"),
    ({"kerberos": KERBEROS_OK}, None),
    ({"kerberos": {**KERBEROS_OK, "realm": "EXAMPLE.COM", "netbiosDomain": "EXAMPLE", "dnsDomain": "example.com",
                   "machineAccount": MACHINE_OK}}, None),
    ({"kerberos": {"enabled": False}}, None),
    ({"kerberos": {"enabled": False, "machineAccount": {"enabled": True}}}, None),
    ({"kerberos": {**KERBEROS_OK, "servicePrincipal": None}},
     "identity.kerberos.servicePrincipal is required when kerberos is enabled"),
    ({"kerberos": {**KERBEROS_OK, "keytabSecretRef": None}},
     "identity.kerberos.keytabSecretRef is required when kerberos is enabled"),
    ({"kerberos": {**KERBEROS_OK, "realm": "nfs@EXAMPLE.COM"}},
     "identity.kerberos.realm must not contain '@', '/' or spaces"),
    ({"kerberos": {**KERBEROS_OK, "netbiosDomain": "example.com"}},
     "identity.kerberos.netbiosDomain must be a single NetBIOS label (no '.', '@', '/' or spaces)"),
    ({"kerberos": {**KERBEROS_OK, "dnsDomain": "example .com"}},
     "identity.kerberos.dnsDomain must not contain '@', '/' or spaces"),
    ({"kerberos": {**KERBEROS_OK, "machineAccount": {**MACHINE_OK, "accountName": None}}},
     "identity.kerberos.machineAccount.accountName is required when machineAccount is enabled"),
    ({"kerberos": {**KERBEROS_OK, "machineAccount": {**MACHINE_OK, "secretRef": None}}},
     "identity.kerberos.machineAccount requires a secretRef or keytabSecretRef when enabled"),
    ({"kerberos": {**KERBEROS_OK, "machineAccount": {"enabled": True, "accountName": "D$",
                                                      "keytabSecretRef": {"name": "m", "key": "k"}}}}, None),
]


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def identity_spec(identity: dict) -> dict:
    return _without_nulls({**MINIMAL, "identity": identity})



# What the hook answers 422 for, refused by a CEL rule on the field, and the spec made right.
HOOK_REFUSALS = [
    ({"database": {"type": "postgres"}}, ".database.postgresSecretRef",
     {"database": {"type": "postgres", "postgresSecretRef": {"name": "pg"}}}),
    ({"controlPlane": {"clientCASecretName": "clients"}}, ".controlPlane.clientCASecretName",
     {"controlPlane": {"clientCASecretName": "clients", "certSecretName": "api-tls"}}),
    ({"database": {"postgresSecretRef": {"name": "pg"}},
      "stores": {"metadata": [{"name": "meta", "type": "postgres", "postgres": {"secretRef": {"name": "pg"}}}]}},
     ".stores.metadata",
     {"database": {"postgresSecretRef": {"name": "pg"}},
      "stores": {"metadata": [{"name": "meta", "type": "postgres", "postgres": {"secretRef": {"name": "meta-db"}}}]}}),
    ({"stores": {"local": [{"name": "blocks", "type": "fs"}]}}, ".stores.local",
     {"stores": {"local": [{"name": "blocks", "type": "fs"}]}, "storage": {"metadataSize": "10Gi", "contentSize": "10Gi"}}),
]

S3 = {"bucket": "data", "credentialsSecretRef": {"name": "s3-credentials"}}
# Changes to a stored DittoServer's stores: (before, after, message of the rule that refuses it
# or None). The API server checks them with `oldSelf` (transition rules on list-map items).
STORE_CHANGES = [
    ({"metadata": [{"name": "meta", "type": "badger"}]}, {"metadata": [{"name": "meta", "type": "memory"}]},
     "a store's type cannot change once it is made"),
    ({"remote": [{"name": "r", "type": "s3", "s3": S3}]}, {"remote": [{"name": "r", "type": "s3", "s3": {**S3, "bucket": "other"}}]},
     "an s3 store's bucket and prefix cannot change"),
    ({"remote": [{"name": "r", "type": "s3", "s3": S3}]}, {"remote": [{"name": "r", "type": "s3", "s3": {**S3, "prefix": "p/"}}]},
     "an s3 store's bucket and prefix cannot change"),
    ({"remote": [{"name": "r", "type": "s3", "s3": S3}]},
     {"remote": [{"name": "r", "type": "s3", "s3": {**S3, "credentialsSecretRef": {"name": "rotated"}, "region": "eu-west-1"}}]}, None),
    ({"metadata": [{"name": "meta", "type": "badger"}]},
     {"metadata": [{"name": "meta", "type": "badger"}, {"name": "scratch", "type": "memory"}]}, None),
    ({"metadata": [{"name": "meta", "type": "badger"}, {"name": "scratch", "type": "memory"}]},
     {"metadata": [{"name": "meta", "type": "badger"}]}, None),
]


def cel_parents() -> dict[str, tuple[str, dict]]:
    """Every case of the CEL rules as a DittoServer's (name, spec), by id: for the agreement of
    cel-python and the real server."""
    found = {f"name-{name}": (name, copy.deepcopy(MINIMAL)) for name, _ in NAME_CASES}
    found |= {f"ports-{i}": ("demo", {**MINIMAL, **spec}) for i, (spec, _) in enumerate(PORT_CASES)}
    for path, (asking, idle) in UNSUPPORTED_CASES.items():
        found[f"unsupported-{path}"] = ("demo", with_field(path, asking))
        if idle is not None:
            found[f"unsupported-{path}-idle"] = ("demo", with_field(path, idle))
    for spec, field, fixed in HOOK_REFUSALS:
        found[f"hook-refuses{field}"] = ("demo", {**MINIMAL, **spec})
        found[f"hook-accepts{field}"] = ("demo", {**MINIMAL, **fixed})
    found |= {f"identity-{i}": ("demo", identity_spec(identity)) for i, (identity, _) in enumerate(IDENTITY_CASES)}
    return found


def hostile_cel_parents() -> set[str]:
    """The ids of `cel_parents` that a rule must refuse."""
    return ({f"name-{n}" for n, valid in NAME_CASES if not valid}
            | {f"ports-{i}" for i, (_, valid) in enumerate(PORT_CASES) if not valid}
            | {f"unsupported-{p}" for p in UNSUPPORTED_CASES}
            | {f"hook-refuses{field}" for _, field, _ in HOOK_REFUSALS}
            | {f"identity-{i}" for i, (_, message) in enumerate(IDENTITY_CASES) if message})


def defaulted(schema: dict, value):
    """Structural-schema defaulting as the API server does it: a missing property with a
    default gets it, then defaulting continues inside the result."""
    if schema.get("type") == "object" and isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = defaulted(sub, value[key])
    elif schema.get("type") == "array" and isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [defaulted(schema["items"], item) for item in value]
    return value


def cel_eval(rule: str, self_value, old_value=None) -> bool:
    """A CEL rule in cel-python, the fast tier's stand-in for the API server's CEL; `old_value`
    is `oldSelf` of a transition rule."""
    import celpy   # a test extra: missing, the CEL tests fail rather than skip

    env = celpy.Environment()
    program = env.program(env.compile(rule))
    bound = {"self": celpy.json_to_cel(self_value)}
    if old_value is not None:
        bound["oldSelf"] = celpy.json_to_cel(old_value)
    return bool(program.evaluate(bound))


def store_change_refusals(stores_schema: dict, before: dict, after: dict) -> list[str]:
    """The messages of the rules on store list items that an update from `before` to `after`
    breaks: each item's rules with the item of the same name before it as `oldSelf` (a
    transition rule is not checked on an item that is new)."""
    found = []
    for kind, schema in stores_schema["properties"].items():
        old = {item["name"]: item for item in before.get(kind, [])}
        for item in after.get(kind, []):
            for rule in schema["items"].get("x-kubernetes-validations", []):
                uses_old = "oldSelf" in rule["rule"]
                if uses_old and item["name"] not in old:
                    continue
                if not cel_eval(rule["rule"], item, old.get(item["name"]) if uses_old else None):
                    found.append(rule["message"])
    return found


def nested_rules(schema: dict, path: tuple = ()) -> list[tuple[tuple, dict]]:
    """(path below `schema`, rule) of every CEL rule of `schema` and the objects in it."""
    found = [(path, rule) for rule in schema.get("x-kubernetes-validations", [])]
    for name, child in (schema.get("properties") or {}).items():
        found += nested_rules(child, (*path, name))
    return found


def cel_refusals(schema: dict, name: str, spec: dict) -> list[str]:
    """The messages of the CRD's rules (`schema` its openAPIV3Schema) that cel-python says a
    DittoServer named `name` with `spec` breaks, on the spec as the server defaults it; each rule
    on its own object, and none of an object the spec does not have (as the server does)."""
    root_rules = schema.get("x-kubernetes-validations", [])
    full = defaulted(schema["properties"]["spec"], copy.deepcopy(spec))
    found = [r["message"] for r in root_rules if not cel_eval(r["rule"], {"metadata": {"name": name}})]
    for path, rule in nested_rules(schema["properties"]["spec"]):
        node = full
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and not cel_eval(rule["rule"], node):
            found.append(rule["message"])
    return found
