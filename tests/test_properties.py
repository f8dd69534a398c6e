"""Properties over generated adapter sets: order never matters, and every child is valid."""
import copy
import random

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from tests import factory as f, k8s_rules

STRATEGIES = st.sampled_from(["dynamic-apply", "server-side-apply"])
# Ports that collide with the static ports, the portmapper and each other, plus anything.
PORTS = st.one_of(st.sampled_from([111, 2049, 8080, 9090, 10111, 12049, 12445]), st.integers(1, 65535))
TYPES = st.one_of(
    st.sampled_from(["nfs", "NFS", "smb", "webdav", "s3-gateway", "custom-adapter-a", "nfs-pm", "pm-udp", "9p"]),
    st.text(max_size=70),
)
ENTRIES = st.lists(st.builds(f.entry, TYPES, PORTS, st.booleans(), st.booleans()), max_size=12)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def canonical(response: dict) -> bytes:
    return orjson.dumps(response, option=orjson.OPT_SORT_KEYS)


def shuffled_request(req: dict, rnd: random.Random) -> dict:
    """The same request with every list and map the hook reads in another order."""
    out = copy.deepcopy(req)
    for group, objects in out["children"].items():
        items = list(objects.items())
        rnd.shuffle(items)
        out["children"][group] = dict(items)
        for obj in objects.values():
            for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                rnd.shuffle(container["ports"])
                rnd.shuffle(container["env"])
            rnd.shuffle(obj.get("spec", {}).get("ports", []))
    return out


@SETTINGS
@given(entries=ENTRIES, strategy=STRATEGIES, metrics=st.booleans(), seed=st.integers())
def test_adapter_order_never_changes_the_answer(entries, strategy, metrics, seed):
    spec = {**f.SPEC, "metrics": {"enabled": metrics}}
    shuffled = list(entries)
    random.Random(seed).shuffle(shuffled)
    a = f.sync_of(f.request(f.parent(spec=spec, adapters=entries)), strategy)
    b = f.sync_of(f.request(f.parent(spec=spec, adapters=shuffled)), strategy)
    assert canonical(a) == canonical(b)


@SETTINGS
@given(entries=ENTRIES, strategy=STRATEGIES, seed=st.integers(), known=st.booleans())
def test_observed_order_never_changes_the_answer(entries, strategy, seed, known):
    first = f.sync_of(f.request(f.parent(adapters=entries)), strategy)
    # Next sync: the adapters are known again, or unknown (keeping what is observed).
    p = f.parent(adapters=entries if known else "garbage")
    req = f.request(p, observed=first["children"])
    a = f.sync_of(req, strategy)
    b = f.sync_of(shuffled_request(req, random.Random(seed)), strategy)
    assert canonical(a) == canonical(b)


@SETTINGS
@given(entries=ENTRIES, strategy=STRATEGIES, metrics=st.booleans(),
       name=st.from_regex(r"[a-z]([a-z0-9-]{0,50}[a-z0-9])?", fullmatch=True))
def test_every_child_is_one_the_api_server_accepts(entries, strategy, metrics, name):
    spec = {**f.SPEC, "metrics": {"enabled": metrics}}
    resp = f.sync_of(f.request(f.parent(name=name, spec=spec, adapters=entries)), strategy)
    assert k8s_rules.all_problems(resp, strategy) == []
    names = [p["name"] for p in f.container_ports(resp, name)]
    assert names == sorted(names)
    assert "api" in names and ("metrics" in names) == metrics


@SETTINGS
@given(entries=ENTRIES, strategy=STRATEGIES)
def test_unknown_state_keeps_every_adapter_port_and_service(entries, strategy):
    known = f.sync_of(f.request(f.parent(adapters=entries)), strategy)
    unknown = f.sync_of(f.request(f.parent(adapters=None), observed=known["children"]), strategy)
    assert f.container_ports(unknown) == f.container_ports(known)
    assert f.names_of(unknown, "Service") == f.names_of(known, "Service")
    assert k8s_rules.all_problems(unknown, strategy) == []
