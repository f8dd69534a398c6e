"""The HTTP surface against a real gunicorn process: routes, error codes, limits, survival."""
import json

import pytest
import requests

from tests import factory as f, servers

EXAMPLE = (servers.ROOT / "examples" / "sync-request.json").read_text()


@pytest.fixture(scope="module")
def url():
    with servers.gunicorn() as (base, _):
        yield base


def error_of(resp: requests.Response) -> dict:
    assert resp.headers["Content-Type"] == "application/json"
    assert "Traceback" not in resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    return body["error"]


def test_healthz(url):
    resp = requests.get(f"{url}/healthz", timeout=5)
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_sync_answers_the_bundled_example(url):
    resp = requests.post(f"{url}/sync", data=EXAMPLE, timeout=10)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"status", "children", "resyncAfterSeconds"}
    assert body["status"]["adapters"] == [{"type": "nfs", "port": 12049}, {"type": "smb", "port": 12445}]
    assert f.port_names(body) == ["adapter-mdns", "adapter-nfs", "adapter-nfs-pm", "adapter-smb", "adapter-wsd",
                                  "adapter-wsdmeta", "api", "metrics"]


def test_sync_is_byte_identical_across_calls_once_secrets_exist(url):
    first = requests.post(f"{url}/sync", data=EXAMPLE, timeout=10).json()
    req = json.loads(EXAMPLE)
    req["children"] = f.children_map(first["children"], "v2")
    # With the status written, every condition keeps its transition time (no clock read).
    req["parent"]["status"] = first["status"]
    a = requests.post(f"{url}/sync", json=req, timeout=10)
    b = requests.post(f"{url}/sync", json=req, timeout=10)
    assert a.status_code == 200 and a.content == b.content


def test_customize(url):
    req = {"controller": {}, "parent": f.parent(spec={**f.SPEC, "identity": {"jwt": {"secretRef": {"name": "j", "key": "k"}}}})}
    resp = requests.post(f"{url}/customize", json=req, timeout=5)
    assert resp.status_code == 200
    assert resp.json()["relatedResources"][0]["names"] == ["j"]


@pytest.mark.parametrize("body, status, code", [
    (b"not json", 400, "InvalidJSON"),
    (b"[1, 2, 3]", 400, "InvalidJSON"),
    (b"", 400, "InvalidJSON"),
    (json.dumps({"children": {}}).encode(), 422, "MissingParent"),
    (json.dumps(f.request(dict(f.parent(), kind="Pod"))).encode(), 422, "WrongKind"),
    (json.dumps(f.request(f.parent(spec={"storage": {}}))).encode(), 422, "InvalidSpec"),
    (json.dumps(f.request(f.parent(name="x" * 60))).encode(), 422, "InvalidName"),
])
def test_bad_requests_get_a_json_4xx(url, body, status, code):
    resp = requests.post(f"{url}/sync", data=body, timeout=5)
    assert resp.status_code == status
    assert error_of(resp)["code"] == code


def test_wrong_method_and_unknown_route_are_json(url):
    assert error_of(requests.get(f"{url}/sync", timeout=5))["code"] == "MethodNotAllowed"
    assert requests.get(f"{url}/nope", timeout=5).status_code == 404


def test_a_17_mib_body_is_refused_with_413(url):
    body = b'{"pad": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    resp = requests.post(f"{url}/sync", data=body, timeout=30)
    assert resp.status_code == 413
    assert error_of(resp)["code"] == "RequestEntityTooLarge"


def test_still_serving_after_bad_requests(url):
    for body in (b"{", b"[]", b'{"parent": 1}', b"\xff\xfe"):
        assert requests.post(f"{url}/sync", data=body, timeout=5).status_code in (400, 422)
    assert requests.post(f"{url}/sync", data=EXAMPLE, timeout=10).status_code == 200


def test_body_limit_and_apply_strategy_come_from_the_environment():
    env = {"DITTOFS_HOOK_MAX_BODY_BYTES": "4096", "DITTOFS_HOOK_APPLY_STRATEGY": "server-side-apply"}
    with servers.gunicorn(env) as (base, _):
        assert requests.post(f"{base}/sync", data=b" " * 5000 + b"{}", timeout=5).status_code == 413
        resp = requests.post(f"{base}/sync", data=EXAMPLE, timeout=10)
        assert resp.status_code == 200
        assert "adapter-pm-udp" in f.port_names(resp.json())


def test_sync_etag_and_304(url):
    first = requests.post(f"{url}/sync", data=EXAMPLE, timeout=10)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and len(etag) > 20
    again = requests.post(f"{url}/sync", data=EXAMPLE, timeout=10, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    other = json.loads(EXAMPLE)
    other["parent"]["metadata"]["generation"] = 2
    changed = requests.post(f"{url}/sync", json=other, timeout=10, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_etag_depends_on_the_apply_strategy():
    from hooks.web import app, settings
    raw = EXAMPLE.encode()
    dynamic = app.etag_of(raw, settings.Settings())
    assert dynamic == app.etag_of(raw, settings.Settings())
    assert dynamic != app.etag_of(raw, settings.Settings(apply_strategy="server-side-apply"))
    assert dynamic != app.etag_of(raw + b" ", settings.Settings())


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4094, 100_000])
def test_etag_is_the_sha256_of_the_whole_body_whatever_its_size(size):
    import hashlib
    from hooks import __version__
    from hooks.web import app, settings
    raw = bytes(range(256)) * (size // 256) + bytes(size % 256)
    whole = hashlib.sha256(f"dittofs-sync\0{__version__}\0dynamic-apply\0".encode() + raw).hexdigest()
    assert app.etag_of(raw, settings.Settings()) == whole


def test_chunked_bodies_are_read_whole_and_limited():
    def chunks(body: bytes):
        for start in range(0, len(body), 1000):
            yield body[start:start + 1000]

    with servers.gunicorn({"DITTOFS_HOOK_MAX_BODY_BYTES": "20000"}) as (base, _):
        ok = requests.post(f"{base}/sync", data=chunks(EXAMPLE.encode()), timeout=10)   # no Content-Length
        whole = requests.post(f"{base}/sync", data=EXAMPLE, timeout=10)
        # The same ETag: the same bytes were read (the answers differ in new random Secrets).
        assert ok.status_code == 200 and ok.headers["ETag"] == whole.headers["ETag"]
        big = requests.post(f"{base}/sync", data=chunks(b" " * 30000 + b"{}"), timeout=10)
        assert big.status_code == 413 and error_of(big)["code"] == "RequestEntityTooLarge"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200


def test_make_serve_answers_healthz():
    # Exactly the README's command; .venv already exists because `make test` made it.
    with servers.gunicorn(argv=["make", "--no-print-directory", "serve"]) as (base, _):
        resp = requests.get(f"{base}/healthz", timeout=5)
        assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_the_readme_example_output_is_what_the_hook_answers():
    """The README's first example: its printed lines are produced here from the bundled request,
    by the same three print statements, not pasted."""
    import json as json_module
    from pathlib import Path

    from hooks.web import app as web_app, settings as web_settings
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    shown = readme.split("answers\n\n```\n", 1)[1].split("```", 1)[0].strip().splitlines()
    client = web_app.create_app(web_settings.Settings()).test_client()
    answer = client.post("/sync", data=(root / "examples" / "sync-request.json").read_bytes(),
                         content_type="application/json").get_json()
    produced = [str([c["kind"] + "/" + c["metadata"]["name"] for c in answer["children"]]),
                str(answer["children"][-1]["spec"]["template"]["spec"]["containers"][0]["ports"]),
                f"{answer['status']['phase']} {answer['status']['adapters']}"]
    assert shown == produced
    assert json_module.loads((root / "examples" / "sync-request.json").read_text())["parent"]["metadata"]["name"] == "demo"
