"""The data path on the real `dfs` (tests/realdfs.py), proven with bytes from real clients
(tests/clients.py): stores, a share, a user and its permission made through DittoFS's API as
admin, on the volumes the hook's StatefulSet mounts; then what a pod's life does to them (a
SIGKILL and a start from the same volumes, a password reset) and what the clients read back.
With a remote `s3` block store on a real S3 server (tests/s3.py): what reaches the bucket, and
what a read finds when the local copy is gone.

The API gets the pod's paths (`/data/store/...`), as the hook sends them: the server runs with
the pod's filesystem view (`realdfs.pod_filesystem`), and the test inspects the same volumes
through `Server.volume`.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass

import pytest
import requests

from hooks.dittofs import layout
from tests import apiserver as kube, clients, factory, realdfs
from tests import s3 as seaweedfs

pytestmark = pytest.mark.dittofs

# Claims for metadata and content, as a user who declares durable stores would ask for them.
SPEC = {"storage": {"metadataSize": "1Gi", "contentSize": "1Gi"}}
NFS_PORT, SMB_PORT = 12049, 1445      # the adapters a fresh DittoFS makes (DITTOFS_FACTS.md)
SHARE = "/export"
USER, UID, GID = "alice", 2001, 2001
PASSWORD = "alice-password-1"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Admin:
    """DittoFS's control-plane API as admin, through the server's api port."""

    def __init__(self, server: realdfs.Server, password: str) -> None:
        self.server, self.password = server, password
        self.headers: dict = {}

    def call(self, method: str, path: str, body: dict | None = None, expect: int | tuple = (200, 201, 204)):
        if not self.headers:   # a token signed with the pod's JWT secret outlives a restart
            token = self.server.login(layout.ADMIN_USER, self.password)["access_token"]
            self.headers = {"Authorization": f"Bearer {token}"}
        response = requests.request(method, self.server.url() + path, json=body, headers=self.headers, timeout=30)
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content and "json" in response.headers.get("Content-Type", "") else None


@dataclass
class Data:
    server: realdfs.Server
    admin: Admin

    @property
    def nfs(self) -> int:
        return self.server.forward(NFS_PORT)

    @property
    def smb(self) -> int:
        return self.server.forward(SMB_PORT)

    def restart(self, kill: bool) -> int:
        """Stop (SIGKILL when `kill`) and start again from the same volumes; the new PID."""
        if kill:
            self.server.kill()       # reaped: the old process is gone before the new one starts
        else:
            self.server.stop()
        self.server.start().wait_healthy(realdfs.startup_budget(self.server.pod))
        return self.server.proc.pid


def pod_and_password(spec: dict) -> tuple[realdfs.Pod, str]:
    response = factory.sync_of(factory.request(factory.parent(spec=spec)))
    bootstrap = factory.child(response, "Secret", f"demo-{layout.ADMIN_SUFFIX}")
    return realdfs.pod_of(response), base64.b64decode(bootstrap["data"]["password"]).decode()


def provision(data: Data, remote: dict | None = None) -> None:
    """A badger metadata store on the metadata claim, an `fs` local block store on the content
    claim, optionally a remote block store, the share, the user and its read-write grant: the
    `dfsctl` getting-started steps, as API calls."""
    admin = data.admin
    # The pod's paths, as the hook sends them: the server sees its volumes there (`pod_paths`).
    meta = f"{layout.MOUNTS['metadata']}/meta"
    local = f"{layout.MOUNTS['content']}/local"
    admin.call("POST", "/api/v1/store/metadata", {"name": "meta", "type": "badger",
                                                  "config": json.dumps({"path": meta})}, 201)
    admin.call("POST", "/api/v1/store/block/local", {"name": "local", "type": "fs",
                                                     "config": json.dumps({"path": local})}, 201)
    share = {"name": SHARE, "metadata_store_id": "meta", "local_block_store": "local",
             "default_permission": "none"}
    if remote is not None:
        admin.call("POST", "/api/v1/store/block/remote", remote, 201)
        share["remote_block_store"] = remote["name"]
    admin.call("POST", "/api/v1/users", {"username": USER, "password": PASSWORD, "uid": UID, "gid": GID}, 201)
    share["owner"] = USER     # the share's root belongs to the user: its POSIX modes let it write
    admin.call("POST", "/api/v1/shares", share, 201)
    admin.call("PUT", f"/api/v1/shares/{SHARE.strip('/')}/permissions/users/{USER}", {"level": "read-write"}, 204)


@contextlib.contextmanager
def running(tmp_path, remote: dict | None = None, namespace: realdfs.Namespace | None = None):
    """The real dfs of a spec with metadata and content claims, provisioned (see `provision`)."""
    pod, password = pod_and_password(SPEC)
    assert set(layout.MOUNTS.values()) <= set(pod.mounts), pod.mounts   # the content claim is mounted
    with realdfs.running(pod, tmp_path, namespace=namespace, pod_paths=True) as server:
        found = Data(server, Admin(server, password))
        provision(found, remote)
        yield found


@pytest.fixture
def data(tmp_path):
    with running(tmp_path) as found:
        yield found


def test_nfs_bytes_survive_a_sigkill_and_a_start_from_the_same_volumes(data):
    written = os.urandom(3 * 1024 * 1024 + 12345)      # several chunks, not a whole number of blocks
    clients.nfs_write(data.nfs, SHARE, "crash.bin", written, uid=UID, gid=GID)
    assert sha(clients.nfs_read(data.nfs, SHARE, "crash.bin", uid=UID, gid=GID)) == sha(written)
    listed = clients.nfs_list(data.nfs, SHARE, uid=UID, gid=GID)["crash.bin"]
    assert (listed["uid"], listed["gid"], listed["size"]) == (UID, GID, len(written))

    old = data.server.proc.pid
    assert data.restart(kill=True) != old
    # After the crash, every byte from a fresh client, and the files are on the claims.
    assert sha(clients.nfs_read(data.nfs, SHARE, "crash.bin", uid=UID, gid=GID)) == sha(written)
    assert clients.nfs_list(data.nfs, SHARE, uid=UID, gid=GID)["crash.bin"]["size"] == len(written)
    for claim in ("metadata", "content"):
        volume = data.server.volume(layout.MOUNTS[claim])
        assert sum(f.stat().st_size for f in volume.rglob("*") if f.is_file()) > 0, claim
    content = data.server.volume(layout.MOUNTS["content"])
    assert sum(f.stat().st_size for f in content.rglob("*") if f.is_file()) >= len(written)


def test_a_file_put_over_smb_reads_back_over_smb_and_nfs_after_a_restart(data):
    written = os.urandom(700 * 1024)
    clients.smb_put(data.smb, SHARE, USER, PASSWORD, "from-smb.bin", written)
    assert clients.smb_list(data.smb, SHARE, USER, PASSWORD)["from-smb.bin"] == len(written)
    assert sha(clients.smb_get(data.smb, SHARE, USER, PASSWORD, "from-smb.bin")) == sha(written)
    data.restart(kill=True)
    assert sha(clients.smb_get(data.smb, SHARE, USER, PASSWORD, "from-smb.bin")) == sha(written)
    # The same file over NFS, as the user's uid (POSIX modes apply across protocols).
    assert sha(clients.nfs_read(data.nfs, SHARE, "from-smb.bin", uid=UID, gid=GID)) == sha(written)


def test_a_reset_password_refuses_the_old_one_over_smb_at_once_without_a_restart(data):
    clients.smb_put(data.smb, SHARE, USER, PASSWORD, "kept.bin", b"kept across the reset")
    pid = data.server.proc.pid
    data.admin.call("POST", f"/api/v1/users/{USER}/password", {"new_password": "alice-password-2"}, (200, 204))

    with pytest.raises(clients.ClientError) as refused:
        clients.smb_logon(data.smb, SHARE, USER, PASSWORD)
    assert refused.value.denied, refused.value
    assert clients.smb_get(data.smb, SHARE, USER, "alice-password-2", "kept.bin") == b"kept across the reset"
    assert data.server.proc.pid == pid and data.server.proc.poll() is None
    # The control plane agrees: the old password no longer logs in, the new one does.
    old_login = requests.post(data.server.url() + "/api/v1/auth/login", timeout=10,
                              json={"username": USER, "password": PASSWORD})
    assert old_login.status_code == 401
    data.server.login(USER, "alice-password-2")


def test_refusals_are_told_apart_from_other_failures(data):
    with pytest.raises(clients.ClientError) as unknown_share:
        clients.smb_logon(data.smb, "/nothere", USER, PASSWORD)
    assert "NT_STATUS_BAD_NETWORK_NAME" in unknown_share.value.output and not unknown_share.value.denied
    with pytest.raises(clients.ClientError) as missing:
        clients.nfs_read(data.nfs, SHARE, "missing.bin", uid=UID, gid=GID)
    assert "NFS3ERR_NOENT" in missing.value.output and not missing.value.denied
    # A uid DittoFS does not know gets the share's default permission, `none`: refused even a
    # file whose POSIX mode lets everyone read it (smbclient makes files 0644).
    clients.smb_put(data.smb, SHARE, USER, PASSWORD, "public.txt", b"0644")
    assert clients.nfs_list(data.nfs, SHARE, uid=UID, gid=GID)["public.txt"]["mode"] == "-rw-r--r--"
    with pytest.raises(clients.ClientError) as stranger:
        clients.nfs_read(data.nfs, SHARE, "public.txt", uid=4242, gid=4242)
    assert stranger.value.denied, stranger.value


def test_share_names_map_to_nfs_export_paths_and_lower_case_smb_names(data):
    # `/export`: NFS mounts `/export`; SMB connects as `export`, in any case.
    clients.nfs_write(data.nfs, SHARE, "named.txt", b"by name", uid=UID, gid=GID)
    for smb_name in ("export", "EXPORT", "Export"):
        assert clients.smb_get(data.smb, smb_name, USER, PASSWORD, "named.txt") == b"by name"
    # A share whose name has capitals: NFS mounts it as written, SMB never finds it (DittoFS
    # lower-cases the name a client asks for and looks it up as it is).
    data.admin.call("POST", "/api/v1/shares", {"name": "/Mixed", "metadata_store_id": "meta",
                                               "local_block_store": "local", "owner": USER}, 201)
    data.admin.call("PUT", f"/api/v1/shares/Mixed/permissions/users/{USER}", {"level": "read-write"}, 204)
    clients.nfs_write(data.nfs, "/Mixed", "m.txt", b"mixed", uid=UID, gid=GID)
    assert clients.nfs_read(data.nfs, "/Mixed", "m.txt", uid=UID, gid=GID) == b"mixed"
    with pytest.raises(clients.ClientError) as unreachable:
        clients.smb_logon(data.smb, "Mixed", USER, PASSWORD)
    assert "NT_STATUS_BAD_NETWORK_NAME" in unreachable.value.output


def _disk(folder) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@contextlib.contextmanager
def remote_backed(tmp_path, s3: seaweedfs.S3):
    """The provisioned dfs whose share also has a remote `s3` block store: a new bucket on the
    session's SeaweedFS, reached from the pod's network as a Service would be (the forward
    records what DittoFS asks of it)."""
    bucket = s3.bucket("dittofs-" + os.urandom(4).hex())
    namespace = realdfs.Namespace()
    s3_in_pod = realdfs.PortForward.out_of(namespace, s3.port)
    remote = {"name": "remote", "type": "s3", "config": json.dumps({
        "endpoint": f"http://127.0.0.1:{s3_in_pod.port}", "bucket": bucket.name, "region": seaweedfs.REGION,
        "prefix": "demo/", "access_key_id": s3.access_key, "secret_access_key": s3.secret_key,
        # DittoFS refuses loopback and private endpoints unless told (an SSRF guard).
        "allow_private_endpoint": True})}
    try:
        with running(tmp_path, remote=remote, namespace=namespace) as data:
            yield data, bucket, s3_in_pod
    finally:
        s3_in_pod.close()


def _uploaded(data: Data, bucket: seaweedfs.Bucket, name: str, size: int) -> tuple[bytes, dict[str, int]]:
    """Write `size` random bytes over NFS; wait until the bucket holds at least that much more
    (DittoFS uploads a block once it is idle, about 10 s); the bytes and the bucket's objects."""
    before = sum(bucket.objects().values())
    written = os.urandom(size)
    clients.nfs_write(data.nfs, SHARE, name, written, uid=UID, gid=GID)
    objects = kube.poll(lambda: (found := bucket.objects()) and sum(found.values()) >= before + size and found,
                        f"{size} bytes reaching bucket {bucket.name}", 300)
    return written, objects


def _evict(data: Data) -> dict:
    """DittoFS drops its local copy of what the remote holds (the supported way to empty it)."""
    return data.admin.call("POST", f"/api/v1/shares/{SHARE.strip('/')}/blockstore/evict", {}, 200)


@pytest.mark.timeout(600)
def test_a_remote_s3_store_gets_the_bytes_and_serves_them_once_the_local_store_is_emptied(tmp_path, s3):
    with remote_backed(tmp_path, s3) as (data, bucket, s3_in_pod):
        stored = data.admin.call("GET", "/api/v1/store/block/remote/remote")
        assert stored["config"]["secret_access_key"] == "********"
        assert stored["status"]["status"] == "healthy", stored["status"]

        written, objects = _uploaded(data, bucket, "remote.bin", 2 * 1024 * 1024 + 4321)
        assert all(key.startswith("demo/") for key in objects), sorted(objects)   # under the prefix
        local = data.server.volume(layout.MOUNTS["content"]) / "local"
        assert _disk(local) >= len(written)
        assert _evict(data)["bytes_freed"] >= len(written)
        assert _disk(local) < len(written) // 100
        s3_in_pod.forget()
        assert sha(clients.nfs_read(data.nfs, SHARE, "remote.bin", uid=UID, gid=GID)) == sha(written)
        # Served from the bucket: DittoFS fetched the objects and holds a local copy again.
        fetched = {path.split("?")[0] for method, path, _ in s3_in_pod.requests() if method == "GET"}
        assert {f"/{bucket.name}/{key}" for key in objects} <= fetched, (sorted(fetched), sorted(objects))
        assert _disk(local) >= len(written)


@pytest.mark.timeout(600)
def test_a_restart_without_the_local_copy_reads_zeros_on_this_dittofs(tmp_path, s3):
    """DittoFS v0.29.0 forgets at a restart which ranges only the remote holds, and reads them
    as zeros without an error (upstream #1850, fixed after v0.29.0 by #1851's `cold.log`): after
    an eviction, and after the local directory is lost (an emptyDir, a claim not kept; the cold
    log would go with it). So the local `fs` store of a remote-backed share belongs on a claim
    that outlives the pod, and nothing here may evict. When the pinned DittoFS re-fetches
    instead, this test fails: then revisit both rules."""
    with remote_backed(tmp_path, s3) as (data, bucket, _):
        evicted, _ = _uploaded(data, bucket, "evicted.bin", 1024 * 1024 + 17)
        _evict(data)
        data.server.stop()
        data.server.start().wait_healthy(realdfs.startup_budget(data.server.pod))
        assert clients.nfs_read(data.nfs, SHARE, "evicted.bin", uid=UID, gid=GID) == bytes(len(evicted))

        lost, _ = _uploaded(data, bucket, "lost.bin", 1024 * 1024 + 29)
        data.server.stop()
        local = data.server.volume(layout.MOUNTS["content"]) / "local"
        for child in local.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        data.server.start().wait_healthy(realdfs.startup_budget(data.server.pod))
        assert sum(bucket.objects().values()) >= len(evicted) + len(lost)   # the bytes are in the bucket
        assert clients.nfs_read(data.nfs, SHARE, "lost.bin", uid=UID, gid=GID) == bytes(len(lost))
