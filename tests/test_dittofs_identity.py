"""Identity providers against the real `dfs` (tests/realdfs.py), a real OpenLDAP directory
(tests/ldap.py) and keytabs made by MIT Kerberos's ktutil: DittoFS seeds its store from
config.yaml at first boot, and `/discover` keeps the running server's stored settings equal to
the spec through the API, without a restart for LDAP and with one pod roll for Kerberos.
"""
import base64
import copy
import os
import stat
import subprocess

import pytest
import requests

from hooks.dittofs import identity, layout
from hooks.request import controlplane, spec
from tests import factory, ldap, realdfs
from tests.worlds import secret, world

pytestmark = pytest.mark.dittofs

PROVIDERS = "/api/v1/identity-providers"
BIND_SECRET = "ldap-bind"


def _ldap_spec(port: int, base_dn: str = ldap.PEOPLE) -> dict:
    return {**factory.SPEC, "identity": {"ldap": {
        "enabled": True, "url": f"ldap://127.0.0.1:{port}", "allowPlaintext": True, "baseDN": base_dn,
        "bindDN": ldap.BIND_DN, "bindPasswordSecretRef": {"name": BIND_SECRET, "key": "password"}}}}


def _stored(w, provider: str) -> dict:
    found = requests.get(f"{w.server.url()}{PROVIDERS}/{provider}/config", headers=w.admin(), timeout=10)
    assert found.status_code == 200, found.text
    return found.json()


def _identity_calls(w) -> list:
    return [(method, path) for method, path, _ in w.api.requests() if path.startswith(PROVIDERS)]


def _set_bind_password(w, password: str, version: str) -> None:
    w.secrets = [secret(BIND_SECRET, version, password=password)]
    w.related = [s for s in w.related if s["metadata"]["name"] != BIND_SECRET] + w.secrets


@pytest.fixture
def ldap_world(tmp_path, directory):
    namespace = realdfs.Namespace()
    # The directory as the pod reaches it: an address in its own network.
    port = realdfs.PortForward.out_of(namespace, directory.port).port
    spec = _ldap_spec(port)
    with world(tmp_path, spec, secrets=[secret(BIND_SECRET, "1", password=directory.bind_password)],
               namespace=namespace) as w:
        w.port = port
        yield w


def test_ldap_is_seeded_at_first_boot_tested_once_and_then_left_alone(ldap_world):
    w = ldap_world
    # config.yaml and DITTOFS_LDAP_BIND_PASSWORD seeded DittoFS's store on its first boot.
    stored = _stored(w, "ldap")
    assert (stored["enabled"], stored["base_dn"], stored["bind_dn"]) == (True, ldap.PEOPLE, ldap.BIND_DN)
    assert stored["bind_password"] not in ("", w.secrets[0]["data"]["password"])   # set, and redacted
    before = w.sync()
    assert factory.condition(before, "IdentityProviderReady")["status"] == "Unknown"

    w.api.forget()
    first = w.discover()
    given = controlplane.read_applied(first["annotations"]).provider("ldap")
    assert (given.ok, given.message) == (True, "dial + bind succeeded")
    assert _identity_calls(w) == [("PUT", f"{PROVIDERS}/ldap/config"), ("POST", f"{PROVIDERS}/ldap/test")]
    after = w.sync()
    ready = factory.condition(after, "IdentityProviderReady")
    assert (ready["status"], ready["message"]) == ("True", "ldap: dial + bind succeeded")

    w.api.forget()
    for _ in range(2):
        w.discover()
    assert _identity_calls(w) == []      # a steady state sends nothing


def test_a_changed_base_dn_reaches_the_running_server_without_a_restart(ldap_world):
    w = ldap_world
    w.discover()
    hash_before = w.sync()["status"]["configHash"]
    pid = w.server.proc.pid
    w.parent["spec"] = _ldap_spec(w.port, ldap.STAFF)
    w.api.forget()
    w.discover()
    assert _stored(w, "ldap")["base_dn"] == ldap.STAFF
    assert ("PUT", f"{PROVIDERS}/ldap/config") in _identity_calls(w)
    assert w.server.proc.pid == pid and w.server.proc.poll() is None
    synced = w.sync()
    assert synced["status"]["configHash"] == hash_before         # no pod roll
    assert factory.condition(synced, "IdentityProviderReady")["status"] == "True"


def test_a_wrong_bind_password_is_a_condition_with_the_directorys_answer_and_a_fixed_one_clears_it(ldap_world, directory):
    w = ldap_world
    w.discover()
    hash_before = w.sync()["status"]["configHash"]
    _set_bind_password(w, "not-the-password", "2")
    w.discover()
    given = controlplane.read_applied(w.parent["metadata"]["annotations"]).provider("ldap")
    assert (given.ok, given.stage) == (False, "connect")
    assert "Invalid Credentials" in given.message
    synced = w.sync()
    failed = factory.condition(synced, "IdentityProviderReady")
    assert failed["status"] == "False" and "ldap: connect: " in failed["message"]
    assert "Invalid Credentials" in failed["message"]
    assert synced["status"]["configHash"] == hash_before         # the password is not a restart
    # The rotated (right) password reaches the running server, still without a restart.
    _set_bind_password(w, directory.bind_password, "3")
    w.api.forget()
    w.discover()
    assert _identity_calls(w) == [("PUT", f"{PROVIDERS}/ldap/config"), ("POST", f"{PROVIDERS}/ldap/test")]
    synced = w.sync()
    assert factory.condition(synced, "IdentityProviderReady")["status"] == "True"
    assert synced["status"]["configHash"] == hash_before


# --- Kerberos --------------------------------------------------------------------------------

PRINCIPAL = "nfs/files.example.com@EXAMPLE.COM"
KRB5_CONF = "[libdefaults]\n  default_realm = EXAMPLE.COM\n[realms]\n  EXAMPLE.COM = {\n    kdc = 127.0.0.1\n  }\n"


def _keytab(tmp_path, principal: str) -> bytes:
    """A keytab for `principal` made by MIT Kerberos's ktutil (no KDC needed)."""
    path = tmp_path / "service.keytab"
    script = f"addent -password -p {principal} -k 1 -e aes256-cts-hmac-sha1-96\nkeytab-password\nwkt {path}\nquit\n"
    made = subprocess.run(["ktutil"], input=script, capture_output=True, text=True)
    assert made.returncode == 0 and path.exists(), made.stderr
    return path.read_bytes()


def _kerberos_secrets(keytab: bytes, version: str = "1") -> list[dict]:
    found = secret("krb", version, krb5=KRB5_CONF)
    found["data"]["keytab"] = base64.b64encode(keytab).decode()
    return [found]


KERBEROS_SPEC = {**factory.SPEC, "identity": {"kerberos": {
    "enabled": True, "servicePrincipal": PRINCIPAL, "netbiosDomain": "EXAMPLE",
    "keytabSecretRef": {"name": "krb", "key": "keytab"}, "krb5ConfSecretRef": {"name": "krb", "key": "krb5"}}}}


def test_kerberos_starts_with_a_real_keytab_and_a_change_rolls_the_pod_once(tmp_path):
    keytab = _keytab(tmp_path, PRINCIPAL)
    with world(tmp_path, copy.deepcopy(KERBEROS_SPEC), secrets=_kerberos_secrets(keytab)) as w:
        listed = requests.get(w.server.url() + PROVIDERS + "/", headers=w.admin(), timeout=10).json()
        assert {"type": "kerberos", "enabled": True, "configured": True} in listed
        stored = _stored(w, "kerberos")
        assert (stored["service_principal"], stored["netbios_domain"]) == (PRINCIPAL, "EXAMPLE")
        assert stored["keytab_path"] == w.server.volume(layout.KEYTAB_DIR).as_posix() + "/" + layout.KEYTAB_FILE
        # Mounted as the kubelet would: 0440, group the pod's fsGroup; DittoFS (uid 65532) reads it.
        mounted = os.stat(stored["keytab_path"])
        assert (stat.S_IMODE(mounted.st_mode), mounted.st_gid) == (0o440, 65532)
        tested = requests.post(w.server.url() + PROVIDERS + "/kerberos/test", headers=w.admin(), timeout=10,
                               json=stored).json()
        assert tested == {"ok": True, "message": "keytab loaded (1 entries)"}

        w.discover()
        # Given the settings it booted with: what the pod runs with does not change (no roll).
        given = controlplane.read_applied(w.parent["metadata"]["annotations"]).provider("kerberos")
        assert given.ok and given.restart_digest == identity.kerberos_restart_digest(spec.parse_spec(KERBEROS_SPEC))
        hash_first = w.sync()["status"]["configHash"]
        assert factory.condition(w.sync(), "IdentityProviderReady")["status"] == "True"
        w.parent["spec"]["identity"]["kerberos"]["servicePrincipal"] = "nfs/other.example.com@EXAMPLE.COM"
        assert w.sync()["status"]["configHash"] == hash_first    # not before the server has them
        w.discover()
        assert _stored(w, "kerberos")["service_principal"] == "nfs/other.example.com@EXAMPLE.COM"
        hash_second = w.sync()["status"]["configHash"]
        assert hash_second != hash_first                          # then one roll ...
        w.discover()
        assert w.sync()["status"]["configHash"] == hash_second    # ... and only one


def test_ldap_tls_settings_removed_from_the_spec_are_removed_from_the_running_server(ldap_world):
    """PUT replaces the stored settings: a spec without TLS settings sends an empty `tls`
    object, which clears `insecure_skip_verify` and `ca_cert_file` on the real server. (DittoFS
    v0.29 decodes `tls` into a fresh value, so a `null` would clear them too; the hook sends the
    explicit empty object, which `test_ldap_without_tls_settings_sends_an_empty_tls_object`
    pins, so that no server that keeps a field on `null` keeps them.)"""
    w = ldap_world
    with_tls = _ldap_spec(w.port)
    with_tls["identity"]["ldap"].update(insecureSkipVerify=True, caCertFile="/etc/ssl/certs/directory-ca.pem")
    w.parent["spec"] = with_tls
    w.discover()
    tls = _stored(w, "ldap").get("tls") or {}
    assert (tls.get("insecure_skip_verify"), tls.get("ca_cert_file")) == (True, "/etc/ssl/certs/directory-ca.pem")
    w.parent["spec"] = _ldap_spec(w.port)
    w.api.forget()
    w.discover()
    assert ("PUT", f"{PROVIDERS}/ldap/config") in _identity_calls(w)
    tls = _stored(w, "ldap").get("tls") or {}
    assert not tls.get("insecure_skip_verify") and not tls.get("ca_cert_file"), tls

