"""The baseline for the HTTP benchmark: a Flask app that does only what any sync hook must.

`POST /sync` reads the body, parses it with orjson and serializes the real hook's answer to
it (BENCH_RESPONSE names the file; it is parsed once at start), so the difference between this
and `hooks.web.app:create_app()` under the same gunicorn settings is the hook's own work.

    BENCH_RESPONSE=bench/results/workloads/w1.response.json \
        .venv/bin/gunicorn --config gunicorn.conf.py 'bench.bare_app:create_app()'

`create_calls_app()` is the baseline of bench/calls.py: the least each of the hook's calls
needs, with nothing of the hook's.
"""
import base64
import hashlib
import os
from pathlib import Path

import flask
import orjson

JSON = "application/json"


def _app(name: str, answer_for) -> flask.Flask:
    """An app with /healthz and a /sync that answers `answer_for(parsed request)` as JSON bytes."""
    app = flask.Flask(name)

    @app.get("/healthz")
    def healthz():
        return flask.Response(b'{"status":"ok"}', mimetype=JSON)

    @app.post("/sync")
    def sync():
        return flask.Response(answer_for(orjson.loads(flask.request.get_data(cache=False))), mimetype=JSON)

    return app


def create_app() -> flask.Flask:
    answer = orjson.loads(Path(os.environ["BENCH_RESPONSE"]).read_bytes())
    return _app("bare", lambda _request: orjson.dumps(answer, option=orjson.OPT_SORT_KEYS))


def create_core_app() -> flask.Flask:
    """The bare app plus the hook's core: parse, then `sync.serialized_state` (the answer, as
    /sync writes it). Nothing of hooks.web.app (ETag, metrics, call log, error mapping); for telling
    the two costs apart."""
    from hooks.children import sync
    from hooks.web import settings

    strategy = settings.Settings.from_env().apply_strategy
    return _app("core", lambda request: sync.serialized_state(request, strategy=strategy).body)


def create_calls_app() -> flask.Flask:
    """The least each call of bench/calls.py needs:
    - `/sync`: a 304 when If-None-Match is the body's digest (read the body, hash it), else the
      W1 answer as `create_app` gives it;
    - `/discover`: parse the request; no ready replica in the related StatefulSet: a fixed
      answer; else one pooled `GET /api/v1/adapters` with a token from one login per process,
      to the URL of the related Secret, answered as the adapters and state annotations, or the
      state alone when the server cannot be reached.
    """
    import requests

    app = _app("calls", lambda _request: b"")
    answer = orjson.dumps(orjson.loads(Path(os.environ["BENCH_RESPONSE"]).read_bytes()), option=orjson.OPT_SORT_KEYS)
    session = requests.Session()
    session.trust_env = False
    tokens: dict[str, str] = {}
    not_ready = orjson.dumps({"annotations": {"dittofs.io/control-plane": "not ready"}, "attachments": [],
                              "resyncAfterSeconds": 600})
    unreachable = orjson.dumps({"annotations": {"dittofs.io/control-plane": "unreachable"}, "attachments": [],
                                "resyncAfterSeconds": 30})

    def sync_view():
        raw = flask.request.get_data(cache=False)
        etag = hashlib.sha256(raw).hexdigest()
        if flask.request.if_none_match.contains(etag):
            found = flask.Response(status=304)
            found.set_etag(etag)
            return found
        orjson.loads(raw)
        found = flask.Response(answer, mimetype=JSON)
        found.set_etag(etag)
        return found

    def discover():
        body = orjson.loads(flask.request.get_data(cache=False))
        related = body["related"]
        sts = next(iter(related.get("StatefulSet.apps/v1", {}).values()), None)
        if sts is None or not sts.get("status", {}).get("readyReplicas"):
            return flask.Response(not_ready, mimetype=JSON)
        secret = next(iter(related["Secret.v1"].values()))["data"]
        url = base64.b64decode(secret["server-url"]).decode()
        try:
            token = tokens.get(url)
            if token is None:
                token = tokens[url] = session.post(url + "/api/v1/auth/login", timeout=(1.5, 2.0), json={
                    key: base64.b64decode(secret[key]).decode() for key in ("username", "password")}).json()["access_token"]
            found = session.get(url + "/api/v1/adapters", headers={"Authorization": f"Bearer {token}"}, timeout=(1.5, 2.0))
        except requests.RequestException:
            return flask.Response(unreachable, mimetype=JSON)
        entries = sorted(({k: e[k] for k in ("type", "enabled", "running", "port")} for e in found.json()),
                         key=lambda e: e["type"])
        return flask.Response(orjson.dumps({"annotations": {
            "dittofs.io/adapters": orjson.dumps(entries).decode(), "dittofs.io/control-plane": "ok"},
            "attachments": [], "resyncAfterSeconds": 30}), mimetype=JSON)

    app.view_functions["sync"] = sync_view
    app.add_url_rule("/discover", "discover", discover, methods=["POST"])
    return app
