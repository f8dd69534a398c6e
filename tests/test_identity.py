"""LDAP and Kerberos in the sync answer: the config.yaml blocks DittoFS seeds its store from,
the passwords as environment variables, the Secrets mounted at the Go operator's paths, what
rolls the pod and what does not, and the `IdentityProviderReady` condition.

The real server reads all this in tests/test_dittofs_identity.py.
"""
import copy

import yaml

from hooks.children import sync
from hooks.dittofs import discovery, identity, layout
from hooks.request import controlplane, observed, spec
from hooks.web import customize
from tests import factory, k8s_rules, pod_security
from tests.harness import Loop
from tests.worlds import secret

LDAP = {"enabled": True, "url": "ldaps://dc.example.com:636", "baseDN": "dc=example,dc=com",
        "bindDN": "cn=svc,dc=example,dc=com", "bindPasswordSecretRef": {"name": "ldap", "key": "password"},
        "userAttr": "uid", "idmap": "rid", "nestedGroups": True, "caCertSecretRef": {"name": "ldap-ca", "key": "ca.pem"}}
KERBEROS = {"enabled": True, "servicePrincipal": "nfs/files.example.com@EXAMPLE.COM", "realm": "EXAMPLE.COM",
            "netbiosDomain": "EXAMPLE", "dnsDomain": "example.com",
            "keytabSecretRef": {"name": "krb", "key": "service.keytab"},
            "krb5ConfSecretRef": {"name": "krb", "key": "krb5.conf"},
            "machineAccount": {"enabled": True, "accountName": "DITTOFS$", "dcAddress": ["dc1.example.com"],
                               "secretRef": {"name": "machine", "key": "password"},
                               "keytabSecretRef": {"name": "machine-kt", "key": "machine.keytab"}}}
SPEC = {**factory.SPEC, "identity": {"ldap": LDAP, "kerberos": KERBEROS}}
SECRETS = [secret("ldap", password="bind-pw"), secret("ldap-ca", **{"ca.pem": "PEM"}),
           secret("krb", **{"service.keytab": "KT", "krb5.conf": "[libdefaults]"}),
           secret("machine", password="machine-pw"), secret("machine-kt", **{"machine.keytab": "MKT"})]


def answer(spec_: dict, secrets: list[dict] = SECRETS, annotations: dict | None = None) -> dict:
    parent = factory.parent(spec=spec_)
    parent["metadata"]["annotations"].update(annotations or {})
    return factory.sync_of(factory.request(parent, related=secrets))


def _container(response: dict) -> dict:
    return factory.child(response, "StatefulSet", "demo")["spec"]["template"]["spec"]["containers"][0]


def test_config_yaml_has_the_go_operators_blocks_with_paths_at_the_mounts_and_no_password():
    response = answer(SPEC)
    (text,) = factory.child(response, "ConfigMap", "demo-config")["data"].values()
    found = yaml.safe_load(text)
    assert found["ldap"] == {"enabled": True, "url": "ldaps://dc.example.com:636", "base_dn": "dc=example,dc=com",
                             "bind_dn": "cn=svc,dc=example,dc=com", "user_attr": "uid", "idmap": "rid",
                             "nested_groups": True, "tls": {"ca_cert_file": "/ldap-ca/ca.crt"}}
    assert found["kerberos"] == {
        "enabled": True, "keytab_path": "/kerberos/dittofs.keytab",
        "service_principal": "nfs/files.example.com@EXAMPLE.COM", "realm": "EXAMPLE.COM",
        "netbios_domain": "EXAMPLE", "dns_domain": "example.com", "krb5_conf": "/kerberos-krb5/krb5.conf",
        "machine_account": {"enabled": True, "account_name": "DITTOFS$",
                            "keytab_path": "/kerberos-machine/machine.keytab", "dc_address": ["dc1.example.com"]}}
    assert "bind-pw" not in text and "machine-pw" not in text


def test_passwords_are_env_from_their_secrets_and_keytabs_are_mounted_read_only_0440():
    response = answer(SPEC)
    container = _container(response)
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env[layout.ENV_LDAP_BIND_PASSWORD] == {"name": "ldap", "key": "password"}
    assert env[layout.ENV_MACHINE_ACCOUNT_SECRET] == {"name": "machine", "key": "password"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in factory.child(response, "StatefulSet", "demo")["spec"]["template"]["spec"]["volumes"]}
    expected = {"/ldap-ca": ("ldap-ca", "ca.pem", "ca.crt", None),
                "/kerberos": ("krb", "service.keytab", "dittofs.keytab", 0o440),
                "/kerberos-krb5": ("krb", "krb5.conf", "krb5.conf", None),
                "/kerberos-machine": ("machine-kt", "machine.keytab", "machine.keytab", 0o440)}
    for path, (secret_name, key, file, mode) in expected.items():
        assert mounts[path]["readOnly"] is True
        source = volumes[mounts[path]["name"]]["secret"]
        assert (source["secretName"], source["items"]) == (secret_name, [{"key": key, "path": file}])
        assert source.get("defaultMode") == mode
    assert k8s_rules.all_problems(response) == []
    assert pod_security.violations(factory.child(response, "StatefulSet", "demo")["spec"]["template"]) == []


def test_kerberos_switched_off_renders_mounts_and_passes_nothing_of_it():
    off = copy.deepcopy(SPEC)
    off["identity"]["kerberos"]["enabled"] = False
    response = answer(off)
    container = _container(response)
    assert not any(m["mountPath"].startswith("/kerberos") for m in container["volumeMounts"])
    assert layout.ENV_MACHINE_ACCOUNT_SECRET not in {e["name"] for e in container["env"]}
    (text,) = factory.child(response, "ConfigMap", "demo-config")["data"].values()
    assert "kerberos" not in yaml.safe_load(text)
    assert spec.parse_spec(off).referenced_secrets() == ["ldap", "ldap-ca"]


def _with_secret(name: str, **data: str) -> list[dict]:
    return [s for s in SECRETS if s["metadata"]["name"] != name] + [secret(name, "2", **data)]


def test_a_new_keytab_rolls_the_pod_and_a_new_password_or_directory_setting_does_not():
    first = answer(SPEC)["status"]["configHash"]
    assert answer(SPEC, _with_secret("krb", **{"service.keytab": "KT2", "krb5.conf": "[libdefaults]"})) \
        ["status"]["configHash"] != first
    assert answer(SPEC, _with_secret("ldap-ca", **{"ca.pem": "PEM2"}))["status"]["configHash"] != first
    # Given to the running server by /discover instead.
    assert answer(SPEC, _with_secret("machine-kt", **{"machine.keytab": "MKT2"}))["status"]["configHash"] != first
    assert answer(SPEC, _with_secret("ldap", password="rotated"))["status"]["configHash"] == first
    assert answer(SPEC, _with_secret("machine", password="rotated")) \
        ["status"]["configHash"] == first
    moved = copy.deepcopy(SPEC)
    moved["identity"]["ldap"]["baseDN"] = "ou=staff,dc=example,dc=com"
    assert answer(moved)["status"]["configHash"] == first


def _applied(spec_: dict, secrets: list[dict] = SECRETS, ok: bool = True, message: str = "ok") -> dict:
    """The `dittofs.io/applied` annotation of a server /discover gave this spec's providers."""
    parsed = spec.parse_spec(spec_)
    given = tuple((w.provider, controlplane.Provider(w.digest, w.restart_digest, ok, "" if ok else "connect", message))
                  for w in identity.wanted(parsed, factory_secrets(secrets), {}))
    return {controlplane.APPLIED_ANNOTATION: controlplane.Applied(providers=given).encode()}


def factory_secrets(secrets: list[dict]) -> observed.Objects:
    return observed.Objects({s["metadata"]["name"]: s for s in secrets})


def test_a_kerberos_change_rolls_the_pod_once_the_server_has_it_not_before():
    first = answer(SPEC, annotations=_applied(SPEC))["status"]["configHash"]
    assert first == answer(SPEC)["status"]["configHash"]     # a first boot reads config.yaml's
    moved = copy.deepcopy(SPEC)
    moved["identity"]["kerberos"]["servicePrincipal"] = "nfs/other.example.com@EXAMPLE.COM"
    assert answer(moved, annotations=_applied(SPEC))["status"]["configHash"] == first
    assert answer(moved, annotations=_applied(moved))["status"]["configHash"] != first
    # The machine account's password reloads in place (NETLOGON): no roll for it.
    rotated = _with_secret("machine", password="rotated")
    assert answer(SPEC, rotated, _applied(SPEC, rotated))["status"]["configHash"] == first


def test_identity_provider_ready_says_what_the_server_was_given_and_what_it_answered():
    assert factory.condition(answer(factory.SPEC), "IdentityProviderReady") is None
    pending = factory.condition(answer(SPEC), "IdentityProviderReady")
    assert pending["status"] == "Unknown" and "ldap and kerberos" in pending["message"]
    done = factory.condition(answer(SPEC, annotations=_applied(SPEC)), "IdentityProviderReady")
    assert (done["status"], done["message"]) == ("True", "ldap: ok; kerberos: ok")
    failed = factory.condition(answer(SPEC, annotations=_applied(SPEC, ok=False, message="Invalid Credentials")),
                        "IdentityProviderReady")
    assert failed["status"] == "False" and failed["message"].startswith("ldap: connect: Invalid Credentials")
    # A rotated password (a new Secret version) is news the server has not had yet.
    rotated = _with_secret("ldap", password="rotated")
    stale = factory.condition(answer(SPEC, rotated, _applied(SPEC)), "IdentityProviderReady")
    assert stale["status"] == "Unknown" and "ldap" in stale["message"] and "kerberos" not in stale["message"]


def test_a_missing_keytab_key_is_config_not_ready_naming_it_and_changes_no_other_child():
    broken = [s for s in SECRETS if s["metadata"]["name"] != "krb"] + [secret("krb", **{"krb5.conf": "x"})]
    whole, missing = answer(SPEC), answer(SPEC, broken)
    ready = factory.condition(missing, "ConfigReady")
    assert ready["status"] == "False" and "Secret krb has no key service.keytab" in ready["message"]
    assert [c["metadata"]["name"] for c in missing["children"]] == [c["metadata"]["name"] for c in whole["children"]]


def test_both_hooks_are_related_to_every_secret_they_read():
    request = {"parent": factory.parent(spec=SPEC)}
    names = customize.related_resources(request)["relatedResources"][0]["names"]
    assert set(names) == {"ldap", "ldap-ca", "krb", "machine", "machine-kt"}
    polled = discovery.related_resources(request)["relatedResources"][0]["names"]
    assert {"ldap", "machine"} <= set(polled) and "krb" not in polled


def test_removing_a_provider_the_hook_gave_the_server_turns_it_off_there():
    parsed = spec.parse_spec(factory.SPEC)
    found = identity.wanted(parsed, factory_secrets([]), {"ldap": "d1", "kerberos": "d2"})
    assert [(w.provider, w.body) for w in found] == [("ldap", {"enabled": False}), ("kerberos", {"enabled": False})]
    assert identity.wanted(parsed, factory_secrets([]), {}) == []
    assert sync.kerberos_in_force(parsed, controlplane.Applied()) is None


def test_identity_changes_converge_in_the_harness_with_one_roll_for_kerberos_and_none_for_ldap():
    """Through Metacontroller's dynamic apply (tests/harness.py), with /discover's annotation
    written the way the real server tests show it is: LDAP and password changes settle with no
    pod-template write; a Kerberos change with exactly one, once the server has it."""
    loop = Loop(SPEC, [factory.entry("nfs", 12049)], related=SECRETS)
    loop.parent["metadata"]["annotations"].update(_applied(SPEC))
    loop.settle()
    loop.mark_ready()
    loop.settle()
    assert loop.cluster.pod_template_writes() == 0 and loop.sync() == []

    moved = copy.deepcopy(SPEC)
    moved["identity"]["ldap"]["baseDN"] = "ou=staff,dc=example,dc=com"
    loop.set_spec(moved)
    loop.related = _with_secret("ldap", password="rotated")
    loop.settle()
    loop.parent["metadata"]["annotations"].update(_applied(moved, loop.related))
    loop.settle()
    assert loop.cluster.pod_template_writes() == 0

    moved = copy.deepcopy(moved)
    moved["identity"]["kerberos"]["servicePrincipal"] = "nfs/other.example.com@EXAMPLE.COM"
    loop.set_spec(moved)
    loop.settle()
    assert loop.cluster.pod_template_writes() == 0        # the server does not have it yet
    loop.parent["metadata"]["annotations"].update(_applied(moved, loop.related))
    loop.settle()
    assert loop.cluster.pod_template_writes() == 1
    assert loop.sync() == []


def test_ldap_without_tls_settings_sends_an_empty_tls_object_which_clears_the_stored_ones():
    """DittoFS's PUT replaces the stored LDAP settings; the TLS ones go only when `tls` says so
    (tests/test_dittofs_identity.py proves the clearing on the real `dfs`)."""
    plain = {**factory.SPEC, "identity": {"ldap": {
        "enabled": True, "url": "ldap://dir:389", "allowPlaintext": True, "baseDN": "dc=x", "bindDN": "cn=b,dc=x",
        "bindPasswordSecretRef": {"name": "bind", "key": "password"}}}}
    (given,) = identity.wanted(spec.parse_spec(plain), observed.Objects(), {})
    assert given.body["tls"] == {}
    with_tls = copy.deepcopy(plain)
    with_tls["identity"]["ldap"].update(insecureSkipVerify=True, caCertFile="/etc/ca.pem")
    (given,) = identity.wanted(spec.parse_spec(with_tls), observed.Objects(), {})
    assert given.body["tls"] == {"ca_cert_file": "/etc/ca.pem", "insecure_skip_verify": True}
