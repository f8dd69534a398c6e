"""The DittoShare, DittoUser and DittoGroup CRDs on the real kube-apiserver (tests/apiserver.py),
and the DittoServer's store rules that need `oldSelf`: installed and established, what they
accept and refuse (the schema, the CEL rules, the transition rules with their messages), the
printer columns `kubectl get` shows, and the hook's status for each kind read back type-exact.
"""
from __future__ import annotations

import copy
import itertools
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from hooks.children import declared_status
from hooks.dittofs import decorate, keeping
from hooks.request import controlplane, declared as declared_spec
from hooks.tools import applying
from tests import apiserver as kube, crd_cases, factory
from tests.test_apiserver_real import crd, dittoserver, established, refusal  # noqa: F401 (crd: a fixture)
from tests.worlds import declared

pytestmark = pytest.mark.apiserver

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"DittoShare": "crd-dittoshare.yaml", "DittoUser": "crd-dittouser.yaml", "DittoGroup": "crd-dittogroup.yaml"}
VALID = {
    "DittoShare": {"server": "demo", "metadataStore": "meta", "localStore": "blocks", "owner": "alice",
                   "permissions": [{"user": "alice", "level": "read-write"}, {"group": "staff", "level": "read"}],
                   "quotaBytes": 10737418240},
    "DittoUser": {"server": "demo", "uid": 2001, "gid": 2001, "groups": ["staff"],
                  "passwordSecretRef": {"name": "alice-password"}},
    "DittoGroup": {"server": "demo", "gid": 3000},
}
_numbers = itertools.count()


def _crd(kind: str) -> dict:
    return yaml.safe_load((ROOT / "metacontroller" / KINDS[kind]).read_text())


@pytest.fixture(scope="module")
def crds(apiserver):
    for kind in KINDS:
        body = _crd(kind)
        if apiserver.get("CustomResourceDefinition", body["metadata"]["name"]) is None:
            apiserver.create(body)
        established(apiserver, body["metadata"]["name"])
    return apiserver


def ns(api: kube.Api) -> str:
    return api.namespace(f"declared-{next(_numbers)}")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_established_and_a_full_object_is_stored_with_its_defaults(crds, kind):
    space = ns(crds)
    stored = crds.create(declared(kind, "one", VALID[kind], space))
    assert stored["spec"]["deletionPolicy"] == "Retain"
    for key, value in VALID[kind].items():
        assert stored["spec"][key] == value
    if kind == "DittoShare":
        assert (stored["spec"]["readOnly"], stored["spec"]["defaultPermission"]) == (False, "none")
    if kind == "DittoUser":
        assert (stored["spec"]["role"], stored["spec"]["enabled"]) == ("user", True)
    columns = [c["name"] for c in crds.get("CustomResourceDefinition", _crd(kind)["metadata"]["name"])
               ["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[0] == "Server" and columns[-2:] == ["Ready", "Age"]
    if kind == "DittoShare":
        assert columns == ["Server", "Path", "Ready", "Age"]


REFUSED = [
    ("DittoShare", {**VALID["DittoShare"], "permissions": [{"user": "a", "group": "b", "level": "read"}]},
     "a permission names exactly one of user or group"),
    ("DittoShare", {**VALID["DittoShare"], "permissions": [{"level": "read"}]}, "a permission names exactly one"),
    ("DittoShare", {**VALID["DittoShare"], "name": "/Export"}, "spec.name"),
    ("DittoShare", {**VALID["DittoShare"], "name": "/a/b"}, "spec.name"),
    ("DittoShare", {**VALID["DittoShare"], "defaultPermission": "read_write"}, "spec.defaultPermission"),
    ("DittoShare", {"server": "demo", "metadataStore": "meta"}, "spec.localStore"),
    ("DittoShare", {**VALID["DittoShare"], "deletionPolicy": "Orphan"}, "spec.deletionPolicy"),
    ("DittoUser", {**VALID["DittoUser"], "role": "admin"}, "spec.role"),
    ("DittoUser", {**VALID["DittoUser"], "uid": -1}, "spec.uid"),
    ("DittoUser", {**VALID["DittoUser"], "username": "Alice"}, "spec.username"),
    ("DittoUser", {"uid": 1}, "spec.server"),
    ("DittoGroup", {"server": "Demo"}, "spec.server"),
    ("DittoUser", {**VALID["DittoUser"], "username": "admin"}, "may not take one over"),
    ("DittoUser", {**VALID["DittoUser"], "username": "k8s-manager"}, "may not take one over"),
    ("DittoUser", {**VALID["DittoUser"], "uid": 0}, "spec.uid"),
    ("DittoUser", {**VALID["DittoUser"], "gid": 0}, "spec.gid"),
    ("DittoUser", {**VALID["DittoUser"], "groups": ["staff", "admins"]}, "administer the server"),
    ("DittoGroup", {"server": "demo", "name": "admins"}, "may not take one over"),
    ("DittoShare", {**VALID["DittoShare"], "permissions": [{"user": "a", "level": "read"}, {"user": "a", "level": "admin"}]},
     "each user and each group may have one permission"),
]


@pytest.mark.parametrize("kind, spec, message", REFUSED)
def test_bad_objects_are_refused_with_the_field(crds, kind, spec, message):
    found = refusal(crds, declared(kind, "bad", spec, ns(crds)))
    assert found is not None and message in found, found


@pytest.mark.parametrize("kind, name", [("DittoUser", "admin"), ("DittoUser", "k8s-operator"), ("DittoGroup", "users")])
def test_an_object_named_for_a_reserved_account_is_refused(crds, kind, name):
    """The default name is the object's own: `metadata.name: admin` is refused too."""
    spec = {"server": "demo"}
    found = refusal(crds, declared(kind, name, spec, ns(crds)))
    assert found is not None and "may not take one over" in found, found
    assert refusal(crds, declared(kind, name + "s-team", spec, ns(crds))) is None


CHANGES = [
    ("DittoShare", "server", "other", "server cannot change once the object exists"),
    ("DittoShare", "metadataStore", "meta2", "metadataStore cannot change"),
    ("DittoShare", "localStore", "blocks2", "localStore cannot change"),
    ("DittoShare", "owner", "bob", "owner cannot change"),
    ("DittoShare", "name", "/elsewhere", "name cannot change"),
    ("DittoShare", "readOnly", True, None),
    ("DittoShare", "quotaBytes", 1, None),
    ("DittoUser", "username", "bob", "username cannot change"),
    ("DittoUser", "uid", 2002, None),
    ("DittoGroup", "name", "other", "name cannot change"),
    ("DittoGroup", "gid", 3001, None),
]


@pytest.mark.parametrize("kind, field, value, message", CHANGES)
def test_what_cannot_change_is_refused_on_update_and_the_rest_changes(crds, kind, field, value, message):
    stored = crds.create(declared(kind, "one", VALID[kind], ns(crds)))
    changed = copy.deepcopy(stored)
    changed["spec"][field] = value
    if message is None:
        assert crds.replace(changed)["spec"][field] == value
    else:
        with pytest.raises(kube.ApiError) as error:
            crds.replace(changed)
        assert error.value.status == 422 and message in error.value.body


@pytest.mark.parametrize("before, after, message", crd_cases.STORE_CHANGES)
def test_store_changes_on_a_stored_server(apiserver, crd, before, after, message):
    space = ns(apiserver)
    spec = {"storage": {"metadataSize": "1Gi", "contentSize": "1Gi"}}
    stored = apiserver.create(dittoserver(space, "demo", {**spec, "stores": before}))
    changed = copy.deepcopy(stored)
    changed["spec"]["stores"] = after
    if message is None:
        assert apiserver.replace(changed)["spec"]["stores"] == after
    else:
        with pytest.raises(kube.ApiError) as error:
            apiserver.replace(changed)
        assert error.value.status == 422 and message in error.value.body


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_hook_status_reads_back_type_exact(crds, kind):
    """Each reason the hook can answer with, as status: what the server stores is what the hook
    sent, type for type (otherwise Metacontroller would write it forever)."""
    stored = crds.create(declared(kind, "one", VALID[kind], ns(crds)))
    obj = crds.get(kind, "one", stored["metadata"]["namespace"])
    for result in (keeping.Result(keeping.SERVER_NOT_FOUND, "DittoServer demo does not exist"),
                   keeping.Result(message="created")):
        outcome = decorate.Outcome(declared_spec.read({"object": obj}, kind), result, "x",
                                   ephemeral=kind == "DittoShare")
        status = declared_status.build(outcome, obj, datetime(2026, 12, 4, tzinfo=timezone.utc))
        obj["status"] = status
        obj = crds.replace(obj, "/status")
        assert applying.same(obj["status"], status), applying.diff_paths(status, obj["status"])


def test_the_worked_example_is_accepted_unpruned(crds, crd):
    """examples/shares-and-users.yaml, as `kubectl apply -f` sends it: every object stored, and
    nothing it says pruned or changed (defaults may be added)."""
    space = ns(crds)
    for doc in yaml.safe_load_all((ROOT / "examples" / "shares-and-users.yaml").read_text()):
        doc["metadata"]["namespace"] = space
        stored = crds.create(doc)
        if doc["kind"] == "Secret":
            continue
        assert applying.same(applying.merge(stored["spec"], {}, doc["spec"]), stored["spec"]), doc["kind"]


def test_a_server_status_with_the_undeclared_count_reads_back_type_exact(apiserver, crd):
    """/sync's status for a server whose discovery counted what nothing declares."""
    parent = factory.parent(spec={"storage": {"metadataSize": "1Gi"}})
    parent["metadata"]["annotations"][controlplane.UNDECLARED_ANNOTATION] = controlplane.Undeclared(2, 1, 0).encode()
    status = factory.sync_of(factory.request(parent))["status"]
    assert status["undeclared"] == {"shares": 2, "users": 1, "groups": 0}
    stored = apiserver.create(dittoserver(ns(apiserver), "demo", {"storage": {"metadataSize": "1Gi"}}))
    stored["status"] = copy.deepcopy(status)
    read = apiserver.replace(stored, "/status")
    assert applying.same(read["status"], status), applying.diff_paths(status, read["status"])
