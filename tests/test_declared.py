"""The declared kinds' pure parts: reading a DittoShare, DittoUser or DittoGroup, what their
customize hooks relate, the bodies and comparisons sent to DittoFS, the stores `/discover`
makes, and the status they answer (the real server's side is tests/test_declared_real.py)."""
import json
from datetime import datetime, timezone

import pytest

from hooks.children import declared_status
from hooks.dittofs import client, decorate, discovery, keeping, stores
from hooks.request import controlplane, declared, errors, spec
from tests import factory
from tests.worlds import declared as declared_object

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
SHARE = {"server": "demo", "metadataStore": "meta", "localStore": "blocks"}


def read(kind: str, spec_value: dict, **meta) -> declared.Declared:
    obj = declared_object(kind, "alice", spec_value)
    obj["metadata"].update(meta)
    return declared.read({"object": obj}, kind)


@pytest.mark.parametrize("value, text", [(0, "0B"), (100, "100B"), (1536, "1.50KiB"), (10 * 2**30, "10.00GiB"),
                                         (3 * 2**40 + 2**39, "3.50TiB"), (2**20 - 1, "1024.00KiB")])
def test_sizes_read_as_dittofs_shows_them(value, text):
    assert keeping.size_text(value) == text


def test_a_quota_dittofs_shows_rounded_is_no_drift_and_a_changed_one_is():
    work = keeping.ShareApply(read("DittoShare", {**SHARE, "quotaBytes": 10 * 2**30}), None, None, "")
    held = {"read_only": False, "default_permission": "none", "quota_bytes": "10.00GiB"}
    assert work.drift(held) == {}
    assert work.drift({**held, "quota_bytes": ""}) == {"quota_bytes": str(10 * 2**30)}
    assert work.drift({**held, "read_only": True, "default_permission": "read"}) == {
        "read_only": False, "default_permission": "none"}
    unlimited = keeping.ShareApply(read("DittoShare", SHARE), None, None, "")
    assert unlimited.drift({**held, "quota_bytes": "1.00GiB"}) == {"quota_bytes": "0"}


def test_a_share_is_made_with_the_api_field_names():
    obj = read("DittoShare", {**SHARE, "remoteStore": "s3", "owner": "alice", "quotaBytes": 5, "readOnly": True})
    assert keeping.ShareApply(obj, None, None, "").create_body() == {
        "name": "/alice", "metadata_store_id": "meta", "local_block_store": "blocks", "remote_block_store": "s3",
        "owner": "alice", "read_only": True, "default_permission": "none", "quota_bytes": "5"}


def test_user_drift_compares_groups_as_sets():
    obj = read("DittoUser", {"server": "demo", "uid": 7, "groups": ["b", "a", "b"]})
    work = keeping.UserApply(obj, None, None, "", password="x" * 8, password_version="v")
    held = {"role": "user", "enabled": True, "uid": 7, "groups": ["a", "b"]}
    assert work.drift(held) == {}
    assert work.drift({**held, "groups": ["a"], "enabled": False, "uid": 8}) == {
        "groups": ["a", "b"], "enabled": True, "uid": 7}


@pytest.mark.parametrize("password, ok", [("x" * 7, False), ("x" * 8, True), ("x" * 72, True), ("é" * 37, False)])
def test_a_password_dittofs_cannot_hash_is_a_reason(password, ok):
    if ok:
        keeping.check_password(password)
    else:
        with pytest.raises(keeping.Refused) as refused:
            keeping.check_password(password)
        assert refused.value.reason == keeping.PASSWORD_INVALID and "8 to 72 bytes" in str(refused.value)


@pytest.mark.parametrize("kind, bad, field, text", [
    ("DittoUser", {"server": "demo", "role": "admin"}, "object.spec.role", "'user'"),
    ("DittoShare", {**SHARE, "name": "/Export"}, "object.spec.name", "pattern"),
    ("DittoShare", {**SHARE, "permissions": [{"user": "a", "group": "b", "level": "read"}]},
     "object.spec.permissions.0", "exactly one of user or group"),
    ("DittoShare", {**SHARE, "permissions": [{"user": "a", "level": "read"}, {"user": "a", "level": "admin"}]},
     "object.spec.permissions", "one permission"),
    ("DittoGroup", {"server": "Demo"}, "object.spec.server", "pattern"),
    ("DittoGroup", {"gid": 1}, "object.spec.server", "Field required"),
])
def test_bad_specs_are_a_422_naming_the_field(kind, bad, field, text):
    with pytest.raises(errors.HookError) as refused:
        read(kind, bad)
    assert refused.value.status == 422 and refused.value.field == field and text in refused.value.message


def test_a_request_for_another_kind_is_refused():
    with pytest.raises(errors.HookError) as refused:
        declared.read({"object": declared_object("DittoGroup", "g", {"server": "demo"})}, declared.SHARE)
    assert (refused.value.status, refused.value.code) == (422, "WrongKind")


def test_customize_relates_only_names_it_can_derive():
    user = declared_object("DittoUser", "alice", {"server": "demo"})
    found = decorate.related_resources({"parent": user}, declared.USER)["relatedResources"]
    assert [(r["resource"], r["names"]) for r in found] == [
        ("dittoservers", ["demo"]), ("statefulsets", ["demo"]), ("secrets", ["alice-password", "demo-manager-credentials"])]
    own = declared_object("DittoUser", "alice", {"server": "demo", "passwordSecretRef": {"name": "mine", "key": "pw"}})
    assert decorate.related_resources({"parent": own}, declared.USER)["relatedResources"][2]["names"] == [
        "demo-manager-credentials", "mine"]
    share = declared_object("DittoShare", "export", SHARE)
    assert decorate.related_resources({"parent": share}, declared.SHARE)["relatedResources"][2]["names"] == [
        "demo-manager-credentials"]


def test_stores_are_made_under_the_claims_and_their_digest_holds_no_credential():
    parsed = spec.parse_spec({"storage": {"metadataSize": "1Gi", "contentSize": "1Gi"}, "stores": {
        "metadata": [{"name": "meta", "type": "badger"}, {"name": "scratch", "type": "memory"}],
        "local": [{"name": "blocks", "type": "fs"}],
        "remote": [{"name": "s3", "type": "s3", "s3": {"bucket": "data", "endpoint": "http://minio:9000",
                                                      "allowPrivateEndpoint": True,
                                                      "credentialsSecretRef": {"name": "keys"}}}]}})
    wanted = {w.key: w for w in stores.wanted(parsed.stores)}
    assert list(wanted) == ["metadata/meta", "metadata/scratch", "local/blocks", "remote/s3"]
    assert wanted["metadata/meta"].config == {"path": "/data/store/metadata/meta"}
    assert wanted["local/blocks"].config == {"path": "/data/store/block/blocks"}
    remote = wanted["remote/s3"]
    assert remote.body({"access_key_id": "AK", "secret_access_key": "SK"})["config"] == (
        '{"access_key_id":"AK","allow_private_endpoint":true,"bucket":"data","endpoint":"http://minio:9000",'
        '"region":"us-east-1","secret_access_key":"SK"}')
    assert "SK" not in remote.digest("7") and remote.digest("7") != remote.digest("8")
    assert parsed.stores.ephemeral() == ["metadata/scratch"]
    assert stores.mismatch(wanted["metadata/meta"], {"type": "badger", "config": {"path": "/data/store/metadata/meta"}}) is None
    assert "with type 'memory'" in stores.mismatch(wanted["metadata/meta"], {"type": "memory"})
    assert "with path '/elsewhere', which is on no claim" in stores.mismatch(
        wanted["local/blocks"], {"type": "fs", "config": '{"path": "/elsewhere"}'})
    # Made by hand elsewhere on a claim (as Go operator users do): taken where it is.
    assert stores.mismatch(wanted["metadata/meta"], {"type": "badger", "config": {"path": "/data/store/metadata"}}) is None


def test_the_manager_account_is_for_servers_that_something_names():
    share = declared_object("DittoShare", "export", SHARE)
    related = {"DittoShare.dittofs.dittofs.com/v1alpha1": {"storage/export": share}, "Secret.v1": {}}
    assert discovery.parsed_declared(related, "demo", "storage")[0]
    assert not discovery.parsed_declared(related, "other", "storage")[0]
    assert not discovery.parsed_declared(related, "demo", "elsewhere")[0]
    assert not discovery.parsed_declared({"DittoShare.dittofs.dittofs.com/v1alpha1": "x"}, "demo", "storage")[0]


def test_status_keeps_its_transition_time_and_says_ephemeral():
    obj = read("DittoShare", SHARE, generation=3)
    outcome = decorate.Outcome(obj, keeping.Result(message="created share /alice"), "/alice", ephemeral=True)
    first = declared_status.build(outcome, {}, NOW)
    assert first["observedGeneration"] == 3 and first["shareName"] == "/alice" and first["server"] == "demo"
    ready = next(c for c in first["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Ephemeral") and "lost whenever the pod restarts" in ready["message"]
    later = declared_status.build(outcome, {"status": first}, datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert later == first   # nothing changed: the same bytes, so Metacontroller writes nothing
    failed = decorate.Outcome(obj, keeping.Result(keeping.STORE_NOT_DECLARED, "nope"), "/alice")
    again = declared_status.build(failed, {"status": first}, datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert all(c["lastTransitionTime"] == "2027-01-01T00:00:00Z" and c["status"] == "False" for c in again["conditions"])


def test_a_share_is_ephemeral_when_its_data_goes_with_the_pod():
    server = spec.parse_spec({"storage": {"metadataSize": "1Gi", "contentSize": "1Gi"}, "stores": {
        "metadata": [{"name": "meta", "type": "badger"}, {"name": "mem", "type": "memory"}],
        "local": [{"name": "ram", "type": "memory"}, {"name": "disk", "type": "fs"}],
        "remote": [{"name": "r", "type": "memory"}]}})

    def share(**extra):
        return declared.ShareSpec.model_validate({"server": "demo", **extra})
    assert decorate.ephemeral(share(metadataStore="mem", localStore="ram"), server)
    assert decorate.ephemeral(share(metadataStore="meta", localStore="ram"), server)
    assert decorate.ephemeral(share(metadataStore="meta", localStore="ram", remoteStore="r"), server)
    assert not decorate.ephemeral(share(metadataStore="meta", localStore="disk"), server)


def test_the_server_says_which_stores_are_made_and_which_are_ephemeral():
    spec_value = {"storage": {"metadataSize": "1Gi"}, "stores": {
        "metadata": [{"name": "meta", "type": "badger"}, {"name": "mem", "type": "memory"}]}}
    parent = factory.parent(spec=spec_value)
    assert factory.condition(factory.sync_of(factory.request(parent)), "StoresReady")["status"] == "Unknown"
    digests = {w.key: w.digest(None) for w in stores.wanted(spec.parse_spec(spec_value).stores)}
    parent["metadata"]["annotations"][controlplane.APPLIED_ANNOTATION] = controlplane.Applied(
        stores=tuple(sorted(digests.items()))).encode()
    made = factory.condition(factory.sync_of(factory.request(parent)), "StoresReady")
    assert (made["status"], made["reason"]) == ("True", "Ephemeral") and "metadata/mem keep their data in memory" in made["message"]
    # A store changed since: made again, so not ready until discovery says so.
    parent["spec"]["stores"]["metadata"][0]["type"] = "memory"
    assert factory.condition(factory.sync_of(factory.request(parent)), "StoresReady")["status"] == "Unknown"
    # No store declared: no condition.
    assert all(c["type"] != "StoresReady" for c in factory.sync_of(factory.request(factory.parent()))["status"]["conditions"])


def test_store_paths_follow_the_claims_the_live_statefulset_mounts():
    """A StatefulSet this project made before DittoFS v0.29 (no controlplane claim) mounts its
    claims elsewhere: the stores go where its volumes are, never onto the container's own disk."""
    parsed = spec.parse_spec({"storage": {"metadataSize": "1Gi", "contentSize": "1Gi"}, "stores": {
        "metadata": [{"name": "meta", "type": "badger"}], "local": [{"name": "blocks", "type": "fs"}]}})

    def sts(*claims):
        return {"spec": {"volumeClaimTemplates": [{"metadata": {"name": c}} for c in claims]}}
    legacy = {w.key: w.config["path"] for w in stores.wanted(parsed.stores, stores.statefulset_claims(
        sts("metadata", "content")))}
    assert legacy == {"metadata/meta": "/data/metadata/meta", "local/blocks": "/data/content/blocks"}
    today = {w.key: w.config["path"] for w in stores.wanted(parsed.stores, stores.statefulset_claims(
        sts("controlplane", "metadata", "content")))}
    assert today == {"metadata/meta": "/data/store/metadata/meta", "local/blocks": "/data/store/block/blocks"}
    assert stores.statefulset_claims(None) is None and stores.statefulset_claims({"spec": 5}) is None
    # The sync side reads the same StatefulSet: StoresReady agrees with what discovery made.
    assert stores.on_a_claim("/data/content/blocks") and not stores.on_a_claim("/var/lib/blocks")


def test_reserved_accounts_and_groups_are_never_taken_over_nor_deleted():
    for kind, name in (("DittoUser", "admin"), ("DittoUser", "k8s-manager"), ("DittoGroup", "admins")):
        obj = declared_object(kind, name, {"server": "demo", "deletionPolicy": "Delete"})
        obj["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
        keeper = decorate.Keeper(api=None)   # no DittoFS call can be made: none is
        outcome = keeper.sync({"object": obj, "related": {}, "finalizing": True}, kind)
        assert (outcome.result.reason, outcome.result.finalized) == (keeping.RESERVED_NAME, True)
        assert "may not take it over" in outcome.result.message


def test_a_quota_changed_below_what_dittofs_shows_is_set_again():
    work = keeping.ShareApply(read("DittoShare", {**SHARE, "quotaBytes": 10 * 2**30 + 2**20}), None, None, "")
    held = {"read_only": False, "default_permission": "none", "quota_bytes": "10.00GiB"}
    assert work.drift(held) == {}                                   # the text alone cannot tell
    assert work.drift(held, quota_before=10 * 2**30) == {"quota_bytes": str(10 * 2**30 + 2**20)}
    assert work.drift(held, quota_before=10 * 2**30 + 2**20) == {}


def test_a_hostile_granted_annotation_is_no_grant_and_no_error():
    assert decorate.read_granted("[" * 100_000) == frozenset()
    assert decorate.read_granted('["users/a", 5, "x"]') == frozenset({"users/a"})


def test_a_store_that_holds_its_data_elsewhere_is_never_moved():
    parsed = spec.parse_spec({"storage": {"metadataSize": "1Gi"}, "stores": {
        "metadata": [{"name": "pg", "type": "postgres", "postgres": {"secretRef": {"name": "db"}}}],
        "remote": [{"name": "s3", "type": "s3", "s3": {"bucket": "new", "prefix": "b/",
                                                      "credentialsSecretRef": {"name": "keys"}}}]}})
    pg, s3 = stores.wanted(parsed.stores)
    held = {"type": "s3", "config": {"bucket": "old", "prefix": "a/", "secret_access_key": "********"}}
    assert "with bucket 'old', not 'new'" in stores.mismatch(s3, held)
    assert stores.mismatch(s3, {"type": "s3", "config": {"bucket": "new", "prefix": "b/"}}) is None
    sent = {"host": "db-2", "port": 5432, "database": "meta"}
    assert "with host 'db-1', not 'db-2'" in stores.mismatch(
        pg, {"type": "postgres", "config": {"host": "db-1", "port": 5432, "dbname": "meta"}}, sent)
    assert stores.mismatch(pg, {"type": "postgres", "config": {"host": "db-2", "port": 5432, "dbname": "meta"}}, sent) is None
    with pytest.raises(errors.HookError):
        spec.parse_spec({"storage": {"metadataSize": "1Gi"}, "stores": {"metadata": [{"name": "controlplane",
                                                                                     "type": "badger"}]}})


def test_a_name_declared_twice_has_one_keeper_the_oldest():
    def share(name, created, **extra):
        obj = declared_object("DittoShare", name, {**SHARE, "name": "/data", **extra})
        obj["metadata"]["creationTimestamp"] = created
        return obj
    first, second = share("b-first", "2026-01-01T00:00:00Z"), share("a-second", "2026-02-01T00:00:00Z")
    gone = share("c-gone", "2025-01-01T00:00:00Z")
    gone["metadata"]["deletionTimestamp"] = "2026-03-01T00:00:00Z"
    other = share("d-other", "2025-01-01T00:00:00Z", server="elsewhere")
    related = {"DittoShare.dittofs.dittofs.com/v1alpha1": {f"storage/{o['metadata']['name']}": o
                                                           for o in (second, gone, first, other)}}
    found = discovery.twins_of(discovery.parsed_declared(related, "demo", "storage")[1])
    assert found == {"shares": {"/data": ["b-first", "a-second"]}}   # the deleting one and the other server's aside
    server = {"metadata": {"annotations": {controlplane.TWINS_ANNOTATION: json.dumps(found)}}}
    assert decorate.twin_of(server, declared.read({"object": first}, declared.SHARE)) == (["a-second"], True)
    assert decorate.twin_of(server, declared.read({"object": second}, declared.SHARE)) == (["b-first"], False)
    assert decorate.twin_of({"metadata": {}}, declared.read({"object": first}, declared.SHARE)) is None
    alone = {"DittoShare.dittofs.dittofs.com/v1alpha1": {"x": first}}
    assert discovery.twins_of(discovery.parsed_declared(alone, "demo", "storage")[1]) == {}


def test_a_generated_password_secret_taken_by_another_secret_says_what_to_do():
    user = declared_object("DittoUser", "bob", {"server": "demo"})
    server = factory.parent(spec={"storage": {"metadataSize": "1Gi"}})
    theirs = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bob-password", "namespace": "storage"},
              "data": {"password": "eA=="}}
    manager = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-manager-credentials",
                                                                 "namespace": "storage"}, "data": {"password": "eA=="}}
    related = factory.children_map([server, theirs, manager, factory.statefulset()], "v2",
                                   groups=("DittoServer.dittofs.dittofs.com/v1alpha1", "Secret.v1", "StatefulSet.apps/v1"))
    # The password is missing before any request: a client that may never be used.
    outcome = decorate.Keeper(api=client.Client()).sync({"object": user, "related": related, "attachments": {}},
                                                       declared.USER)
    assert outcome.result.reason == keeping.PASSWORD_MISSING
    assert "exists but is not this DittoUser's" in outcome.result.message
