"""A real Kubernetes API server for the tests' session: Debian's etcd and the `kube-apiserver`
that scripts/build-kube-apiserver.sh builds, on free 127.0.0.1 ports, and a small REST client
that speaks to it with a bearer token (no kubectl, no controllers: objects just sit there).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests import servers

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "scripts" / "kube-apiserver" / "go.mod"
READY_TIMEOUT_S = 180.0   # ready in ~4 s when idle; a loaded 2-core machine may need far more
APPLY_PATCH = "application/apply-patch+yaml"
# kubectl patch --type -> the Content-Type it sends
PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
               "strategic": "application/strategic-merge-patch+json"}

# kind -> (API path prefix, plural, namespaced)
RESOURCES = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Service": ("/api/v1", "services", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "DittoServer": ("/apis/dittofs.dittofs.com/v1alpha1", "dittoservers", True),
    "DittoShare": ("/apis/dittofs.dittofs.com/v1alpha1", "dittoshares", True),
    "DittoUser": ("/apis/dittofs.dittofs.com/v1alpha1", "dittousers", True),
    "DittoGroup": ("/apis/dittofs.dittofs.com/v1alpha1", "dittogroups", True),
}


def kubernetes_version() -> str:
    """The version scripts/kube-apiserver/go.mod pins (what the build script reads too)."""
    found = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes (v\S+)", MODULE.read_text(), re.M)
    assert found, f"{MODULE} requires no k8s.io/kubernetes version"
    return found.group(1)


def binary() -> Path:
    cache = Path(os.environ.get("KUBE_APISERVER_CACHE", ROOT / ".cache" / "kube-apiserver"))
    path = cache / kubernetes_version() / "kube-apiserver"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: `make test` builds it (scripts/build-kube-apiserver.sh, needs Go)")
    return path


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if not found:
        pytest.fail("etcd is missing: `make test` installs Debian's etcd-server")
    return found


class ApiError(Exception):
    def __init__(self, response: requests.Response):
        self.status, self.body = response.status_code, response.text
        super().__init__(f"{response.request.method} {response.url}: {self.status} {self.body}")


@dataclass
class Api:
    """The API server over HTTPS with a bearer token; objects as plain dicts."""
    url: str
    token: str
    ca_file: str

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.session.verify = self.ca_file
        # Not the environment's CA bundle or proxies, which would win over `verify`.
        self.session.trust_env = False

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=60, **kwargs)

    def call(self, method: str, path: str, **kwargs) -> dict:
        """The decoded answer; ApiError for anything but 2xx."""
        response = self.request(method, path, **kwargs)
        if not response.ok:
            raise ApiError(response)
        return response.json()

    # --- objects --------------------------------------------------------------------------------
    def create(self, obj: dict) -> dict:
        # Strict: an unknown field is an error, not a warning and a silently pruned field.
        return self.call("POST", collection(obj), json=obj, params={"fieldValidation": "Strict"})

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        response = self.request("GET", path(kind, name, namespace))
        if response.status_code == 404:
            return None
        if not response.ok:
            raise ApiError(response)
        return response.json()

    def replace(self, obj: dict, subresource: str = "") -> dict:
        return self.call("PUT", object_path(obj) + subresource, json=obj, params={"fieldValidation": "Strict"})

    def apply(self, obj: dict, manager: str = "metacontroller") -> dict:
        """A server-side apply patch as Metacontroller sends it (force: it takes fields over)."""
        return self.call("PATCH", object_path(obj), json=obj, headers={"Content-Type": APPLY_PATCH},
                         params={"fieldManager": manager, "force": "true", "fieldValidation": "Strict"})

    def patch(self, kind: str, name: str, namespace: str | None, patch, patch_type: str) -> dict:
        """`kubectl patch --type=<patch_type> -p <patch>` (merge, json or strategic)."""
        return self.call("PATCH", path(kind, name, namespace), json=patch,
                         headers={"Content-Type": PATCH_TYPES[patch_type]}, params={"fieldValidation": "Strict"})

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        response = self.request("DELETE", path(kind, name, namespace))
        if response.status_code not in (200, 202, 404):
            raise ApiError(response)

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        prefix, plural, _ = RESOURCES[kind]
        where = f"/namespaces/{namespace}" if namespace else ""
        items = self.call("GET", f"{prefix}{where}/{plural}")["items"]
        # A list's items carry neither kind nor apiVersion: put them back, as a watch has them.
        api_version = prefix.removeprefix("/apis/").removeprefix("/api/")
        return [{"apiVersion": api_version, "kind": kind, **item} for item in items]

    def namespace(self, name: str) -> str:
        if self.get("Namespace", name) is None:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name


def path(kind: str, name: str, namespace: str | None = None) -> str:
    prefix, plural, namespaced = RESOURCES[kind]
    where = f"/namespaces/{namespace or 'default'}" if namespaced else ""
    return f"{prefix}{where}/{plural}/{name}"


def object_path(obj: dict) -> str:
    return path(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))


def collection(obj: dict) -> str:
    return object_path(obj).rsplit("/", 1)[0]


# --------------------------------------------------------------------------- the processes


def _service_account_keys(folder: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = folder / "sa.key", folder / "sa.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _start(argv: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _etcd(folder: Path) -> tuple[subprocess.Popen, str]:
    client, peer = servers.free_port(), servers.free_port()
    url = f"http://127.0.0.1:{client}"
    proc = _start([etcd_binary(), "--name", "test", "--data-dir", str(folder / "etcd"),
                   "--listen-client-urls", url, "--advertise-client-urls", url,
                   "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                   "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                   "--initial-cluster", f"test=http://127.0.0.1:{peer}",
                   "--unsafe-no-fsync", "--log-level", "warn"], folder / "etcd.log")
    return proc, url


def _serving_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """(CA, certificate, key) for 127.0.0.1, made before the server starts, so that the client
    trusts exactly this CA from its first request (--cert-dir then holds nothing we need)."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    paths = folder / "ca.pem", folder / "serving.pem", folder / "serving.key"
    ca.cert_pem.write_to_path(str(paths[0]))
    for i, pem in enumerate(issued.cert_chain_pems):
        pem.write_to_path(str(paths[1]), append=i > 0)
    issued.private_key_pem.write_to_path(str(paths[2]))
    return paths


def _apiserver(folder: Path, etcd_url: str, token: str) -> tuple[subprocess.Popen, int]:
    port = servers.free_port()
    (folder / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    private, public = _service_account_keys(folder)
    _, cert, key = _serving_certificate(folder)
    proc = _start([str(binary()), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
                   "--advertise-address=127.0.0.1", f"--secure-port={port}",
                   f"--cert-dir={folder / 'certs'}", f"--tls-cert-file={cert}",
                   f"--tls-private-key-file={key}", f"--token-auth-file={folder / 'tokens.csv'}",
                   "--authorization-mode=RBAC", f"--service-account-key-file={public}",
                   f"--service-account-signing-key-file={private}",
                   "--service-account-issuer=https://kubernetes.default.svc",
                   "--service-cluster-ip-range=10.96.0.0/16", "--enable-priority-and-fairness=false",
                   "--profiling=false"], folder / "kube-apiserver.log")
    return proc, port


def poll(probe, what: str, timeout_s: float = READY_TIMEOUT_S):
    """The first true value `probe()` returns, polling; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


def _wait_ready(api: Api, procs: list[subprocess.Popen], folder: Path) -> None:
    deadline, last = time.monotonic() + READY_TIMEOUT_S, "no answer"
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        # The certificate appears once the server has generated it.
        if Path(api.ca_file).exists():
            with contextlib.suppress(requests.RequestException):
                response = api.request("GET", "/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[-500:]}"
        time.sleep(0.5)
    logs = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                     for log in sorted(folder.glob("*.log")))
    raise RuntimeError(f"the API server did not become ready ({last})\n{logs}")


@contextlib.contextmanager
def running():
    """Yield an Api for a fresh etcd and kube-apiserver; stop both and remove their files."""
    folder = Path(tempfile.mkdtemp(prefix="dittofs-hooks-apiserver-"))
    procs: list[subprocess.Popen] = []
    try:
        etcd, etcd_url = _etcd(folder)
        procs.append(etcd)
        token = os.urandom(16).hex()
        apiserver, port = _apiserver(folder, etcd_url, token)
        procs.append(apiserver)
        api = Api(f"https://127.0.0.1:{port}", token, str(folder / "ca.pem"))
        _wait_ready(api, procs, folder)
        yield api
    finally:
        for proc in reversed(procs):
            servers.stop(proc, timeout_s=30)
        shutil.rmtree(folder, ignore_errors=True)
