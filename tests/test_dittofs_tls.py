"""The control plane over TLS, on the real `dfs`: the hook mounts the certificate, probes over
HTTPS, and discovery trusts the certificate Secret's CA and nothing else (a test CA from trustme).
"""
import contextlib

import pytest
import requests
import trustme

from hooks.request import adapters, controlplane
from tests import factory, realdfs, servers
from tests.worlds import World, declared, secret

pytestmark = pytest.mark.dittofs

HOSTS = ("127.0.0.1", "localhost", "demo-api.storage.svc.cluster.local")
TLS_SPEC = {**factory.SPEC, "controlPlane": {"certSecretName": "api-tls"}}


def tls_secret(name: str, ca: trustme.CA, trusted: trustme.CA) -> dict:
    """A kubernetes.io/tls-style Secret: a certificate `ca` signed, and `trusted`'s CA as ca.crt."""
    cert = ca.issue_cert(*HOSTS)
    return secret(name, **{"tls.crt": cert.cert_chain_pems[0].bytes().decode(),
                           "tls.key": cert.private_key_pem.bytes().decode(),
                           "ca.crt": trusted.cert_pem.bytes().decode()})


@contextlib.contextmanager
def tls_world(tmp_path, cert_secret: dict, ca: trustme.CA, spec=TLS_SPEC):
    response = factory.sync_of(factory.request(factory.parent(spec=spec), related=[cert_secret]))
    pod = realdfs.pod_of(response, [cert_secret])
    with ca.cert_pem.tempfile() as ca_file, realdfs.running(pod, tmp_path, verify=ca_file) as server:
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": server.url()}) as (hook, _):
            w = World(server, hook, response, spec)
            w.related.append(cert_secret)
            yield w


def test_the_pod_serves_https_with_the_mounted_certificate_and_is_probed_over_https(tmp_path):
    ca = trustme.CA()
    with tls_world(tmp_path, tls_secret("api-tls", ca, ca), ca) as w:
        container = w.server.pod.container
        assert {container[p]["httpGet"]["scheme"] for p in ("startupProbe", "livenessProbe", "readinessProbe")} == {"HTTPS"}
        assert w.server.pod.config["controlplane"]["tls"] == {"cert_file": "/tls/tls.crt", "key_file": "/tls/tls.key"}
        assert w.server.url().startswith("https://")
        # The probe paths answer over HTTPS (running() waited for /health); plain HTTP is refused.
        assert requests.get(w.server.url() + "/health/ready", verify=w.server.verify, timeout=5).status_code == 200
        assert requests.get(w.server.url().replace("https", "http") + "/health", timeout=5).status_code == 400


def test_discovery_trusts_the_certificate_secrets_ca(tmp_path):
    ca = trustme.CA()
    with tls_world(tmp_path, tls_secret("api-tls", ca, ca), ca) as w:
        found = w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED, w.state()
        assert adapters.ANNOTATION in found["annotations"]


def test_a_certificate_the_ca_did_not_sign_is_refused_and_changes_nothing(tmp_path):
    ca, stranger = trustme.CA(), trustme.CA()
    with tls_world(tmp_path, tls_secret("api-tls", ca, ca), ca) as w:
        known = w.discover()["annotations"][adapters.ANNOTATION]
        # The Secret now says to trust another CA than the one that signed the server's certificate.
        cert = next(s for s in w.related if s["metadata"]["name"] == "api-tls")
        cert["data"]["ca.crt"] = secret("x", c=stranger.cert_pem.bytes().decode())["data"]["c"]
        found = w.discover()
        assert adapters.ANNOTATION not in found["annotations"]
        assert w.parent["metadata"]["annotations"][adapters.ANNOTATION] == known   # adapter state kept
        assert w.state().reason == controlplane.TLS_FAILURE
        assert "certificate not trusted" in w.state().message
        synced = factory.sync_of(factory.request(w.parent))
        assert factory.condition(synced, "Authenticated")["status"] == "False"


def test_the_declared_kinds_trust_the_ca_the_manager_secret_carries(tmp_path):
    """A share's hook cannot relate the certificate Secret (the server names it): the manager
    Secret carries its ca.crt, and the hook verifies the server with it, and with nothing else."""
    ca = trustme.CA()
    cert = tls_secret("api-tls", ca, ca)
    with tls_world(tmp_path, cert, ca, spec={**TLS_SPEC, "storage": {"metadataSize": "1Gi", "contentSize": "1Gi"},
                                              "stores": {"metadata": [{"name": "meta", "type": "memory"}],
                                                         "local": [{"name": "blocks", "type": "memory"}]}}) as w:
        manager = next(s for s in w.related if s["metadata"]["name"] == "demo-manager-credentials")
        assert manager["data"]["ca.crt"] == cert["data"]["ca.crt"]
        group = declared("DittoGroup", "staff", {"server": "demo", "gid": 4000})
        w.declared = [group]
        w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED, w.state()
        w.keep(group)
        assert factory.condition(group, "Synced")["status"] == "True", group["status"]
        # Another CA in the manager Secret: refused, nothing asked of DittoFS goes through.
        manager["data"]["ca.crt"] = secret("x", c=trustme.CA().cert_pem.bytes().decode())["data"]["c"]
        w.keep(group)
        synced = factory.condition(group, "Synced")
        assert (synced["status"], synced["reason"]) == ("False", controlplane.TLS_FAILURE)
