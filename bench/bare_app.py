"""The baseline for the HTTP benchmark: a Flask app that does only what any sync hook must.

`POST /sync` reads the body, parses it with orjson and serializes the real hook's answer to
it (BENCH_RESPONSE names the file; it is parsed once at start), so the difference between this
and `hooks.web.app:create_app()` under the same gunicorn settings is the hook's own work.

    BENCH_RESPONSE=bench/results/workloads/w1.response.json \
        .venv/bin/gunicorn --config gunicorn.conf.py 'bench.bare_app:create_app()'
"""
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
