"""The model of Metacontroller's first server-side apply (hooks/tools/server_side.py), on small
objects; tests/test_apiserver_real.py checks it against what the real API server stores."""
from hooks.tools import applying, server_side


def env(ref: dict) -> dict:
    return {"spec": {"template": {"spec": {"containers": [{"name": "dittofs", "env": [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": ref}}]}]}}}}


def test_an_atomic_struct_is_replaced_whole_and_what_another_manager_set_in_it_goes():
    live = env({"name": "s", "key": "password", "optional": True})
    merged = server_side.merge(live, env({"name": "s", "key": "password"}))
    ref = merged["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "s", "key": "password"}


def test_an_object_merges_by_key_and_keeps_what_the_applier_leaves_out():
    live = {"metadata": {"labels": {"app": "a", "theirs": "x"}}, "spec": {"replicas": 1, "minReadySeconds": 5}}
    merged = server_side.merge(live, {"metadata": {"labels": {"app": "b"}}, "spec": {"replicas": 2}})
    assert merged == {"metadata": {"labels": {"app": "b", "theirs": "x"}}, "spec": {"replicas": 2, "minReadySeconds": 5}}


def test_a_label_selector_and_a_plain_list_are_replaced_whole():
    live = {"spec": {"podSelector": {"matchLabels": {"a": "1", "b": "2"}}, "policyTypes": ["Ingress", "Egress"]}}
    merged = server_side.merge(live, {"spec": {"podSelector": {"matchLabels": {"a": "1"}}, "policyTypes": ["Ingress"]}})
    assert merged["spec"] == {"podSelector": {"matchLabels": {"a": "1"}}, "policyTypes": ["Ingress"]}


def test_a_port_without_a_protocol_is_the_tcp_item_of_its_number():
    live = {"spec": {"ports": [{"name": "nfs", "port": 2049, "protocol": "TCP"},
                               {"name": "nfs-udp", "port": 2049, "protocol": "UDP"}]}}
    merged = server_side.merge(live, {"spec": {"ports": [{"name": "renamed", "port": 2049}]}})
    assert merged["spec"]["ports"] == [{"name": "renamed", "port": 2049, "protocol": "TCP"},
                                       {"name": "nfs-udp", "port": 2049, "protocol": "UDP"}]


def test_the_plan_creates_updates_leaves_and_deletes_by_kind_and_name():
    def cm(name, value, **metadata):
        return {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": value},
                "metadata": {"name": name, "namespace": "ns", **metadata}}
    owner = [applying.owner_ref("demo", "uid")]
    same = cm("same", "v", labels={applying.SELECTOR_LABEL: "uid"}, ownerReferences=owner)
    live = [same, cm("changed", "old"), cm("gone", "v")]
    changes = server_side.plan(live, [cm("same", "v"), cm("changed", "new"), cm("new", "v")],
                               namespace="ns", parent_uid="uid", parent_name="demo")
    found = {c.name: (c.action, c.fields) for c in changes}
    assert found["same"] == ("unchanged", ())
    assert found["changed"][0] == "update" and "data.k" in found["changed"][1]
    assert found["new"] == ("create", ()) and found["gone"] == ("delete", ())
