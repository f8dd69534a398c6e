"""The move-over from the Go operator with files in it, on the real `dfs`: a server as the Go
operator v0.29 leaves it (its children, its Secrets with values of its own), stores, a user and
a share made the way its users make them (`dfsctl`, each store at the root of its claim) and
bytes written over NFS; then the hand-over, discovery's first poll through the hook, and DittoFS
started again from the hook's objects on the same volumes: the admin password and every byte are
still there, and the NFS portmapper answers.

Two hand-overs: `adopt`'s steps in order under dynamic apply (the convergence harness,
tests/test_convergence.py), and the controllers installed first under server-side apply, on the
real kube-apiserver, which takes the released objects over before `adopt` runs.
"""
import base64
import copy
import hashlib
import os

import pytest
import requests

from hooks.dittofs import layout
from hooks.request import controlplane, ports
from tests import clients, factory as f, harness, realdfs, servers
from tests import test_apiserver_real as real
from tests import test_convergence as convergence
from tests.harness import Loop
from tests.test_apiserver_real import crd  # noqa: F401 (a fixture the server-side world asks for)

pytestmark = pytest.mark.dittofs

SPEC = {"storage": {"metadataSize": "1Gi", "contentSize": "1Gi"}}
NFS_PORT, UID = 12049, 2001
# The Go operator's own values (the harness gives every key one marker; DittoFS needs a JWT key of
# at least 32 characters and an admin password of at least 8).
VALUES = {"jwt-secret": "a-jwt-signing-key-the-go-operator-made-0123456789",
          "username": None, "password": "operator-made-password-1"}


def operator_value(name: str, key: str) -> str:
    value = VALUES[key] or ("admin" if name.endswith(layout.ADMIN_SUFFIX) else layout.OPERATOR_USER)
    return base64.b64encode(value.encode()).decode()


def secret_data(loop: Loop) -> dict:
    return {key: dict(obj["data"]) for key, obj in loop.cluster.objects.items() if key[0] == "Secret"}


def pod_of(loop: Loop) -> realdfs.Pod:
    objects = list(loop.cluster.objects.values())
    return realdfs.pod_of({"children": objects})


def in_order_under_dynamic_apply(request, tmp_path, capsys) -> tuple[Loop, callable]:
    """The model's namespace; `adopt`'s patches applied as the API server applies them."""
    loop = Loop(SPEC, [f.entry("nfs", NFS_PORT)], groups=f.WITH_POLICIES)
    harness.go_operator_world(loop)
    for (kind, name), obj in loop.cluster.objects.items():
        if kind == "Secret":
            obj["data"] = {key: operator_value(name, key) for key in obj["data"]}

    def hand_over() -> tuple[dict, int, int]:
        template = copy.deepcopy(loop.live("StatefulSet", "demo")["spec"]["template"])
        plan = convergence.adopt_plan(loop, tmp_path, capsys)
        for entry in convergence.patches(plan):
            target = loop.parent if entry["kind"] == "DittoServer" else \
                loop.cluster.objects[(entry["kind"], entry["name"])]
            convergence.apply_patch(target, entry)
        return plan, int(loop.live("StatefulSet", "demo")["spec"]["template"] != template), 0   # adopt's patch
    return loop, hand_over


def controllers_first_under_server_side_apply(request, tmp_path, capsys) -> tuple[Loop, callable]:
    """The real kube-apiserver; two syncs before `adopt` (the pod rolls once: the takeover), whose
    patches are then sent to it."""
    api = request.getfixturevalue("apiserver")
    request.getfixturevalue("crd")
    loop = real.go_operator_on_the_server(api, ports.SERVER_SIDE, SPEC, [f.entry("nfs", NFS_PORT)], operator_value)

    def hand_over() -> tuple[dict, int, int]:
        before = secret_data(loop)
        loop.sync()
        loop.sync()   # every released object taken over by its apply patch, the pod template with it
        assert {key: data for key, data in secret_data(loop).items() if key in before} == before   # values kept
        taken_over = loop.cluster.pod_template_writes()
        assert taken_over == 1
        plan = real.adopted(loop, tmp_path, capsys)
        assert [r["when"] for r in plan["restarts"]] == \
            ["seconds after the first sync, when the hook's discovery has polled the server"]
        return plan, 0, taken_over   # adopt counts from here on
    return loop, hand_over


@pytest.mark.parametrize("world", [in_order_under_dynamic_apply,
                                   pytest.param(controllers_first_under_server_side_apply, marks=pytest.mark.apiserver)],
                         ids=["in-order-dynamic-apply", "controllers-first-server-side-apply"])
def test_a_share_made_with_dfsctl_under_the_go_operator_is_readable_after_the_hand_over(request, tmp_path, capsys,
                                                                                         world):
    loop, hand_over = world(request, tmp_path, capsys)
    before = secret_data(loop)
    with realdfs.running(pod_of(loop), tmp_path, pod_paths=True) as server:
        dfsctl = realdfs.dfsctl(tmp_path, server.url(), VALUES["password"])
        dfsctl("store", "metadata", "add", "--name", "meta", "--type", "badger", "--db-path", "/data/store/metadata")
        dfsctl("store", "block", "local", "add", "--name", "blocks", "--type", "fs", "--path", "/data/store/block")
        dfsctl("user", "create", "--username", "alice", "--password", "alice-password-1", "--uid", str(UID),
               "--gid", str(UID))
        dfsctl("share", "create", "--name", "/export", "--metadata", "meta", "--local", "blocks", "--owner", "alice")
        dfsctl("share", "permission", "grant", "/export", "--user", "alice", "--level", "read-write")
        nfs = server.forward(NFS_PORT)
        written = os.urandom(1024 * 1024 + 17)
        clients.nfs_write(nfs, "/export", "before-adopt.bin", written, uid=UID, gid=UID)

        # The Go operator v0.29 could not turn the NFS portmapper on: nothing answers on its port.
        assert not clients.portmapper_answers(server.forward(ports.PORTMAPPER_TARGET))

        # The hand-over, then the hook's first sync.
        plan, patched, before_adopt = hand_over()
        written_children = loop.sync()
        assert {c.action for c in written_children if c.name != "demo-manager-credentials"} <= {"update", "unchanged"}
        assert loop.cluster.released == [] or loop.strategy == ports.SERVER_SIDE
        assert {key: data for key, data in secret_data(loop).items() if key in before} == before   # no value changed

        # Discovery's first poll, by the hook on a real gunicorn: it turns the portmapper on, which
        # DittoFS starts only when it starts, and the config hash takes that in. Counted from
        # `adopt` on, the pod template changes as often as adopt said; twice in all.
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": server.url()}) as (hook, _):
            answer = discover(hook, loop)
        assert controlplane.read_applied(answer["annotations"]).portmapper_turned_on
        for key, value in answer["annotations"].items():
            loop.set_annotation(key, value)
        loop.on_events()
        assert patched + loop.cluster.pod_template_writes() - before_adopt == len(plan["restarts"])
        assert patched + loop.cluster.pod_template_writes() == 2   # the hand-over's restart, the portmapper's

        # The pod the hook's objects describe, from the same volumes.
        server.stop()
        server.pod = pod_of(loop)
        server.start().wait_healthy(realdfs.startup_budget(server.pod))
        server.login(layout.ADMIN_USER, VALUES["password"])
        assert hashlib.sha256(clients.nfs_read(nfs, "/export", "before-adopt.bin", uid=UID, gid=UID)).digest() == \
            hashlib.sha256(written).digest()
        assert clients.smb_list(server.forward(1445), "/export", "alice", "alice-password-1")["before-adopt.bin"] == \
            len(written)
        assert clients.portmapper_answers(server.forward(ports.PORTMAPPER_TARGET))


def discover(hook: str, loop: Loop) -> dict:
    """One `/discover` call for the loop's parent, with its Secrets and a ready StatefulSet related."""
    secrets = [obj for (kind, _), obj in loop.cluster.objects.items() if kind == "Secret"]
    request = {"controller": {}, "object": copy.deepcopy(loop.parent), "finalizing": False, "attachments": {},
               "related": f.discovery_related([*secrets, f.statefulset(namespace=loop.cluster.namespace)])}
    found = requests.post(hook + "/discover", json=request, timeout=60)
    assert found.status_code == 200, found.text
    return found.json()
