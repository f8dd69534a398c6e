"""Discovery with least privilege, against the real `dfs` (tests/realdfs.py) and the hook on a
real gunicorn: it provisions its `k8s-operator` account with admin once, polls with that account
only, does admin writes only when due, and says in `dittofs.io/control-plane` what goes wrong.
"""
import json
import time

import pytest
import requests

from hooks.dittofs import pacing
from hooks.request import adapters, controlplane
from tests import factory, realdfs, servers
from tests.worlds import b64, decoded, world

pytestmark = pytest.mark.dittofs

ADAPTERS = "/api/v1/adapters"


def test_the_account_is_provisioned_once_and_a_steady_state_polls_with_it_alone(tmp_path):
    with world(tmp_path) as w:
        secret = w.operator_secret()      # made by the sync hook, random until it exists
        assert decoded(secret, "username") == "k8s-operator"
        first = w.discover()
        assert w.state() == controlplane.State(controlplane.AUTHENTICATED, "polling as k8s-operator")
        seen = json.loads(first["annotations"][adapters.ANNOTATION])
        assert {(a["type"], a["port"]) for a in seen} == {("nfs", 12049), ("smb", 1445)}
        # The account's login was refused (it did not exist), admin made it with the Secret's
        # password, and turned the portmapper on: the only admin login.
        logins = [user for method, path, user in w.api.requests() if user]
        assert logins == ["k8s-operator", "admin", "k8s-operator"]
        admin = w.admin()
        user = requests.get(w.server.url() + "/api/v1/users/k8s-operator", headers=admin, timeout=5).json()
        assert user["role"] == "operator"
        w.server.login("k8s-operator", decoded(secret, "password"))
        settings = requests.get(w.server.url() + "/api/v1/adapters/nfs/settings", headers=admin, timeout=5).json()
        assert settings["portmapper_enabled"] is True
        assert controlplane.read_applied(first["annotations"]).portmapper == "nfs:12049"
        # DittoFS starts the portmapper with the server: the next sync rolls the pod once.
        assert w.sync()["status"]["configHash"] != w.response["status"]["configHash"]
        w.server.stop()
        w.server.start().wait_healthy(realdfs.startup_budget(w.server.pod))
        assert any(port == 10111 for _, port in w.server.namespace.listening())

        w.api.forget()
        steady = w.discover()
        w.api.forget()
        for _ in range(3):
            assert w.discover() == steady   # the same annotations, nothing written
        assert w.api.requests() == [("GET", ADAPTERS, None)] * 3   # one request a poll, no login


def test_a_restarted_hook_re_provisions_a_deleted_account_with_the_secrets_password(tmp_path):
    with world(tmp_path) as w:
        w.discover()
        deleted = requests.delete(w.server.url() + "/api/v1/users/k8s-operator", headers=w.admin(), timeout=5)
        assert deleted.status_code in (200, 204), deleted.text
        w.api.forget()
        # A new hook process (no token in memory), the same server and the same Secret.
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": w.server.url()}) as (hook, _):
            w.hook = hook
            w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED
        assert [user for _, _, user in w.api.requests() if user] == ["k8s-operator", "admin", "k8s-operator"]
        assert ("POST", "/api/v1/users", None) in w.api.requests()
        w.server.login("k8s-operator", decoded(w.operator_secret(), "password"))


def test_no_operator_secret_yet_waits_and_changes_nothing(tmp_path):
    with world(tmp_path) as w:
        w.related = [s for s in w.related if s is not w.operator_secret()]
        w.api.forget()
        found = w.discover()
        assert adapters.ANNOTATION not in found["annotations"]
        assert w.state().reason == controlplane.CREDENTIALS_MISSING
        assert "demo-operator-credentials does not exist yet" in w.state().message
        assert w.api.requests() == []                       # nothing asked of DittoFS
        # The sync hook makes the Secret: the next poll makes the account and polls.
        w.related = [c for c in w.response["children"] if c["kind"] == "Secret"]
        w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED
        assert ("POST", "/api/v1/users", None) in w.api.requests()


def test_changed_admin_password_and_deleted_account_say_what_to_set_and_change_nothing_else(tmp_path):
    with world(tmp_path) as w:
        first = w.discover()
        admin = w.admin()
        # As a person would: the admin changes its own password.
        changed = requests.post(w.server.url() + "/api/v1/users/me/password", headers=admin, timeout=5,
                                json={"current_password": w.bootstrap_password(),
                                      "new_password": "a-new-admin-password-1"})
        assert changed.status_code in (200, 204), changed.text
        deleted = requests.delete(w.server.url() + "/api/v1/users/k8s-operator", headers=w.admin("a-new-admin-password-1"),
                                  timeout=5)
        assert deleted.status_code in (200, 204), deleted.text
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": w.server.url()}) as (hook, _):
            w.hook = hook                     # no token in memory: the account must log in
            failed = w.discover()
        assert adapters.ANNOTATION not in failed["annotations"]                  # adapter state kept
        state = w.state()
        assert state.reason == controlplane.ADMIN_CREDENTIALS_REFUSED and not state.polling
        assert "identity.admin.passwordSecretRef" in state.message
        # /sync turns it into the Authenticated condition a person can act on.
        synced = factory.sync_of(factory.request(w.parent))
        condition = factory.condition(synced, "Authenticated")
        assert (condition["status"], condition["reason"]) == ("False", controlplane.ADMIN_CREDENTIALS_REFUSED)
        assert "identity.admin.passwordSecretRef" in condition["message"]

        # The user sets the current password: the account is made again, polling resumes.
        w.related.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "admin-now", "namespace": "storage"},
                          "data": {"password": b64("a-new-admin-password-1")}})
        w.parent["spec"]["identity"] = {"admin": {"passwordSecretRef": {"name": "admin-now", "key": "password"}}}
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": w.server.url()}) as (hook, _):
            w.hook = hook
            recovered = w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED
        assert recovered["annotations"][adapters.ANNOTATION] == first["annotations"][adapters.ANNOTATION]


def test_a_killed_server_keeps_adapter_state_and_says_unreachable(tmp_path):
    with world(tmp_path) as w:
        first = w.discover()
        w.server.stop()
        failed = w.discover()
        assert adapters.ANNOTATION not in failed["annotations"]
        assert w.state().reason == controlplane.UNREACHABLE
        synced = factory.sync_of(factory.request(w.parent))
        assert factory.condition(synced, "AdaptersKnown")["status"] == "True"   # still the last known set
        assert factory.condition(synced, "Authenticated")["status"] == "False"
        # The next poll waits 30 s. Metacontroller calls again at once after the annotation
        # write (its own): that call asks DittoFS nothing and writes nothing.
        assert pacing.read_backoff(w.parent["metadata"]["annotations"]).failures == 1
        assert failed["resyncAfterSeconds"] == 30.0
        w.server.start().wait_healthy(realdfs.startup_budget(w.server.pod))
        sent = len(w.api.requests())
        echo = w.discover()
        assert echo["annotations"] == {} and len(w.api.requests()) == sent
        # The timer fires (the retry time moved back instead of waiting): polled, recovered.
        w.parent["metadata"]["annotations"][pacing.BACKOFF_ANNOTATION] = \
            pacing.Backoff(1, "2000-01-01T00:00:00Z").encode()
        back = w.discover()
        for key in (adapters.ANNOTATION, controlplane.STATE_ANNOTATION):
            assert back["annotations"][key] == first["annotations"][key]
        assert back["annotations"][pacing.BACKOFF_ANNOTATION] is None
        assert pacing.BACKOFF_ANNOTATION not in w.parent["metadata"]["annotations"]


def test_a_slow_api_ends_the_call_within_its_bound(tmp_path):
    with world(tmp_path) as w:
        w.discover()
        w.api.delay = 3.0
        started = time.monotonic()
        slow = w.discover()
        assert time.monotonic() - started < 9   # Metacontroller's hook timeout is 10 s
        w.api.delay = 0.0
        assert adapters.ANNOTATION not in slow["annotations"]
        assert w.state().reason == controlplane.UNREACHABLE and "cannot reach" in w.state().message


def test_a_user_given_credentials_secret_wins_and_nothing_is_provisioned(tmp_path):
    with world(tmp_path) as w:
        w.related.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mine", "namespace": "storage"},
                          "data": {"username": b64("admin"), "password": b64(w.bootstrap_password())}})
        w.parent["spec"]["adapterDiscovery"] = {"credentialsSecretRef": {"name": "mine"}}
        w.discover()
        assert w.state().message.startswith("polling as admin")
        assert ("POST", "/api/v1/users", None) not in w.api.requests()


def _make_share(w, name: str) -> None:
    admin, url = w.admin(), w.server.url()
    for path, body in (("/api/v1/store/metadata", {"name": "meta", "type": "memory"}),
                       ("/api/v1/store/block/local", {"name": "blocks", "type": "memory"}),
                       ("/api/v1/shares", {"name": name, "metadata_store_id": "meta", "local_block_store": "blocks"})):
        made = requests.post(url + path, headers=admin, json=body, timeout=10)
        assert made.status_code in (200, 201), made.text


def _policy(w, share: str) -> dict:
    found = requests.get(w.server.url() + f"/api/v1/shares/{share.replace('/', '%2F')}/snapshot-policy",
                         headers=w.admin(), timeout=5)
    return found.json() if found.status_code == 200 else {}


def test_snapshot_policies_wait_for_their_share_are_applied_once_and_follow_the_spec(tmp_path):
    spec = {**factory.SPEC, "snapshotPolicies": [{"share": "/archive", "interval": "24h", "keepLast": 3}]}
    with world(tmp_path, spec=spec) as w:
        pending = w.discover()
        assert adapters.ANNOTATION in pending["annotations"]      # polling goes on
        assert w.state().reason == controlplane.SNAPSHOT_POLICY_PENDING and w.state().polling
        assert "share /archive does not exist yet" in w.state().message
        assert controlplane.read_applied(pending["annotations"]).snapshot_policies == ()

        _make_share(w, "/archive")
        w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED
        assert {k: _policy(w, "/archive")[k] for k in ("interval", "keep_last", "enabled")} == \
            {"interval": "24h0m0s", "keep_last": 3, "enabled": True}
        assert dict(controlplane.read_applied(w.last["annotations"]).snapshot_policies).keys() == {"/archive"}

        # Unchanged: nothing is sent, and no admin logs in.
        w.api.forget()
        w.discover()
        assert w.api.requests() == [("GET", ADAPTERS, None)]

        # Changed in the spec: applied again, as admin.
        w.parent["spec"]["snapshotPolicies"] = [{"share": "/archive", "interval": "6h", "ttl": "72h", "namePrefix": "k8s"}]
        w.discover()
        policy = _policy(w, "/archive")
        assert (policy["interval"], policy.get("name_prefix")) == ("6h0m0s", "k8s")
        assert ("PUT", "/api/v1/shares/%2Farchive/snapshot-policy", None) in w.api.requests()
        assert w.state().reason == controlplane.AUTHENTICATED


def test_an_expiring_token_is_refreshed_on_the_real_server_not_logged_in_again(tmp_path):
    spec = {**factory.SPEC, "identity": {"jwt": {"accessTokenDuration": "5s"}}}
    with world(tmp_path, spec=spec) as w:
        first = w.discover()
        w.api.forget()
        time.sleep(4.5)                  # past 80% of the 5 s access token
        again = w.discover()
        assert again["annotations"][adapters.ANNOTATION] == first["annotations"][adapters.ANNOTATION]
        assert w.api.requests() == [("POST", "/api/v1/auth/refresh", None), ("GET", ADAPTERS, None)]


def _settings(w) -> dict:
    found = requests.get(w.server.url() + "/api/v1/adapters/nfs/settings", headers=w.admin(), timeout=5)
    assert found.status_code == 200, found.text
    return found.json()


def test_an_account_that_exists_with_another_password_gets_the_secrets_password(tmp_path):
    """The Go operator made `k8s-operator`, or its Secret was deleted and the sync hook made a
    new one: DittoFS answers the create with 409, and the account's password is reset to the
    Secret's. Polling then works with it, and the old password no longer does."""
    with world(tmp_path) as w:
        w.discover()
        old = decoded(w.operator_secret(), "password")
        w.operator_secret()["data"]["password"] = b64("a-new-operator-password-0123456789")
        w.api.forget()
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": w.server.url()}) as (hook, _):
            w.hook = hook   # no token in memory
            found = w.discover()
        assert w.state() == controlplane.State(controlplane.AUTHENTICATED, "polling as k8s-operator")
        assert adapters.ANNOTATION in found["annotations"]
        sent = [(method, path) for method, path, _ in w.api.requests()]
        assert ("POST", "/api/v1/users") in sent
        assert ("POST", "/api/v1/users/k8s-operator/password") in sent
        w.server.login("k8s-operator", "a-new-operator-password-0123456789")
        refused = requests.post(w.server.url() + "/api/v1/auth/login", timeout=5,
                                json={"username": "k8s-operator", "password": old})
        assert refused.status_code == 401, refused.text


def test_after_the_account_had_to_be_made_again_the_portmapper_is_checked_again(tmp_path):
    """A control-plane store made anew has the portmapper off and no account: making the account
    again checks the portmapper again, although the NFS adapter did not change."""
    with world(tmp_path) as w:
        w.discover()
        assert _settings(w)["portmapper_enabled"] is True
        # What a store made anew looks like to the hook: the account gone, the portmapper off.
        off = requests.patch(w.server.url() + "/api/v1/adapters/nfs/settings", headers=w.admin(), timeout=5,
                             json={"portmapper_enabled": False})
        assert off.status_code == 200, off.text
        deleted = requests.delete(w.server.url() + "/api/v1/users/k8s-operator", headers=w.admin(), timeout=5)
        assert deleted.status_code in (200, 204), deleted.text
        assert _settings(w)["portmapper_enabled"] is False
        with servers.gunicorn({"DITTOFS_HOOK_API_URL_TEMPLATE": w.server.url()}) as (hook, _):
            w.hook = hook
            w.discover()
        assert w.state().reason == controlplane.AUTHENTICATED
        assert controlplane.read_applied(w.parent["metadata"]["annotations"]).portmapper == "nfs:12049"
        assert ("PATCH", "/api/v1/adapters/nfs/settings", None) in w.api.requests()
        assert _settings(w)["portmapper_enabled"] is True
