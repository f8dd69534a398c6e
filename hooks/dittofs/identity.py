"""DittoFS's identity providers, LDAP and Kerberos: the `ldap:` and `kerberos:` blocks of
config.yaml, the bodies of `PUT /api/v1/identity-providers/{ldap,kerberos}/config`, and the
digests that say whether a running server has been given the spec's settings.

DittoFS v0.29 reads both blocks (and `DITTOFS_LDAP_BIND_PASSWORD`) only on its first boot, to
seed its control-plane store; from then on the stored copy wins over the file. So the file is a
seed, and `/discover` keeps the stored copy equal to the spec through the API: it sends a body
when its digest differs from the one recorded in `dittofs.io/applied`.

A digest never covers a password, only the Secret's name and resourceVersion: the annotation is
readable by anyone who can read the DittoServer, and a hash of a weak password can be guessed.
"""
import hashlib
import json
from dataclasses import dataclass

from hooks.dittofs import layout
from hooks.request import observed, spec

LDAP, KERBEROS = "ldap", "kerberos"
PROVIDERS = (LDAP, KERBEROS)
# What an accepted PUT means, by provider: LDAP is rebuilt in place; Kerberos's principal and
# keytab are read when DittoFS starts, so the pod rolls once (`children.sync`).
APPLIED_MESSAGE = {LDAP: "settings applied", KERBEROS: "settings applied; in force once the pod has restarted"}


def ldap_block(ldap: spec.Ldap) -> dict:
    """The `ldap:` keys of config.yaml (DittoFS's names), without the bind password."""
    found: dict = {"enabled": ldap.enabled, "url": ldap.url, "base_dn": ldap.base_dn, "bind_dn": ldap.bind_dn}
    for key, value in (("start_tls", ldap.start_tls), ("allow_plaintext", ldap.allow_plaintext),
                       ("user_attr", ldap.user_attr), ("realm", ldap.realm), ("idmap", ldap.idmap),
                       ("nested_groups", ldap.nested_groups)):
        if value:
            found[key] = value
    ca_file = f"{layout.LDAP_CA_DIR}/{layout.LDAP_CA_FILE}" if ldap.ca_cert_secret_ref else ldap.ca_cert_file
    tls = {key: value for key, value in (("ca_cert_file", ca_file), ("insecure_skip_verify", ldap.insecure_skip_verify))
           if value}
    if tls:
        found["tls"] = tls
    return found


def kerberos_block(kerberos: spec.Kerberos) -> dict:
    """The `kerberos:` keys of config.yaml, without the machine-account password. Paths point
    at the mounted Secrets (the Go operator's paths)."""
    found: dict = {"enabled": True, "keytab_path": f"{layout.KEYTAB_DIR}/{layout.KEYTAB_FILE}",
                   "service_principal": kerberos.service_principal}
    for key, value in (("realm", kerberos.realm), ("netbios_domain", kerberos.netbios_domain),
                       ("dns_domain", kerberos.dns_domain)):
        if value:
            found[key] = value
    if kerberos.krb5_conf_secret_ref is not None:
        found["krb5_conf"] = f"{layout.KRB5_CONF_DIR}/{layout.KRB5_CONF_FILE}"
    elif kerberos.krb5_conf:
        found["krb5_conf"] = kerberos.krb5_conf
    machine = kerberos.machine_account_on
    if machine is not None:
        found["machine_account"] = {"enabled": True, "account_name": machine.account_name}
        if machine.keytab_secret_ref is not None:
            found["machine_account"]["keytab_path"] = f"{layout.MACHINE_KEYTAB_DIR}/{layout.MACHINE_KEYTAB_FILE}"
        if machine.dc_address:
            found["machine_account"]["dc_address"] = list(machine.dc_address)
    return found


def blocks(s: spec.DittoServerSpec) -> dict:
    """The identity blocks of config.yaml for a spec (none when the spec sets none)."""
    found = {}
    if s.identity.ldap is not None:
        found[LDAP] = ldap_block(s.identity.ldap)
    if s.identity.kerberos_on is not None:
        found[KERBEROS] = kerberos_block(s.identity.kerberos_on)
    return found


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Wanted:
    """What one provider of a running server should hold: the PUT body without its password,
    where the password is (Secret, key), and the digests."""

    provider: str
    body: dict
    password: tuple[str, str] | None      # (Secret, key) of the value sent as the body's secret
    digest: str                           # of everything sent, the password by its Secret's version
    restart_digest: str                   # of what DittoFS reads only when it starts

    def with_password(self, value: str | None) -> dict:
        """The body to PUT, with the password when there is one."""
        if value is None:
            return self.body
        if self.provider == LDAP:
            return {**self.body, "bind_password": value}
        return {**self.body, "machine_account": {**self.body.get("machine_account", {}), "secret": value}}


def _secret_version(related: observed.Objects, ref: spec.SecretKeyRef | None) -> list:
    if ref is None:
        return []
    version = observed.dig(related.get(ref.name), "metadata", "resourceVersion")
    return [ref.name, ref.key, version if isinstance(version, str) else ""]


def _given(provider: str, body: dict, ref: spec.SecretKeyRef | None, related: observed.Objects,
           restart_part: dict) -> Wanted:
    return Wanted(provider, body, (ref.name, ref.key) if ref else None,
                  _digest(body, _secret_version(related, ref)), _digest(restart_part))


def wanted(s: spec.DittoServerSpec, related: observed.Objects, applied: dict[str, str]) -> list[Wanted]:
    """The providers a running server should hold. A provider the spec no longer sets but the
    hook applied before (`applied`: provider -> digest) is turned off, not left running."""
    found = []
    ldap, kerberos = s.identity.ldap, s.identity.kerberos_on
    if ldap is not None:
        block = ldap_block(ldap)
        body = {**block, "tls": block.get("tls", {})}   # PUT replaces: no TLS settings is an empty one
        found.append(_given(LDAP, body, ldap.bind_password_secret_ref, related, body))
    if kerberos is not None:
        machine = kerberos.machine_account_on
        body = kerberos_block(kerberos)
        found.append(_given(KERBEROS, body, machine.secret_ref if machine else None, related, _spnego(body)))
    off = {"enabled": False}
    found += [_given(provider, off, None, related, off) for provider in PROVIDERS
              if provider in applied and provider not in {w.provider for w in found}]
    return found


def _spnego(body: dict) -> dict:
    # NETLOGON's credential reloads live; the rest (principal, keytab, realm) at start only.
    return {key: value for key, value in body.items() if key != "machine_account"}


def kerberos_restart_digest(s: spec.DittoServerSpec) -> str | None:
    """The digest of the Kerberos settings DittoFS reads only when it starts, for the spec."""
    kerberos = s.identity.kerberos_on
    return _digest(_spnego(kerberos_block(kerberos))) if kerberos is not None else None


def test_body(body: dict) -> dict:
    """The body of `POST .../ldap/test`: the config as `GET .../config` returns it; no password
    means the stored one, which was just sent."""
    return {key: value for key, value in body.items() if key != "bind_password"}
