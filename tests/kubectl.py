"""The real `kubectl` and `helm` of the tests (scripts/build-kubectl.sh, scripts/build-helm.sh,
cached under .cache/), run against tests/apiserver.py's kube-apiserver with a kubeconfig of its
token and CA. Never a kubectl or helm found on PATH: the tests pin both versions.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import apiserver as kube

ROOT = Path(__file__).resolve().parent.parent
HELM_MODULE = ROOT / "scripts" / "helm" / "go.mod"
TIMEOUT_S = 300   # a first run of either tool reads the server's discovery documents; generous on 2 loaded cores


def helm_version() -> str:
    """The version scripts/helm/go.mod pins (what scripts/build-helm.sh reads too)."""
    found = re.search(r"^\s*helm\.sh/helm/v4 (v\S+)", HELM_MODULE.read_text(), re.M)
    assert found, f"{HELM_MODULE} requires no helm.sh/helm/v4 version"
    return found.group(1)


def _cached(name: str, variable: str, version: str) -> Path:
    cache = Path(os.environ.get(variable, ROOT / ".cache" / name))
    path = cache / version / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: `make test` builds it (scripts/build-{name}.sh, needs Go)")
    return path


def kubectl_binary() -> Path:
    return _cached("kubectl", "KUBECTL_CACHE", kube.kubernetes_version())


def helm_binary() -> Path:
    return _cached("helm", "HELM_CACHE", helm_version())


def write_kubeconfig(api: kube.Api, folder: Path) -> Path:
    """A kubeconfig for `api`: its URL, the CA it serves with, its bearer token."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": api.url, "certificate-authority": api.ca_file}}],
        "users": [{"name": "admin", "user": {"token": api.token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)   # helm warns about a kubeconfig others can read
    return path


@dataclass
class Tools:
    """kubectl and helm bound to one API server through one kubeconfig, in a folder of their own
    (their caches and helm's config stay out of the home directory)."""
    kubeconfig: Path
    home: Path

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                "KUBECONFIG": str(self.kubeconfig), "HELM_CACHE_HOME": str(self.home / "helm-cache"),
                "HELM_CONFIG_HOME": str(self.home / "helm-config"), "HELM_DATA_HOME": str(self.home / "helm-data")}

    def run(self, binary: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(binary), *args], cwd=ROOT, env=self.env(), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        if check and done.returncode != 0:
            raise AssertionError(f"{binary.name} {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(kubectl_binary(), *args, check=check)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(helm_binary(), *args, check=check)


def tools(api: kube.Api, folder: Path) -> Tools:
    folder.mkdir(parents=True, exist_ok=True)
    return Tools(write_kubeconfig(api, folder), folder)


def table(output: str) -> list[list[str]]:
    """`kubectl get`'s table, split into cells (columns are separated by two or more spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]
