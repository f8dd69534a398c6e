"""NetworkPolicy children: baseline plus one per active adapter, only when declared."""
import pytest

from tests import factory as f, k8s_rules

NFS, SMB = f.entry("nfs", 12049), f.entry("smb", 12445)


def run(parent, observed=None, strategy="dynamic-apply"):
    return f.sync_of(f.request(parent, observed, groups=f.WITH_POLICIES), strategy)


def ingress_ports(policy: dict) -> list[dict]:
    return policy["spec"]["ingress"][0]["ports"]


def test_no_policies_unless_the_controller_declares_them():
    assert f.names_of(f.sync_of(f.request(f.parent(adapters=[NFS]))), "NetworkPolicy") == []


def test_baseline_allows_api_and_metrics():
    spec = {**f.SPEC, "metrics": {"enabled": True, "port": 9100}}
    resp = run(f.parent(spec=spec, adapters=[]))
    assert f.names_of(resp, "NetworkPolicy") == ["demo-baseline"]
    base = f.child(resp, "NetworkPolicy", "demo-baseline")
    assert ingress_ports(base) == [{"port": 8080, "protocol": "TCP"}, {"port": 9100, "protocol": "TCP"}]
    assert base["spec"]["podSelector"] == {"matchLabels": {"app": "dittofs-server", "instance": "demo"}}
    assert base["spec"]["policyTypes"] == ["Ingress"]
    # The Go operator's labels: its selector labels and the baseline marker (not the adapter one).
    assert base["metadata"]["labels"] == {"app": "dittofs-server", "instance": "demo",
                                          "app.kubernetes.io/managed-by": "dittofs-hooks",
                                          "dittofs.io/baseline-networkpolicy": "true"}


MDNS = {"port": 5353, "protocol": "UDP"}


@pytest.mark.parametrize("strategy, nfs_ports", [
    ("dynamic-apply", [{"port": 12049, "protocol": "TCP"}, {"port": 10111, "protocol": "TCP"}, MDNS]),
    ("server-side-apply", [{"port": 12049, "protocol": "TCP"}, {"port": 10111, "protocol": "TCP"},
                           {"port": 10111, "protocol": "UDP"}, {"port": 12049, "protocol": "UDP"}, MDNS]),
])
def test_one_policy_per_active_adapter(strategy, nfs_ports):
    resp = run(f.parent(adapters=[NFS, SMB]), strategy=strategy)
    assert f.names_of(resp, "NetworkPolicy") == ["demo-adapter-nfs", "demo-adapter-smb", "demo-baseline"]
    nfs = f.child(resp, "NetworkPolicy", "demo-adapter-nfs")
    assert sorted(map(str, ingress_ports(nfs))) == sorted(map(str, nfs_ports))
    # Exactly the ports clients reach SMB by: its own, mDNS, WS-Discovery.
    assert sorted(map(str, ingress_ports(f.child(resp, "NetworkPolicy", "demo-adapter-smb")))) == sorted(map(str, [
        {"port": 12445, "protocol": "TCP"}, MDNS, {"port": 3702, "protocol": "UDP"}, {"port": 5357, "protocol": "TCP"}]))
    assert nfs["metadata"]["labels"]["dittofs.io/adapter-networkpolicy"] == "true"
    assert nfs["metadata"]["labels"]["dittofs.io/adapter-type"] == "nfs"
    assert k8s_rules.all_problems(resp, strategy) == []


def test_unknown_state_keeps_observed_adapter_policies():
    known = run(f.parent(adapters=[NFS, SMB]))
    unknown = run(f.parent(adapters="{broken"), observed=known["children"])
    assert f.names_of(unknown, "NetworkPolicy") == f.names_of(known, "NetworkPolicy")
    assert f.child(unknown, "NetworkPolicy", "demo-adapter-smb") == f.child(known, "NetworkPolicy", "demo-adapter-smb")


def test_stopped_adapter_policy_is_removed():
    known = run(f.parent(adapters=[NFS, SMB]))
    later = run(f.parent(adapters=[NFS]), observed=known["children"])
    assert f.names_of(later, "NetworkPolicy") == ["demo-adapter-nfs", "demo-baseline"]
