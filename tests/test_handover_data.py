"""The move-over from the Go operator with files in it, on the real `dfs`: a server as the Go
operator v0.29 leaves it (its children, its Secrets with values of its own), stores, a user and
a share made the way its users make them (`dfsctl`, each store at the root of its claim) and
bytes written over NFS; then `adopt`'s patches and the hook's first sync (the convergence
harness, tests/test_convergence.py), and DittoFS started again from the hook's objects on the
same volumes: the admin password and every byte are still there.
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
from tests import test_convergence as convergence
from tests.harness import Loop

pytestmark = pytest.mark.dittofs

SPEC = {"storage": {"metadataSize": "1Gi", "contentSize": "1Gi"}}
NFS_PORT, UID = 12049, 2001
# The Go operator's own values (the harness gives every key one marker; DittoFS needs a JWT key of
# at least 32 characters and an admin password of at least 8).
VALUES = {"jwt-secret": "a-jwt-signing-key-the-go-operator-made-0123456789",
          "username": None, "password": "operator-made-password-1"}


def operator_values(loop: Loop) -> None:
    for (kind, name), obj in loop.cluster.objects.items():
        if kind != "Secret":
            continue
        for key in obj["data"]:
            value = VALUES[key] or ("admin" if name.endswith(layout.ADMIN_SUFFIX) else layout.OPERATOR_USER)
            obj["data"][key] = base64.b64encode(value.encode()).decode()


def pod_of(loop: Loop) -> realdfs.Pod:
    objects = list(loop.cluster.objects.values())
    return realdfs.pod_of({"children": objects})


def test_a_share_made_with_dfsctl_under_the_go_operator_is_readable_after_adopt(tmp_path, capsys):
    loop = Loop(SPEC, [f.entry("nfs", NFS_PORT)], groups=f.WITH_POLICIES)
    harness.go_operator_world(loop)
    operator_values(loop)
    before = {key: dict(obj["data"]) for key, obj in loop.cluster.objects.items() if key[0] == "Secret"}
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

        # The move-over, as `adopt` prints it, then the hook's first sync.
        template = copy.deepcopy(loop.live("StatefulSet", "demo")["spec"]["template"])
        plan = convergence.adopt_plan(loop, tmp_path, capsys)
        for entry in convergence.patches(plan):
            target = loop.parent if entry["kind"] == "DittoServer" else \
                loop.cluster.objects[(entry["kind"], entry["name"])]
            convergence.apply_patch(target, entry)
        rolls = int(loop.live("StatefulSet", "demo")["spec"]["template"] != template)   # adopt's patch
        written_children = loop.sync()
        assert {c.action for c in written_children if c.name != "demo-manager-credentials"} <= {"update", "unchanged"}
        assert loop.cluster.released == []
        assert {key: dict(obj["data"]) for key, obj in loop.cluster.objects.items() if key[0] == "Secret"
                and key in before} == before   # no Secret value changed

        # Discovery's first poll, by the hook on a real gunicorn: it turns the portmapper on, which
        # DittoFS starts only when it starts, and the config hash takes that in. Counted with
        # adopt's patch and the first sync, the pod template changes as often as adopt said.
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": server.url()}) as (hook, _):
            answer = discover(hook, loop)
        assert controlplane.read_applied(answer["annotations"]).portmapper_turned_on
        for key, value in answer["annotations"].items():
            loop.set_annotation(key, value)
        loop.on_events()
        rolls += loop.cluster.pod_template_writes()
        assert rolls == len(plan["restarts"]) == 2

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
               "related": f.discovery_related([*secrets, f.statefulset()])}
    found = requests.post(hook + "/discover", json=request, timeout=60)
    assert found.status_code == 200, found.text
    return found.json()
