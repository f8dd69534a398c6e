"""The Helm chart charts/dittofs-hooks with the real helm (scripts/build-helm.sh): one source of
truth with metacontroller/ (the CRDs and the admission warnings are the same files; with default
values the chart renders the objects `kubectl kustomize metacontroller/` makes, the Namespace
aside), `helm lint`, renders with default and other values validated against the Kubernetes
schemas, and `helm install` then `helm upgrade` into a real kube-apiserver of this module's own.
"""
from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests import apiserver as kube, kubectl as k, test_kubectl, test_manifests as manifests

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "dittofs-hooks"
NAMESPACE = "dittofs-hooks"
COPIES = {CHART / "crds" / name: ROOT / "metacontroller" / name
          for name in ("crd.yaml", "crd-dittoshare.yaml", "crd-dittouser.yaml", "crd-dittogroup.yaml")}
COPIES[CHART / "files" / "admission-warnings.yaml"] = ROOT / "metacontroller" / "admission-warnings.yaml"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
# Every value set otherwise than by default.
OTHER_VALUES = {
    "image": {"repository": "registry.example.com/dittofs-hooks", "tag": "0.2.0", "pullPolicy": "Always"},
    "replicas": 3,
    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}},
    "podDisruptionBudget": {"minAvailable": 2},
    "applyStrategy": "server-side-apply",
    "webhookToken": {"value": "s3cret-token"},
    "tls": {"enabled": True, "secretName": "dittofs-hooks-tls", "caBundle": {"inline": CA_PEM}},
    "clusterDomain": "corp.example",
    "apiUrlTemplate": "{scheme}://{name}-api.{namespace}.svc.corp.example:{port}",
    "logLevel": "DEBUG",
    "metacontroller": {"serviceAccount": {"name": "mc-metacontroller-helm", "namespace": "mc"}},
    "serviceMonitorChildren": True,
    "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prometheus"},
                       "tlsConfig": {"serverName": "dittofs-hooks.dittofs-hooks.svc",
                                     "ca": {"secret": {"name": "dittofs-hooks-tls", "key": "ca.crt"}}}},
}
# Kinds the official schemas know; the rest are custom (Metacontroller's, prometheus-operator's).
SCHEMA_KINDS = manifests.CORE_KINDS | {"Secret"}
WEBHOOKS = 2 + 2 + 3 * 3   # CompositeController, discovery, and the three kinds' customize/sync/finalize


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """helm (and kubectl's kustomize) with no API server: a kubeconfig pointing nowhere."""
    folder = tmp_path_factory.mktemp("helm-offline")
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    kubeconfig.chmod(0o600)
    return k.Tools(kubeconfig, folder)


def values_file(folder: Path, values: dict) -> Path:
    path = folder / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def render(tools: k.Tools, *args: str) -> list[dict]:
    out = tools.helm("template", "dittofs-hooks", str(CHART), "--namespace", NAMESPACE, "--include-crds", *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_identity(objects: list[dict]) -> dict[tuple[str, str, str], dict]:
    found = {test_kubectl.identity(obj): obj for obj in objects}
    assert len(found) == len(objects), "two objects of the same kind and name"
    return found


def webhooks(objects: list[dict]) -> list[dict]:
    controllers = [o for o in objects if o["kind"] in ("CompositeController", "DecoratorController")]
    return [hook["webhook"] for c in controllers for hook in c["spec"]["hooks"].values()]


# --------------------------------------------------------------------------- one source of truth


@pytest.mark.parametrize("copy", sorted(COPIES), ids=lambda p: str(p.relative_to(CHART)))
def test_the_chart_carries_the_very_files_of_metacontroller(copy):
    assert copy.read_bytes() == COPIES[copy].read_bytes(), (
        f"{copy.relative_to(ROOT)} differs from {COPIES[copy].relative_to(ROOT)}: copy it over (cp)")


def test_default_values_render_the_objects_of_the_kustomization(offline):
    kustomized = [obj for obj in yaml.safe_load_all(offline.kubectl("kustomize", "metacontroller/").stdout)
                  if obj["kind"] != "Namespace"]   # helm install --create-namespace makes it
    rendered = by_identity(render(offline))
    assert sorted(rendered) == sorted(by_identity(kustomized))
    for key, obj in by_identity(kustomized).items():
        assert rendered[key] == obj, key


def test_lint_passes_with_default_and_other_values(offline, tmp_path):
    for args in ([], ["--values", str(values_file(tmp_path, OTHER_VALUES))]):
        done = offline.helm("lint", "--strict", str(CHART), *args)
        assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("which", ["default", "other"])
def test_every_rendered_object_of_a_known_kind_validates_strictly(offline, tmp_path, which):
    args = [] if which == "default" else ["--values", str(values_file(tmp_path, OTHER_VALUES))]
    objects = render(offline, *args)
    checked = [obj for obj in objects if obj["kind"] in SCHEMA_KINDS]
    assert len(checked) >= 10
    for obj in checked:
        kubernetes_validate.validate(obj, manifests.K8S_VERSION, strict=True)


def test_other_values_reach_every_object_they_name(offline, tmp_path):
    objects = render(offline, "--values", str(values_file(tmp_path, OTHER_VALUES)))
    found = by_identity(objects)
    deployment = found["Deployment", NAMESPACE, "dittofs-hooks"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert (container["image"], container["imagePullPolicy"]) == ("registry.example.com/dittofs-hooks:0.2.0", "Always")
    assert container["resources"] == OTHER_VALUES["resources"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {"HOST": "0.0.0.0", "PORT": "8080", "DITTOFS_HOOK_APPLY_STRATEGY": "server-side-apply",
                   "DITTOFS_HOOK_TOKEN_FILE": "/etc/dittofs-hooks/token/tokens",
                   "DITTOFS_HOOK_TLS_CERT": "/etc/dittofs-hooks/tls/tls.crt",
                   "DITTOFS_HOOK_TLS_KEY": "/etc/dittofs-hooks/tls/tls.key",
                   "DITTOFS_HOOK_API_URL_TEMPLATE": OTHER_VALUES["apiUrlTemplate"], "LOG_LEVEL": "DEBUG"}
    assert {v["name"]: v.get("secret", {}).get("secretName") for v in pod["volumes"]} == {
        "tmp": None, "token": "dittofs-hooks-token", "tls": "dittofs-hooks-tls"}
    assert container["livenessProbe"]["httpGet"]["scheme"] == container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert found["PodDisruptionBudget", NAMESPACE, "dittofs-hooks"]["spec"]["minAvailable"] == 2
    secret = found["Secret", NAMESPACE, "dittofs-hooks-token"]
    assert secret["stringData"] == {"token": "s3cret-token", "tokens": "s3cret-token\n"}
    hooks = webhooks(objects)
    assert len(hooks) == WEBHOOKS
    for hook in hooks:
        assert hook["url"].startswith("https://dittofs-hooks.dittofs-hooks.svc.corp.example:8080/")
        assert hook["authorization"] == {"secretRef": {"name": "dittofs-hooks-token", "namespace": NAMESPACE,
                                                       "key": "token"}}
        assert hook["caBundle"] == {"inline": CA_PEM}
    composite = found["CompositeController", "", "dittoservers.dittofs.dittofs.com"]
    assert composite["spec"]["childResources"][-1]["resource"] == "servicemonitors"
    (subject,) = found["ClusterRoleBinding", "", "metacontroller-dittofs"]["subjects"]
    assert (subject["name"], subject["namespace"]) == ("mc-metacontroller-helm", "mc")
    monitor = found["ServiceMonitor", NAMESPACE, "dittofs-hooks"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["interval"], endpoint["scheme"]) == ("15s", "https")
    assert endpoint["tlsConfig"] == OTHER_VALUES["serviceMonitor"]["tlsConfig"]


def test_an_existing_token_secret_is_named_and_none_is_made(offline, tmp_path):
    objects = render(offline, "--values", str(values_file(tmp_path, {"webhookToken": {"existingSecret": "mine"}})))
    assert not [obj for obj in objects if obj["kind"] == "Secret"]
    for hook in webhooks(objects):
        assert hook["authorization"]["secretRef"]["name"] == "mine"
        assert hook["url"].startswith("http://dittofs-hooks.dittofs-hooks.svc.cluster.local:8080/")


@pytest.mark.parametrize("values, message", [
    ({"applyStrategy": "client-side"}, "applyStrategy must be dynamic-apply or server-side-apply"),
    ({"tls": {"enabled": True}}, "tls.enabled needs tls.secretName"),
])
def test_bad_values_are_refused_with_a_message(offline, tmp_path, values, message):
    done = offline.helm("template", "dittofs-hooks", str(CHART), "--values", str(values_file(tmp_path, values)),
                        check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr


# --------------------------------------------------------------------------- install and upgrade


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh API server with Metacontroller's CRDs (test-only stand-ins) and the chart installed."""
    with kube.running() as api:
        tools = k.tools(api, tmp_path_factory.mktemp("helm"))
        test_kubectl.install_stand_ins(tools)
        tools.helm("install", "dittofs-hooks", str(CHART), "--namespace", NAMESPACE, "--create-namespace")
        yield api, tools


def in_server(tools: k.Tools, obj: dict) -> dict:
    kind = obj["kind"].lower()
    where = ["-n", obj["metadata"]["namespace"]] if obj["metadata"].get("namespace") else []
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    resource = f"{kind}.{group}" if group and group not in ("v1", "apps") else kind
    return json.loads(tools.kubectl("get", resource, obj["metadata"]["name"], *where, "-o", "json").stdout)


def contains(big, small) -> bool:
    """Every field of `small` is in `big` with the same value (the server adds defaults)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(key in big and contains(big[key], value) for key, value in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(contains, big, small))
    return big == small


def test_install_puts_every_rendered_object_into_the_server(installed, offline):
    _, tools = installed
    for obj in render(offline):
        stored = in_server(tools, obj)
        assert contains(stored, {key: value for key, value in obj.items() if key != "metadata"}), obj["metadata"]
        assert contains(stored["metadata"].get("labels", {}), obj["metadata"].get("labels", {}))
    tools.kubectl("wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=dittofs",
                  test_kubectl.WAIT)
    status = json.loads(tools.helm("status", "dittofs-hooks", "-n", NAMESPACE, "-o", "json").stdout)
    assert (status["info"]["status"], status["version"]) == ("deployed", 1)


def test_upgrade_with_a_token_and_three_replicas_changes_the_server(installed, tmp_path):
    _, tools = installed
    values = {"replicas": 3, "webhookToken": {"value": "upgrade-token"}, "logLevel": "DEBUG"}
    tools.helm("upgrade", "dittofs-hooks", str(CHART), "--namespace", NAMESPACE,
               "--values", str(values_file(tmp_path, values)))
    deployment = json.loads(tools.kubectl("-n", NAMESPACE, "get", "deployment", "dittofs-hooks", "-o", "json").stdout)
    assert deployment["spec"]["replicas"] == 3
    env = {item["name"]: item["value"] for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["DITTOFS_HOOK_TOKEN_FILE"], env["LOG_LEVEL"]) == ("/etc/dittofs-hooks/token/tokens", "DEBUG")
    token = tools.kubectl("-n", NAMESPACE, "get", "secret", "dittofs-hooks-token", "-o", "jsonpath={.data.token}").stdout
    assert token == "dXBncmFkZS10b2tlbg=="   # base64 of upgrade-token
    composite = json.loads(tools.kubectl("get", "compositecontroller", "dittoservers.dittofs.dittofs.com",
                                         "-o", "json").stdout)
    assert composite["spec"]["hooks"]["sync"]["webhook"]["authorization"]["secretRef"]["name"] == "dittofs-hooks-token"
    # The README's step for a CRD a new chart changes: Helm's upgrade leaves CRDs alone.
    applied = tools.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds")).stdout
    assert sorted(applied.split()) == sorted(f"customresourcedefinition.apiextensions.k8s.io/{plural}.dittofs.dittofs.com"
                                             for plural in ("dittoservers", "dittoshares", "dittousers", "dittogroups")
                                             ) + ["serverside-applied"] * 4
    history = json.loads(tools.helm("history", "dittofs-hooks", "-n", NAMESPACE, "-o", "json").stdout)
    assert [(entry["revision"], entry["status"]) for entry in history] == [(1, "superseded"), (2, "deployed")]
