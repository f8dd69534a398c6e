"""End to end, without a cluster: a DittoFS API stand-in (a real local HTTP server) answers
discovery, the annotation it yields goes onto the parent, and the sync loop (through the
dynamic-apply model) converges on the ports of the adapters that DittoFS reports.
"""
import base64
import json

import pytest
from werkzeug import Response

from hooks.dittofs import client as api
from hooks.dittofs import discovery
from hooks.web import app, settings
from tests import factory as f
from tests.harness import Loop

SPEC = {"storage": {"metadataSize": "10Gi"}, "adapterDiscovery": {"credentialsSecretRef": {"name": "dfs-admin"}}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class DittoFS:
    """The control-plane API: login, and an adapter list the test changes."""

    def __init__(self, httpserver):
        self.server = httpserver
        self.adapters: list[dict] = []
        self.failing = False
        httpserver.expect_request(api.LOGIN_PATH, method="POST").respond_with_json(
            {"access_token": "tok", "expires_in": 900, "token_type": "Bearer"})
        httpserver.expect_request(api.ADAPTERS_PATH, method="GET").respond_with_handler(self.list_adapters)
        httpserver.expect_request(api.NFS_SETTINGS_PATH).respond_with_json({"portmapper_enabled": True})

    def list_adapters(self, request):
        if self.failing:
            return Response('{"code": "INTERNAL"}', status=500, content_type="application/json")
        return Response(json.dumps(self.adapters), content_type="application/json")


@pytest.fixture
def hook():
    found = discovery.Discovery(api.Client(connect_timeout=0.5, read_timeout=1.0, budget=2.0))
    return app.create_app(settings.Settings(), discovery_client=found).test_client()


def poll(hook, loop: Loop, creds: dict) -> dict:
    """One DecoratorController call, with the loop's StatefulSet as Metacontroller relates it;
    its annotations are merged into the parent."""
    sts = loop.live("StatefulSet", "demo")
    req = {"controller": {}, "object": loop.parent, "attachments": {}, "finalizing": False,
           "related": f.discovery_related([creds, *([sts] if sts else [])])}
    answer = hook.post("/discover", json=req)
    assert answer.status_code == 200 and "status" not in answer.json
    f.merge_annotations(loop.parent, answer.json.get("annotations"))
    return answer.json


def test_discovery_then_sync_converges_on_the_reported_ports(httpserver, hook):
    api = DittoFS(httpserver)
    creds = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dfs-admin", "namespace": "storage"},
             "data": {"username": b64("admin"), "password": b64("pw"), "server-url": b64(httpserver.url_for("/"))}}
    loop = Loop(SPEC, adapters=None)
    loop.settle()
    assert {p[0] for p in loop.live_port_set()} == {"api"}           # nothing known yet

    api.adapters = [f.entry("smb", 12445, id=7), f.entry("nfs", 12049, id=3, created_at="2026-11-26T00:00:00Z")]
    # No replica is ready yet: DittoFS is not asked, the condition says why.
    waited = poll(hook, loop, creds)
    assert httpserver.log == [] and waited["resyncAfterSeconds"] >= 300
    loop.settle()
    condition = next(c for c in loop.parent["status"]["conditions"] if c["type"] == "Authenticated")
    assert (condition["status"], condition["reason"]) == ("Unknown", "ServerNotReady")

    loop.mark_ready()   # Metacontroller calls the decorator again: the StatefulSet is related
    poll(hook, loop, creds)
    loop.settle()
    assert loop.live_port_set() == {("api", 8080, "TCP"), ("adapter-nfs", 12049, "TCP"), ("adapter-mdns", 5353, "UDP"),
                                    ("adapter-nfs-pm", 10111, "TCP"), ("adapter-smb", 12445, "TCP"),
                                    ("adapter-wsd", 3702, "UDP"), ("adapter-wsdmeta", 5357, "TCP")}
    assert loop.live_names("Service") == ["demo-adapter-nfs", "demo-adapter-smb", "demo-api", "demo-headless"]

    # Polling an unchanged DittoFS (reordered, new ids) changes nothing: no annotation change, no write.
    writes = len(loop.cluster.writes)
    annotation = loop.parent["metadata"]["annotations"]["dittofs.io/adapters"]
    api.adapters = [f.entry("nfs", 12049, id=99), f.entry("smb", 12445, id=98)]
    poll(hook, loop, creds)
    assert loop.parent["metadata"]["annotations"]["dittofs.io/adapters"] == annotation
    loop.settle()
    assert len(loop.cluster.writes) == writes

    # SMB stops: one pod-template write removes its port, and its Service goes.
    before = loop.cluster.pod_template_writes()
    api.adapters = [f.entry("nfs", 12049), f.entry("smb", 12445, running=False)]
    poll(hook, loop, creds)
    loop.settle()
    assert loop.cluster.pod_template_writes() - before == 1
    assert ("adapter-smb", 12445, "TCP") not in loop.live_port_set()
    assert "demo-adapter-smb" not in loop.live_names("Service")

    # DittoFS fails: the annotation is kept, so nothing is deleted or written.
    api.failing = True
    writes = len(loop.cluster.writes)
    poll(hook, loop, creds)
    loop.settle()
    assert len(loop.cluster.writes) == writes
    assert "demo-adapter-nfs" in loop.live_names("Service")
