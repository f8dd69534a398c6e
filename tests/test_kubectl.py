"""The real kubectl (scripts/build-kubectl.sh, the same Kubernetes version as the API server)
against a kube-apiserver of this module's own: `kubectl apply -k metacontroller/` as the README
says, then `kubectl get` of every declared kind showing the printer columns a user reads, and
the admission warnings kubectl prints. Metacontroller's own CRDs are test-only stand-ins
(tests/fixtures/metacontroller-crds.yaml): the tier runs no Metacontroller.
"""
from __future__ import annotations

import json

import pytest
import yaml

from tests import apiserver as kube, kubectl as k, test_admission_warnings as warnings

pytestmark = pytest.mark.apiserver

STAND_INS = "tests/fixtures/metacontroller-crds.yaml"
WAIT = f"--timeout={kube.READY_TIMEOUT_S:.0f}s"


def install_stand_ins(tools: k.Tools) -> None:
    tools.kubectl("apply", "-f", STAND_INS)
    tools.kubectl("wait", "--for=condition=Established", "-f", STAND_INS, WAIT)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A fresh API server with `kubectl apply -k metacontroller/` done: (tools, apply's output)."""
    with kube.running() as api:
        tools = k.tools(api, tmp_path_factory.mktemp("kubectl"))
        install_stand_ins(tools)
        applied = tools.kubectl("apply", "-k", "metacontroller/")
        tools.kubectl("wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=dittofs", WAIT)
        yield tools, applied.stdout


def built(tools: k.Tools) -> list[dict]:
    """What kustomize makes of metacontroller/ (kubectl's own kustomize)."""
    return list(yaml.safe_load_all(tools.kubectl("kustomize", "metacontroller/").stdout))


def identity(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_the_binary_is_the_api_servers_version(cluster):
    tools, _ = cluster
    versions = json.loads(tools.kubectl("version", "--client", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == kube.kubernetes_version()


def test_apply_k_creates_every_object_of_the_kustomization(cluster):
    tools, applied = cluster
    objects = built(tools)
    kinds = {obj["kind"] for obj in objects}
    assert {"CustomResourceDefinition", "CompositeController", "DecoratorController", "Deployment",
            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds
    in_server = json.loads(tools.kubectl("get", "-k", "metacontroller/", "-o", "json").stdout)["items"]
    assert sorted(map(identity, in_server)) == sorted(map(identity, objects))
    assert applied.count(" created") == len(objects), applied
    (deployment,) = [obj for obj in in_server if obj["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "dittofs-hooks:0.1.0"


def versions(tools: k.Tools) -> dict[tuple[str, str, str], str]:
    items = json.loads(tools.kubectl("get", "-k", "metacontroller/", "-o", "json").stdout)["items"]
    return {identity(obj): obj["metadata"]["resourceVersion"] for obj in items}


def test_a_second_apply_k_writes_nothing(cluster):
    tools, _ = cluster
    before = versions(tools)
    again = tools.kubectl("apply", "-k", "metacontroller/").stdout.splitlines()
    assert len(again) == len(built(tools)) == len(before)
    # kubectl says "configured" for the PodDisruptionBudget (its selector is patched whole by
    # client-side apply) and the policy (its atomic rule list, which the server completes with
    # `scope`), but the server finds nothing to change: no object gets a new resourceVersion.
    assert versions(tools) == before
    assert sum(line.endswith(" unchanged") for line in again) >= len(again) - 2, again


def test_get_dittoservers_shows_the_go_operators_columns(cluster):
    tools, _ = cluster
    tools.kubectl("create", "namespace", "dittofs-demo")
    tools.kubectl("-n", "dittofs-demo", "apply", "-f", "metacontroller/example-dittoserver.yaml")
    status = {"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "phase": "Running",
                         "adapterSummary": "nfs:12049,smb:1445"}}
    tools.kubectl("-n", "dittofs-demo", "patch", "dittoserver", "dittofs-example", "--subresource=status",
                  "--type=merge", "-p", json.dumps(status))
    for resource in ("dittoservers", "ditto", "dittofs"):   # the plural and both short names
        header, row = k.table(tools.kubectl("-n", "dittofs-demo", "get", resource).stdout)
        assert header == ["NAME", "REPLICAS", "READY", "AVAILABLE", "STATUS", "ADAPTERS", "AGE"]
        assert row[:-1] == ["dittofs-example", "1", "1", "1", "Running", "nfs:12049,smb:1445"]


DECLARED = {
    # kind (plural, short name): spec, status, the header and the row without the age
    "DittoShare": ("dittoshares", "dshare", {"server": "demo", "metadataStore": "meta", "localStore": "blocks"},
                   {"server": "demo", "shareName": "/export",
                    "conditions": [{"type": "Ready", "status": "True"}]},
                   ["NAME", "SERVER", "PATH", "READY", "AGE"], ["export", "demo", "/export", "True"]),
    "DittoUser": ("dittousers", "duser", {"server": "demo", "uid": 2001},
                  {"server": "demo", "name": "alice", "conditions": [{"type": "Ready", "status": "False"}]},
                  ["NAME", "SERVER", "USERNAME", "READY", "AGE"], ["alice", "demo", "alice", "False"]),
    "DittoGroup": ("dittogroups", "dgroup", {"server": "demo", "gid": 3000},
                   {"server": "demo", "name": "staff", "conditions": [{"type": "Ready", "status": "True"}]},
                   ["NAME", "SERVER", "GROUP", "READY", "AGE"], ["staff", "demo", "staff", "True"]),
}


@pytest.mark.parametrize("kind", sorted(DECLARED))
def test_get_of_each_declared_kind_shows_its_columns(cluster, tmp_path, kind):
    tools, _ = cluster
    plural, short, spec, status, header, row = DECLARED[kind]
    namespace = f"columns-{plural}"
    tools.kubectl("create", "namespace", namespace)
    manifest = tmp_path / "object.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": kind,
                                        "metadata": {"name": row[0]}, "spec": spec}))
    tools.kubectl("-n", namespace, "apply", "-f", str(manifest))
    tools.kubectl("-n", namespace, "patch", plural, row[0], "--subresource=status", "--type=merge",
                  "-p", json.dumps({"status": status}))
    for resource in (plural, short):
        shown_header, shown = k.table(tools.kubectl("-n", namespace, "get", resource).stdout)
        assert (shown_header, shown[:-1]) == (header, row)


def test_kubectl_prints_the_admission_warnings_apply_k_installed(cluster, tmp_path):
    tools, _ = cluster
    tools.kubectl("create", "namespace", "warned")
    manifest = tmp_path / "warned.yaml"
    spec, expected = warnings.WARNS["all-three"]
    manifest.write_text(yaml.safe_dump(warnings.dittoserver(spec, "warned", "warned")))
    # The policy takes effect a moment after it is created: a server-side dry run shows when.
    kube.poll(lambda: "Warning:" in tools.kubectl("apply", "--dry-run=server", "-f", str(manifest)).stderr,
              "the policy in force")
    done = tools.kubectl("apply", "-f", str(manifest))
    assert done.stdout.strip() == "dittoserver.dittofs.dittofs.com/warned created"
    # What a user reads: the policy and binding named, then the message.
    prefix = (f"Warning: Validation failed for ValidatingAdmissionPolicy '{warnings.POLICY['metadata']['name']}' "
              f"with binding '{warnings.BINDING['metadata']['name']}': ")
    assert done.stderr.splitlines() == [prefix + message for message in expected]
