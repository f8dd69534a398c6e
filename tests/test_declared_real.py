"""Shares, users and groups declared in Kubernetes, against the real `dfs` and the hook on a real
gunicorn (tests/worlds.py): the DittoServer's stores made by `/discover`, a DittoGroup, a
DittoUser and a DittoShare kept in step by their hooks, and real clients (tests/clients.py)
proving the data path: bytes written over NFS and SMB read back after a SIGKILL, a rotated
password refused and replaced with no restart, drift put back, and each deletion policy.
"""
import base64
import contextlib
import copy
import hashlib
import json
import os
from pathlib import Path

import pytest
import requests
import yaml

from hooks.dittofs import layout
from hooks.request import controlplane
from tests import apiserver as kube, clients, factory, realdfs
from tests.worlds import b64, declared, secret, world

pytestmark = pytest.mark.dittofs

NFS_PORT, SMB_PORT = 12049, 1445      # the adapters a fresh DittoFS makes
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shares-and-users.yaml"
UID = GID = 2001
PASSWORD, ROTATED = "alice-password-1", "alice-password-2"


def example() -> dict[str, dict]:
    """The docs' worked example, by kind, in the test's namespace; a Secret's stringData as the
    API server stores it (data)."""
    found = {}
    for doc in yaml.safe_load_all(EXAMPLE.read_text()):
        doc["metadata"]["namespace"] = "storage"
        if "stringData" in doc:
            doc["data"] = {k: b64(v) for k, v in doc.pop("stringData").items()}
            doc["metadata"]["resourceVersion"] = "1"
        else:
            doc["metadata"].update(generation=1, uid=f"u-{doc['metadata']['name']}")
        found[doc["kind"]] = doc
    return found


SPEC = example()["DittoServer"]["spec"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def condition(obj: dict, kind: str) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def api_get(w, path: str) -> requests.Response:
    return requests.get(w.server.url() + path, headers=w.admin(), timeout=10)


@contextlib.contextmanager
def applied_example(tmp_path):
    """The worked example applied and kept in step once: (the world, its objects by kind)."""
    docs = example()
    with world(tmp_path, SPEC, secrets=[docs["Secret"]]) as w:
        w.declared = [docs[kind] for kind in ("DittoGroup", "DittoUser", "DittoShare")]
        w.discover()
        for obj in w.declared:
            w.keep(obj)
        yield w, docs


def test_the_worked_example_gives_a_share_real_clients_write_to_and_read_back(tmp_path):
    docs = example()
    password, group, user, share = (docs[kind] for kind in ("Secret", "DittoGroup", "DittoUser", "DittoShare"))
    assert base64.b64decode(password["data"]["password"]).decode() == PASSWORD
    with world(tmp_path, SPEC, secrets=[password]) as w:
        assert w.parent["metadata"]["name"] == docs["DittoServer"]["metadata"]["name"]
        w.declared = [group, user, share]
        waiting = factory.condition(w.sync(), "StoresReady")
        assert (waiting["status"], waiting["reason"]) == ("Unknown", "Applying")
        found = w.discover()
        synced = w.sync()
        made = factory.condition(synced, "StoresReady")
        assert (made["status"], made["message"]) == ("True", "every store is made: metadata/meta, local/blocks")
        # Nothing in DittoFS yet that the example does not declare (its own accounts aside).
        assert synced["status"]["undeclared"] == {"shares": 0, "users": 0, "groups": 0}
        applied = controlplane.read_applied(found["annotations"])
        assert dict(applied.stores).keys() == {"metadata/meta", "local/blocks"} and applied.manager
        assert w.state().reason == controlplane.AUTHENTICATED
        # The stores are on the claims, under the paths the hook derived.
        assert (w.server.volume(layout.MOUNTS["metadata"]) / "meta").is_dir()
        assert (w.server.volume(layout.MOUNTS["content"]) / "blocks").is_dir()

        for obj in (group, user, share):
            w.keep(obj)
            assert condition(obj, "Synced")["status"] == "True", obj["status"]
            assert condition(obj, "Ready")["status"] == "True", obj["status"]
        assert condition(share, "Synced")["message"] == ("created share /export; granted read to group editors; "
                                                         "granted read-write to user alice")
        assert share["status"]["shareName"] == "/export" and share["status"]["server"] == "demo"
        assert api_get(w, "/api/v1/users/alice").json()["groups"] == ["editors"]

        written = os.urandom(2 * 1024 * 1024 + 777)
        nfs, smb = w.server.forward(NFS_PORT), w.server.forward(SMB_PORT)
        clients.nfs_write(nfs, "/export", "nfs.bin", written, uid=UID, gid=GID)
        over_smb = os.urandom(300 * 1024)
        clients.smb_put(smb, "/export", "alice", PASSWORD, "smb.bin", over_smb)

        # A steady state: one read per object (a share's permissions too), no write, no login,
        # and a status that no longer changes (so Metacontroller writes nothing).
        w.keep(share)
        assert condition(share, "Synced")["message"] == "DittoFS holds /export as declared"
        w.api.forget()
        before = copy.deepcopy(share["status"])
        for obj in (group, user, share):
            w.keep(obj)
        assert share["status"] == before
        assert w.api.requests() == [("GET", "/api/v1/groups/editors", None), ("GET", "/api/v1/users/alice", None),
                                    ("GET", "/api/v1/shares/%2Fexport", None),
                                    ("GET", "/api/v1/shares/%2Fexport/permissions", None)]

        # Drift is put back, and the status says what was changed.
        changed = requests.put(w.server.url() + "/api/v1/shares/export", headers=w.admin(), timeout=10,
                               json={"read_only": True, "default_permission": "read"})
        assert changed.status_code == 200, changed.text
        w.keep(share)
        assert condition(share, "Synced")["message"] == "share /export: set default_permission, read_only"
        held = api_get(w, "/api/v1/shares/export").json()
        assert (held["read_only"], held["default_permission"]) == (False, "none")

        # A pod crash: SIGKILL, then a start from the same volumes. Every byte is back.
        w.server.kill()
        w.server.start().wait_healthy(realdfs.startup_budget(w.server.pod))
        assert sha(clients.nfs_read(nfs, "/export", "nfs.bin", uid=UID, gid=GID)) == sha(written)
        assert sha(clients.smb_get(smb, "/export", "alice", PASSWORD, "smb.bin")) == sha(over_smb)

        # The password Secret rotated: DittoFS gets it through the API, with no restart.
        pid = w.server.proc.pid
        rotated = secret("alice-password", version="2", **{"password": ROTATED})
        w.related = [rotated if s is password else s for s in w.related]
        w.keep(user)
        assert "set the password of alice" in condition(user, "Synced")["message"]
        with pytest.raises(clients.ClientError) as refused:
            clients.smb_logon(smb, "/export", "alice", PASSWORD)
        assert refused.value.denied
        assert sha(clients.smb_get(smb, "/export", "alice", ROTATED, "smb.bin")) == sha(over_smb)
        assert w.server.proc.pid == pid
        w.keep(user)
        assert condition(user, "Synced")["message"] == "DittoFS holds alice as declared"   # once, not every poll

        # Deleting with Retain (the default) leaves the share and its bytes.
        share["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
        assert w.keep(share, finalizing=True)["finalized"] is True
        assert api_get(w, "/api/v1/shares/export").status_code == 200
        assert sha(clients.nfs_read(nfs, "/export", "nfs.bin", uid=UID, gid=GID)) == sha(written)
        # With Delete, the share goes (its data stays in the stores, as DittoFS does).
        share["spec"]["deletionPolicy"] = "Delete"
        assert w.keep(share, finalizing=True)["finalized"] is True
        assert api_get(w, "/api/v1/shares/export").status_code == 404


def test_a_generated_password_is_made_once_and_logs_in(tmp_path):
    with world(tmp_path, SPEC) as w:
        user = declared("DittoUser", "bob", {"server": "demo", "uid": 2002, "gid": 2002})
        w.declared = [user]
        w.discover()
        first = w.keep(user)
        (made,) = first["attachments"]
        assert made["metadata"]["name"] == "bob-password"
        assert condition(user, "Synced")["reason"] == "PasswordMissing"   # DittoFS gets it once it is stored
        assert api_get(w, "/api/v1/users/bob").status_code == 404
        second = w.keep(user)
        assert second["attachments"][0]["data"] == made["data"]            # kept, never made again
        assert condition(user, "Synced")["status"] == "True", user["status"]
        password = base64.b64decode(made["data"]["password"]).decode()
        assert len(password) == 32
        w.server.login("bob", password)
        # A server with no share yet: DittoFS lists its shares as null, which counts as none.
        w.discover()
        assert w.sync()["status"]["undeclared"] == {"shares": 0, "users": 0, "groups": 0}


def test_what_cannot_be_done_is_a_reason_and_asks_nothing_of_dittofs(tmp_path):
    with world(tmp_path, SPEC) as w:
        w.declared = [declared("DittoGroup", "staff", {"server": "demo"})]
        w.discover()
        w.api.forget()
        lost = declared("DittoShare", "lost", {"server": "elsewhere", "metadataStore": "meta", "localStore": "blocks"})
        w.keep(lost)
        assert condition(lost, "Ready")["reason"] == "ServerNotFound"
        undeclared = declared("DittoShare", "odd", {"server": "demo", "metadataStore": "meta", "localStore": "nope"})
        w.keep(undeclared)
        synced = condition(undeclared, "Synced")
        assert (synced["status"], synced["reason"]) == ("False", "StoreNotDeclared")
        assert "local store nope is not declared in DittoServer demo spec.stores.local" == synced["message"]
        assert w.api.requests() == []
        # A permission for a user DittoFS does not have: DittoFS's word, and the share is made.
        grant = declared("DittoShare", "grant", {"server": "demo", "metadataStore": "meta", "localStore": "blocks",
                                                 "permissions": [{"user": "nobody", "level": "read"}]})
        w.keep(grant)
        synced = condition(grant, "Synced")
        assert (synced["status"], synced["reason"]) == ("False", "UnknownReference")
        assert "User not found" in synced["message"] and "DittoUser" in synced["message"]
        # Deleting it with the server unreachable never says it is done.
        grant["spec"]["deletionPolicy"] = "Delete"
        grant["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
        w.server.stop()
        answer = w.keep(grant, finalizing=True)
        assert answer["finalized"] is False
        assert condition(grant, "Synced")["reason"] == controlplane.UNREACHABLE
        # With no ready replica nothing is asked of DittoFS at all; the deletion still waits.
        w.ready = 0
        w.api.forget()
        answer = w.keep(grant, finalizing=True)
        assert answer["finalized"] is False and answer["resyncAfterSeconds"] == 600.0
        assert condition(grant, "Synced")["reason"] == controlplane.NOT_READY
        assert w.api.requests() == []


def test_objects_made_by_hand_are_adopted_and_their_bytes_survive_a_rolled_pod(tmp_path):
    """As a Go operator user leaves a server (stores, a user and a share made with dfsctl on the
    operator's volume layout, files written), then the worked example applied to it: nothing is
    made twice, the declared password wins, and a spec change that rolls the pod loses nothing."""
    docs = example()
    password, user, share = (docs[kind] for kind in ("Secret", "DittoUser", "DittoShare"))
    user["spec"]["groups"] = []
    share["spec"]["permissions"] = [{"user": "alice", "level": "read-write"}]
    with world(tmp_path, SPEC, secrets=[password]) as w:
        # DittoFS's getting-started steps with its own CLI, on the operator's volume layout (each
        # store at the root of its claim).
        dfsctl = realdfs.dfsctl(tmp_path, w.server.url(), w.bootstrap_password())
        dfsctl("store", "metadata", "add", "--name", "meta", "--type", "badger", "--db-path", "/data/store/metadata")
        dfsctl("store", "block", "local", "add", "--name", "blocks", "--type", "fs", "--path", "/data/store/block")
        dfsctl("user", "create", "--username", "alice", "--password", "made-by-hand", "--uid", str(UID), "--gid", str(GID))
        dfsctl("share", "create", "--name", "/export", "--metadata", "meta", "--local", "blocks", "--owner", "alice")
        dfsctl("share", "permission", "grant", "/export", "--user", "alice", "--level", "read-write")
        dfsctl("share", "create", "--name", "/scratch", "--metadata", "meta", "--local", "blocks")
        nfs, smb = w.server.forward(NFS_PORT), w.server.forward(SMB_PORT)
        written = os.urandom(1024 * 1024 + 3)
        clients.nfs_write(nfs, "/export", "by-hand.bin", written, uid=UID, gid=GID)

        w.declared = [user, share]
        w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED, w.state()   # the stores are taken as they are
        # What nothing declares is left alone, and counted.
        assert w.sync()["status"]["undeclared"] == {"shares": 1, "users": 0, "groups": 0}
        w.api.forget()
        w.discover()
        assert controlplane.UNDECLARED_ANNOTATION not in w.last["annotations"]   # unchanged: not written again
        for obj in (user, share):
            w.keep(obj)
            assert condition(obj, "Synced")["status"] == "True", obj["status"]
        assert condition(share, "Synced")["message"] == "DittoFS holds /export as declared"   # adopted, not made
        assert condition(user, "Synced")["message"] == "set the password of alice"
        assert sha(clients.smb_get(smb, "/export", "alice", PASSWORD, "by-hand.bin")) == sha(written)

        # A spec change rolls the pod: the new pod starts from the same volumes.
        w.parent["spec"]["logging"] = {"level": "DEBUG"}
        rolled = w.sync()
        assert rolled["status"]["configHash"] != w.response["status"]["configHash"]
        w.server.stop()
        w.server.pod = realdfs.pod_of(rolled, [password])
        w.server.start().wait_healthy(realdfs.startup_budget(w.server.pod))
        assert "level: DEBUG" in w.server.pod.config_yaml
        assert sha(clients.nfs_read(nfs, "/export", "by-hand.bin", uid=UID, gid=GID)) == sha(written)
        assert sha(clients.smb_get(smb, "/export", "alice", PASSWORD, "by-hand.bin")) == sha(written)


@pytest.mark.timeout(600)
def test_a_declared_s3_store_gets_the_bytes_and_rotated_keys_reach_it(tmp_path, s3):
    """A remote s3 store in the spec (credentials from a Secret), a share on it: bytes written
    over NFS reach the bucket under the store's prefix; evicted locally, they are read back from
    the bucket (no restart: DittoFS v0.29.0 reads zeros after one, tests/test_dittofs_data.py)."""
    bucket = s3.bucket("declared-" + os.urandom(4).hex())
    namespace = realdfs.Namespace()
    s3_in_pod = realdfs.PortForward.out_of(namespace, s3.port)
    keys = secret("s3-keys", **{"access-key-id": s3.access_key, "secret-access-key": s3.secret_key})
    spec = copy.deepcopy(SPEC)
    spec["stores"]["remote"] = [{"name": "bucket", "type": "s3", "s3": {
        "bucket": bucket.name, "region": "us-east-1", "prefix": "demo/", "allowPrivateEndpoint": True,
        "endpoint": f"http://127.0.0.1:{s3_in_pod.port}", "credentialsSecretRef": {"name": "s3-keys"}}}]
    docs = example()
    password, user, share = (docs[kind] for kind in ("Secret", "DittoUser", "DittoShare"))
    user["spec"]["groups"] = []
    share["spec"].update(remoteStore="bucket", permissions=[{"user": "alice", "level": "read-write"}])
    try:
        with world(tmp_path, spec, secrets=[password, keys], namespace=namespace) as w:
            w.declared = [user, share]
            found = w.discover()
            assert "remote/bucket" in dict(controlplane.read_applied(found["annotations"]).stores), w.state()
            for obj in (user, share):
                w.keep(obj)
                assert condition(obj, "Ready")["status"] == "True", obj["status"]
            stored = api_get(w, "/api/v1/store/block/remote/bucket").json()
            assert stored["config"]["access_key_id"] == s3.access_key and stored["status"]["status"] == "healthy"

            written = os.urandom(1024 * 1024 + 99)
            nfs = w.server.forward(NFS_PORT)
            clients.nfs_write(nfs, "/export", "to-s3.bin", written, uid=UID, gid=GID)
            objects = kube.poll(lambda: (found := bucket.objects("demo/")) and sum(found.values()) >= len(written)
                                and found, f"the bytes reaching bucket {bucket.name}", 300)
            assert all(key.startswith("demo/") for key in objects)
            evicted = requests.post(w.server.url() + "/api/v1/shares/export/blockstore/evict", headers=w.admin(),
                                    json={}, timeout=30)
            assert evicted.status_code == 200, evicted.text
            assert sha(clients.nfs_read(nfs, "/export", "to-s3.bin", uid=UID, gid=GID)) == sha(written)

            # Rotated keys (a new resourceVersion) are sent again through the API, no restart.
            pid = w.server.proc.pid
            w.related = [secret("s3-keys", version="2", **{"access-key-id": s3.access_key,
                                                            "secret-access-key": s3.secret_key})
                         if s["metadata"]["name"] == "s3-keys" else s for s in w.related]
            w.api.forget()
            w.discover()
            assert ("PUT", "/api/v1/store/block/remote/bucket", None) in w.api.requests()
            assert w.state().reason == controlplane.AUTHENTICATED and w.server.proc.pid == pid
    finally:
        s3_in_pod.close()



def test_a_declared_postgres_metadata_store_keeps_the_files_across_a_crash(tmp_path, postgres):
    """A metadata store in a PostgreSQL database of its own (a Secret with the database
    Secret's keys): the share's files survive a SIGKILL, and their metadata is in that database.
    The control plane's own database would not do: DittoFS refuses it (a table of both names)."""
    database = postgres.create_database("dittofs_meta_" + os.urandom(3).hex())
    namespace = realdfs.Namespace()
    in_pod = realdfs.PortForward.out_of(namespace, postgres.port)
    connection = {"host": "127.0.0.1", "port": str(in_pod.port), "database": database, "user": postgres.user,
                  "password": postgres.password, "sslmode": "disable"}
    spec = copy.deepcopy(SPEC)
    spec["stores"]["metadata"] = [{"name": "meta", "type": "postgres", "postgres": {"secretRef": {"name": "meta-db"}}}]
    docs = example()
    password, user, share = (docs[kind] for kind in ("Secret", "DittoUser", "DittoShare"))
    user["spec"]["groups"] = []
    share["spec"]["permissions"] = [{"user": "alice", "level": "read-write"}]
    try:
        with world(tmp_path, spec, secrets=[password, secret("meta-db", **connection)], namespace=namespace) as w:
            w.declared = [user, share]
            found = w.discover()
            assert "metadata/meta" in dict(controlplane.read_applied(found["annotations"]).stores), w.state()
            stored = api_get(w, "/api/v1/store/metadata/meta").json()
            assert (stored["type"], stored["config"]["password"]) == ("postgres", "********")
            for obj in (user, share):
                w.keep(obj)
                assert condition(obj, "Ready")["status"] == "True", obj["status"]
            written = os.urandom(512 * 1024 + 5)
            nfs = w.server.forward(NFS_PORT)
            clients.nfs_write(nfs, "/export", "in-postgres.bin", written, uid=UID, gid=GID)
            w.server.kill()
            w.server.start().wait_healthy(realdfs.startup_budget(w.server.pod))
            assert sha(clients.nfs_read(nfs, "/export", "in-postgres.bin", uid=UID, gid=GID)) == sha(written)
            assert int(postgres.query(database, "SELECT count(*) FROM inodes")[0]) >= 2   # the root and the file
    finally:
        in_pod.close()


def test_bytes_survive_an_adapter_toggled_off_and_on_and_the_pod_it_rolls(tmp_path):
    """An adapter stopped through the API changes the container ports, so the pod rolls (as with
    the Go operator); the share's bytes are there after each roll, over the adapter still on,
    and over the one turned back on."""
    with applied_example(tmp_path) as (w, docs):
        password = docs["Secret"]
        nfs, smb = w.server.forward(NFS_PORT), w.server.forward(SMB_PORT)
        written = os.urandom(700 * 1024)
        clients.smb_put(smb, "/export", "alice", PASSWORD, "toggled.bin", written)
        before = w.sync()

        def roll(enabled: bool) -> dict:
            changed = requests.put(w.server.url() + "/api/v1/adapters/smb", headers=w.admin(), timeout=10,
                                   json={"enabled": enabled})
            assert changed.status_code == 200, changed.text
            w.discover()
            synced = w.sync()
            assert ("adapter-smb" in factory.port_names(synced)) is enabled
            w.server.stop()                      # the rolled pod: a new one from the same volumes
            w.server.pod = realdfs.pod_of(synced, [password])
            w.server.start().wait_healthy(realdfs.startup_budget(w.server.pod))
            return synced

        off = roll(False)
        assert off["children"] != before["children"]
        assert sha(clients.nfs_read(nfs, "/export", "toggled.bin", uid=UID, gid=GID)) == sha(written)
        with pytest.raises(clients.ClientError):
            clients.smb_get(smb, "/export", "alice", PASSWORD, "toggled.bin", timeout=20)
        roll(True)
        assert sha(clients.smb_get(smb, "/export", "alice", PASSWORD, "toggled.bin")) == sha(written)
        assert sha(clients.nfs_read(nfs, "/export", "toggled.bin", uid=UID, gid=GID)) == sha(written)


def test_a_grant_removed_from_the_spec_is_revoked_and_one_made_by_hand_stays(tmp_path):
    with applied_example(tmp_path) as (w, docs):
        share = docs["DittoShare"]
        assert json.loads(share["metadata"]["annotations"]["dittofs.io/granted"]) == ["groups/editors", "users/alice"]
        # A grant made by hand, for a user made by hand: the hook never made it.
        admin = w.admin()
        assert requests.post(w.server.url() + "/api/v1/users", headers=admin, timeout=10, json={
            "username": "bob", "password": "bob-password-1", "uid": 2002}).status_code == 201
        assert requests.put(w.server.url() + "/api/v1/shares/export/permissions/users/bob", headers=admin, timeout=10,
                            json={"level": "read"}).status_code == 204
        share["spec"]["permissions"] = [{"user": "alice", "level": "read-write"}]   # editors removed
        w.keep(share)
        assert condition(share, "Synced")["message"] == "revoked the permission of group editors"
        held = {(p["type"], p["name"]): p["level"] for p in api_get(w, "/api/v1/shares/export/permissions").json()}
        assert held == {("user", "alice"): "read-write", ("user", "bob"): "read"}
        assert json.loads(share["metadata"]["annotations"]["dittofs.io/granted"]) == ["users/alice"]
        w.api.forget()
        w.keep(share)
        assert [m for m, _, _ in w.api.requests()] == ["GET", "GET"]   # nothing more to revoke


def test_what_the_review_found_on_the_real_server(tmp_path):
    """A share with no grant answers its permissions as null; an operator account made by hand
    is not taken over; a revoke is not held up by a grant that fails; a user is deleted though
    its password Secret went first."""
    with applied_example(tmp_path) as (w, docs):
        plain = declared("DittoShare", "plain", {"server": "demo", "metadataStore": "meta", "localStore": "blocks"})
        for _ in range(2):
            w.keep(plain)
            assert condition(plain, "Synced")["status"] == "True", plain["status"]

        assert requests.post(w.server.url() + "/api/v1/users", headers=w.admin(), timeout=10, json={
            "username": "ops", "password": "ops-password-1", "role": "operator"}).status_code == 201
        ops = declared("DittoUser", "ops", {"server": "demo", "passwordSecretRef": {"name": "alice-password"}})
        w.keep(ops)
        assert condition(ops, "Synced")["reason"] == "AccountNotAdoptable"
        assert api_get(w, "/api/v1/users/ops").json()["role"] == "operator"
        w.server.login("ops", "ops-password-1")                     # its password untouched

        share = docs["DittoShare"]
        share["spec"]["permissions"] = [{"user": "alice", "level": "read-write"}, {"user": "nobody", "level": "read"}]
        w.keep(share)
        assert condition(share, "Synced")["reason"] == "UnknownReference"
        held = {(p["type"], p["name"]) for p in api_get(w, "/api/v1/shares/export/permissions").json()}
        assert held == {("user", "alice")}                           # editors revoked all the same

        user = docs["DittoUser"]
        user["spec"]["deletionPolicy"] = "Delete"
        user["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
        w.related = [s for s in w.related if s["metadata"]["name"] != "alice-password"]
        assert w.keep(user, finalizing=True)["finalized"] is True
        assert api_get(w, "/api/v1/users/alice").status_code == 404


def test_a_name_declared_twice_is_kept_in_step_by_the_first_object_only(tmp_path):
    with applied_example(tmp_path) as (w, docs):
        share = docs["DittoShare"]
        share["metadata"]["creationTimestamp"] = "2026-12-01T00:00:00Z"
        twin = declared("DittoShare", "export-again", {"server": "demo", "name": "/export", "metadataStore": "meta",
                                                       "localStore": "blocks", "readOnly": True,
                                                       "deletionPolicy": "Delete"})
        twin["metadata"]["creationTimestamp"] = "2026-12-02T00:00:00Z"
        w.declared.append(twin)
        w.discover()
        assert json.loads(w.parent["metadata"]["annotations"]["dittofs.io/declared-twice"]) == {
            "shares": {"/export": ["export", "export-again"]}}
        w.api.forget()
        w.keep(twin)
        synced = condition(twin, "Synced")
        assert (synced["status"], synced["reason"]) == ("False", "DeclaredTwice")
        assert synced["message"].startswith("/export is declared by DittoShare export too, which came first")
        assert w.api.requests() == []                                       # it writes nothing
        w.keep(share)
        assert api_get(w, "/api/v1/shares/export").json()["read_only"] is False
        # Deleting the second one (Delete) leaves the share the first one declares.
        twin["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
        assert w.keep(twin, finalizing=True)["finalized"] is True
        assert api_get(w, "/api/v1/shares/export").status_code == 200
        w.declared.remove(twin)
        w.discover()
        assert w.parent["metadata"]["annotations"].get("dittofs.io/declared-twice") is None
