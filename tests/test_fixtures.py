"""Fixture sync requests (tests/fixtures/*.json) with the port list and Services they must
give: the cases the reference operator's port reconciliation tests cover, and a few more.
"""
import json
from pathlib import Path

import pytest

from hooks.tools import applying
from tests import factory as f, k8s_rules

FIXTURES = sorted(Path(__file__).parent.glob("fixtures/*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def observed_objects(request: dict) -> list[dict]:
    return [obj for group in request["children"].values() for obj in group.values()]


def test_every_case_is_present():
    names = {p.stem for p in FIXTURES}
    assert {"adds_adapter_ports", "removes_stopped_adapter", "unchanged_input", "no_statefulset_observed",
            "static_ports_no_adapters", "only_enabled_and_running", "nfs_portmapper_smb_not",
            "custom_adapter_service", "port_number_change"} <= names


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture(path):
    doc = load(path)
    expect, strategy = doc["expect"], doc["strategy"]
    resp = f.sync_of(doc["request"], strategy)
    assert f.container_ports(resp) == expect["containerPorts"]
    services = {c["metadata"]["name"]: c for c in resp["children"] if c["kind"] == "Service"}
    assert {name: svc["spec"]["ports"] for name, svc in services.items()} == expect["services"]
    for name, type_ in expect.get("serviceType", {}).items():
        assert services[name]["spec"]["type"] == type_
    for name, annotations in expect.get("serviceAnnotations", {}).items():
        assert services[name]["metadata"]["annotations"] == annotations
    assert k8s_rules.all_problems(resp, strategy) == []
    if expect.get("noWrites"):
        changes = applying.plan(observed_objects(doc["request"]), resp["children"],
                                namespace="storage", parent_uid=doc["request"]["parent"]["metadata"]["uid"])
        assert [c for c in changes if c.action != "unchanged"] == []


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_answer_is_stable(path):
    doc = load(path)
    a = f.sync_of(doc["request"], doc["strategy"])
    b = f.sync_of(json.loads(path.read_text())["request"], doc["strategy"])
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
