"""The admission warnings of metacontroller/admission-warnings.yaml, a ValidatingAdmissionPolicy
bound with `validationActions: [Warn]`: the Go operator's webhook warnings (v0.29.0,
`dittoserver_webhook.go`). One list of cases for both tiers: cel-python evaluates the policy's
expressions on the defaulted object, and the real kube-apiserver (marker `apiserver`) answers a
create or update with the `Warning` headers `kubectl` prints.
"""
from __future__ import annotations

import copy
import itertools
import re
from pathlib import Path

import pytest
import yaml

from tests import apiserver as kube, crd_cases, factory as f

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "metacontroller" / "admission-warnings.yaml"
POLICY, BINDING = yaml.safe_load_all(MANIFEST.read_text())
CRD = yaml.safe_load((ROOT / "metacontroller" / "crd.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

POSTGRES = ("database.postgresSecretRef is set while database.type is sqlite (its default): the server runs "
            "on PostgreSQL, from that Secret; set database.type to postgres to say so")
CERTIFICATE = ("controlPlane.certSecretName is set, so the API serves HTTPS whatever controlPlane.tls says "
               "(the probes and discovery use https); set controlPlane.tls to true to say so")


def privileged(port: int) -> str:
    return (f"controlPlane.port {port} is privileged (below 1024): DittoFS runs as a non-root user with every "
            "capability dropped, so it can listen there only where unprivileged users may bind low ports "
            "(podSecurityContext.sysctls can set net.ipv4.ip_unprivileged_port_start to 0)")


PG_REF = {"postgresSecretRef": {"name": "pg"}}
# name -> (spec, the warnings in the policy's order)
WARNS = {
    "postgres-secret-type-defaulted": ({**f.SPEC, "database": PG_REF}, [POSTGRES]),
    "postgres-secret-type-sqlite": ({**f.SPEC, "database": {"type": "sqlite", **PG_REF}}, [POSTGRES]),
    "certificate-tls-unset": ({**f.SPEC, "controlPlane": {"certSecretName": "api-tls"}}, [CERTIFICATE]),
    "certificate-tls-false": ({**f.SPEC, "controlPlane": {"certSecretName": "api-tls", "tls": False}}, [CERTIFICATE]),
    "privileged-port": ({**f.SPEC, "controlPlane": {"port": 443}}, [privileged(443)]),
    "privileged-port-1023": ({**f.SPEC, "controlPlane": {"port": 1023}}, [privileged(1023)]),
    "all-three": ({**f.SPEC, "database": PG_REF, "controlPlane": {"port": 80, "certSecretName": "api-tls"}},
                  [POSTGRES, CERTIFICATE, privileged(80)]),
}
CLEAN = {
    "minimal": f.SPEC,
    "full": f.FULL_SPEC,
    "postgres-typed": {**f.SPEC, "database": {"type": "postgres", **PG_REF}},
    "certificate-with-tls": {**f.SPEC, "controlPlane": {"certSecretName": "api-tls", "tls": True}},
    "tls-without-certificate": {**f.SPEC, "controlPlane": {"tls": False}},
    "port-1024": {**f.SPEC, "controlPlane": {"port": 1024}},
    "example": yaml.safe_load((ROOT / "metacontroller" / "example-dittoserver.yaml").read_text())["spec"],
}


def dittoserver(spec: dict, name: str = "demo", namespace: str = "storage") -> dict:
    return {"apiVersion": f.API_VERSION, "kind": "DittoServer",
            "metadata": {"name": name, "namespace": namespace}, "spec": copy.deepcopy(spec)}


# --------------------------------------------------------------------------- the manifest


def test_the_binding_only_warns_and_names_the_policy():
    assert (POLICY["kind"], BINDING["kind"]) == ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    assert POLICY["apiVersion"] == BINDING["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert BINDING["spec"] == {"policyName": POLICY["metadata"]["name"], "validationActions": ["Warn"]}


def test_the_policy_matches_creates_and_updates_of_dittoservers_only():
    group, version = f.API_VERSION.split("/")
    assert (CRD["spec"]["group"], CRD["spec"]["versions"][0]["name"]) == (group, version)
    (rule,) = POLICY["spec"]["matchConstraints"]["resourceRules"]
    assert rule == {"apiGroups": [group], "apiVersions": [version], "operations": ["CREATE", "UPDATE"],
                    "resources": [CRD["spec"]["names"]["plural"]]}   # not the status subresource


def test_every_case_is_an_object_the_crd_accepts():
    """A warning is only seen on an object that is stored: no case may break a CRD rule."""
    for spec in [s for s, _ in WARNS.values()] + list(CLEAN.values()):
        assert crd_cases.cel_refusals(SCHEMA, "demo", spec) == [], spec


# --------------------------------------------------------------------------- cel-python


def cel(expression: str, activation: dict):
    import celpy   # a test extra: missing, the CEL tests fail rather than skip

    env = celpy.Environment()
    return env.program(env.compile(expression)).evaluate(
        {name: celpy.json_to_cel(value) for name, value in activation.items()})


def defaulted(obj: dict) -> dict:
    """The object as the policy sees it: the API server applies the CRD's defaults first."""
    found = copy.deepcopy(obj)
    found["spec"] = crd_cases.defaulted(SCHEMA["properties"]["spec"], found["spec"])
    return found


def warnings_by_cel(obj: dict, old: dict | None = None) -> list[str]:
    activation = {"object": defaulted(obj), "oldObject": defaulted(old) if old else None,
                  "request": {"operation": "UPDATE" if old else "CREATE"}}
    if not all(cel(c["expression"], activation) for c in POLICY["spec"]["matchConditions"]):
        return []
    found = []
    for validation in POLICY["spec"]["validations"]:
        if not cel(validation["expression"], activation):
            found.append(str(cel(validation["messageExpression"], activation))
                         if "messageExpression" in validation else validation["message"])
    return found


@pytest.mark.parametrize("spec, expected", WARNS.values(), ids=WARNS.keys())
def test_cel_gives_the_go_operators_warnings(spec, expected):
    assert warnings_by_cel(dittoserver(spec)) == expected


@pytest.mark.parametrize("spec", CLEAN.values(), ids=CLEAN.keys())
def test_cel_gives_no_warning_for_a_clean_spec(spec):
    assert warnings_by_cel(dittoserver(spec)) == []


def test_cel_warns_on_an_update_only_when_the_spec_changes():
    spec, expected = WARNS["all-three"]
    old = dittoserver(spec)
    annotated = copy.deepcopy(old)
    annotated["metadata"]["annotations"] = {"dittofs.io/adapters": "[]"}
    assert warnings_by_cel(annotated, old) == []
    changed = dittoserver({**spec, "replicas": 0})
    assert warnings_by_cel(changed, old) == expected


# --------------------------------------------------------------------------- the real API server

_numbers = itertools.count(1)
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
WARNING = re.compile(r'^299 - "(.*)"$')


def sent_warnings(response) -> list[str]:
    """The texts of the response's `Warning` headers (RFC 7234 form, code 299), in order."""
    assert response.ok, response.text
    headers = response.raw.headers.getlist("Warning")
    found = []
    for header in headers:
        match = WARNING.match(header)
        assert match, header
        found.append(match.group(1).replace('\\"', '"').replace("\\\\", "\\"))
    return found


def policy_warnings(response) -> list[str]:
    """The messages this policy sent, without the server's prefix naming policy and binding."""
    prefix = (f"Validation failed for ValidatingAdmissionPolicy '{POLICY['metadata']['name']}' "
              f"with binding '{BINDING['metadata']['name']}': ")
    found = sent_warnings(response)
    assert all(text.startswith(prefix) for text in found), found
    return [text.removeprefix(prefix) for text in found]


def create(api: kube.Api, obj: dict, dry_run: bool = False):
    params = {"fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}
    return api.request("POST", kube.collection(obj), json=obj, params=params)


def replace(api: kube.Api, obj: dict):
    return api.request("PUT", kube.object_path(obj), json=obj, params={"fieldValidation": "Strict"})


@pytest.fixture(scope="module")
def policy(apiserver):
    """The CRD and the policy installed, and the policy in force: a policy takes a moment to
    reach the server's admission chain, so a dry-run create is repeated until it warns."""
    if apiserver.get("CustomResourceDefinition", CRD["metadata"]["name"]) is None:
        apiserver.create(CRD)
    kube.poll(lambda: _established(apiserver), "CRD Established")
    installed = [(f"{ADMISSION}/{plural}", obj) for obj, plural in
                 ((POLICY, "validatingadmissionpolicies"), (BINDING, "validatingadmissionpolicybindings"))]
    for collection, obj in installed:
        apiserver.call("POST", collection, json=obj, params={"fieldValidation": "Strict"})
    try:
        namespace = apiserver.namespace("warnings")
        probe = dittoserver(WARNS["privileged-port"][0], "probe", namespace)
        kube.poll(lambda: sent_warnings(create(apiserver, probe, dry_run=True)), "the policy in force")
        yield namespace
    finally:
        # The server lives for the session: other modules' objects are not this module's to warn about.
        for collection, obj in reversed(installed):
            apiserver.request("DELETE", f"{collection}/{obj['metadata']['name']}")


def _established(api: kube.Api) -> bool:
    crd = api.get("CustomResourceDefinition", CRD["metadata"]["name"])
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


@pytest.mark.apiserver
@pytest.mark.timeout(300)
@pytest.mark.parametrize("spec, expected", WARNS.values(), ids=WARNS.keys())
def test_the_server_warns_on_create_and_stores_the_object(apiserver, policy, spec, expected):
    obj = dittoserver(spec, f"w-{next(_numbers)}", policy)
    response = create(apiserver, obj)
    assert response.status_code == 201, response.text
    assert policy_warnings(response) == expected
    assert apiserver.get("DittoServer", obj["metadata"]["name"], policy) is not None


@pytest.mark.apiserver
@pytest.mark.timeout(300)
@pytest.mark.parametrize("spec", CLEAN.values(), ids=CLEAN.keys())
def test_the_server_sends_no_warning_for_a_clean_spec(apiserver, policy, spec):
    obj = dittoserver(spec, f"c-{next(_numbers)}", policy)
    response = create(apiserver, obj)
    assert response.status_code == 201, response.text
    assert sent_warnings(response) == []


@pytest.mark.apiserver
@pytest.mark.timeout(300)
def test_the_server_warns_on_an_update_that_changes_the_spec_and_not_on_an_annotation(apiserver, policy):
    obj = dittoserver(f.SPEC, f"u-{next(_numbers)}", policy)
    stored = create(apiserver, obj).json()
    # A spec change into a warned state warns.
    stored["spec"] = {**stored["spec"], "controlPlane": {**stored["spec"]["controlPlane"], "port": 443}}
    response = replace(apiserver, stored)
    assert policy_warnings(response) == [privileged(443)]
    # An annotation, as discovery writes it, does not repeat the warning in Metacontroller's log.
    stored = response.json()
    stored["metadata"].setdefault("annotations", {})["dittofs.io/adapters"] = "[]"
    response = replace(apiserver, stored)
    assert response.ok and sent_warnings(response) == []
    # Nor does a status write (the subresource the policy does not match).
    stored = response.json()
    stored["status"] = {"phase": "Pending"}
    response = apiserver.request("PUT", kube.object_path(stored) + "/status", json=stored)
    assert response.ok and sent_warnings(response) == []
    # Back to a clean spec: no warning.
    stored = response.json()
    stored["spec"]["controlPlane"]["port"] = 8080
    response = replace(apiserver, stored)
    assert response.ok and sent_warnings(response) == []


@pytest.mark.apiserver
@pytest.mark.timeout(300)
def test_a_failing_expression_only_warns_too(apiserver, policy):
    """`failurePolicy: Fail` under a Warn-only binding: an expression that fails at run time
    becomes a warning as well, never a refusal (shown with a copy whose expression cannot work)."""
    name = "broken-warnings.dittofs.dittofs.com"
    broken = copy.deepcopy(POLICY)
    broken["metadata"]["name"] = name
    broken["spec"]["validations"] = [{"expression": "object.spec.noSuchField == 1", "message": "unused"}]
    binding = {**copy.deepcopy(BINDING), "metadata": {"name": name}}
    binding["spec"]["policyName"] = name
    installed = [(f"{ADMISSION}/validatingadmissionpolicies", broken),
                 (f"{ADMISSION}/validatingadmissionpolicybindings", binding)]
    for collection, obj in installed:
        apiserver.call("POST", collection, json=obj)
    try:
        obj = dittoserver(f.SPEC, f"b-{next(_numbers)}", policy)

        def failure_warned():
            response = create(apiserver, obj, dry_run=True)
            assert response.status_code == 201, response.text
            return [text for text in sent_warnings(response) if f"'{name}'" in text]
        (text,) = kube.poll(failure_warned, "the failing policy in force")
        assert "noSuchField" in text and "resulted in error" in text
    finally:
        for collection, obj in reversed(installed):
            apiserver.request("DELETE", f"{collection}/{obj['metadata']['name']}")
