"""Adapter discovery against a real HTTP server on 127.0.0.1 (pytest-httpserver), driven
through the Flask app, polling with a user-given credentials Secret (the operator account that
the hook provisions itself is tested in test_discovery_account.py and against the real `dfs`).
A failed poll must answer 200 without the adapters annotation, quickly."""
import base64
import json
import logging
import socket
import threading
import time

import pytest
import requests
from werkzeug import Response

from hooks.dittofs import client as api
from hooks.dittofs import discovery
from hooks.request import adapters, controlplane
from hooks.web import app, settings

NAME, NAMESPACE = "demo", "ns"
PASSWORD = "s3ntinel-Pa55word"          # must never reach a log line
TOKEN = "t0ken-s3ntinel"
ADAPTERS = [
    {"id": "b2", "type": "smb", "enabled": True, "running": True, "port": 12445,
     "config": {}, "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-02T10:00:00Z"},
    {"id": "a1", "type": "nfs", "enabled": True, "running": True, "port": 12049,
     "config": {"x": 1}, "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-02T10:00:00Z"},
]
CANONICAL = ('[{"type":"nfs","enabled":true,"running":true,"port":12049},'
             '{"type":"smb","enabled":true,"running":true,"port":12445}]')
CREDS = "creds"
ADMIN_SECRET = f"{NAME}-admin-bootstrap-credentials"
PORTMAPPER_DONE = controlplane.Applied(portmapper="nfs:12049").encode()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def parent(spec_extra: dict | None = None, applied: str | None = PORTMAPPER_DONE) -> dict:
    """A DittoServer polled with the Secret `creds`; by default its NFS portmapper is already
    checked (the `dittofs.io/applied` annotation), so a poll makes no admin write."""
    annotations = {controlplane.APPLIED_ANNOTATION: applied} if applied is not None else {}
    return {
        "apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "annotations": annotations},
        "spec": {"storage": {"metadataSize": "1Gi"}, "adapterDiscovery": {"credentialsSecretRef": {"name": CREDS}},
                 **(spec_extra or {})},
    }


def secret(url: str | None, name: str = CREDS, **data: str) -> dict:
    values = {"username": "admin", "password": PASSWORD, **data}
    if url is not None:
        values["server-url"] = url
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {key: b64(value) for key, value in values.items() if value is not None}}


def request(*secrets: dict, spec_extra: dict | None = None, applied: str | None = PORTMAPPER_DONE) -> dict:
    # v2-style keys (namespace/name) on purpose: the hook must read metadata, not keys.
    related = {"Secret.v1": {f"{NAMESPACE}/{s['metadata']['name']}": s for s in secrets}}
    return {"controller": {}, "object": parent(spec_extra, applied), "attachments": {}, "related": related,
            "finalizing": False}


def make_client(clock: Clock | None = None, **timeouts):
    found = discovery.Discovery(api.Client(tokens=api.TokenCache(clock=clock or Clock()), **timeouts))
    return app.create_app(settings.Settings(), discovery_client=found).test_client()


def url_of(httpserver) -> str:
    return httpserver.url_for("/")


def serve_login(httpserver, token: str = TOKEN, expires_in: int = 900, oneshot: bool = False):
    expect = httpserver.expect_oneshot_request if oneshot else httpserver.expect_request
    expect(api.LOGIN_PATH, method="POST").respond_with_json(
        {"access_token": token, "refresh_token": "r", "token_type": "Bearer", "expires_in": expires_in})


def serve_api(httpserver, entries: list | None = None):
    serve_login(httpserver)
    httpserver.expect_request(api.ADAPTERS_PATH, method="GET",
                              headers={"Authorization": f"Bearer {TOKEN}"}).respond_with_json(
        ADAPTERS if entries is None else entries)


def calls(httpserver, path: str, method: str = "GET") -> list:
    return [req for req, _ in httpserver.log if req.path == path and req.method == method]


def discover(client, body: dict) -> dict:
    response = client.post("/discover", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def hook():
    return make_client()


@pytest.fixture
def release(httpserver):
    """An event that hanging handlers wait on, set at teardown. The server is single-threaded:
    one more request returns only once the hanging handler has finished, so nothing it does
    leaks into the next test's log."""
    event = threading.Event()
    yield event
    event.set()
    requests.get(httpserver.url_for("/drain"), timeout=10)


# --- success -------------------------------------------------------------------------------------

def test_success_writes_the_canonical_annotation(httpserver, hook):
    serve_api(httpserver)
    body = discover(hook, request(secret(url_of(httpserver))))

    assert body["annotations"][adapters.ANNOTATION] == CANONICAL
    assert body["attachments"] == [] and body["resyncAfterSeconds"] == 30.0 and "status" not in body
    assert controlplane.read_state(body["annotations"]) == controlplane.State("Authenticated", "polling as admin")
    assert body["annotations"][adapters.ANNOTATION] == adapters.canonical(adapters.parse_entries(json.dumps(ADAPTERS)))
    for volatile in ("id", "created_at", "updated_at", "config", "2024-05"):
        assert volatile not in body["annotations"][adapters.ANNOTATION]
    login = calls(httpserver, api.LOGIN_PATH, "POST")
    assert [req.get_json() for req in login] == [{"username": "admin", "password": PASSWORD}]


def test_api_order_does_not_change_the_annotation(httpserver):
    values = []
    for order in (ADAPTERS, list(reversed(ADAPTERS))):
        httpserver.clear()
        serve_api(httpserver, order)
        values.append(discover(make_client(), request(secret(url_of(httpserver))))["annotations"][adapters.ANNOTATION])
    assert values[0] == values[1] == CANONICAL


def test_secret_is_found_by_metadata_not_by_key_or_other_namespace(httpserver, hook):
    serve_api(httpserver)
    elsewhere = secret("http://dittofs.invalid:1")
    elsewhere["metadata"]["namespace"] = "other"
    body = request(secret(url_of(httpserver)))
    body["related"]["Secret.v1"] = {"whatever": body["related"]["Secret.v1"][f"{NAMESPACE}/{CREDS}"],
                                    f"other/{CREDS}": elsewhere}
    assert discover(hook, body)["annotations"][adapters.ANNOTATION] == CANONICAL


def test_credentials_secret_ref_is_used(httpserver, hook):
    serve_api(httpserver)
    body = request(secret(url_of(httpserver), name="my-creds"),
                   spec_extra={"adapterDiscovery": {"credentialsSecretRef": {"name": "my-creds"}}})
    assert discover(hook, body)["annotations"][adapters.ANNOTATION] == CANONICAL


def test_empty_adapter_list_is_a_known_empty_annotation(httpserver, hook):
    serve_api(httpserver, [])
    assert discover(hook, request(secret(url_of(httpserver))))["annotations"][adapters.ANNOTATION] == "[]"


@pytest.mark.parametrize(("interval", "seconds"), [("1m30s", 90.0), ("soon", 30.0), ("-5s", 30.0)])
def test_polling_interval_sets_resync(httpserver, hook, interval, seconds):
    serve_api(httpserver)
    extra = {"adapterDiscovery": {"pollingInterval": interval}}
    assert discover(hook, request(secret(url_of(httpserver)), spec_extra=extra))["resyncAfterSeconds"] == seconds
    failed = discover(hook, request(spec_extra=extra))
    assert failed["resyncAfterSeconds"] == seconds and adapters.ANNOTATION not in failed["annotations"]


# --- failures keep the current annotation ------------------------------------------------------

def assert_kept(body: dict, reason: str | None = None) -> None:
    """Adapter state untouched (no adapters annotation), no status; the state says why."""
    assert adapters.ANNOTATION not in body["annotations"]
    assert "status" not in body and body["attachments"] == []
    state = controlplane.read_state(body["annotations"])
    assert state is not None and not state.polling
    if reason is not None:
        assert state.reason == reason, state


def test_no_secret_keeps_state_and_calls_nothing(httpserver, hook):
    serve_api(httpserver)
    assert_kept(discover(hook, request()), controlplane.CREDENTIALS_MISSING)
    assert httpserver.log == []


@pytest.mark.parametrize("missing", ["username", "password"])
def test_secret_without_a_key_keeps_state(httpserver, hook, missing):
    serve_api(httpserver)
    broken = secret(url_of(httpserver))
    del broken["data"][missing]
    assert_kept(discover(hook, request(broken)))
    assert httpserver.log == []


def test_secret_value_not_base64_keeps_state(httpserver, hook):
    serve_api(httpserver)
    broken = secret(url_of(httpserver))
    broken["data"]["password"] = "%%%not base64%%%"
    assert_kept(discover(hook, request(broken)))
    assert httpserver.log == []


def test_refused_login_keeps_state(httpserver, hook):
    httpserver.expect_request(api.LOGIN_PATH, method="POST").respond_with_json(
        {"code": "UNAUTHORIZED", "message": "invalid credentials"}, status=401)
    assert_kept(discover(hook, request(secret(url_of(httpserver)))), controlplane.CREDENTIALS_REFUSED)
    assert calls(httpserver, api.ADAPTERS_PATH) == []


def test_login_without_token_keeps_state(httpserver, hook):
    httpserver.expect_request(api.LOGIN_PATH, method="POST").respond_with_json({"token": "x"})
    assert_kept(discover(hook, request(secret(url_of(httpserver)))))
    assert calls(httpserver, api.ADAPTERS_PATH) == []


def test_adapters_server_error_keeps_state(httpserver, hook):
    serve_login(httpserver)
    httpserver.expect_request(api.ADAPTERS_PATH).respond_with_json({"code": "INTERNAL"}, status=500)
    assert_kept(discover(hook, request(secret(url_of(httpserver)))))
    assert len(calls(httpserver, api.ADAPTERS_PATH)) == 1


@pytest.mark.parametrize("payload", [
    json.dumps({"adapters": ADAPTERS}),                                            # not a list
    json.dumps([{"type": "nfs", "enabled": "yes", "running": True, "port": 1}]),   # wrong item type
    json.dumps([{"type": "nfs", "running": True, "port": 2049}]),                 # missing field
    "<html>oops</html>",                                                           # not JSON
])
def test_adapters_body_of_the_wrong_shape_keeps_state(httpserver, hook, payload):
    serve_login(httpserver)
    httpserver.expect_request(api.ADAPTERS_PATH).respond_with_data(payload, content_type="application/json")
    assert_kept(discover(hook, request(secret(url_of(httpserver)))))
    assert len(calls(httpserver, api.ADAPTERS_PATH)) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_keeps_state(hook):
    started = time.monotonic()
    assert_kept(discover(hook, request(secret(f"http://127.0.0.1:{closed_port()}"))), controlplane.UNREACHABLE)
    assert time.monotonic() - started < 5


def test_unresolvable_host_keeps_state(hook):
    started = time.monotonic()
    assert_kept(discover(hook, request(secret("http://dittofs.invalid:8080"))))
    assert time.monotonic() - started < 5


def test_server_url_that_is_not_http_keeps_state(hook):
    assert_kept(discover(hook, request(secret("ftp://somewhere"))))


def hang(release: threading.Event, seconds: float = 8.0):
    def handler(_request):
        release.wait(seconds)
        return Response("[]", content_type="application/json")
    return handler


def test_hanging_login_answers_within_five_seconds(httpserver, release):
    # The production timeouts, not test ones: the bound must hold as shipped.
    httpserver.expect_request(api.LOGIN_PATH, method="POST").respond_with_handler(hang(release))
    started = time.monotonic()
    body = discover(make_client(), request(secret(url_of(httpserver))))
    assert time.monotonic() - started < 5
    assert_kept(body)


def test_hanging_adapters_answers_within_five_seconds(httpserver, release):
    serve_login(httpserver)
    httpserver.expect_request(api.ADAPTERS_PATH).respond_with_handler(hang(release))
    started = time.monotonic()
    body = discover(make_client(), request(secret(url_of(httpserver))))
    assert time.monotonic() - started < 5
    assert_kept(body)


def test_total_deadline_shortens_later_calls(httpserver, release):
    # Budget 3 s: login may wait 1.5 s and takes 1.3 s; the adapters call then gets half of
    # what is left (~0.85 s), not a fresh 2 s read timeout (which would end at ~3.3 s).
    def slow_login(_request):
        release.wait(1.3)
        return Response(json.dumps({"access_token": TOKEN, "expires_in": 900}), content_type="application/json")
    httpserver.expect_request(api.LOGIN_PATH, method="POST").respond_with_handler(slow_login)
    httpserver.expect_request(api.ADAPTERS_PATH).respond_with_handler(hang(release))
    started = time.monotonic()
    body = discover(make_client(budget=3.0), request(secret(url_of(httpserver))))
    elapsed = time.monotonic() - started
    assert_kept(body)
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 1
    assert 1.3 <= elapsed < 3.0


# --- tokens --------------------------------------------------------------------------------------

def test_token_is_reused_across_calls(httpserver, hook):
    serve_api(httpserver)
    for _ in range(2):
        assert discover(hook, request(secret(url_of(httpserver))))["annotations"][adapters.ANNOTATION] == CANONICAL
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 1
    assert len(calls(httpserver, api.ADAPTERS_PATH)) == 2


def clocked(httpserver) -> tuple[Clock, object, dict]:
    """A hook whose token cache runs on a clock the test moves, and a request for it."""
    clock = Clock()
    return clock, make_client(clock), request(secret(url_of(httpserver)))


def test_token_is_renewed_after_eighty_percent_of_its_lifetime(httpserver):
    serve_login(httpserver, expires_in=100)
    httpserver.expect_request(api.ADAPTERS_PATH).respond_with_json(ADAPTERS)
    clock, hook, body = clocked(httpserver)

    discover(hook, body)
    clock.now += 79
    discover(hook, body)
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 1
    clock.now += 2                       # 81 s: past 80% of 100 s
    discover(hook, body)
    # The refresh token was tried first (this server has no refresh route: 500), then a login.
    assert [req.get_json() for req in calls(httpserver, api.REFRESH_PATH, "POST")] == [{"refresh_token": "r"}]
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 2


def test_a_token_due_for_renewal_is_refreshed_before_any_new_login(httpserver):
    serve_login(httpserver, expires_in=100)
    httpserver.expect_request(api.REFRESH_PATH, method="POST", json={"refresh_token": "r"}).respond_with_json(
        {"access_token": "refreshed", "refresh_token": "r2", "expires_in": 100})
    httpserver.expect_request(api.ADAPTERS_PATH, headers={"Authorization": "Bearer refreshed"}).respond_with_json(ADAPTERS)
    httpserver.expect_request(api.ADAPTERS_PATH).respond_with_json(ADAPTERS)
    clock, hook, body = clocked(httpserver)
    discover(hook, body)
    clock.now += 81
    assert discover(hook, body)["annotations"][adapters.ANNOTATION] == CANONICAL
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 1
    assert calls(httpserver, api.ADAPTERS_PATH)[-1].headers["Authorization"] == "Bearer refreshed"
    clock.now += 81                      # the next refresh uses the new refresh token
    discover(hook, body)
    assert [req.get_json()["refresh_token"] for req in calls(httpserver, api.REFRESH_PATH, "POST")] == ["r", "r2"]


def test_tokens_are_per_server_and_user(httpserver, hook):
    serve_api(httpserver)
    discover(hook, request(secret(url_of(httpserver))))
    discover(hook, request(secret(url_of(httpserver), username="someone-else")))
    assert [req.get_json()["username"] for req in calls(httpserver, api.LOGIN_PATH, "POST")] == ["admin", "someone-else"]


def test_rejected_token_means_one_new_login_then_success(httpserver, hook):
    serve_login(httpserver, token="old", oneshot=True)     # oneshot handlers win while they last
    serve_login(httpserver, token="new")
    httpserver.expect_request(api.ADAPTERS_PATH, headers={"Authorization": "Bearer old"}).respond_with_json(
        {"code": "UNAUTHORIZED"}, status=401)
    httpserver.expect_request(api.ADAPTERS_PATH, headers={"Authorization": "Bearer new"}).respond_with_json(ADAPTERS)

    assert discover(hook, request(secret(url_of(httpserver))))["annotations"][adapters.ANNOTATION] == CANONICAL
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 2
    assert len(calls(httpserver, api.ADAPTERS_PATH)) == 2
    # The new token is the one cached.
    discover(hook, request(secret(url_of(httpserver))))
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 2


def test_token_rejected_twice_gives_up_after_one_retry(httpserver, hook):
    serve_login(httpserver)
    httpserver.expect_request(api.ADAPTERS_PATH).respond_with_json({"code": "UNAUTHORIZED"}, status=401)
    assert_kept(discover(hook, request(secret(url_of(httpserver)))))
    assert len(calls(httpserver, api.LOGIN_PATH, "POST")) == 2
    assert len(calls(httpserver, api.ADAPTERS_PATH)) == 2


# --- NFS portmapper (an admin write, due once per NFS adapter) --------------------------------------

def serve_settings(httpserver, enabled: bool, patch_status: int = 200):
    httpserver.expect_request(api.NFS_SETTINGS_PATH, method="GET").respond_with_json(
        {"port": 12049, api.PORTMAPPER_FIELD: enabled})
    httpserver.expect_request(api.NFS_SETTINGS_PATH, method="PATCH").respond_with_json(
        {api.PORTMAPPER_FIELD: True}, status=patch_status)
    httpserver.expect_request(api.ADAPTERS_PATH + "/nfs", method="PUT").respond_with_json(ADAPTERS[1])


def due(httpserver, *extra: dict) -> dict:
    """A request whose portmapper check is due, with the admin's bootstrap Secret."""
    return request(secret(url_of(httpserver), username="poller"),
                   secret(None, name=ADMIN_SECRET, username="admin", password="adm1n"), *extra, applied=None)


def logins(httpserver) -> list[str]:
    return [req.get_json()["username"] for req in calls(httpserver, api.LOGIN_PATH, "POST")]


def test_portmapper_is_enabled_once_as_admin_when_nfs_reports_it_off(httpserver, hook):
    serve_api(httpserver)
    serve_settings(httpserver, enabled=False)
    body = discover(hook, due(httpserver))
    assert body["annotations"][adapters.ANNOTATION] == CANONICAL
    patches = calls(httpserver, api.NFS_SETTINGS_PATH, "PATCH")
    assert [req.get_json() for req in patches] == [{api.PORTMAPPER_FIELD: True}]
    assert logins(httpserver) == ["poller", "admin"]   # the polling account, then admin for the write
    # No adapter restart through the API (it can hang on connected clients): the applied
    # annotation rolls the pod instead (test_sync).
    assert calls(httpserver, api.ADAPTERS_PATH + "/nfs", "PUT") == []
    assert controlplane.read_applied(body["annotations"]).portmapper == "nfs:12049"
    # Recorded as done: the next poll reads the adapters only.
    again = request(secret(url_of(httpserver)), applied=body["annotations"][controlplane.APPLIED_ANNOTATION])
    before = len(httpserver.log)
    discover(hook, again)
    assert [req.path for req, _ in httpserver.log[before:]] == [api.ADAPTERS_PATH]


def test_portmapper_left_alone_when_already_on(httpserver, hook):
    serve_api(httpserver)
    serve_settings(httpserver, enabled=True)
    body = discover(hook, due(httpserver))
    assert len(calls(httpserver, api.NFS_SETTINGS_PATH, "GET")) == 1
    assert calls(httpserver, api.NFS_SETTINGS_PATH, "PATCH") == []
    assert calls(httpserver, api.ADAPTERS_PATH + "/nfs", "PUT") == []   # nothing to restart for
    assert controlplane.read_applied(body["annotations"]).portmapper == "nfs:12049"


def test_a_new_nfs_port_checks_the_portmapper_again(httpserver, hook):
    moved = [{**ADAPTERS[1], "port": 2049}, ADAPTERS[0]]
    serve_api(httpserver, moved)
    serve_settings(httpserver, enabled=True)
    body = discover(hook, request(secret(url_of(httpserver)),
                                  secret(None, name=ADMIN_SECRET, username="admin", password="adm1n")))
    assert len(calls(httpserver, api.NFS_SETTINGS_PATH, "GET")) == 1
    assert controlplane.read_applied(body["annotations"]).portmapper == "nfs:2049"


@pytest.mark.parametrize("entries", [
    [ADAPTERS[0]],                                                       # SMB only
    [{**ADAPTERS[1], "running": False}, ADAPTERS[0]],                    # NFS not running
    [{**ADAPTERS[1], "enabled": False}],                                 # NFS not enabled
])
def test_portmapper_untouched_without_an_active_nfs_adapter(httpserver, hook, entries):
    serve_api(httpserver, entries)
    serve_settings(httpserver, enabled=False)
    body = discover(hook, due(httpserver))
    assert body["annotations"][adapters.ANNOTATION] == adapters.canonical(adapters.parse_entries(json.dumps(entries)))
    assert calls(httpserver, api.NFS_SETTINGS_PATH, "GET") == []
    assert calls(httpserver, api.NFS_SETTINGS_PATH, "PATCH") == []
    assert logins(httpserver) == ["poller"]   # the polling account only


def test_failed_portmapper_patch_still_returns_the_annotation_and_says_what_waits(httpserver, hook, caplog):
    serve_api(httpserver)
    serve_settings(httpserver, enabled=False, patch_status=500)
    body = discover(hook, due(httpserver))
    assert body["annotations"][adapters.ANNOTATION] == CANONICAL
    assert len(calls(httpserver, api.NFS_SETTINGS_PATH, "PATCH")) == 1
    assert any("portmapper" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    state = controlplane.read_state(body["annotations"])
    assert state.reason == controlplane.ADMIN_WRITE_BLOCKED and state.polling
    assert "enable the NFS portmapper waits: enable the NFS portmapper: HTTP 500" in state.message
    assert controlplane.read_applied(body["annotations"]).portmapper is None   # due again next time


def test_a_plain_text_403_is_read_and_the_write_waits_with_a_hint(httpserver, hook):
    serve_api(httpserver)
    httpserver.expect_request(api.NFS_SETTINGS_PATH, method="GET").respond_with_data(
        "Admin access required\n", status=403, content_type="text/plain")
    body = discover(hook, due(httpserver))
    state = controlplane.read_state(body["annotations"])
    assert state.reason == controlplane.ADMIN_WRITE_BLOCKED
    assert "HTTP 403 (Admin access required)" in state.message
    assert "identity.admin.passwordSecretRef" in state.message


def test_no_admin_secret_means_the_write_waits_and_says_what_to_set(httpserver, hook):
    serve_api(httpserver)
    body = discover(hook, request(secret(url_of(httpserver)), applied=None))
    assert body["annotations"][adapters.ANNOTATION] == CANONICAL
    state = controlplane.read_state(body["annotations"])
    assert state.reason == controlplane.ADMIN_WRITE_BLOCKED
    assert f"Secret {ADMIN_SECRET} not found" in state.message and "identity.admin.passwordSecretRef" in state.message
    assert calls(httpserver, api.NFS_SETTINGS_PATH) == []


# --- logs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("setup", ["login401", "adapters500", "adapters_bad", "refused", "dns", "bad_patch"])
def test_credentials_never_reach_the_log(httpserver, hook, caplog, setup):
    caplog.set_level(logging.DEBUG)
    url = url_of(httpserver)
    if setup == "login401":
        httpserver.expect_request(api.LOGIN_PATH).respond_with_json({"code": "UNAUTHORIZED"}, status=401)
    elif setup == "refused":
        url = f"http://127.0.0.1:{closed_port()}"
    elif setup == "dns":
        url = "http://dittofs.invalid:8080"
    else:
        serve_login(httpserver)
        status, payload = {"adapters500": (500, {"code": "INTERNAL"}), "adapters_bad": (200, {"no": "list"}),
                           "bad_patch": (200, ADAPTERS)}[setup]
        httpserver.expect_request(api.ADAPTERS_PATH).respond_with_json(payload, status=status)
        serve_settings(httpserver, enabled=False, patch_status=500)
    admin = secret(None, name=ADMIN_SECRET, username="admin", password=PASSWORD)
    discover(hook, request(secret(url), admin, applied=None if setup == "bad_patch" else PORTMAPPER_DONE))

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "hooks.dittofs.discovery"]
    assert len(warnings) == 1
    assert f"{NAMESPACE}/{NAME}" in warnings[0].getMessage()
    for secret_value in (PASSWORD, TOKEN, b64(PASSWORD)):
        assert secret_value not in caplog.text


def test_credentials_repr_hides_the_password():
    creds = discovery.Credentials("http://x:1", "admin", PASSWORD)
    assert PASSWORD not in repr(creds)


# --- customize -----------------------------------------------------------------------------------

def test_customize_asks_for_the_admin_secret_the_polling_secret_and_the_statefulset(hook):
    bare = {**parent(), "spec": {"storage": {"metadataSize": "1Gi"}}}
    response = hook.post("/discover/customize", json={"controller": {}, "parent": bare})
    assert response.status_code == 200
    assert response.get_json() == {"relatedResources": [
        {"apiVersion": "v1", "resource": "secrets", "namespace": NAMESPACE,
         "names": [ADMIN_SECRET, f"{NAME}-manager-credentials", f"{NAME}-operator-credentials"]},
        {"apiVersion": "apps/v1", "resource": "statefulsets", "namespace": NAMESPACE, "names": [NAME]},
        *({"apiVersion": "dittofs.dittofs.com/v1alpha1", "resource": r, "namespace": NAMESPACE}
          for r in ("dittoshares", "dittousers", "dittogroups"))]}
    response = hook.post("/discover/customize", json={"controller": {}, "parent": parent(
        {"identity": {"admin": {"passwordSecretRef": {"name": "admin-now", "key": "pw"}}}})})
    assert response.get_json()["relatedResources"][0]["names"] == ["admin-now", CREDS, f"{NAME}-manager-credentials"]


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "key"), [("/discover", "object"), ("/discover/customize", "parent")])
def test_bad_parent_is_a_422_naming_the_field(hook, path, key):
    wrong_kind = {**parent(), "kind": "Pod"}
    response = hook.post(path, json={"controller": {}, key: wrong_kind})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == f"{key}.kind"

    bad_spec = parent({"controlPlane": {"port": 0}})
    response = hook.post(path, json={"controller": {}, key: bad_spec})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"].startswith(f"{key}.spec.controlPlane")


def test_missing_object_is_a_422(hook):
    response = hook.post("/discover", json={"controller": {}, "parent": parent()})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "object"


# --- pure parts ----------------------------------------------------------------------------------

def test_default_url_is_the_api_service():
    assert discovery.default_url("demo", "team-a", 9000) == "http://demo-api.team-a.svc.cluster.local:9000"


def test_credentials_without_server_url_use_the_fallback():
    found = discovery.read_credentials(secret(None), "s", discovery.default_url(NAME, NAMESPACE, 8080))
    assert (found.url, found.username, found.password) == (
        "http://demo-api.ns.svc.cluster.local:8080", "admin", PASSWORD)


def test_server_url_trailing_slash_is_dropped():
    assert discovery.read_credentials(secret("http://h:1/ "), "s", "unused").url == "http://h:1"


def test_default_url_uses_the_control_plane_port_and_the_template():
    body = request(spec_extra={"controlPlane": {"port": 9000}})
    assert discovery.Discovery().target(body).url == "http://demo-api.ns.svc.cluster.local:9000"
    custom = discovery.Discovery(url_template="{scheme}://{name}-api.{namespace}.svc.example.org:{port}")
    assert custom.target(body).url == "http://demo-api.ns.svc.example.org:9000"


def test_answer_never_has_status():
    target = discovery.Discovery().target(request())
    outcome = discovery.Outcome(controlplane.State("Unreachable", "x"), controlplane.Applied())
    assert set(discovery.answer(target, outcome)) == {"annotations", "attachments", "resyncAfterSeconds"}
    assert adapters.ANNOTATION not in discovery.answer(target, outcome)["annotations"]
    outcome.entries = []
    assert discovery.answer(target, outcome)["annotations"][adapters.ANNOTATION] == "[]"


def test_token_cache_expiry_and_drop():
    clock = Clock()
    cache = api.TokenCache(clock=clock)
    cache.put(("u", "a"), "t1", "r1", 10)
    clock.now += 7.9
    assert cache.access(("u", "a")) == "t1"
    cache.drop(("u", "a"), "other")          # not the cached token: kept
    assert cache.access(("u", "a")) == "t1"
    cache.drop(("u", "a"), "t1")
    assert cache.get(("u", "a")) is None
    cache.put(("u", "a"), "t2", "r2", 10)
    clock.now += 8.0
    assert cache.access(("u", "a")) is None       # past 80%: renew ...
    assert cache.get(("u", "a")).refresh == "r2"  # ... with the refresh token, for a while
    clock.now += 10
    assert cache.get(("u", "a")) is None
    cache.put(("u", "a"), "t4", "r4", 10, refresh_expires_in=3600)   # the spec's refreshTokenDuration
    clock.now += 1000
    assert cache.access(("u", "a")) is None and cache.get(("u", "a")).refresh == "r4"
    cache.put(("u", "a"), "t3", None, 0)     # unknown lifetime: good for no later poll
    assert cache.access(("u", "a")) is None


def test_one_outage_reads_the_same_whichever_worker_and_step_meets_it(httpserver):
    """Workers poll independently: one holds a token (it fails listing adapters), one has none
    (it fails logging in). The state annotation must not flip between them."""
    serve_api(httpserver)
    warm, cold = make_client(), make_client()
    body = request(secret(url_of(httpserver)))
    discover(warm, body)                     # `warm` now holds a token
    httpserver.stop()                        # the server goes away
    try:
        states = [controlplane.read_state(discover(client, body)["annotations"]) for client in (warm, cold)]
    finally:
        httpserver.start()
    assert states[0] == states[1] and states[0].reason == controlplane.UNREACHABLE


def test_a_disabled_operator_account_is_reported_not_made_again(httpserver):
    """Only a 401 (no such user, another password) is for provisioning; 403 (disabled) is not."""
    httpserver.expect_request(api.LOGIN_PATH, method="POST").respond_with_json(
        {"type": "about:blank", "title": "Forbidden", "status": 403, "detail": "User account is disabled"}, status=403)
    found = discovery.Discovery(api.Client(tokens=api.TokenCache(clock=Clock())),
                                url_template=url_of(httpserver).rstrip("/"))
    hook = app.create_app(settings.Settings(), discovery_client=found).test_client()
    bare = {**parent(), "spec": {"storage": {"metadataSize": "1Gi"}}}
    operator = secret(None, name=f"{NAME}-operator-credentials", username="k8s-operator", password="op")
    admin = secret(None, name=ADMIN_SECRET, username="admin", password="adm1n")
    body = {"controller": {}, "object": bare, "attachments": {}, "finalizing": False,
            "related": {"Secret.v1": {s["metadata"]["name"]: s for s in (operator, admin)}}}
    answer = discover(hook, body)
    state = controlplane.read_state(answer["annotations"])
    assert state.reason == controlplane.CREDENTIALS_REFUSED and "User account is disabled" in state.message
    assert logins(httpserver) == ["k8s-operator"]                       # admin never logged in
    assert calls(httpserver, "/api/v1/users", "POST") == []
