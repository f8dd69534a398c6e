"""The baseline for the HTTP benchmark: a Flask app that does only what any sync hook must.

`POST /sync` reads the body, parses it with orjson and answers a pre-serialized response of
the same size as the real hook's (BENCH_RESPONSE names the file), so the difference between
this and `hooks.app:create_app()` under the same gunicorn settings is the hook's own work.

    BENCH_RESPONSE=bench/results/workloads/w1.response.json \
        .venv/bin/gunicorn --config gunicorn.conf.py 'bench.bare_app:create_app()'
"""
import os
from pathlib import Path

import flask
import orjson

JSON = "application/json"


def create_app() -> flask.Flask:
    answer = Path(os.environ["BENCH_RESPONSE"]).read_bytes()
    app = flask.Flask("bare")

    @app.get("/healthz")
    def healthz():
        return flask.Response(b'{"status":"ok"}', mimetype=JSON)

    @app.post("/sync")
    def sync():
        orjson.loads(flask.request.get_data(cache=False))
        return flask.Response(answer, mimetype=JSON)

    return app


def create_core_app() -> flask.Flask:
    """The bare app plus the hook's core: parse, `sync.desired_state`, serialize. Nothing of
    hooks.app (ETag, metrics, call log, error mapping); for telling the two costs apart."""
    from hooks import settings, sync

    strategy = settings.Settings.from_env().apply_strategy
    app = flask.Flask("core")

    @app.get("/healthz")
    def healthz():
        return flask.Response(b'{"status":"ok"}', mimetype=JSON)

    @app.post("/sync")
    def sync_hook():
        answer = sync.desired_state(orjson.loads(flask.request.get_data(cache=False)), strategy=strategy)
        return flask.Response(orjson.dumps(answer, option=orjson.OPT_SORT_KEYS), mimetype=JSON)

    return app
