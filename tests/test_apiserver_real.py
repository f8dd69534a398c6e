"""The CRD, the hook's status and children, and both of Metacontroller's ways of writing them,
against a real kube-apiserver (tests/apiserver.py): what the fast tiers check with models
(the CRD as a JSON schema, CEL in cel-python, API-server defaults and the apply merge in
`hooks/tools/applying.py`) checked against the real thing.
"""
from __future__ import annotations

import copy
import functools
import itertools
import json
import random
import re
from pathlib import Path

import pytest
import yaml

from hooks.children import adoption
from hooks.request import ports
from hooks.tools import applying, server_side
from hooks.web import app as web_app, settings
from tests import apiserver as kube, crd_cases, factory as f, harness, realcluster
from tests import test_convergence as convergence

# Generous: the session's server starts within the first test, on a machine others share.
pytestmark = [pytest.mark.apiserver, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
ALLOCATED = ("clusterIP", "clusterIPs", "nodePort")   # picked by the server, not defaults
CRD = yaml.safe_load((ROOT / "metacontroller" / "crd.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("*.json"))
_numbers = itertools.count(1)


def namespace(api: kube.Api, prefix: str = "t") -> str:
    """A namespace of its own for each test: the server lives for the whole session."""
    return api.namespace(f"{prefix}-{next(_numbers)}")


def established(api: kube.Api, name: str) -> dict:
    """The CRD once the server says Established (a fresh CRD takes a moment)."""
    return kube.poll(lambda: _with_condition(api.get("CustomResourceDefinition", name), "Established"),
                     f"CRD {name} Established")


def _with_condition(crd: dict, type_: str) -> dict | None:
    conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
    return crd if conditions.get(type_) == "True" else None


@pytest.fixture(scope="module")
def crd(apiserver):
    if apiserver.get("CustomResourceDefinition", CRD["metadata"]["name"]) is None:
        apiserver.create(CRD)
    return established(apiserver, CRD["metadata"]["name"])


def dittoserver(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": f.API_VERSION, "kind": "DittoServer",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def refusal(api: kube.Api, obj: dict) -> str | None:
    """None when the server stores `obj` (deleted again), else the message it refuses it with."""
    response = api.request("POST", kube.collection(obj), json=obj, params={"fieldValidation": "Strict"})
    if response.status_code == 201:
        api.delete(obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"])
        return None
    # 400: a field the schema does not declare (strict decoding); 422: an invalid value.
    assert response.status_code in (400, 422), response.text
    return response.json()["message"]


# --------------------------------------------------------------------------- the CRD


def test_the_crd_is_established_structural_and_keeps_every_cel_rule(crd):
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True"
    assert "NonStructuralSchema" not in conditions
    stored = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # Accepted at all means every rule compiled within the cost budget; the rules are all there.
    assert stored["x-kubernetes-validations"] == SCHEMA["x-kubernetes-validations"]
    assert (stored["properties"]["spec"]["x-kubernetes-validations"]
            == SCHEMA["properties"]["spec"]["x-kubernetes-validations"])


def test_the_server_does_refuse_a_rule_over_the_cost_budget(apiserver, crd):
    """So that our CRD's acceptance means its rules are within budget: the same CRD with one
    more rule, over an unbounded list, is refused for its cost."""
    costly = copy.deepcopy(CRD)
    costly["metadata"]["name"] = "costlies.dittofs.dittofs.com"
    costly["spec"]["names"] = {"plural": "costlies", "singular": "costly", "kind": "Costly", "listKind": "CostlyList"}
    spec = costly["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["words"] = {"type": "array", "items": {"type": "string"}}
    spec["x-kubernetes-validations"].append(
        {"rule": "self.words.all(a, self.words.all(b, self.words.all(c, a + b + c != '')))", "message": "costly"})
    with pytest.raises(kube.ApiError) as refused:
        apiserver.create(costly)
    assert refused.value.status == 422 and "cost" in refused.value.body and "budget" in refused.value.body


def test_the_example_and_every_fixture_parent_are_accepted_unpruned(apiserver, crd):
    example = yaml.safe_load((ROOT / "metacontroller" / "example-dittoserver.yaml").read_text())
    parents = [example] + [json.loads(p.read_text())["request"]["parent"] for p in FIXTURES]
    for parent in parents:
        sent = dittoserver(namespace(apiserver), parent["metadata"]["name"], parent["spec"])
        sent["metadata"]["annotations"] = parent["metadata"].get("annotations", {})
        stored = apiserver.create(sent)
        # Defaults may be added; nothing sent is pruned or changed.
        assert applying.same(applying.merge(stored["spec"], {}, sent["spec"]), stored["spec"]), parent["metadata"]
        assert stored["metadata"].get("annotations", {}) == sent["metadata"]["annotations"]


@pytest.mark.parametrize("spec", crd_cases.SCHEMA_REJECTS.values(), ids=crd_cases.SCHEMA_REJECTS.keys())
def test_the_server_refuses_what_the_schema_tier_refuses(apiserver, crd, spec):
    assert refusal(apiserver, dittoserver("default", "demo", spec)) is not None


CEL_PARENTS = crd_cases.cel_parents()


@pytest.mark.parametrize("case", sorted(CEL_PARENTS))
def test_cel_python_and_the_server_agree(apiserver, crd, case):
    """Each CEL case: cel-python's verdict (the fast tier) is the server's, message for message."""
    name, spec = CEL_PARENTS[case]
    expected = crd_cases.cel_refusals(SCHEMA, name, spec)
    message = refusal(apiserver, dittoserver("default", name, spec))
    if not expected:
        assert message is None
    else:
        assert message is not None
        for text in expected:
            assert text in message


def test_every_hostile_cel_case_is_refused_by_a_rule():
    """The agreement above would hold vacuously if cel-python accepted everything."""
    refused = {case for case, (name, spec) in CEL_PARENTS.items() if crd_cases.cel_refusals(SCHEMA, name, spec)}
    assert refused == crd_cases.hostile_cel_parents()


# --------------------------------------------------------------------------- the status


@pytest.mark.parametrize("which", [0, 1])
def test_a_status_the_hook_returns_reads_back_unpruned_and_type_exact(apiserver, crd, which):
    status = harness.hook_statuses()[which]
    stored = apiserver.create(dittoserver(namespace(apiserver), "demo", {"storage": {"metadataSize": "10Gi"}}))
    stored["status"] = copy.deepcopy(status)
    apiserver.replace(stored, "/status")
    read = apiserver.get("DittoServer", "demo", stored["metadata"]["namespace"])
    # Type for type (1, 1.0 and True differ): what Metacontroller compares before writing again.
    assert applying.same(read["status"], status), applying.diff_paths(status, read["status"])


# --------------------------------------------------------------------------- children


def _fixture_version(request: dict) -> str:
    keys = [key for group in request["children"].values() for key in group]
    return "v2" if any("/" in key for key in keys) else "v1"


def _seed(api: kube.Api, ns: str, request: dict) -> None:
    """The fixture's observed children, created as they are (a store to sync against)."""
    for group in request["children"].values():
        for obj in group.values():
            body = _unallocated(realcluster.content(obj))
            body["metadata"]["namespace"] = ns
            body.pop("status", None)
            annotations = body["metadata"].get("annotations") or {}
            if applying.LAST_APPLIED in annotations:   # it names the namespace it was applied in
                applied = json.loads(annotations[applying.LAST_APPLIED])
                applied["metadata"]["namespace"] = ns
                annotations[applying.LAST_APPLIED] = applying.last_applied_json(applied)
            api.create(body)


def _unallocated(value):
    """`value` without addresses and node ports: the model made them up, the server allocates
    its own (and refuses one taken by a Service of another fixture)."""
    if isinstance(value, dict):   # a headless Service's "None" is no allocation: it stays
        return {k: _unallocated(v) for k, v in value.items() if k not in ALLOCATED or v in ("None", ["None"])}
    if isinstance(value, list):
        return [_unallocated(v) for v in value]
    return value


def _request_from(store: realcluster.Store, request: dict, version: str) -> dict:
    again = copy.deepcopy(request)
    again["parent"]["metadata"]["namespace"] = store.namespace
    again["children"] = store.observed(version, tuple(request["children"]))
    return again


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_child_of_a_fixture_is_stored_and_the_next_sync_writes_nothing(apiserver, path):
    doc = json.loads(path.read_text())
    request, strategy, version = doc["request"], doc["strategy"], _fixture_version(doc["request"])
    parent = request["parent"]["metadata"]
    store = realcluster.Store(apiserver, strategy, namespace=f"fx-{next(_numbers)}",
                              parent_uid=parent["uid"], parent_name=parent["name"])
    _seed(apiserver, store.namespace, request)
    first = f.sync_of(_request_from(store, request, version), strategy)
    store.apply(first["children"])
    for child in first["children"]:
        assert apiserver.get(child["kind"], child["metadata"]["name"], store.namespace) is not None
    observed = _request_from(store, request, version)
    second = f.sync_of(observed, strategy)
    assert second["children"] == first["children"]
    if strategy == ports.DYNAMIC:
        live = [obj for group in observed["children"].values() for obj in group.values()]
        changes = applying.plan(live, second["children"], namespace=store.namespace, parent_uid=parent["uid"])
        assert [c for c in changes if c.action != "unchanged"] == []
    assert store.apply(second["children"]) == []


# --------------------------------------------------------------------------- defaults


# Every child kind, every Service type. The ServiceMonitor child is left out on purpose: its
# kind needs prometheus-operator's CRD, which no test dependency ships.
ALL_KINDS = {"Secret", "ConfigMap", "Service", "StatefulSet", "NetworkPolicy"}
DEFAULTS_CASES = {
    "minimal": (f.SPEC, [f.entry("nfs", 12049), f.entry("smb", 12445)], ALL_KINDS),
    # Every Secret is the user's but the manager account's, whose name the declared kinds derive.
    "full": (f.FULL_SPEC, [f.entry("nfs", 12049), f.entry("webdav", 8081)], ALL_KINDS),
    "clusterip-adapters": ({**f.SPEC, "metrics": {"enabled": True}, "adapterServices": {"type": "ClusterIP"}},
                           [f.entry("nfs", 12049)], ALL_KINDS),
}


def _allocated_from(stored, model):
    """`model` with the values the server allocates (addresses, node ports) taken from `stored`."""
    if isinstance(model, dict) and isinstance(stored, dict):
        return {k: stored[k] if k in ALLOCATED and k in stored else _allocated_from(stored.get(k), v)
                for k, v in model.items()}
    if isinstance(model, list) and isinstance(stored, list) and len(model) == len(stored):
        return [_allocated_from(s, m) for s, m in zip(stored, model)]
    return model


@pytest.mark.parametrize("case", sorted(DEFAULTS_CASES))
def test_the_defaults_model_is_what_the_server_fills_in(apiserver, case):
    spec, adapters, expected_kinds = DEFAULTS_CASES[case]
    ns = namespace(apiserver, "defaults")
    response = f.sync_of(f.request(f.parent(namespace=ns, spec=spec, adapters=adapters),
                                   groups=f.WITH_POLICIES))
    kinds = {child["kind"] for child in response["children"]}
    assert kinds == expected_kinds
    for child in applying.prepare_desired(response["children"], ns):
        stored = realcluster.content(apiserver.create(child))
        model = _allocated_from(stored, applying.server_defaults(child))
        assert applying.same(stored, model), (child["kind"], child["metadata"]["name"],
                                              applying.diff_paths(model, stored))


GROUP_PATHS = {"v1": "api/v1", "apps/v1": "apis/apps/v1", "networking.k8s.io/v1": "apis/networking.k8s.io/v1"}


def _merge_rule(node: dict) -> tuple | str | None:
    """What server-side apply does with a field, as its OpenAPI says: a map list's keys, "atomic"
    for a struct or map replaced whole, "set", or None (objects by key, other lists whole)."""
    if node.get("x-kubernetes-list-type") == "map":
        return tuple(node["x-kubernetes-list-map-keys"])
    if node.get("x-kubernetes-list-type") == "set":
        return "set"
    return server_side.ATOMIC if node.get("x-kubernetes-map-type") == "atomic" else None


def _rules_of(obj, node: dict, schemas: dict, path: str, found: dict) -> None:
    """Every field path of `obj` ("[]" for a list's items) with its merge rule."""
    while "$ref" in node or "allOf" in node:
        ref = node.get("$ref") or node["allOf"][0]["$ref"]
        node = {**{k: v for k, v in node.items() if k not in ("$ref", "allOf")}, **schemas[ref.rpartition("/")[2]]}
    if path:
        found[path] = _merge_rule(node)
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in node.get("properties", {}):
                _rules_of(value, node["properties"][key], schemas, f"{path}.{key}" if path else key, found)
    elif isinstance(obj, list):
        for item in obj:
            _rules_of(item, node.get("items", {}), schemas, f"{path}[]", found)


def test_the_server_side_apply_model_merges_every_field_the_hook_writes_as_the_servers_schema_says(apiserver):
    """`server_side.SCHEMA` against kube-apiserver's own OpenAPI: every field of every child of
    the richest specs, under both strategies, merges as the model merges it (no set lists among
    them), and every entry of the model is a fact of the server's."""
    documents = {version: apiserver.call("GET", f"/openapi/v3/{path}")["components"]["schemas"]
                 for version, path in GROUP_PATHS.items()}
    kinds = {"StatefulSet": "io.k8s.api.apps.v1.StatefulSet", "Service": "io.k8s.api.core.v1.Service",
             "NetworkPolicy": "io.k8s.api.networking.v1.NetworkPolicy", "Secret": "io.k8s.api.core.v1.Secret",
             "ConfigMap": "io.k8s.api.core.v1.ConfigMap"}
    found: dict[str, tuple | str | None] = {}
    for (spec, adapters, _), strategy in itertools.product(DEFAULTS_CASES.values(), (ports.DYNAMIC, ports.SERVER_SIDE)):
        request = f.request(f.parent(spec=spec, adapters=adapters), groups=f.WITH_POLICIES)
        for child in applying.prepare_desired(f.sync_of(request, strategy)["children"], "t", "uid"):
            child["metadata"]["ownerReferences"] = [applying.owner_ref("demo", "uid")]
            schemas = documents[child["apiVersion"]]
            _rules_of(child, schemas[kinds[child["kind"]]], schemas, "", found)
    assert "set" not in found.values()
    assert {path: rule for path, rule in found.items() if rule is not None} == \
        {path: rule for path, rule in server_side.SCHEMA.items() if path in found}
    # The entries no rich spec reaches are the server's facts all the same.
    pod = documents["apps/v1"]["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert _merge_rule(pod["initContainers"]) == server_side.SCHEMA["spec.template.spec.initContainers"]
    assert _merge_rule(pod["imagePullSecrets"]) == server_side.SCHEMA["spec.template.spec.imagePullSecrets"]
    for ref in ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef"):
        name = documents["v1"]["io.k8s.api.core.v1.EnvVarSource"]["properties"][ref]["allOf"][0]["$ref"].rpartition("/")[2]
        assert _merge_rule(documents["v1"][name]) == server_side.ATOMIC, ref


def _random_ports(rng: random.Random) -> tuple[list, list]:
    """Two port lists over a few numbers and both protocols, sharing some items, each in its own order."""
    pool = [(n, proto) for n in range(1, 7) for proto in ("TCP", "UDP")]
    live, desired = rng.sample(pool, rng.randint(1, 6)), rng.sample(pool, rng.randint(1, 6))
    return ([(f"l{n}{p[0].lower()}", n, p) for n, p in live], [(f"d{n}{p[0].lower()}", n, p) for n, p in desired])


MAP_LIST_CASES = [  # (live ports, desired ports) by (name, number[, protocol])
    ([("a", 1), ("b", 2), ("c", 3), ("d", 4, "UDP")], [("c2", 3), ("e", 5), ("a2", 1), ("d", 4, "UDP")]),
    ([("a", 1), ("x", 9)], [("b", 2), ("a", 1)]),
    ([("a", 1), ("b", 2), ("c", 3)], [("c", 3), ("b", 2), ("a", 1)]),
    ([("a", 1), ("b", 2), ("c", 3)], [("d", 4)]),
    ([("a", 1), ("t", 1, "UDP"), ("b", 2)], [("b", 2), ("a", 1)]),
    *(_random_ports(random.Random(seed)) for seed in range(12)),   # fixed seeds: the same cases every run
]


@pytest.mark.parametrize("live, desired", MAP_LIST_CASES)
def test_a_first_server_side_apply_orders_and_merges_a_map_list_as_the_model_says(apiserver, live, desired):
    """A Service made by another manager, then applied by `metacontroller`: the ports the
    server stores are the model's, in its order, each kept item as it was."""
    ns = namespace(apiserver, "ssa")

    def service(items):
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": ns},
                "spec": {"selector": {"app": "x"}, "ports": [{"name": n, "port": p, "protocol": (rest or ("TCP",))[0]}
                                                             for n, p, *rest in items]}}
    made = apiserver.create(service(live))
    stored = apiserver.apply(service(desired))
    assert stored["spec"]["ports"] == server_side.first_apply(made, service(desired))["spec"]["ports"]


def test_an_immutable_statefulset_change_is_refused_as_the_model_says(apiserver):
    ns = namespace(apiserver, "immutable")
    response = f.sync_of(f.request(f.parent(namespace=ns)))
    (sts,) = [c for c in applying.prepare_desired(response["children"], ns) if c["kind"] == "StatefulSet"]
    live = apiserver.create(sts)
    moved = copy.deepcopy(sts)
    moved["spec"]["serviceName"] = "elsewhere"
    moved["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "99Gi"
    sent = applying.apply_update(live, moved)
    assert applying.immutable_changes(live, applying.server_defaults(sent)) == ["spec.serviceName",
                                                                                "spec.volumeClaimTemplates"]
    with pytest.raises(kube.ApiError) as refused:
        apiserver.replace(sent)
    assert refused.value.status == 422
    message = refused.value.body
    assert "Forbidden: updates to statefulset spec for fields other than" in message
    # The fields the server lets an update change are the model's.
    allowed = re.search(r"fields other than (.*?) are forbidden", message).group(1)
    assert set(re.findall(r"'(\w+)'", allowed)) == set(applying.STATEFULSET_MUTABLE)
    # A template change alone, which the model allows, the server stores.
    rolled = copy.deepcopy(sts)
    rolled["spec"]["template"]["metadata"]["annotations"]["dittofs.io/config-hash"] = "0" * 64
    sent = applying.apply_update(live, rolled)
    assert applying.immutable_changes(live, applying.server_defaults(sent)) == []
    assert apiserver.replace(sent)["metadata"]["generation"] == 2


# --------------------------------------------------------------------------- convergence


def real_loop(api: kube.Api, strategy: str, spec=convergence.SPEC, adapters=(), **kwargs) -> harness.Loop:
    store = functools.partial(realcluster.Store, api, strategy)
    return harness.Loop(spec, list(adapters), namespace=f"conv-{next(_numbers)}", strategy=strategy, store=store, **kwargs)


def _desired_ports(loop: harness.Loop) -> set[tuple]:
    sts = next(c for c in loop.last["children"] if c["kind"] == "StatefulSet")
    return {(p["name"], p["containerPort"], p["protocol"]) for p in sts["spec"]["template"]["spec"]["containers"][0]["ports"]}


@pytest.mark.parametrize("strategy", [ports.SERVER_SIDE, ports.DYNAMIC])
def test_every_input_converges_on_its_events_for_real_and_a_resync_finds_nothing(apiserver, strategy):
    """The CompositeController's resync period is long because of this: every step converges on
    the syncs its watched changes trigger, and a resync later writes nothing to the real server."""
    loop = real_loop(apiserver, strategy, adapters=[convergence.NFS], groups=f.WITH_POLICIES)
    convergence.assert_nothing_left_for_a_resync(loop)


@pytest.mark.parametrize("strategy", [ports.SERVER_SIDE, ports.DYNAMIC])
def test_each_adapter_change_converges_for_real_with_at_most_one_roll(apiserver, strategy):
    loop = convergence.settled(real_loop(apiserver, strategy))
    for adapters, _ in convergence.ADAPTER_SEQUENCE:
        before = loop.cluster.pod_template_writes()
        loop.set_adapters(adapters)
        loop.settle()
        assert loop.cluster.pod_template_writes() - before <= 1, adapters
        # What is stored is what the hook asked for: no stale port kept, none lost.
        assert loop.live_port_set() == _desired_ports(loop), adapters
        expected = {f"demo-adapter-{a['type']}" for a in adapters if a["enabled"] and a["running"]}
        assert {n for n in loop.live_names("Service") if "-adapter-" in n} == expected
        assert loop.sync() == []


def test_server_side_apply_sends_real_apply_patches_owned_by_metacontroller(apiserver):
    loop = convergence.settled(real_loop(apiserver, ports.SERVER_SIDE, adapters=[convergence.NFS]))
    assert loop.cluster.requests and {how for _, how in loop.cluster.requests} == {"apply"}
    for (kind, name), obj in loop.cluster.objects.items():
        managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
        assert ("metacontroller", "Apply") in managers, (kind, name)
        assert obj["metadata"]["labels"]["controller-uid"] == loop.parent["metadata"]["uid"]
    # NFS's data port over UDP sits beside the TCP one, as only server-side apply can keep it.
    nfs = loop.live("Service", "demo-adapter-nfs")["spec"]["ports"]
    assert {(p["port"], p["protocol"]) for p in nfs} >= {(12049, "TCP"), (12049, "UDP")}
    # The hook as deployed with DITTOFS_HOOK_APPLY_STRATEGY answers the stored state alike,
    # and sending that answer as apply patches stores nothing new.
    app = web_app.create_app(settings.Settings.from_env({"DITTOFS_HOOK_APPLY_STRATEGY": ports.SERVER_SIDE}))
    answer = app.test_client().post("/sync", json=loop.request())
    assert answer.status_code == 200, answer.text
    assert answer.get_json()["children"] == loop.last["children"]
    assert loop.cluster.apply(answer.get_json()["children"]) == []


@pytest.mark.parametrize("strategy", [ports.SERVER_SIDE, ports.DYNAMIC])
def test_a_config_change_rolls_the_pod_once_for_real(apiserver, strategy):
    loop = convergence.settled(real_loop(apiserver, strategy, adapters=[convergence.NFS]))
    loop.set_spec(convergence.SPEC)            # generation bump only
    loop.settle()
    assert loop.cluster.pod_template_writes() == 0
    loop.set_spec({**convergence.SPEC, "logging": {"level": "DEBUG"}})
    loop.settle()
    assert loop.cluster.pod_template_writes() == 1
    claims = loop.live("StatefulSet", "demo")["spec"]["volumeClaimTemplates"]
    loop.set_spec({**convergence.SPEC, "storage": {"metadataSize": "50Gi", "contentSize": "1Ti"}})
    loop.settle()   # the server refuses a change to the claim templates: settling proves none
    assert loop.cluster.pod_template_writes() <= 2
    assert loop.live("StatefulSet", "demo")["spec"]["volumeClaimTemplates"] == claims


# --------------------------------------------------------------------------- taking over


GO_OPERATOR_MANAGER = "dittofs-operator"   # the field manager of the Go operator's plain creates


def _operator_creates(api: kube.Api, obj: dict) -> dict:
    return api.call("POST", kube.collection(obj), json=obj,
                    params={"fieldManager": GO_OPERATOR_MANAGER, "fieldValidation": "Strict"})


def _as_the_operator_made_them(loop: harness.Loop) -> list[dict]:
    """The StatefulSet and Services of the Go operator v0.29 (harness.go_operator_children,
    as rendered for dynamic apply) with its twin UDP ports (DITTOFS_FACTS.md)."""
    made = [obj for obj in harness.go_operator_children(loop, ports.DYNAMIC) if obj["kind"] in ("StatefulSet", "Service")]
    for obj in made:
        if obj["kind"] == "StatefulSet":
            obj["spec"]["template"]["spec"]["containers"][0]["ports"].append(
                {"name": "adapter-pm-udp", "containerPort": 10111, "protocol": "UDP"})
        elif obj["metadata"]["name"].endswith("-adapter-nfs"):
            obj["spec"]["ports"].append({"name": "portmap-udp", "port": 111, "targetPort": 10111, "protocol": "UDP"})
    return made


def test_children_the_go_operator_made_are_taken_over_under_server_side_apply(apiserver):
    loop = real_loop(apiserver, ports.SERVER_SIDE, adapters=[convergence.NFS])
    for obj in _as_the_operator_made_them(loop):
        _operator_creates(apiserver, obj)
    loop.settle()   # raises on any API error
    # Released first (controlled, unlabelled), then taken over by the apply patch.
    assert sorted(loop.cluster.released) == [("Service", "demo-adapter-nfs"), ("Service", "demo-api"),
                                             ("Service", "demo-headless"), ("Service", "demo-metrics"),
                                             ("StatefulSet", "demo")]
    for kind, name in [("StatefulSet", "demo"), ("Service", "demo-adapter-nfs"), ("Service", "demo-api")]:
        obj = loop.live(kind, name)
        assert obj["metadata"]["labels"]["controller-uid"] == loop.parent["metadata"]["uid"]
        controllers = [r for r in obj["metadata"]["ownerReferences"] if r.get("controller")]
        assert [r["uid"] for r in controllers] == [loop.parent["metadata"]["uid"]]
    assert loop.live_port_set() >= _desired_ports(loop)
    assert loop.sync() == []


ADOPTED = [convergence.NFS, convergence.SMB]


def go_operator_on_the_server(api: kube.Api, strategy: str = ports.DYNAMIC, spec: dict = convergence.SPEC,
                              adapters: list = ADOPTED, secret_values=None) -> harness.Loop:
    """A DittoServer stored with the Go operator's finalizer, the children the Go operator
    v0.29 creates for it (harness.go_operator_children: NFS's UDP twins, a controller
    ownerReference with the stored uid, no controller-uid label, its own Secret values, or
    `secret_values(name, key)`) created as it creates them, its StatefulSet running; and a loop
    for it under `strategy` through the real store."""
    ns = namespace(api, "adopt")
    body = f.parent(namespace=ns, spec=spec, adapters=adapters)
    body["metadata"] = {"name": "demo", "namespace": ns, "annotations": body["metadata"]["annotations"],
                        "finalizers": [harness.GO_OPERATOR_FINALIZER]}
    stored = api.create(body)
    loop = harness.Loop(spec, adapters, namespace=ns, strategy=strategy, groups=f.WITH_POLICIES,
                        store=functools.partial(realcluster.Store, api, strategy), uid=stored["metadata"]["uid"])
    loop.parent = stored   # the DittoServer as Metacontroller reads it
    for obj in harness.go_operator_children(loop):
        if obj["kind"] == "Secret" and secret_values:
            obj["data"] = {key: secret_values(obj["metadata"]["name"], key) for key in obj["data"]}
        _operator_creates(api, obj)
    loop.mark_ready()
    return loop


def _unowned(obj: dict) -> dict:
    found = realcluster.content(obj)
    found["metadata"].pop("ownerReferences", None)
    return found


def test_without_the_label_the_go_operators_children_are_released_for_real_and_never_updated(apiserver, crd):
    loop = go_operator_on_the_server(apiserver)
    before = loop.cluster.objects
    # Only the Secret the Go operator has no counterpart of is made.
    assert [(c.kind, c.name, c.action) for c in loop.sync()] == [("Secret", "demo-manager-credentials", "create")]
    for _ in range(2):
        assert loop.sync() == []
    # Each released once (an unlabelled orphan is then left alone), each create refused.
    assert sorted(loop.cluster.released) == sorted(before)
    assert sorted(set(loop.cluster.already_exists)) == sorted(before)
    assert {how for _, how in loop.cluster.requests} == {"release", "create"}
    after = {key: obj for key, obj in loop.cluster.objects.items() if key != ("Secret", "demo-manager-credentials")}
    assert sorted(after) == sorted(before)
    for key, obj in after.items():
        assert "ownerReferences" not in obj["metadata"], key   # out of garbage collection's reach
        assert _unowned(obj) == _unowned(before[key]), key
    # The model says the same of the same world.
    model = convergence.go_world()
    for _ in range(3):
        model.sync()
    assert sorted(model.cluster.released) == sorted(loop.cluster.released)


TWINS_STEP = "Remove the UDP port of each pair"


def adopted(loop: harness.Loop, tmp_path, capsys, skipping: str | None = None) -> dict:
    """`adopt --format json`'s patches sent as `kubectl label` and `kubectl patch` send them
    (but those of the step whose title starts with `skipping`); the plan, and the loop's parent
    as it is stored after."""
    api = loop.cluster.api
    plan = convergence.adopt_plan(loop, tmp_path, capsys)
    kept = {**plan, "steps": [s for s in plan["steps"] if not (skipping and s["title"].startswith(skipping))]}
    for entry in convergence.patches(kept):
        api.patch(entry["kind"], entry["name"], entry["namespace"], entry["patch"], entry["type"])
    loop.parent = api.get("DittoServer", "demo", loop.cluster.namespace)
    return plan


@pytest.mark.parametrize("strategy", [ports.DYNAMIC, ports.SERVER_SIDE])
def test_the_adopt_hand_over_on_the_real_server_updates_in_place_then_idles(apiserver, crd, tmp_path, capsys, strategy):
    """adopt's prediction of the first sync, field for field, is what the real server stores,
    under either apply strategy: under dynamic apply the Go operator's NFS NetworkPolicy loses its
    UDP ports (the list is replaced whole); under server-side apply the bootstrap password's
    optional `secretKeyRef` loses `optional` (an atomic struct, replaced whole). The pod template
    changes once in the hand-over, where adopt says."""
    loop = go_operator_on_the_server(apiserver, strategy)
    template = apiserver.get("StatefulSet", "demo", loop.cluster.namespace)["spec"]["template"]
    plan = adopted(loop, tmp_path, capsys)
    patched = apiserver.get("StatefulSet", "demo", loop.cluster.namespace)["spec"]["template"] != template
    assert "finalizers" not in loop.parent["metadata"]
    written = loop.sync()   # raises on any API error
    convergence.assert_handed_over(loop, plan, written)
    changed = {(c.kind, c.name): c.fields for c in written}
    if strategy == ports.DYNAMIC:
        assert "spec.ingress[0].ports" in changed[("NetworkPolicy", "demo-adapter-nfs")]
    else:
        optional = "spec.template.spec.containers[dittofs].env[DITTOFS_ADMIN_INITIAL_PASSWORD].valueFrom.secretKeyRef.optional"
        assert optional in changed[("StatefulSet", "demo")]
    # Claimed as they were (the Go operator's ownerReference names the same uid): no release,
    # no adoption, no delete; updates, and the manager account's Secret made.
    assert loop.cluster.adopted == []
    assert {how for _, how in loop.cluster.requests} == ({"update", "create"} if strategy == ports.DYNAMIC else {"apply"})
    loop.settle()
    assert loop.sync() == []
    # One restart in the hand-over itself: adopt's StatefulSet patch (dynamic) or the first sync.
    assert (patched, loop.cluster.pod_template_writes()) == ((True, 0) if strategy == ports.DYNAMIC else (False, 1))
    assert [r["when"] for r in plan["restarts"]][:1] == (["at step 3"] if strategy == ports.DYNAMIC else ["at the first sync"])
    assert len(plan["restarts"]) == 2 and "portmapper" in plan["restarts"][1]["why"]


def test_the_go_operators_nfs_udp_twins_stop_the_dynamic_apply_hand_over_as_the_condition_says(
        apiserver, crd, tmp_path, capsys):
    """The twins the Go operator gives NFS (a TCP and a UDP port of one number) share dynamic
    apply's merge key: without adopt's step that removes them, the merged update holds two
    identical ports, which the real server refuses (the model stores it), for the StatefulSet
    and the NFS Service alone. The hook's condition names exactly those objects and ports."""
    loop = go_operator_on_the_server(apiserver)
    plan = adopted(loop, tmp_path, capsys, skipping=TWINS_STEP)
    assert any(step["title"].startswith(TWINS_STEP) for step in plan["steps"])
    with pytest.raises(RuntimeError) as refused:
        loop.sync()
    message = str(refused.value)
    assert "statefulsets/demo?" in message and "services/demo-adapter-nfs?" in message
    assert message.count("PUT ") == 2
    assert "Duplicate value" in message and "adapter-nfs-pm" in message   # the StatefulSet: 422
    assert "duplicate nodePort" in message   # the NodePort Service: the allocator's 500
    stuck = {("StatefulSet", "demo"), ("Service", "demo-adapter-nfs")}
    assert {(c.kind, c.name) for c in loop.cluster.writes} == set(loop.cluster.objects) - stuck
    assert {c.action for c in loop.cluster.writes} == {"update", "create"}
    condition = next(c for c in loop.parent["status"]["conditions"] if c["type"] == "ChildrenNotUpdatable")
    assert condition["status"] == "True"
    for text in ("StatefulSet demo container dittofs: containerPort 10111", "Service demo-adapter-nfs: port 12049",
                 "Service demo-adapter-nfs: port 111"):
        assert text in condition["message"]
    # Its commands, run as given, unstick both: the next sync updates them, and none is stuck.
    commands = re.findall(r"fix: (kubectl [^;]*?\]')", condition["message"])
    assert sorted(c.split()[4] for c in commands) == ["service/demo-adapter-nfs", "statefulset.apps/demo"]
    for line in commands:
        entry = convergence.kubectl_entry(line)
        apiserver.patch(entry["kind"], entry["name"], entry["namespace"], entry["patch"], entry["type"])
    assert {(c.kind, c.name) for c in loop.sync()} >= stuck
    loop.settle()
    assert not any(c["type"] == "ChildrenNotUpdatable" for c in loop.parent["status"]["conditions"])


def test_with_adopts_twin_step_the_go_operators_nfs_objects_are_handed_over_under_dynamic_apply(
        apiserver, crd, tmp_path, capsys):
    """adopt's step removes the UDP twin of each pair (tested against each port's name) from the
    StatefulSet and the NFS Service: then the first sync updates everything in place, as adopt
    predicted, without an API error, and a resync writes nothing."""
    loop = go_operator_on_the_server(apiserver)
    plan = adopted(loop, tmp_path, capsys)
    (step,) = [s for s in plan["steps"] if s["title"].startswith(TWINS_STEP)]
    assert sorted((e["kind"], e["name"]) for e in step["patches"]) == [("Service", "demo-adapter-nfs"),
                                                                       ("StatefulSet", "demo")]
    for kind, name in (("StatefulSet", "demo"), ("Service", "demo-adapter-nfs")):
        live = apiserver.get(kind, name, loop.cluster.namespace)
        assert not any(adoption.twins_to_remove(items, key) for _, items, key in adoption.port_lists(live)), (kind, name)
    convergence.assert_handed_over(loop, plan, loop.sync())   # raises on any API error
    loop.settle()
    assert loop.sync() == []
    assert not any(c["type"] == "ChildrenNotUpdatable" for c in loop.parent["status"]["conditions"])


def made_first():
    """The controllers installed before `adopt`: two syncs. The first makes the one Secret the Go
    operator has no counterpart of (the manager account's); nothing else is written, ever."""
    def run(loop: harness.Loop) -> None:
        assert [(c.kind, c.name, c.action) for c in loop.sync()] == [("Secret", "demo-manager-credentials", "create")]
        assert loop.sync() == []
    return run


def test_after_the_controllers_came_first_the_status_names_each_released_child_and_its_commands_recover_it(
        apiserver, crd):
    """The mistake: the CompositeController installed before `adopt` ran. Every child is
    released and every create refused; the status names each one with the command that fixes
    it, and those commands, sent to the real server as kubectl sends them, let the next sync
    adopt every child in place with each Secret value kept."""
    loop = go_operator_on_the_server(apiserver)
    operators = set(loop.cluster.objects)
    made_first()(loop)
    loop.parent = {**apiserver.get("DittoServer", "demo", loop.cluster.namespace), "status": loop.parent["status"]}
    conditions = {c["type"]: c for c in loop.parent["status"]["conditions"]}
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == ("False", "NotAdopted")
    message = conditions["ChildrenNotAdopted"]["message"]
    for kind, name in operators:
        assert f"{kind} {name} (released: no controller" in message, (kind, name)
    commands = convergence.fix_commands(loop.parent)
    assert len([c for c in commands if " label " in c]) == len(operators)
    # The Go operator's finalizer, and (dynamic apply) the UDP twins of the StatefulSet and the NFS Service.
    assert sorted(c.split()[4] for c in commands if " patch " in c) == \
        ["dittoserver.dittofs.dittofs.com/demo", "service/demo-adapter-nfs", "statefulset.apps/demo"]
    for line in commands:
        entry = convergence.kubectl_entry(line)
        apiserver.patch(entry["kind"], entry["name"], entry["namespace"], entry["patch"], entry["type"])
    loop.parent = {**apiserver.get("DittoServer", "demo", loop.cluster.namespace), "status": loop.parent["status"]}
    assert "finalizers" not in loop.parent["metadata"]
    loop.sync()   # raises on any API error
    assert sorted(loop.cluster.adopted) == sorted(operators)
    loop.settle()
    assert loop.sync() == []
    assert not {c["type"] for c in loop.parent["status"]["conditions"]} & {"ChildrenNotAdopted", "FinalizerLeftOver"}
    for key, obj in loop.cluster.objects.items():
        if key[0] == "Secret" and key in operators:
            assert set(obj["data"].values()) == {harness.GO_OPERATOR_SECRET}, key
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [loop.parent["metadata"]["uid"]], key


def test_adopt_run_after_the_controllers_came_first_recovers_every_released_child_for_real(
        apiserver, crd, tmp_path, capsys):
    """`adopt` run after the mistake: it recognises the released children by name, labels
    each (no create predicted, no Secret called missing), and the first sync then adopts them
    all on the real server, as adopt predicted, with every Secret value kept."""
    loop = go_operator_on_the_server(apiserver)
    operators = set(loop.cluster.objects)
    made_first()(loop)
    assert sorted(loop.cluster.released) == sorted(operators)
    status = loop.parent["status"]
    plan = adopted(loop, tmp_path, capsys)
    loop.parent["status"] = status
    notes = [n for step in plan["steps"] for n in step["notes"]]
    assert not any("will generate" in n for n in notes)
    assert {c["action"] for c in plan["firstSync"]["changes"]} <= {"update", "unchanged"}
    written = loop.sync()   # raises on any API error
    assert sorted(loop.cluster.adopted) == sorted(operators)
    assert [(c.kind, c.name, list(c.fields)) for c in written] == \
        [(c["kind"], c["name"], c["fields"]) for c in plan["firstSync"]["changes"] if c["action"] != "unchanged"]
    loop.settle()
    assert loop.sync() == []
    for key, obj in loop.cluster.objects.items():
        if key[0] == "Secret" and key in operators:
            assert set(obj["data"].values()) == {harness.GO_OPERATOR_SECRET}, key
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [loop.parent["metadata"]["uid"]], key
    assert not {c["type"] for c in loop.parent["status"]["conditions"]} & {"ChildrenNotAdopted", "FinalizerLeftOver"}
