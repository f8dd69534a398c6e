"""The deployment manifests under metacontroller/ and the Dockerfile.

Checks that the Kubernetes objects validate against the Kubernetes API schemas, that the
DittoServer CRD's schema accepts and rejects what the README says of the spec, that the
Metacontroller controllers point at the hook's routes through its Service, and that the
Dockerfile's CMD really starts the service.
"""
from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from datetime import datetime
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hooks.dittofs import version
from hooks.request import errors
from hooks.request import spec as spec_module
from tests import crd_cases, factory, harness

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "metacontroller"
DOCKERFILE = ROOT / "Dockerfile"
EXAMPLE = "example-dittoserver.yaml"

HOOK_NAMESPACE = "dittofs-hooks"
HOOK_PATHS = {"/sync", "/customize", "/discover", "/discover/customize",
              *(f"/{r}/{h}" for r in ("dittoshares", "dittousers", "dittogroups") for h in ("customize", "sync", "finalize"))}
GROUP = "dittofs.dittofs.com"
VERSION = "v1alpha1"
PLURAL = "dittoservers"
SIZE_PATTERN = "^[0-9]+(Gi|Mi|Ti)$"
EXPECTED_CMD = ["gunicorn", "--config", "gunicorn.conf.py", "hooks.web.app:create_app()"]

# Kinds validated against the Kubernetes OpenAPI schemas (strict: unknown fields fail).
CORE_KINDS = {
    "Namespace", "Deployment", "Service", "PodDisruptionBudget", "ServiceAccount",
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}
NAMESPACED_KINDS = {"Deployment", "Service", "PodDisruptionBudget", "ServiceAccount"}


def _k8s_version() -> str:
    """A recent Kubernetes release that the installed kubernetes-validate has schemas for."""
    preferred = "1.33.0"
    available = kv_utils.all_versions()
    return preferred if preferred in available else kubernetes_validate.latest_version()


K8S_VERSION = _k8s_version()


# --- loading -----------------------------------------------------------------------------

def _yaml_files() -> list[Path]:
    return sorted(MANIFESTS.glob("*.yaml")) + sorted(MANIFESTS.glob("*.yml"))


def _load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def _objects() -> list[tuple[str, dict]]:
    found = []
    for path in _yaml_files():
        if path.name in ("kustomization.yaml", "kustomization.yml"):
            continue
        found.extend((path.name, doc) for doc in _load(path))
    return found


def _one(kind: str, name: str | None = None) -> dict:
    matches = [
        obj for _, obj in _objects()
        if obj.get("kind") == kind and (name is None or obj["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected exactly one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def _crd() -> dict:
    return _one("CustomResourceDefinition", f"{PLURAL}.{GROUP}")


def _crd_version() -> dict:
    versions = _crd()["spec"]["versions"]
    assert [v["name"] for v in versions] == [VERSION]
    return versions[0]


def _crd_schema() -> dict:
    return _crd_version()["schema"]["openAPIV3Schema"]


def _example() -> dict:
    docs = _load(MANIFESTS / EXAMPLE)
    assert len(docs) == 1
    return docs[0]


def _deployment() -> dict:
    return _one("Deployment", "dittofs-hooks")


def _container() -> dict:
    containers = _deployment()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


# --- every file parses, every core object is a valid Kubernetes object ---------------------

@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: p.name)
def test_yaml_parses(path):
    docs = _load(path)
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        assert isinstance(doc, dict)
        if path.name.startswith("kustomization"):
            continue
        assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: object without apiVersion/kind"
        assert doc.get("metadata", {}).get("name"), f"{path.name}: object without a name"


def test_every_core_kind_is_present():
    kinds = {obj["kind"] for _, obj in _objects()}
    assert CORE_KINDS <= kinds, f"missing: {sorted(CORE_KINDS - kinds)}"


@pytest.mark.parametrize(
    "source,obj",
    [(src, obj) for src, obj in _objects() if obj.get("kind") in CORE_KINDS],
    ids=lambda v: v if isinstance(v, str) else f"{v['kind']}/{v['metadata']['name']}",
)
def test_core_objects_validate_strictly(source, obj):
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{source}: {obj['kind']}/{obj['metadata']['name']} at {where}: {exc.message}")


def test_namespaced_objects_are_in_the_hook_namespace():
    assert _one("Namespace")["metadata"]["name"] == HOOK_NAMESPACE
    for source, obj in _objects():
        if obj["kind"] in NAMESPACED_KINDS:
            assert obj["metadata"].get("namespace") == HOOK_NAMESPACE, f"{source}: {obj['kind']}"


# --- kustomization -----------------------------------------------------------------------

def test_kustomization_lists_every_resource_but_the_example():
    kustomization = _load(MANIFESTS / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    for name in listed:
        assert (MANIFESTS / name).is_file(), f"kustomization lists {name}, which does not exist"
    expected = {
        p.name for p in _yaml_files()
        if p.name not in ("kustomization.yaml", "kustomization.yml", EXAMPLE)
    }
    assert set(listed) == expected
    assert EXAMPLE not in listed
    # No namespace transformer: it would move the cluster-scoped objects' subjects and the
    # Metacontroller binding into the hook's namespace.
    assert "namespace" not in kustomization


# --- the CRD -----------------------------------------------------------------------------

def test_crd_identity():
    crd = _crd()
    spec = crd["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "DittoServer"
    assert spec["names"]["plural"] == PLURAL
    assert spec["names"]["singular"] == "dittoserver"
    assert set(spec["names"]["shortNames"]) == {"ditto", "dittofs"}
    version = _crd_version()
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_crd_printer_columns():
    columns = {c["name"]: c for c in _crd_version()["additionalPrinterColumns"]}
    # The Go operator's columns, in its order, then Adapters before Age.
    assert list(columns) == ["Replicas", "Ready", "Available", "Status", "Adapters", "Age"]
    assert columns["Replicas"]["jsonPath"] == ".spec.replicas"
    assert columns["Ready"]["jsonPath"] == ".status.readyReplicas"
    assert columns["Available"]["jsonPath"] == ".status.availableReplicas"
    assert columns["Status"]["jsonPath"] == ".status.phase"
    assert columns["Adapters"]["jsonPath"] == ".status.adapterSummary"
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _walk(schema: dict, path: str = ""):
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def test_crd_schema_is_structural():
    """Every node has a type (or preserves unknown fields); no constructs that a structural
    schema forbids; defaults satisfy their own node."""
    for path, node in _walk(_crd_schema()):
        assert "type" in node, f"{path or '<root>'} has no type"
        for forbidden in ("$ref", "additionalItems", "definitions", "dependencies", "patternProperties"):
            assert forbidden not in node, f"{path}: {forbidden} is not allowed in a CRD schema"
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, f"{path}: properties and additionalProperties"
        if "default" in node:
            jsonschema.Draft202012Validator(_as_json_schema(node)).validate(node["default"])


def test_crd_spec_declares_the_contract_fields():
    spec = _crd_schema()["properties"]["spec"]
    props = spec["properties"]
    assert spec["required"] == ["storage"]
    assert set(props) == {
        "image", "replicas", "storage", "database", "metrics", "controlPlane", "identity", "logging",
        "adapterDiscovery", "adapterServices", "service", "percona", "snapshotPolicies", "resources",
        "terminationGracePeriodSeconds", "securityContext", "podSecurityContext", "stores",
    }
    # The image of the one DittoFS version the hook writes config.yaml for, never `latest`.
    assert props["image"]["default"] == version.IMAGE == f"marmos91c/dittofs:{version.VERSION}"
    assert (props["replicas"]["minimum"], props["replicas"]["maximum"], props["replicas"]["default"]) == (0, 1, 1)
    storage = props["storage"]
    assert storage["required"] == ["metadataSize"]
    assert set(storage["properties"]) == {"metadataSize", "contentSize", "controlPlaneSize", "storageClassName"}
    for size in ("metadataSize", "contentSize", "controlPlaneSize"):
        assert storage["properties"][size]["pattern"] == SIZE_PATTERN
    assert storage["properties"]["controlPlaneSize"]["default"] == "1Gi"
    grace = props["terminationGracePeriodSeconds"]
    assert (grace["type"], grace["minimum"], grace["default"]) == ("integer", 36, 105)
    logging = props["logging"]["properties"]
    assert logging["level"]["enum"] == ["DEBUG", "INFO", "WARN", "ERROR"]
    assert logging["format"]["enum"] == ["text", "json"]
    for path in (("metrics", "port"), ("controlPlane", "port")):
        port = props[path[0]]["properties"][path[1]]
        assert (port["type"], port["minimum"], port["maximum"]) == ("integer", 1, 65535)
    assert props["metrics"]["properties"]["port"]["default"] == 9090
    assert props["controlPlane"]["properties"]["port"]["default"] == 8080
    for key, default in (("adapterServices", "LoadBalancer"), ("service", "ClusterIP")):
        svc_type = props[key]["properties"]["type"]
        assert svc_type["enum"] == ["ClusterIP", "NodePort", "LoadBalancer"]
        assert svc_type["default"] == default
    assert props["database"]["properties"]["type"]["enum"] == ["sqlite", "postgres"]
    for key in ("resources", "securityContext", "podSecurityContext"):
        assert props[key]["type"] == "object"
        assert props[key]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["podSecurityContext"]["default"] == {"fsGroup": 65532}


def test_crd_status_declares_every_field_with_its_type():
    status = _crd_schema()["properties"]["status"]
    props = status["properties"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert set(props) == {
        "observedGeneration", "replicas", "readyReplicas", "availableReplicas", "phase",
        "configHash", "adapters", "adapterSummary", "conditions", "undeclared",
    }
    assert (props["observedGeneration"]["type"], props["observedGeneration"]["format"]) == ("integer", "int64")
    for key in ("replicas", "readyReplicas", "availableReplicas"):
        assert props[key]["type"] == "integer"
    assert props["phase"]["type"] == "string"
    assert props["configHash"]["type"] == "string"
    assert props["adapterSummary"]["type"] == "string"
    adapter = props["adapters"]["items"]["properties"]
    assert {k: v["type"] for k, v in adapter.items()} == {"type": "string", "port": "integer"}
    condition = props["conditions"]["items"]["properties"]
    assert {k: v["type"] for k, v in condition.items()} == {
        "type": "string", "status": "string", "reason": "string", "message": "string",
        "lastTransitionTime": "string", "observedGeneration": "integer",
    }
    assert condition["lastTransitionTime"]["format"] == "date-time"
    assert condition["observedGeneration"]["format"] == "int64"


# The CRD's schema as a JSON schema that rejects unknown fields. The API server prunes unknown
# fields of a structural schema rather than rejecting them; closing every object that lists its
# properties (and does not preserve unknown fields) turns "would be pruned" into "invalid".

def _as_json_schema(node):
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")


def _format_checker() -> jsonschema.FormatChecker:
    """date-time checked as the API server does (RFC 3339), without optional jsonschema extras."""
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value) -> bool:
        if not isinstance(value, str):
            return True
        if not RFC3339.fullmatch(value):
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return checker


def _closed_validator() -> jsonschema.Draft202012Validator:
    schema = _as_json_schema(_crd_schema())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=_format_checker())


def _dittoserver(spec: dict, name: str = "demo") -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DittoServer",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def _errors(obj: dict) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in _closed_validator().iter_errors(obj)
    ]


def test_schema_accepts_the_example():
    example = _example()
    assert example["apiVersion"] == f"{GROUP}/{VERSION}"
    assert example["kind"] == "DittoServer"
    assert _errors(example) == []
    spec = example["spec"]
    assert spec["metrics"]["enabled"] is True
    assert spec["adapterServices"]["type"] == "LoadBalancer"
    assert {"metadataSize", "contentSize", "controlPlaneSize"} <= set(spec["storage"])
    assert spec["image"] == version.IMAGE


def test_schema_accepts_a_minimal_spec():
    assert _errors(_dittoserver({"storage": {"metadataSize": "10Gi"}})) == []


def test_schema_accepts_a_full_spec():
    spec = {**factory.FULL_SPEC, "controlPlane": {"port": 8081, "tls": False}, "percona": {"enabled": False},
            "snapshotPolicies": [], "database": {"type": "postgres", "postgresSecretRef": {"name": "pg", "key": "dsn"}},
            "securityContext": {"runAsUser": 1000, "anything": {"nested": True}}}
    assert _errors(_dittoserver(spec)) == []


@pytest.mark.parametrize("spec", crd_cases.SCHEMA_REJECTS.values(), ids=crd_cases.SCHEMA_REJECTS.keys())
def test_schema_rejects(spec):
    assert _errors(_dittoserver(spec)), f"accepted {spec}"


@pytest.mark.parametrize("before, after, message", crd_cases.STORE_CHANGES)
def test_store_transition_rules(before, after, message):
    """A store's type, an s3 store's bucket and prefix are fixed once it is made (the rules
    are checked on the real server too, tests/test_apiserver_real.py)."""
    found = crd_cases.store_change_refusals(_crd_schema()["properties"]["spec"]["properties"]["stores"], before, after)
    assert found == ([] if message is None else [m for m in found if m.startswith(message)]) and bool(found) == bool(message)


def test_an_s3_store_needs_its_settings():
    stores = _crd_schema()["properties"]["spec"]["properties"]["stores"]
    assert crd_cases.store_change_refusals(stores, {}, {"remote": [{"name": "r", "type": "s3"}]}) == [
        "a remote store of type s3 needs s3 (bucket, credentialsSecretRef)"]
    assert crd_cases.store_change_refusals(stores, {}, {"remote": [{"name": "r", "type": "memory"}]}) == []
    assert crd_cases.store_change_refusals(stores, {}, {"metadata": [{"name": "m", "type": "postgres"}]}) == [
        "a metadata store of type postgres needs postgres.secretRef (a Secret with host, database, user, password of "
        "a database of its own)"]


def test_status_schema_accepts_a_hook_status_and_rejects_a_bad_time():
    status = {
        "observedGeneration": 3, "replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "phase": "Running", "configHash": "ab" * 32,
        "adapters": [{"type": "nfs", "port": 12049}, {"type": "smb", "port": 12445}],
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "1/1",
            "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 3,
        }],
    }
    obj = _dittoserver({"storage": {"metadataSize": "10Gi"}}) | {"status": status}
    assert _errors(obj) == []
    bad = copy.deepcopy(obj)
    bad["status"]["conditions"][0]["lastTransitionTime"] = "yesterday"
    assert _errors(bad)
    undeclared = copy.deepcopy(obj)
    undeclared["status"]["somethingElse"] = 1
    assert _errors(undeclared), "an undeclared status field would be pruned and loop forever"


def test_every_status_the_hook_returns_fits_the_crd():
    statuses = harness.hook_statuses()
    types = {c["type"] for s in statuses for c in s["conditions"]}
    assert {"Ready", "Available", "Progressing", "AdaptersKnown", "PortConflict", "StorageChangeIgnored"} <= types
    for status in statuses:
        obj = _dittoserver({"storage": {"metadataSize": "10Gi"}}) | {"status": status}
        assert _errors(obj) == [], status


# --- CRD defaults agree with the hook's defaults -------------------------------------------

def test_crd_defaults_match_the_hook_defaults():
    """A minimal spec defaulted by the API server means the same to the hook as the bare one."""
    from hooks.request.spec import DittoServerSpec

    spec_schema = _crd_schema()["properties"]["spec"]
    bare = {"storage": {"metadataSize": "10Gi"}}
    defaulted = crd_cases.defaulted(spec_schema, copy.deepcopy(bare))
    assert defaulted["metrics"] == {"enabled": False, "port": 9090, "path": "/metrics"}
    assert _errors(_dittoserver(defaulted)) == []
    # The hook leaves the image to `dittofs.version`; the CRD writes the same one in.
    assert DittoServerSpec.model_validate(defaulted) == DittoServerSpec.model_validate({**bare, "image": version.IMAGE})


# --- CEL rules -----------------------------------------------------------------------------

def _cel_rules() -> tuple[list[dict], list[dict]]:
    schema = _crd_schema()
    return schema.get("x-kubernetes-validations", []), schema["properties"]["spec"].get("x-kubernetes-validations", [])


def test_cel_rules_are_present():
    root_rules, spec_rules = _cel_rules()
    # ports differ, postgres needs its Secret, a client CA needs a certificate, a postgres store needs
    # its own database, an fs store needs the content claim, one per unsupported field
    assert len(root_rules) == 1 and len(spec_rules) == 5 + len(spec_module.UNSUPPORTED)
    assert len(crd_cases.nested_rules(_crd_schema()["properties"]["spec"])) == len(spec_rules) + 5 + 7   # and LDAP's and Kerberos's, on their objects
    name_rule = root_rules[0]["rule"]
    assert "self.metadata.name" in name_rule and "52" in name_rule and ".matches(" in name_rule
    port_rule = spec_rules[0]["rule"]
    for needle in ("has(self.metrics)", "has(self.controlPlane)", "9090", "8080", "!="):
        assert needle in port_rule
    for rule in root_rules + spec_rules:
        assert rule.get("message"), "every rule says what is wrong"


@pytest.mark.parametrize("name,valid", crd_cases.NAME_CASES)
def test_cel_name_rule(name, valid):
    (rule,), _ = _cel_rules()
    assert crd_cases.cel_eval(rule["rule"], {"metadata": {"name": name}}) is valid


@pytest.mark.parametrize("spec,valid", crd_cases.PORT_CASES)
def test_cel_port_rule(spec, valid):
    _, (rule, *_) = _cel_rules()
    assert crd_cases.cel_eval(rule["rule"], {"storage": {"metadataSize": "1Gi"}, **spec}) is valid
    # The API server applies defaults before validation: the rule must agree on defaulted input.
    defaulted = crd_cases.defaulted(_crd_schema()["properties"]["spec"],
                                copy.deepcopy({"storage": {"metadataSize": "1Gi"}, **spec}))
    assert crd_cases.cel_eval(rule["rule"], defaulted) is valid


def test_example_passes_the_cel_rules():
    root_rules, spec_rules = _cel_rules()
    example = _example()
    assert crd_cases.cel_eval(root_rules[0]["rule"], example) is True
    for rule in spec_rules:
        assert crd_cases.cel_eval(rule["rule"], example["spec"]) is True


def test_every_unsupported_field_has_a_case():
    assert set(crd_cases.UNSUPPORTED_CASES) == {path for path, _ in spec_module.UNSUPPORTED}


@pytest.mark.parametrize("path", sorted(crd_cases.UNSUPPORTED_CASES))
def test_unsupported_operator_fields_are_declared_refused_by_cel_and_by_the_hook(path):
    asking, idle = crd_cases.UNSUPPORTED_CASES[path]
    spec = crd_cases.with_field(path, asking)
    # Declared: the schema keeps the field (nothing pruned), and a CEL rule refuses it, naming it.
    assert _errors(_dittoserver(spec)) == []
    _, spec_rules = _cel_rules()
    defaulted = crd_cases.defaulted(_crd_schema()["properties"]["spec"], copy.deepcopy(spec))
    refusing = [r for r in spec_rules if not crd_cases.cel_eval(r["rule"], defaulted)]
    assert [r["fieldPath"] for r in refusing] == [f".{path}"]
    assert path in refusing[0]["message"]
    # The hook refuses it too (a CRD older than the hook), with a 422 naming the field.
    with pytest.raises(errors.HookError) as caught:
        spec_module.parse_spec(spec)
    assert caught.value.status == 422 and caught.value.field == f"parent.spec.{path}"
    # Set so that it asks for nothing, it is accepted by both.
    if idle is not None:
        calm = crd_cases.defaulted(_crd_schema()["properties"]["spec"], crd_cases.with_field(path, idle))
        assert all(crd_cases.cel_eval(r["rule"], calm) for r in spec_rules)
        spec_module.parse_spec(calm)


# --- the Metacontroller controllers --------------------------------------------------------

def _hooks_of(controller: dict) -> dict:
    return controller["spec"]["hooks"]


def _service_host() -> tuple[str, int]:
    service = _one("Service", "dittofs-hooks")
    (port,) = service["spec"]["ports"]
    return f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local", port["port"]


def _check_hook(hook: dict, path: str):
    assert hook["version"] == "v2"
    webhook = hook["webhook"]
    url = urlsplit(webhook["url"])
    host, port = _service_host()
    assert url.scheme == "http"
    assert (url.hostname, url.port) == (host, port)
    assert url.path == path and path in HOOK_PATHS
    assert re.fullmatch(r"[0-9]+(ms|s)", webhook["timeout"]), webhook["timeout"]
    seconds = int(webhook["timeout"][:-2]) / 1000 if webhook["timeout"].endswith("ms") else int(webhook["timeout"][:-1])
    assert 0 < seconds <= 10, "Metacontroller's hook budget; discovery must stay inside it"


def test_hook_paths_are_the_routes_the_app_serves():
    from hooks.web import app, settings
    rules = app.create_app(settings.Settings()).url_map.iter_rules()
    assert {r.rule for r in rules if "POST" in (r.methods or ())} == HOOK_PATHS


def test_composite_controller():
    cc = _one("CompositeController")
    assert cc["apiVersion"] == "metacontroller.k8s.io/v1alpha1"
    spec = cc["spec"]
    assert spec["parentResource"] == {"apiVersion": f"{GROUP}/{VERSION}", "resource": PLURAL}
    assert spec["generateSelector"] is True
    # Syncs come from watched events (tests/test_convergence.py shows a resync finds nothing);
    # the period only brings a hook upgrade to every parent, at Metacontroller's own 30 minutes.
    assert spec["resyncPeriodSeconds"] == 1800
    children = {(c["apiVersion"], c["resource"]): c for c in spec["childResources"]}
    assert set(children) == {
        ("v1", "configmaps"), ("v1", "secrets"), ("v1", "services"), ("apps/v1", "statefulsets"),
        ("networking.k8s.io/v1", "networkpolicies"),
    }
    for child in children.values():
        assert child["updateStrategy"] == {"method": "InPlace"}
    hooks = _hooks_of(cc)
    assert set(hooks) == {"sync", "customize"}
    _check_hook(hooks["sync"], "/sync")
    _check_hook(hooks["customize"], "/customize")


def test_decorator_controller():
    dc = _one("DecoratorController", "dittoservers-adapter-discovery.dittofs.dittofs.com")
    assert dc["apiVersion"] == "metacontroller.k8s.io/v1alpha1"
    spec = dc["spec"]
    # A status write of the CompositeController must not poll DittoFS again.
    assert spec["resources"] == [{"apiVersion": f"{GROUP}/{VERSION}", "resource": PLURAL, "ignoreStatusChanges": True}]
    # No attachment: the CompositeController owns the parent's Secrets and would release one.
    assert spec["attachments"] == []
    # The hook's resyncAfterSeconds (the polling interval, the backoff, or 10 minutes while no
    # replica is ready) is the timer; this safety net is above the longest of them, so the two
    # do not both fire every interval.
    from hooks.dittofs import pacing
    assert spec["resyncPeriodSeconds"] >= 2 * pacing.NOT_READY_RESYNC_SECONDS
    hooks = _hooks_of(dc)
    assert set(hooks) == {"sync", "customize"}
    _check_hook(hooks["sync"], "/discover")
    _check_hook(hooks["customize"], "/discover/customize")


def test_every_hook_url_is_a_known_route():
    controllers = [obj for _, obj in _objects() if obj.get("kind") in ("CompositeController", "DecoratorController")]
    assert len(controllers) == 5
    served = set()
    for controller in controllers:
        for name, hook in _hooks_of(controller).items():
            _check_hook(hook, urlsplit(hook["webhook"]["url"]).path)
            served.add(urlsplit(hook["webhook"]["url"]).path)
    assert served == HOOK_PATHS, "every route is called by a controller"


@pytest.mark.parametrize("resource", ["dittoshares", "dittousers", "dittogroups"])
def test_declared_kind_controllers(resource):
    """Each declared kind: a DecoratorController whose own status writes start no poll, with a
    finalize hook (deletionPolicy), and a safety-net resync well above the polling interval."""
    dc = _one("DecoratorController", f"{resource}.{GROUP}")
    assert dc["spec"]["resources"] == [{"apiVersion": f"{GROUP}/{VERSION}", "resource": resource, "ignoreStatusChanges": True}]
    assert set(_hooks_of(dc)) == {"sync", "customize", "finalize"}
    for hook, found in _hooks_of(dc).items():
        _check_hook(found, f"/{resource}/{hook}")
    attachments = [a["resource"] for a in dc["spec"]["attachments"]]
    assert attachments == (["secrets"] if resource == "dittousers" else [])
    assert dc["spec"]["resyncPeriodSeconds"] >= 10 * 30
    rules = _one("ClusterRole", "metacontroller-dittofs")["rules"]
    assert any(resource in r["resources"] and "watch" in r["verbs"] for r in rules)
    assert any(f"{resource}/status" in r["resources"] and "update" in r["verbs"] for r in rules)


# --- the hook's Deployment, Service, PDB, ServiceAccount -------------------------------------

def test_service_targets_the_deployment_port():
    service = _one("Service", "dittofs-hooks")
    deployment = _deployment()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 8080, "http")
    container_ports = {p["name"]: p for p in _container()["ports"]}
    assert container_ports["http"]["containerPort"] == 8080
    env = {e["name"]: e.get("value") for e in _container()["env"]}
    assert env["PORT"] == str(container_ports["http"]["containerPort"])
    assert env["HOST"] == "0.0.0.0"


def test_deployment_shape():
    deployment = _deployment()
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = _container()
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert container["image"] == "dittofs-hooks:0.1.0"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert container[probe]["httpGet"]["port"] in ("http", 8080)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert pod["serviceAccountName"] == _one("ServiceAccount")["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False


def test_deployment_is_locked_down():
    pod = _deployment()["spec"]["template"]["spec"]
    container = _container()
    pod_sc, sc = pod["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 10001
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # gunicorn writes worker heartbeat files to /tmp: it must be a writable emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_pdb_and_serviceaccount():
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = _deployment()["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    sa = _one("ServiceAccount")
    assert sa["metadata"]["name"] == "dittofs-hooks"
    assert sa["automountServiceAccountToken"] is False
    # The hook never calls the API: nothing may bind its ServiceAccount.
    for _, obj in _objects():
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj["subjects"]:
                assert not (subject["kind"] == "ServiceAccount" and subject["name"] == "dittofs-hooks")


# --- Metacontroller's RBAC -----------------------------------------------------------------

ALL_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


def _granted(role: dict, group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in role["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_metacontroller_rbac():
    binding = _one("ClusterRoleBinding")
    role = _one("ClusterRole")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "metacontroller", "namespace": "metacontroller"},
    ]
    assert ALL_VERBS <= _granted(role, GROUP, PLURAL)
    assert {"get", "update", "patch"} <= _granted(role, GROUP, f"{PLURAL}/status")
    for child in _one("CompositeController")["spec"]["childResources"]:
        group = child["apiVersion"].rpartition("/")[0]
        assert ALL_VERBS <= _granted(role, group, child["resource"]), child
    assert ALL_VERBS <= _granted(role, "networking.k8s.io", "networkpolicies")
    for rule in role["rules"]:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], "no wildcards"


# --- the Dockerfile ------------------------------------------------------------------------

def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _global_args() -> dict[str, str]:
    args = {}
    for word, rest in _dockerfile_instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip().strip('"')
    return args


def _base_image(from_args: str) -> str:
    image = from_args.split()[0]
    for key, value in _global_args().items():
        image = image.replace("${%s}" % key, value).replace("$" + key, value)
    return image


def _dockerfile_cmd() -> list[str]:
    final = _stages()[-1]
    cmds = [rest for word, rest in final if word == "CMD"]
    assert len(cmds) == 1, "the final stage has exactly one CMD"
    argv = json.loads(cmds[0])  # exec form is a JSON array; shell form does not parse
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


def test_dockerfile_is_multi_stage_on_a_pinned_slim_base():
    stages = _stages()
    assert len(stages) >= 2
    bases = [_base_image(stage[0][1]) for stage in stages]
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.[0-9]+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert bases[0] == bases[-1], "builder and final stage share one base"
    builder = " ".join(rest for word, rest in stages[0] if word == "RUN")
    assert "pip wheel --no-deps" in builder and "/wheels" in builder


def test_dockerfile_final_stage():
    final = _stages()[-1]
    words = [word for word, _ in final]
    users = [rest for word, rest in final if word == "USER"]
    assert users and re.fullmatch(r"[0-9]+(:[0-9]+)?", users[-1]), "USER must be numeric"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN"), "USER after every RUN"
    assert ("WORKDIR", "/app") in final
    copies = [rest for word, rest in final if word == "COPY"]
    assert any(c.split()[-2:] == ["gunicorn.conf.py", "/app/gunicorn.conf.py"] for c in copies)
    env_text = " ".join(rest for word, rest in final if word == "ENV")
    for pair in ("HOST=0.0.0.0", "PORT=8080", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"):
        assert pair in env_text
    assert ("EXPOSE", "8080") in final
    runs = " ".join(rest for word, rest in final if word == "RUN")
    assert "--no-index" in runs, "the final stage installs only the built wheels"
    assert re.search(r"pip uninstall[^&;]*\bpip\b", runs), "pip itself is removed after the install"
    for tool in ("apt-get", "gcc", "build-essential"):
        assert tool not in runs
    assert _dockerfile_cmd() == EXPECTED_CMD


LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"


def _locked() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock as {normalized name: (version, hashes)}; every entry pinned with ==."""
    found: dict[str, tuple[str, list[str]]] = {}
    for entry in re.split(r"\n(?=\S)", LOCK.read_text(encoding="utf-8")):
        lines = [line.strip().rstrip("\\").strip() for line in entry.splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        if not lines:
            continue
        name, _, pinned = lines[0].partition("==")
        assert pinned, f"not pinned with ==: {lines[0]}"
        hashes = [line.removeprefix("--hash=") for line in lines[1:] if line.startswith("--hash=sha256:")]
        found[canonicalize_name(name)] = (pinned.strip(), hashes)
    return found


def test_the_lock_pins_every_runtime_dependency_inside_pyprojects_ranges_with_hashes():
    locked = _locked()
    runtime = [Requirement(text) for text in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]
    assert runtime
    for requirement in runtime:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        version, hashes = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"{name}=={version} is outside pyproject's {requirement.specifier}: run `make lock`"
    assert all(hashes for _, hashes in locked.values()), "an entry without --hash"
    assert "pytest" not in locked, "the lock holds the runtime dependencies only"


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins():
    """`pip install --no-deps` installs nothing the lock does not name: each pinned package's
    own requirements (for Python 3.11 on Linux) are pinned too. Read from the installed
    metadata of the packages whose installed version is the pinned one."""
    locked = _locked()
    environment = {"python_version": "3.11", "python_full_version": "3.11.17", "sys_platform": "linux",
                   "platform_system": "Linux", "os_name": "posix", "extra": ""}
    checked = 0
    for name, (version, _) in locked.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        checked += 1
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                assert canonicalize_name(requirement.name) in locked, f"{name} needs {requirement}"
    assert checked >= len(locked) // 2, "too few locked packages are installed to check"


def test_the_image_installs_its_dependencies_from_the_lock_alone():
    runs = [rest for stage in _stages() for word, rest in stage if word == "RUN"]
    text = " ".join(runs)
    assert "--require-hashes --no-deps --only-binary=:all: --dest /wheels -r requirements.lock" in text
    assert "--no-index --find-links=/wheels --require-hashes --no-deps -r /wheels/requirements.lock" in text
    project = [r for r in runs if "dittofs_hooks-*.whl" in r]
    assert project and all("--no-deps" in r for r in project)
    assert "lock:" in (ROOT / "Makefile").read_text() and "--generate-hashes" in (ROOT / "Makefile").read_text()


def test_dockerignore_keeps_the_context_small():
    lines = [
        l.strip() for l in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if l.strip() and not l.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: everything is excluded unless named"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    # What the Dockerfile copies (pyproject names README.md as the readme: the build needs it).
    assert {"pyproject.toml", "requirements.lock", "README.md", "gunicorn.conf.py", "hooks"} <= allowed
    assert not allowed & {".venv", ".git", "tests"}


# --- the image's CMD starts the service ----------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=25)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.mark.timeout(60)
def test_dockerfile_cmd_serves_healthz():
    argv = _dockerfile_cmd()
    port = _free_port()
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        [str(ROOT / ".venv" / "bin"), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env.update(HOST="127.0.0.1", PORT=str(port))
    url = f"http://127.0.0.1:{port}/healthz"
    with tempfile.TemporaryFile() as log, tempfile.TemporaryDirectory() as runtime_dir:
        # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR (else ~/.gunicorn/): keep
        # it private to this run so that parallel servers do not replace each other's socket.
        env["XDG_RUNTIME_DIR"] = runtime_dir
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            status, last_error = None, None
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        status = response.status
                    break
                except urllib.error.HTTPError as exc:
                    status = exc.code
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                    last_error = exc
                    time.sleep(0.2)
        finally:
            _stop(proc)
            log.seek(0)
            output = log.read().decode("utf-8", "replace")
        assert status == 200, (
            f"GET {url} answered {status} (last error {last_error!r}, exit code {proc.returncode})\n"
            f"{' '.join(argv)} said:\n{output[-4000:]}"
        )


def _crd_paths(schema: dict, prefix: str = "") -> set[str]:
    """Every field path the CRD declares under `schema` (not inside passed-through objects)."""
    found = set()
    props = schema.get("properties") or (schema.get("items") or {}).get("properties") or {}
    for key, inner in props.items():
        path = f"{prefix}{key}"
        found.add(path)
        if not inner.get("x-kubernetes-preserve-unknown-fields"):
            found |= _crd_paths(inner, path + ".")
    return found


def _model_paths(model, prefix: str = "") -> set[str]:
    """Every field path the hook's spec model reads, by the name it reads it under (its alias)."""
    import typing

    import pydantic
    found = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        found.add(path)
        for arg in [info.annotation, *typing.get_args(info.annotation),
                    *(a for t in typing.get_args(info.annotation) for a in typing.get_args(t))]:
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                found |= _model_paths(arg, path + ".")
    return found


def test_every_field_the_crd_declares_is_read_by_the_hook_or_refused():
    """A field the CRD keeps but the hook reads under another name would be dropped silently."""
    declared = _crd_paths(_crd_schema()["properties"]["spec"])
    read = _model_paths(spec_module.DittoServerSpec)
    refused = {path for path, _ in spec_module.UNSUPPORTED}
    left = {p for p in declared - read if not any(p == r or p.startswith(r + ".") for r in refused)}
    assert left == set()
    assert read - declared == set()   # and the hook reads nothing the CRD would prune


@pytest.mark.parametrize("spec, field, fixed", crd_cases.HOOK_REFUSALS, ids=lambda v: v if isinstance(v, str) else None)
def test_cel_refuses_what_the_hook_refuses(spec, field, fixed):
    """What the hook answers 422 for, the CRD refuses at admission, on the same field."""
    full = crd_cases.defaulted(_crd_schema()["properties"]["spec"], {"storage": {"metadataSize": "1Gi"}, **spec})
    _, spec_rules = _cel_rules()
    assert [r["fieldPath"] for r in spec_rules if not crd_cases.cel_eval(r["rule"], full)] == [field]
    with pytest.raises(errors.HookError):
        spec_module.parse_spec(full)
    fixed = crd_cases.defaulted(_crd_schema()["properties"]["spec"], {"storage": {"metadataSize": "1Gi"}, **fixed})
    assert all(crd_cases.cel_eval(r["rule"], fixed) for r in spec_rules)
    spec_module.parse_spec(fixed)


def test_percona_is_refused_with_the_same_message_by_cel_and_the_hook_pointing_to_the_readme():
    spec = crd_cases.with_field("percona", {"enabled": True})
    _, spec_rules = _cel_rules()
    (rule,) = [r for r in spec_rules if r["fieldPath"] == ".percona"]
    with pytest.raises(errors.HookError) as caught:
        spec_module.parse_spec(spec)
    assert caught.value.message == rule["message"] == spec_module.MESSAGES["percona"]
    assert "database.postgresSecretRef" in rule["message"] and "README" in rule["message"]


# --- identity providers: the Go operator's webhook rules and DittoFS's start-up checks as CEL ---

@pytest.mark.parametrize("identity, message", crd_cases.IDENTITY_CASES)
def test_identity_rules_refuse_in_the_crd_and_the_hook_with_the_same_message(identity, message):
    spec = crd_cases.identity_spec(identity)
    assert _errors(_dittoserver(spec)) == []      # the schema itself takes the shape
    assert crd_cases.cel_refusals(_crd_schema(), "demo", spec) == ([message] if message else [])
    if message is None:
        spec_module.parse_spec(crd_cases.defaulted(_crd_schema()["properties"]["spec"], copy.deepcopy(spec)))
        return
    with pytest.raises(errors.HookError) as caught:
        spec_module.parse_spec(spec)
    assert caught.value.status == 422 and caught.value.message == message


def test_every_identity_rule_has_a_refusing_case():
    messages = {rule["message"] for path, rule in crd_cases.nested_rules(_crd_schema()["properties"]["spec"])
                if path[:1] == ("identity",)}
    assert messages == {message for _, message in crd_cases.IDENTITY_CASES if message}


def test_every_secret_reference_of_the_operator_takes_optional_false_and_refuses_true():
    """The Go operator's SecretKeySelectors carry `optional`: declared (never pruned silently),
    and `true` refused by the schema and the hook (a Secret the server needs cannot be missing)."""
    spec = crd_cases.identity_spec({"ldap": crd_cases.LDAP_OK,
                                    "kerberos": {**crd_cases.KERBEROS_OK, "machineAccount": crd_cases.MACHINE_OK}})
    spec["database"] = {"postgresSecretRef": {"name": "pg", "optional": False}}
    paths = [("identity", "ldap", "bindPasswordSecretRef"), ("identity", "kerberos", "keytabSecretRef"),
             ("identity", "kerberos", "machineAccount", "secretRef"), ("database", "postgresSecretRef")]
    for path in paths:
        node = spec
        for part in path:
            node = node[part]
        node["optional"] = False
    assert _errors(_dittoserver(spec)) == []
    spec_module.parse_spec(spec)
    for path in paths:
        bad = copy.deepcopy(spec)
        node = bad
        for part in path:
            node = node[part]
        node["optional"] = True
        assert any("optional" in e for e in _errors(_dittoserver(bad))), path
        with pytest.raises(errors.HookError) as caught:
            spec_module.parse_spec(bad)
        assert caught.value.field == "parent.spec." + ".".join(path) + ".optional"
