"""The children `/sync` keeps between calls (`sync.serialized_state`): never a stale answer.

`desired_state` builds every answer afresh, so it is the reference: whatever was answered
before, `serialized_state` must give exactly its bytes.
"""
import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hooks.children import sync
from hooks.request import caching, errors
from tests import factory as f

FIXTURES = sorted(Path(__file__).parent.glob("fixtures/*.json"))


def reference(req: dict, strategy: str = "dynamic-apply", token=f.fake_token) -> bytes:
    return sync.encode(sync.desired_state(req, strategy=strategy, now=f.NOW, random_token=token))


def served(req: dict, strategy: str = "dynamic-apply", token=f.fake_token) -> sync.Answer:
    return sync.serialized_state(req, strategy=strategy, now=f.NOW, random_token=token)


@pytest.fixture(autouse=True)
def cold():
    sync.forget()
    yield
    sync.forget()


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_first_and_later_answers_are_desired_state_encoded(path):
    doc = json.loads(path.read_text())
    expected = reference(doc["request"], doc["strategy"])
    first, again = served(doc["request"], doc["strategy"]), served(doc["request"], doc["strategy"])
    assert first.body == expected and again.body == expected
    answer = json.loads(expected)
    kinds = [child["kind"] for child in answer["children"]]
    assert first.kinds == again.kinds == tuple((kind, kinds.count(kind)) for kind in sorted(set(kinds)))
    assert first.children == len(kinds)
    assert first.status == answer["status"]


# A world: a DittoServer, its adapters and what exists in the cluster. Each field is one the
# children depend on, with the values it may take; a cache key that missed one would answer a
# world with the children of another that differs in that field alone.
ADAPTER_SETS = [[f.entry("nfs", 12049)], [f.entry("nfs", 12049), f.entry("smb", 12445)], [f.entry("smb", 2049)], []]
FIELDS = {
    "name": ["demo", "other"],
    "namespace": ["storage", "prod"],
    "strategy": ["dynamic-apply", "server-side-apply"],
    "adapters": [*ADAPTER_SETS, "garbage"],          # the annotation now
    "observed_adapters": ADAPTER_SETS,               # what the children were built for
    "image": ["dittofs:1", "dittofs:2"],
    "metrics": [False, True],
    "size": ["10Gi", "20Gi"],
    "service_type": ["LoadBalancer", "NodePort"],
    "annotations": [{}, {"lb": "internal"}],
    "resources": [None, {"limits": {"cpu": "1"}}, {"limits": {"cpu": 0.5}}],
    "user_jwt": [False, True],
    "user_jwt_value": ["aaaa", "bbbb"],
    "policies": [False, True],
    "secret_value": ["c2VjcmV0", "b3RoZXI="],
    "observed_class": [None, "fast", "slow"],
    "statefulset": [True, False],                    # whether one was observed
}


@st.composite
def worlds(draw) -> list[dict]:
    """A world, then each next one with one field changed."""
    found = [{key: draw(st.sampled_from(values)) for key, values in FIELDS.items()}]
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(sorted(FIELDS)))
        found.append({**found[-1], key: draw(st.sampled_from(FIELDS[key]))})
    return found


def world_request(w: dict) -> dict:
    spec = {"image": w["image"], "storage": {"metadataSize": w["size"]}, "metrics": {"enabled": w["metrics"]},
            "adapterServices": {"type": w["service_type"], "annotations": w["annotations"]}}
    if w["resources"] is not None:
        spec["resources"] = w["resources"]
    if w["user_jwt"]:
        spec["identity"] = {"jwt": {"secretRef": {"name": "user-jwt", "key": "k"}}}
    groups = f.WITH_POLICIES if w["policies"] else f.GROUPS
    related = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "user-jwt", "namespace": w["namespace"]},
                "data": {"k": w["user_jwt_value"]}}]
    before = f.parent(w["name"], w["namespace"], spec, w["observed_adapters"])
    first = f.sync_of(f.request(before, groups=groups, related=related), w["strategy"])
    observed = copy.deepcopy([c for c in first["children"] if f.group_of(c) in groups
                              and (w["statefulset"] or c["kind"] != "StatefulSet")])
    for child in observed:
        if child["kind"] == "Secret":
            child["data"] = {key: w["secret_value"] for key in child["data"]}
        if child["kind"] == "StatefulSet" and w["observed_class"]:
            for template in child["spec"]["volumeClaimTemplates"]:
                template["spec"]["storageClassName"] = w["observed_class"]
    return f.request(f.parent(w["name"], w["namespace"], spec, w["adapters"]), observed, related, groups=groups)


# Worlds to change one field of: the first value of each field, the second, and one whose
# adapter annotation is unreadable (so the observed adapter children are handed back).
BASES = [{key: values[0] for key, values in FIELDS.items()},
         {key: values[1] for key, values in FIELDS.items()},
         {**{key: values[1] for key, values in FIELDS.items()}, "adapters": "garbage"}]
CHANGES = [(n, key, value) for n, base in enumerate(BASES) for key, values in FIELDS.items()
           for value in values if value != base[key]]


def matters(world: dict, key: str) -> bool:
    """Whether a field can change the answer in this world."""
    if key == "user_jwt_value":
        return world["user_jwt"]            # only read when the spec refers to it
    if key == "observed_class":
        return world["statefulset"]
    if key == "observed_adapters":
        return world["adapters"] == "garbage"   # known adapters are built from the annotation
    return True


@pytest.mark.parametrize("base, key, value", CHANGES, ids=lambda v: str(v)[:20])
def test_a_change_of_any_one_field_is_answered_afresh(base, key, value):
    before, after = BASES[base], {**BASES[base], key: value}
    requests = [(world_request(w), w["strategy"]) for w in (before, after)]
    if matters(before, key):
        assert reference(*requests[0]) != reference(*requests[1])
    for req, strategy in requests * 2:
        assert served(req, strategy).body == reference(req, strategy)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sequence=worlds())
def test_no_answer_is_taken_from_another_world(sequence):
    sync.forget()
    requests = [(world_request(w), w["strategy"]) for w in sequence]
    for req, strategy in requests * 2:   # every world answered after every other
        assert served(req, strategy).body == reference(req, strategy)


def test_secrets_not_yet_made_are_made_on_every_call():
    req = f.request(f.parent(adapters=[f.entry("nfs", 12049)]))
    a, b = served(req, token=lambda n: "a" * n), served(req, token=lambda n: "b" * n)
    assert a.body == reference(req, token=lambda n: "a" * n)
    assert b.body == reference(req, token=lambda n: "b" * n)


def test_what_outgrows_the_budget_is_dropped():
    kept: caching.Bounded[str] = caching.Bounded(10)
    kept.put("big", "too big", cost=11)
    kept.put("a", "first", cost=6)
    assert kept.get("big") is None and kept.get("a") == "first"
    kept.put("b", "second", cost=6)   # past the budget: everything before is dropped
    assert kept.get("a") is None and kept.get("b") == "second"


def test_children_are_kept_when_claim_templates_carry_nulls():
    # What many API servers return for a StatefulSet's claim templates.
    doc = json.loads((Path(__file__).parent / "fixtures" / "unchanged_input.json").read_text())
    req = doc["request"]
    for sts in req["children"]["StatefulSet.apps/v1"].values():
        for template in sts["spec"]["volumeClaimTemplates"]:
            template["metadata"]["creationTimestamp"] = None
    found = sync.read(req, doc["strategy"], f.fake_token)
    assert sync.children_key(found.ctx, found.digest) is not None
    assert served(req, doc["strategy"]).body == reference(req, doc["strategy"])


@pytest.mark.parametrize("value, exact", [
    ({"a": [1, "x", True]}, True),
    ({"a": None, "b": [None]}, True),  # JSON's null
    ({"a": float("nan")}, False),      # YAML's .nan, which orjson would write as null
    ({"a": [{"b": float("-inf")}], "c": None}, False),
    ({1: "x"}, False),                 # not a JSON object key
    ({"a": 2**70}, False),             # past 64 bits
])
def test_fingerprints_are_exact_or_none(value, exact):
    assert (caching.fingerprint(value) is not None) == exact


def test_a_child_refused_before_status_is_read():
    # A claim-template name nested too deeply: the StatefulSet refuses it (422) in both paths,
    # before status compares claim templates (whose repr() would overflow the stack).
    first = f.sync_of(f.request(f.parent(adapters=[])))
    req = f.request(f.parent(adapters=[]), first["children"])
    deep: object = "x"
    for _ in range(1000):
        deep = [deep]
    for sts in req["children"]["StatefulSet.apps/v1"].values():
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = deep
    for answer in (lambda: sync.desired_state(req, now=f.NOW, random_token=f.fake_token), lambda: served(req)):
        with pytest.raises(errors.HookError) as refused:
            answer()
        assert refused.value.status == 422
