"""Webhook authentication, /metrics and the JSON call log, against real gunicorn processes."""
import base64
import json
import logging

import pytest
import requests
from werkzeug import test

from hooks.web import app as hook_app, settings
from tests import factory as f, servers

SENTINEL = "S3NT1NEL-do-not-log-8f2c"
EXAMPLE = (servers.ROOT / "examples" / "sync-request.json").read_text()
POST_ROUTES = ("/sync", "/customize", "/discover", "/discover/customize")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def secured():
    with servers.gunicorn({"DITTOFS_HOOK_TOKEN": "t0ken"}) as (base, _):
        yield base


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": "t0ken"}, {"Authorization": "Basic dDBrZW4="}])
def test_every_post_route_refuses_a_missing_or_wrong_token(secured, route, headers):
    resp = requests.post(f"{secured}{route}", data=EXAMPLE, headers=headers, timeout=5)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.json()["error"]["code"] == "Unauthorized"


def test_the_right_token_is_let_through(secured):
    resp = requests.post(f"{secured}/sync", data=EXAMPLE, headers=bearer("t0ken"), timeout=10)
    assert resp.status_code == 200 and "children" in resp.json()


def test_probes_and_scrapes_need_no_token(secured):
    assert requests.get(f"{secured}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{secured}/metrics", timeout=5).status_code == 200


def test_token_file_is_reread_when_it_changes(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    client = hook_app.create_app(settings.Settings(token_file=str(token_file))).test_client()
    assert client.post("/sync", data=EXAMPLE, headers=bearer("first")).status_code == 200
    token_file.write_text("second-token\n")
    assert client.post("/sync", data=EXAMPLE, headers=bearer("first")).status_code == 401
    assert client.post("/sync", data=EXAMPLE, headers=bearer("second-token")).status_code == 200
    token_file.unlink()
    refused = client.post("/sync", data=EXAMPLE, headers=bearer("second-token"))
    assert refused.status_code == 503 and refused.json["error"]["code"] == "AuthUnavailable"


def test_token_file_under_gunicorn(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-a-secret")
    with servers.gunicorn({"DITTOFS_HOOK_TOKEN_FILE": str(token_file), "DITTOFS_HOOK_TOKEN": "ignored"}) as (base, _):
        assert requests.post(f"{base}/sync", data=EXAMPLE, headers=bearer("from-a-secret"), timeout=10).status_code == 200
        assert requests.post(f"{base}/sync", data=EXAMPLE, headers=bearer("ignored"), timeout=10).status_code == 401


def json_lines(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def stop(proc) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    return err


def test_unauthenticated_start_is_warned_and_calls_are_logged_without_secrets():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jwt", "namespace": "storage"},
              "data": {"k": base64.b64encode(SENTINEL.encode()).decode()}}
    spec = {**f.SPEC, "identity": {"jwt": {"secretRef": {"name": "jwt", "key": "k"}}}}
    req = f.request(f.parent(spec=spec), related=[secret])
    creds = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-admin-bootstrap-credentials", "namespace": "storage"},
             "data": {"username": base64.b64encode(b"admin").decode(), "password": base64.b64encode(SENTINEL.encode()).decode(),
                      "server-url": base64.b64encode(f"http://127.0.0.1:{servers.free_port()}".encode()).decode()}}
    discover = {"controller": {}, "object": f.parent(), "attachments": {}, "related": f.discovery_related([creds, f.statefulset()])}
    with servers.gunicorn() as (base, proc):
        assert requests.post(f"{base}/sync", json=req, timeout=10).status_code == 200
        assert requests.post(f"{base}/discover", json=discover, timeout=10).status_code == 200
        bad = f.request(f.parent(spec={"storage": {"metadataSize": SENTINEL}}))
        assert requests.post(f"{base}/sync", json=bad, timeout=10).status_code == 422
        assert requests.post(f"{base}/sync", data=SENTINEL, headers=bearer(SENTINEL), timeout=10).status_code == 400
        err = stop(proc)
    assert SENTINEL not in err
    lines = json_lines(err)
    assert any(l.get("level") == "warning" and "not authenticated" in l["message"] for l in lines)
    calls = [l for l in lines if l.get("message") == "hook call"]
    assert len(calls) == 4
    first = calls[0]
    assert first["route"] == "/sync" and first["parent"] == "storage/demo" and first["outcome"] == "ok"
    assert first["status"] == 200 and first["children"] == 7 and first["duration_ms"] > 0
    assert calls[1]["route"] == "/discover" and calls[1]["outcome"] == "ok"
    assert [c["status"] for c in calls[2:]] == [422, 400]
    assert calls[2]["outcome"] == "rejected"


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_every_worker():
    conflict = f.request(f.parent(adapters=[f.entry("smb", 8080)]))
    unknown = f.request(f.parent(adapters="garbage"))
    with servers.gunicorn({"WEB_CONCURRENCY": "2"}) as (base, _):
        for _ in range(10):
            # A new connection each time, so calls spread over both workers.
            assert requests.post(f"{base}/sync", data=EXAMPLE, headers={"Connection": "close"}, timeout=10).status_code == 200
        requests.post(f"{base}/sync", json=conflict, timeout=10)
        requests.post(f"{base}/sync", json=unknown, timeout=10)
        requests.post(f"{base}/sync", data=b"[]", timeout=10)
        text = requests.get(f"{base}/metrics", timeout=5).text
    assert metric(text, "dittofs_hook_requests_total", route="/sync", outcome="ok") == 12
    assert metric(text, "dittofs_hook_requests_total", route="/sync", outcome="rejected") == 1
    assert metric(text, "dittofs_hook_request_duration_seconds_count", route="/sync", outcome="ok") == 12
    assert metric(text, "dittofs_hook_children_total", kind="StatefulSet") == 12
    assert metric(text, "dittofs_hook_port_conflicts_total") == 1
    assert metric(text, "dittofs_hook_unknown_adapter_state_total") == 1


def test_tls_when_a_certificate_is_configured(tmp_path):
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    env = {"DITTOFS_HOOK_TLS_CERT": str(cert_file), "DITTOFS_HOOK_TLS_KEY": str(key_file)}
    with servers.gunicorn(env, scheme="https", verify=str(ca_file)) as (base, _):
        resp = requests.post(f"{base}/sync", data=EXAMPLE, timeout=10, verify=str(ca_file))
        assert resp.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{base}/healthz", timeout=5)   # not trusted without the CA


class Broken:
    """A stderr whose writes fail, as when its pipe is gone or its disk is full."""

    def write(self, _data):
        raise BrokenPipeError("gone")

    def flush(self):
        pass


def test_a_call_log_that_cannot_be_written_does_not_fail_the_call(monkeypatch):
    client = hook_app.create_app(settings.Settings()).test_client()
    monkeypatch.setattr("sys.stderr", Broken())
    resp = client.post("/sync", data=EXAMPLE)
    assert resp.status_code == 200 and {c["kind"] for c in resp.json["children"]} >= {"StatefulSet", "ConfigMap"}


def test_call_lines_follow_stderr_and_its_level(capsys):
    client = hook_app.create_app(settings.Settings()).test_client()
    resp = client.post("/sync", data=EXAMPLE)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "hook call" and line["route"] == "/sync" and line["children"] == len(resp.json["children"])
    calls = logging.getLogger("hooks.calls")
    calls.setLevel(logging.WARNING)
    try:
        assert client.post("/sync", data=EXAMPLE).status_code == 200
    finally:
        calls.setLevel(logging.NOTSET)
    assert "hook call" not in capsys.readouterr().err


def test_an_unexpected_error_is_a_500_so_metacontroller_keeps_the_children(monkeypatch, caplog):
    """Metacontroller applies a 200's children and deletes the rest: a bug must never answer 200."""
    def broken(*args, **kwargs):
        raise RuntimeError(SENTINEL)

    client = hook_app.create_app(settings.Settings()).test_client()
    monkeypatch.setattr("hooks.children.sync.serialized_state", broken)
    with caplog.at_level(logging.ERROR):
        resp = client.post("/sync", data=EXAMPLE)
    assert resp.status_code == 500
    assert resp.json == {"error": {"code": "InternalError", "message": "internal error; see the hook's log", "field": None}}
    assert SENTINEL not in resp.get_data(as_text=True)   # the cause goes to the log, not the answer
    assert SENTINEL in caplog.text


@pytest.mark.parametrize("terminated", [False, True], ids=["content-length", "server-ended-stream"])
@pytest.mark.parametrize("extra, status", [(0, 200), (1, 413)])
def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(extra, status, terminated):
    """Both ways a body is read: Werkzeug's stream cut at Content-Length, and gunicorn's own
    stream (`wsgi.input_terminated`), which is read up to one byte past the limit."""
    limit = len(EXAMPLE.encode()) + 10
    body = EXAMPLE.encode() + b" " * (10 + extra)
    hook = hook_app.create_app(settings.Settings(max_body_bytes=limit))
    environ = test.EnvironBuilder(path="/sync", method="POST", data=body).get_environ()
    if terminated:   # as gunicorn passes a chunked body: no Content-Length, the stream ends
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
    _, answered, _ = test.run_wsgi_app(hook, environ, buffered=True)
    assert int(answered.split()[0]) == status
