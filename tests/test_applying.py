"""Tests for hooks.tools.applying: the model of Metacontroller's dynamic apply and API defaults."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooks.request import observed
from hooks.tools.applying import (
    LAST_APPLIED,
    LIST_MAP_KEYS,
    Change,
    Cluster,
    ImmutableFieldError,
    MergeError,
    apply_update,
    claim_verdict,
    last_applied_json,
    merge,
    plan,
    read_last_applied,
    server_defaults,
)

PARENT_UID = "0c0ffee0-0000-4000-8000-000000000001"


# --------------------------------------------------------------------------- fixtures


def service(name="p-api", ports=None, svc_type="ClusterIP", **spec):
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"app": "dittofs-server"}},
        "spec": {"type": svc_type, "selector": {"app": "dittofs-server"},
                 "ports": ports if ports is not None else [
                     {"name": "api", "port": 8080, "targetPort": 8080, "protocol": "TCP"}],
                 **spec},
    }


def statefulset(name="p", ports=None, image="marmos91c/dittofs:latest", selector=None):
    ports = ports if ports is not None else [
        {"name": "api", "containerPort": 8080, "protocol": "TCP"},
        {"name": "adapter-nfs", "containerPort": 12049, "protocol": "TCP"},
    ]
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "serviceName": f"{name}-headless",
            "selector": {"matchLabels": selector or {"app": "dittofs-server", "instance": name}},
            "template": {
                "metadata": {"labels": selector or {"app": "dittofs-server", "instance": name}},
                "spec": {"containers": [{
                    "name": "dittofs", "image": image, "ports": ports,
                    "env": [{"name": "A", "value": "1"}],
                    "volumeMounts": [{"name": "metadata", "mountPath": "/data/metadata"}],
                    "livenessProbe": {"httpGet": {"path": "/health", "port": "api"}},
                }]},
            },
            # Emitted in the form the API server stores, as the contract requires.
            "volumeClaimTemplates": [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "metadata"},
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                         "resources": {"requests": {"storage": "1Gi"}}},
                "status": {"phase": "Pending"},
            }],
        },
    }


def bare_claims(sts):
    """The StatefulSet with its volumeClaimTemplates lacking what the API server adds."""
    sts = copy.deepcopy(sts)
    for claim in sts["spec"]["volumeClaimTemplates"]:
        del claim["apiVersion"], claim["kind"], claim["status"], claim["spec"]["volumeMode"]
    return sts


def secret(name="p-jwt-secret", **fields):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


def configmap(name="p-config", data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": data if data is not None else {"config.yaml": "a: 1\n"}}


def children():
    return [configmap(), secret(data={"jwt-secret": "c2VjcmV0"}), service(),
            service("p-headless", clusterIP="None"), statefulset()]


def container(obj):
    return obj["spec"]["template"]["spec"]["containers"][0]


# --------------------------------------------------------------------------- merge: objects


def test_key_dropped_from_desired_is_deleted_but_never_applied_key_stays():
    live = {"a": 1, "b": 2, "other": "set by someone else"}
    result = merge(live, {"a": 1, "b": 2}, {"a": 1})
    assert result == {"a": 1, "other": "set by someone else"}


def test_scalar_desired_wins():
    assert merge({"a": 1, "b": "x"}, {"a": 1}, {"a": 2, "b": "y"}) == {"a": 2, "b": "y"}
    assert merge({"s": "old"}, {}, {"s": None}) == {"s": None}


def test_nested_objects_merge_recursively():
    live = {"metadata": {"labels": {"controller-uid": "u", "app": "a"}, "uid": "x"}}
    result = merge(live, {"metadata": {"labels": {"app": "a", "old": "1"}}},
                   {"metadata": {"labels": {"app": "b"}}})
    assert result == {"metadata": {"labels": {"controller-uid": "u", "app": "b"}, "uid": "x"}}


def test_merge_never_mutates_its_inputs():
    live = statefulset()
    last = statefulset(ports=[{"name": "api", "containerPort": 8080}])
    desired = statefulset(ports=[{"name": "x", "containerPort": 1}])
    snapshot = copy.deepcopy((live, last, desired))
    result = merge(live, last, desired)
    container(result)["ports"][0]["name"] = "mutated"
    result["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "mutated"
    assert (live, last, desired) == snapshot


def test_live_object_with_non_object_desired_keeps_live_minus_last_applied():
    # Go's merge() treats a desired value of the wrong type as absent.
    result = merge({"x": {"a": 1, "b": 2}}, {"x": {"a": 1}}, {"x": "scalar"})
    assert result == {"x": {"b": 2}}


# --------------------------------------------------------------------------- merge: lists


def test_container_ports_merge_by_container_port_and_desired_tcp_udp_twins_collapse():
    live = [{"name": "adapter-nfs-pm", "containerPort": 10111, "protocol": "TCP"},
            {"name": "api", "containerPort": 8080, "protocol": "TCP"}]
    desired = [{"name": "api", "containerPort": 8080, "protocol": "TCP"},
               {"name": "adapter-nfs-pm", "containerPort": 10111, "protocol": "TCP"},
               {"name": "adapter-pm-udp", "containerPort": 10111, "protocol": "UDP"}]
    result = merge({"ports": live}, {"ports": desired}, {"ports": desired})["ports"]
    assert len(result) == 2
    # The later duplicate wins, at the position the key already had.
    assert result[0] == {"name": "adapter-pm-udp", "containerPort": 10111, "protocol": "UDP"}
    assert result[1]["name"] == "api"


def test_container_ports_matched_by_container_port_not_name():
    live = {"ports": [{"name": "old-name", "containerPort": 12049, "protocol": "TCP"}]}
    result = merge(live, live, {"ports": [{"name": "adapter-nfs", "containerPort": 12049}]})
    assert result["ports"] == [{"name": "adapter-nfs", "containerPort": 12049}]


def test_service_ports_merge_by_port_and_keep_server_fields():
    live = [{"name": "api", "port": 8080, "targetPort": 8080, "protocol": "TCP",
             "nodePort": 31000}]
    result = merge({"ports": live}, {"ports": [{"name": "api", "port": 8080}]},
                   {"ports": [{"name": "api2", "port": 8080}]})["ports"]
    assert result == [{"name": "api2", "port": 8080, "targetPort": 8080, "protocol": "TCP",
                       "nodePort": 31000}]


def test_env_merges_by_name():
    live = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
            {"name": "INJECTED", "value": "by a webhook"}]
    result = merge({"env": live}, {"env": live[:2]},
                   {"env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]})["env"]
    assert result == [{"name": "B", "value": "3"}, {"name": "INJECTED", "value": "by a webhook"},
                      {"name": "C", "value": "4"}]


def test_volume_mounts_merge_by_mount_path():
    live = [{"name": "metadata", "mountPath": "/data/metadata"}]
    desired = [{"name": "meta2", "mountPath": "/data/metadata"},
               {"name": "cache", "mountPath": "/data/cache"}]
    result = merge({"m": live}, {"m": live}, {"m": desired})["m"]
    assert result == desired


def test_live_order_is_kept_and_new_items_are_appended_in_desired_order():
    live = [{"name": "c"}, {"name": "a"}, {"name": "b"}]
    desired = [{"name": "z"}, {"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "y"}]
    result = merge({"l": live}, {"l": live}, {"l": desired})["l"]
    assert [item["name"] for item in result] == ["c", "a", "b", "z", "y"]


def test_list_of_strings_is_replaced_whole():
    result = merge({"args": ["a", "b", "live-only"]}, {"args": ["a", "b"]}, {"args": ["b", "a"]})
    assert result == {"args": ["b", "a"]}


def test_list_without_a_common_merge_key_is_replaced_whole():
    live = {"l": [{"name": "a", "x": 1}, {"other": 2}]}
    assert merge(live, {}, {"l": [{"name": "a"}]}) == {"l": [{"name": "a"}]}


def test_volume_claim_templates_are_replaced_whole():
    live = server_defaults(statefulset())
    desired = bare_claims(statefulset())
    result = merge(live, {}, desired)
    # Items carry only "metadata"/"spec" at top level (no merge key), so the server's
    # apiVersion/kind/status on each template are lost: desired replaces the list.
    assert result["spec"]["volumeClaimTemplates"] == desired["spec"]["volumeClaimTemplates"]
    assert result["spec"]["volumeClaimTemplates"] != live["spec"]["volumeClaimTemplates"]


def test_empty_desired_list_removes_only_what_was_applied():
    live = {"env": [{"name": "A"}, {"name": "OTHER"}]}
    assert merge(live, {"env": [{"name": "A"}]}, {"env": []}) == {"env": [{"name": "OTHER"}]}


def test_list_new_to_live_is_taken_verbatim_then_its_twins_become_identical():
    # Go's merge only treats a list as a map when live already holds a list. Live items that
    # share a key are not collapsed: each is replaced by the merged item of that key.
    desired = {"ports": [{"containerPort": 111, "protocol": "TCP"},
                         {"containerPort": 111, "protocol": "UDP"}]}
    first = merge({}, {}, desired)
    assert first == desired
    second = merge(first, desired, desired)
    assert second == {"ports": [{"containerPort": 111, "protocol": "UDP"}] * 2}
    assert merge(second, desired, desired) == second


def test_live_twins_are_each_replaced_and_new_desired_items_appended_once():
    live = {"ports": [{"port": 111, "name": "a"}, {"port": 80, "name": "web"}, {"port": 111, "name": "b"}]}
    desired = {"ports": [{"port": 111, "name": "c"}, {"port": 443, "name": "tls"}, {"port": 443, "name": "tls2"}]}
    result = merge(live, {"ports": [{"port": 80, "name": "web"}]}, desired)["ports"]
    assert result == [{"port": 111, "name": "c"}, {"port": 111, "name": "c"}, {"port": 443, "name": "tls2"}]
    result[0]["name"] = "changed"
    assert result[1]["name"] == "c"   # two items, not one object twice


def test_live_twins_nobody_applied_become_copies_of_the_later_one():
    live = {"env": [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]}
    assert merge(live, {}, {"env": []}) == {"env": [{"name": "X", "value": "2"}] * 2}


def test_list_replaced_by_a_scalar_takes_three_syncs_to_land():
    # Go's merge: live list + desired scalar -> the list minus what was applied; then null
    # (desired of the wrong type counts as absent); then, live being scalar, desired wins.
    desired = {"x": False}
    states = [merge({"x": [{"name": "a"}]}, {"x": [{"name": "a"}]}, desired)]
    for _ in range(3):
        states.append(merge(states[-1], desired, desired))
    assert states == [{"x": []}, {"x": None}, {"x": False}, {"x": False}]


def test_merge_keys_compare_as_strings():
    live = {"ports": [{"port": 80, "name": "http", "appProtocol": "http"}]}
    result = merge(live, {}, {"ports": [{"port": "80", "name": "web"}]})
    assert result == {"ports": [{"port": "80", "name": "web", "appProtocol": "http"}]}


def test_integral_float_merge_key_matches_integer():
    live = {"ports": [{"containerPort": 12049, "name": "a", "protocol": "TCP"}]}
    result = merge(live, {}, {"ports": [{"containerPort": 12049.0, "name": "b"}]})
    assert result == {"ports": [{"containerPort": 12049.0, "name": "b", "protocol": "TCP"}]}


def test_list_map_keys_are_tried_in_the_documented_order():
    assert LIST_MAP_KEYS[0] == "containerPort"
    live = {"l": [{"port": 1, "name": "a", "extra": True}]}
    # Both "port" and "name" are shared; "port" comes first, so the rename is an update.
    result = merge(live, {}, {"l": [{"port": 1, "name": "b"}]})
    assert result == {"l": [{"port": 1, "name": "b", "extra": True}]}


# --------------------------------------------------------------------------- server defaults

KINDS = [service(), service("lb", svc_type="LoadBalancer"), service("np", svc_type="NodePort"),
         service("headless", clusterIP="None"), statefulset(), secret(stringData={"k": "v"}),
         configmap(), {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": "np"},
                       "spec": {"ingress": [{"ports": [{"port": 8080}]}]}}]


@pytest.mark.parametrize("obj", KINDS, ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_server_defaults_is_idempotent_and_does_not_mutate(obj):
    snapshot = copy.deepcopy(obj)
    once = server_defaults(obj)
    assert server_defaults(once) == once
    assert obj == snapshot


def test_service_defaults():
    svc = server_defaults(service())
    spec = svc["spec"]
    assert spec["clusterIP"].startswith("10.96.") and spec["clusterIPs"] == [spec["clusterIP"]]
    assert (spec["ipFamilies"], spec["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
    assert (spec["sessionAffinity"], spec["internalTrafficPolicy"]) == ("None", "Cluster")
    assert svc["status"] == {"loadBalancer": {}}
    assert "nodePort" not in spec["ports"][0] and "externalTrafficPolicy" not in spec
    # Deterministic per namespace/name.
    assert server_defaults(service())["spec"]["clusterIP"] == spec["clusterIP"]
    assert server_defaults(service("other"))["spec"]["clusterIP"] != spec["clusterIP"]


def test_service_port_defaults_and_load_balancer():
    svc = server_defaults(service("lb", ports=[{"name": "nfs", "port": 2049}],
                                  svc_type="LoadBalancer"))
    port = svc["spec"]["ports"][0]
    assert port["protocol"] == "TCP" and port["targetPort"] == 2049
    assert 30000 <= port["nodePort"] <= 32767
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    assert svc["spec"]["allocateLoadBalancerNodePorts"] is True


def test_headless_service_gets_none_cluster_ips():
    spec = server_defaults(service("h", clusterIP="None"))["spec"]
    assert spec["clusterIP"] == "None" and spec["clusterIPs"] == ["None"]


def test_server_defaults_never_overwrite_present_values():
    svc = service(sessionAffinity="ClientIP", clusterIP="10.0.0.7",
                  ports=[{"port": 80, "targetPort": "http", "protocol": "UDP"}])
    spec = server_defaults(svc)["spec"]
    assert spec["sessionAffinity"] == "ClientIP" and spec["clusterIPs"] == ["10.0.0.7"]
    assert spec["ports"] == [{"port": 80, "targetPort": "http", "protocol": "UDP"}]
    sts = statefulset(image="repo/dittofs:latest")
    container(sts)["imagePullPolicy"] = "Never"
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 60
    out = server_defaults(sts)
    assert container(out)["imagePullPolicy"] == "Never"
    assert out["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert out["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60


def test_statefulset_defaults():
    sts = server_defaults(statefulset())
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady" and spec["revisionHistoryLimit"] == 10
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == (
        "Always", "ClusterFirst", "default-scheduler")
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["securityContext"] == {}
    c = pod["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert (c["terminationMessagePath"], c["terminationMessagePolicy"]) == (
        "/dev/termination-log", "File")
    assert all(p["protocol"] == "TCP" for p in c["ports"])
    assert c["livenessProbe"] == {
        "httpGet": {"path": "/health", "port": "api", "scheme": "HTTP"}, "timeoutSeconds": 1,
        "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    claim = spec["volumeClaimTemplates"][0]
    assert (claim["apiVersion"], claim["kind"]) == ("v1", "PersistentVolumeClaim")
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}


@pytest.mark.parametrize("image,policy", [
    ("marmos91c/dittofs:latest", "Always"), ("marmos91c/dittofs", "Always"),
    ("registry:5000/dittofs", "Always"), ("marmos91c/dittofs:0.4.1", "IfNotPresent"),
    ("registry:5000/dittofs:1", "IfNotPresent"), ("dittofs@sha256:abc", "IfNotPresent"),
])
def test_image_pull_policy_default(image, policy):
    assert container(server_defaults(statefulset(image=image)))["imagePullPolicy"] == policy


def test_secret_string_data_is_folded_into_data():
    out = server_defaults(secret(data={"a": "b2xk", "keep": "eA=="},
                                 stringData={"a": "new", "b": "two"}))
    assert "stringData" not in out and out["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in out["data"].items()} == {
        "a": "new", "keep": "x", "b": "two"}


def test_configmap_gets_nothing_and_network_policy_defaults():
    assert server_defaults(configmap()) == configmap()
    policy = server_defaults(KINDS[-1])
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_server_stores_integral_floats_as_integers():
    out = server_defaults(service(ports=[{"name": "api", "port": 8080.0}]))
    assert type(out["spec"]["ports"][0]["port"]) is int


# --------------------------------------------------------------------------- plan


def live_from(desired, **server_side):
    """A live object as the cluster would hold it after Metacontroller created `desired`."""
    obj = server_defaults(desired)
    obj["metadata"] = {**obj["metadata"], "namespace": "default", "uid": "u-1",
                       "resourceVersion": "7", "generation": 1,
                       "annotations": {LAST_APPLIED: last_applied_json(desired)}}
    obj.update(server_side)
    return obj


def test_plan_unchanged_when_desired_equals_last_applied_on_defaulted_live():
    desired = [statefulset(), service(), secret(data={"k": "dg=="}), configmap()]
    live = [live_from(d) for d in desired]
    live[0]["status"] = {"replicas": 1, "readyReplicas": 1}
    changes = plan(live, desired)
    assert [c.action for c in changes] == ["unchanged"] * 4
    assert all(c.fields == () and not c.restarts_pod for c in changes)


def test_plan_reports_changed_fields_and_pod_restart():
    live = [live_from(statefulset())]
    desired = statefulset(ports=[{"name": "api", "containerPort": 8080, "protocol": "TCP"},
                                 {"name": "adapter-nfs2", "containerPort": 12049,
                                  "protocol": "TCP"}])
    [change] = plan(live, [desired])
    assert (change.kind, change.name, change.action, change.restarts_pod) == (
        "StatefulSet", "p", "update", True)
    assert "spec.template.spec.containers[dittofs].ports[12049].name" in change.fields
    assert f"metadata.annotations.{LAST_APPLIED}" in change.fields
    assert not any(f.startswith("status") for f in change.fields)


def test_plan_change_outside_pod_template_does_not_restart():
    desired = statefulset()
    live = [live_from(desired)]
    desired = copy.deepcopy(desired)
    desired["spec"]["replicas"] = 0
    [change] = plan(live, [desired])
    assert change.action == "update" and not change.restarts_pod
    assert "spec.replicas" in change.fields


def test_plan_only_reordered_output_is_still_a_write():
    desired = service(ports=[{"name": "a", "port": 1}, {"name": "b", "port": 2}])
    live = [live_from(desired)]
    reordered = copy.deepcopy(desired)
    reordered["spec"]["ports"].reverse()
    [change] = plan(live, [reordered])
    assert change.action == "update"
    assert change.fields == (f"metadata.annotations.{LAST_APPLIED}",)


def test_plan_create_delete_and_sorting():
    live = [live_from(configmap("gone")), live_from(service("p-api"))]
    changes = plan(live, [service("p-api"), statefulset("p"), configmap("p-config")])
    assert [(c.kind, c.name, c.action) for c in changes] == [
        ("ConfigMap", "gone", "delete"), ("ConfigMap", "p-config", "create"),
        ("Service", "p-api", "unchanged"), ("StatefulSet", "p", "create")]
    assert changes[-1].restarts_pod and changes[-1].fields == ()


def test_plan_keeps_live_system_metadata_and_status():
    desired = service()
    live = live_from(desired, status={"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}})
    forged = copy.deepcopy(desired)
    forged["metadata"].update(uid="forged", resourceVersion="999", generation=5)
    forged["status"] = {"phase": "forged"}
    # Only the annotation (which records what was sent) differs; uid, resourceVersion,
    # generation and status stay the live object's.
    [change] = plan([live], [forged])
    assert change.action == "update"
    assert change.fields == (f"metadata.annotations.{LAST_APPLIED}",)


def test_plan_matches_by_namespace_when_given():
    desired = service()
    other_ns = live_from(desired)
    other_ns["metadata"]["namespace"] = "elsewhere"
    desired_here = copy.deepcopy(desired)
    desired_here["metadata"]["namespace"] = "default"
    actions = {(c.action) for c in plan([other_ns], [desired_here])}
    assert actions == {"create", "delete"}
    assert [c.action for c in plan([other_ns], [desired])] == ["unchanged"]


def test_plan_rejects_duplicate_desired_children():
    with pytest.raises(ValueError, match="duplicate"):
        plan([], [service(), service()])


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "3", '"a string"'])
def test_a_corrupt_annotation_fails_that_childs_update_only(text):
    """Go's GetLastApplied unmarshals into a map: text that is not JSON, or JSON that is not an
    object, is an error for that child; updateChildren collects it and goes on."""
    live = live_from(service())
    live["metadata"]["annotations"][LAST_APPLIED] = text
    with pytest.raises(MergeError):
        read_last_applied(live)
    changes = plan([live], [service(), configmap()])
    assert [(c.kind, c.action) for c in changes] == [("ConfigMap", "create"), ("Service", "failed")]
    assert LAST_APPLIED in changes[1].fields[0]
    cluster = Cluster()
    cluster.apply([service()])
    stored = cluster.objects[("Service", "p-api")]
    stored["metadata"]["annotations"][LAST_APPLIED] = text
    before = copy.deepcopy(stored)
    with pytest.raises(MergeError, match="Service"):
        cluster.apply([service(name="p-api", ports=[]), configmap()])
    assert [(c.kind, c.action) for c in cluster.writes] == [("Service", "create"), ("ConfigMap", "create")]
    assert cluster.objects[("Service", "p-api")] == before


@pytest.mark.parametrize("text", ["", "null"])
def test_an_empty_or_null_annotation_is_no_last_applied(text):
    live = live_from(service())
    live["metadata"]["annotations"][LAST_APPLIED] = text
    assert read_last_applied(live) == {}


def test_the_stored_last_applied_omits_its_own_annotation_and_keeps_ints():
    """Go's nullifyLastAppliedAnnotation deletes the key from the desired object before it is
    recorded; json.Marshal writes a whole float64 as an integer."""
    desired = service()
    desired["metadata"]["annotations"] = {LAST_APPLIED: "from the hook", "keep": "me"}
    desired["spec"]["ports"][0]["port"] = 8080.0
    updated = apply_update(live_from(service()), desired)
    stored = json.loads(updated["metadata"]["annotations"][LAST_APPLIED])
    assert stored["metadata"]["annotations"] == {"keep": "me"}
    assert '"port":8080,' in updated["metadata"]["annotations"][LAST_APPLIED]
    assert type(stored["spec"]["ports"][0]["port"]) is int


def test_last_applied_json_is_sorted_compact_and_go_escaped():
    text = last_applied_json({"b": "<&>", "a": {"z": 1, "y": "é"}})
    assert text == '{"a":{"y":"é","z":1},"b":"\\u003c\\u0026\\u003e"}'
    assert json.loads(text) == {"b": "<&>", "a": {"z": 1, "y": "é"}}


# --------------------------------------------------------------------------- Cluster


def test_cluster_create_adds_metadata_and_defaults():
    cluster = Cluster()
    writes = cluster.apply(children())
    assert [w.action for w in writes] == ["create"] * 5
    sts = cluster.objects[("StatefulSet", "p")]
    meta = sts["metadata"]
    assert meta["labels"]["controller-uid"] == PARENT_UID
    assert meta["namespace"] == "default" and meta["resourceVersion"] == "1"
    assert meta["generation"] == 1 and meta["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert meta["ownerReferences"][0]["uid"] == PARENT_UID
    assert meta["ownerReferences"][0]["controller"] is True
    assert json.loads(meta["annotations"][LAST_APPLIED])["metadata"]["labels"] == {
        "controller-uid": PARENT_UID}
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert cluster.pod_template_writes() == 0
    other = Cluster()
    other.apply(children())
    assert other.objects == cluster.objects  # deterministic, uids included
    uids = {obj["metadata"]["uid"] for obj in cluster.objects.values()}
    assert len(uids) == 5


def test_cluster_same_response_twice_writes_nothing_the_second_time():
    cluster = Cluster()
    cluster.apply(children())
    before = copy.deepcopy(cluster.objects)
    assert cluster.apply(children()) == []
    assert cluster.objects == before
    assert len(cluster.writes) == 5


def test_cluster_duplicate_merge_keys_become_identical_twins_then_settle():
    """Created verbatim, then each live twin is replaced by the later desired item: the TCP
    port is gone and two identical UDP items remain (a Service would be refused)."""
    pm_udp = {"name": "pm-udp", "containerPort": 10111, "protocol": "UDP"}
    sts = statefulset(ports=[{"name": "pm", "containerPort": 10111, "protocol": "TCP"}, pm_udp])
    cluster = Cluster()
    cluster.apply([sts])
    assert [c.action for c in cluster.apply([sts])] == ["update"]
    assert container(cluster.objects[("StatefulSet", "p")])["ports"] == [pm_udp, pm_udp]
    assert cluster.apply([sts]) == []
    assert cluster.pod_template_writes() == 1


def test_cluster_string_data_secret_is_rewritten_on_every_sync():
    cluster = Cluster()
    cluster.apply([secret(stringData={"k": "v"})])
    for _ in range(3):
        assert [c.action for c in cluster.apply([secret(stringData={"k": "v"})])] == ["update"]


def test_cluster_float_where_server_stores_int_is_rewritten_on_every_sync():
    svc = service(ports=[{"name": "api", "port": 8080.0}])
    cluster = Cluster()
    cluster.apply([svc])
    assert [c.action for c in cluster.apply([svc])] == ["update"]
    assert [c.action for c in cluster.apply([svc])] == ["update"]


def test_cluster_statefulset_selector_change_raises_and_leaves_it_alone():
    cluster = Cluster()
    cluster.apply(children())
    before = copy.deepcopy(cluster.objects[("StatefulSet", "p")])
    changed = [c for c in children() if c["kind"] != "StatefulSet"]
    changed[0]["data"] = {"config.yaml": "a: 2\n"}
    changed.append(statefulset(selector={"app": "other"}))
    with pytest.raises(ImmutableFieldError, match="spec.selector"):
        cluster.apply(changed)
    assert cluster.objects[("StatefulSet", "p")] == before
    # The other child was still written, as Metacontroller keeps going after one failure.
    assert cluster.objects[("ConfigMap", "p-config")]["data"] == {"config.yaml": "a: 2\n"}
    last = cluster.writes[-1]
    assert (last.kind, last.name, last.action) == ("ConfigMap", "p-config", "update")


def test_cluster_service_name_and_claim_template_changes_are_rejected():
    cluster = Cluster()
    cluster.apply([statefulset()])
    renamed = statefulset()
    renamed["spec"]["serviceName"] = "other"
    with pytest.raises(ImmutableFieldError, match="serviceName"):
        cluster.apply([renamed])
    bigger = statefulset()
    bigger["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    with pytest.raises(ImmutableFieldError, match="volumeClaimTemplates"):
        cluster.apply([bigger])


def test_cluster_claim_templates_without_server_fields_are_rewritten_each_sync():
    # Not rejected (the server defaults them back), but never "unchanged" either: the
    # list is replaced whole and so always differs from the stored form.
    bare = bare_claims(statefulset())
    cluster = Cluster()
    cluster.apply([bare])
    for _ in range(3):
        [change] = cluster.apply([bare])
        assert change.action == "update" and not change.restarts_pod
        assert "spec.volumeClaimTemplates[0].apiVersion" in change.fields
    # The server stores the same object again: a wasted request, no new resourceVersion.
    assert cluster.objects[("StatefulSet", "p")]["metadata"]["resourceVersion"] == "1"
    assert cluster.pod_template_writes() == 0
    # Switching to the stored form costs one write (the annotation), then nothing.
    assert [c.action for c in cluster.apply([statefulset()])] == ["update"]
    assert cluster.apply([statefulset()]) == []


def test_cluster_pod_template_change_counts_as_restart():
    cluster = Cluster()
    cluster.apply(children())
    changed = children()
    container(changed[-1])["env"].append({"name": "B", "value": "2"})
    changed[2]["metadata"]["annotations"] = {"x": "y"}
    writes = cluster.apply(changed)
    assert {(w.kind, w.name, w.restarts_pod) for w in writes} == {
        ("StatefulSet", "p", True), ("Service", "p-api", False)}
    assert cluster.pod_template_writes() == 1
    meta = cluster.objects[("StatefulSet", "p")]["metadata"]
    assert (meta["resourceVersion"], meta["generation"]) == ("2", 2)


def test_cluster_metadata_only_change_does_not_bump_generation():
    cluster = Cluster()
    cluster.apply([service()])
    changed = service()
    changed["metadata"]["labels"]["extra"] = "1"
    cluster.apply([changed])
    meta = cluster.objects[("Service", "p-api")]["metadata"]
    assert (meta["resourceVersion"], meta["generation"]) == ("2", 1)


def test_cluster_deletes_children_not_listed():
    cluster = Cluster()
    cluster.apply(children())
    writes = cluster.apply([c for c in children() if c["kind"] != "Secret"])
    assert writes == [Change("Secret", "p-jwt-secret", "delete", (), False)]
    assert ("Secret", "p-jwt-secret") not in cluster.objects
    assert cluster.apply([]) and cluster.objects == {}
    assert cluster.pod_template_writes() == 0


def test_cluster_deletes_before_it_creates_or_updates():
    cluster = Cluster()
    cluster.apply([service("z")])
    assert [(w.action, w.name) for w in cluster.apply([configmap("a")])] == [
        ("delete", "z"), ("create", "a")]


def test_cluster_recreated_child_gets_a_new_uid():
    cluster = Cluster()
    cluster.apply([configmap()])
    first = cluster.objects[("ConfigMap", "p-config")]["metadata"]["uid"]
    cluster.apply([])
    cluster.apply([configmap()])
    assert cluster.objects[("ConfigMap", "p-config")]["metadata"]["uid"] != first


def test_cluster_observed_children_map():
    cluster = Cluster(namespace="ns1")
    cluster.apply([configmap(), service()])
    v1 = cluster.observed()
    assert set(v1) == {"ConfigMap.v1", "Secret.v1", "Service.v1", "StatefulSet.apps/v1"}
    assert v1["Secret.v1"] == {} and set(v1["Service.v1"]) == {"p-api"}
    assert set(cluster.observed("v2")["ConfigMap.v1"]) == {"ns1/p-config"}
    v1["Service.v1"]["p-api"]["spec"]["type"] = "mutated"
    assert cluster.objects[("Service", "p-api")]["spec"]["type"] == "ClusterIP"
    assert cluster.observed(kinds=("Service.v1",)).keys() == {"Service.v1"}


def test_cluster_statefulset_status_is_not_a_hook_write():
    cluster = Cluster()
    cluster.apply(children())
    writes = len(cluster.writes)
    cluster.set_statefulset_status("p", ready=1)
    status = cluster.objects[("StatefulSet", "p")]["status"]
    assert status == {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                      "currentReplicas": 1, "updatedReplicas": 1, "observedGeneration": 1}
    cluster.set_statefulset_status("p", ready=0)
    assert "readyReplicas" not in cluster.objects[("StatefulSet", "p")]["status"]
    assert len(cluster.writes) == writes
    # Status is the StatefulSet controller's: the next identical sync still writes nothing.
    assert cluster.apply(children()) == []


# --------------------------------------------------------------------------- properties

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from("abc"))
keys = st.sampled_from(["a", "b", "c", "name", "port", "containerPort", "mountPath"])
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)
json_objects = st.dictionaries(keys, json_values, max_size=5)


@settings(max_examples=300, deadline=None)
@given(live=json_objects, last=json_objects, desired=json_objects)
def test_property_applying_the_same_desired_again_converges(live, last, desired):
    # Metacontroller re-merges with last_applied = desired on every later sync. A re-merge
    # may still collapse duplicate list-map keys, and a value whose type changed may take two
    # (see the type-change test), but then applying the same desired changes nothing: a hook
    # with stable output cannot make Metacontroller write forever.
    snapshot = copy.deepcopy((live, last, desired))
    state = merge(live, last, desired)
    for _ in range(2):
        state = merge(state, desired, desired)
    assert merge(state, desired, desired) == state
    assert (live, last, desired) == snapshot


@settings(max_examples=300, deadline=None)
@given(live=json_objects, desired=json_objects)
def test_property_desired_scalars_always_land(live, desired):
    result = merge(live, {}, desired)
    for key, value in desired.items():
        if not isinstance(live.get(key), (dict, list)):
            assert result[key] == value


@settings(max_examples=200, deadline=None)
@given(ports=st.lists(st.fixed_dictionaries(
    {"port": st.integers(1, 65535)},
    optional={"name": st.sampled_from(["a", "b"]), "protocol": st.sampled_from(["TCP", "UDP"]),
              "targetPort": st.integers(1, 65535)}), max_size=4),
    svc_type=st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]))
def test_property_service_defaults_idempotent_and_never_overwrite(ports, svc_type):
    svc = service(ports=ports, svc_type=svc_type)
    once = server_defaults(svc)
    assert server_defaults(once) == once
    for given_port, stored in zip(ports, once["spec"]["ports"]):
        assert stored.items() >= given_port.items()


def test_plan_child_without_namespace_must_match_a_single_live_object():
    a, b = live_from(service()), live_from(service())
    b["metadata"]["namespace"] = "other"
    with pytest.raises(ValueError, match="matches 2 live objects"):
        plan([a, b], [service()])
    # With the parent's namespace given, it matches b (an update: the annotation now records
    # the namespace) and a, in another namespace, is not desired.
    assert sorted(c.action for c in plan([a, b], [service()], namespace="other")) == [
        "delete", "update"]


def test_a_default_the_server_fills_back_in_is_no_restart():
    """A pod template key the hook applied before and now leaves out is deleted by the merge,
    and the API server fills its default back in: the stored template does not change, so
    `plan` must not report a restart (it compares against what the server will store)."""
    before = statefulset()
    before["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30   # the default, written out
    live = server_defaults(before)
    live["metadata"]["annotations"] = {LAST_APPLIED: last_applied_json(before)}
    desired = statefulset()   # leaves it out (and changes replicas, which rolls nothing)
    desired["spec"]["replicas"] = 2
    (change,) = plan([live], [desired])
    assert change.action == "update"
    assert "spec.template.spec.terminationGracePeriodSeconds" in change.fields   # deleted by the merge ...
    assert change.restarts_pod is False                                          # ... and filled back in
    desired["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 5
    (change,) = plan([live], [desired])
    assert change.restarts_pod is True


@pytest.mark.parametrize("owner", [None, "u-parent", "u-other"])
@pytest.mark.parametrize("label", [None, "u-parent", "u-other"])
def test_the_request_layers_claim_rule_agrees_with_the_model_of_claimobject(owner, label):
    """`observed.not_claimable` (what the status reports) says None exactly for the objects
    `claim_verdict` (Metacontroller's ClaimObject) makes or keeps children."""
    meta: dict = {"name": "x"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "K", "name": "n", "uid": owner, "controller": True}]
    if label:
        meta["labels"] = {"controller-uid": label}
    obj = {"kind": "Service", "metadata": meta}
    verdict = claim_verdict(obj, "u-parent")
    assert (observed.not_claimable(obj, "u-parent") is None) == (verdict in ("child", "adopt"))
