"""The Flask app: routes, authentication, body limits, metrics, call logs, and the mapping of
every failure to a JSON answer.

Built by `create_app()` (Flask's application factory); importing this module does nothing.
The core below it never imports Flask, so it runs the same under the CLI and the tests.
"""
import hashlib
import logging
import time
from datetime import datetime, timezone

import flask
import orjson
from werkzeug import exceptions

from hooks import __version__
from hooks.children import declared_status, sync
from hooks.dittofs import decorate, discovery
from hooks.request import declared, errors
from hooks.web import auth, customize, logs, metrics, settings

log = logging.getLogger("hooks.web.app")
JSON = "application/json"
SETTINGS, METRICS = "dittofs_settings", "dittofs_metrics"
KEEPER = "dittofs_keeper"
OPEN_ROUTES = ("/healthz", "/metrics")   # probes and scrapers carry no token
ETAG_PIECE = 2047   # CPython's hashlib releases the GIL for 2048 bytes or more


def respond(body: dict, status: int = 200) -> flask.Response:
    """Canonical JSON (sorted keys), so equal answers are equal bytes."""
    return flask.Response(sync.encode(body), status=status, mimetype=JSON)


def read_body(limit: int) -> bytes:
    """The raw request body, or a 413 when it is longer than `limit` bytes.

    Under gunicorn (which ends the input where the body ends, chunked or not) it is read from
    the server's own stream rather than through Flask's MAX_CONTENT_LENGTH, whose wrapper reads
    in 64 KiB steps through a loop of Python calls: that cost about 50 µs of a 33 KiB sync's
    CPU. Elsewhere Werkzeug's stream stops at Content-Length, checked first.
    """
    request = flask.request
    if request.content_length is not None and request.content_length > limit:
        raise exceptions.RequestEntityTooLarge()   # refused before reading a byte of it
    if not request.environ.get("wsgi.input_terminated"):
        return request.stream.read()
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise exceptions.RequestEntityTooLarge()
    return raw


def read_json(raw: bytes) -> dict:
    """The request body as a JSON object, or a 400."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.HookError(400, "InvalidJSON", f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise errors.HookError(400, "InvalidJSON", "request body must be a JSON object")
    return body


class HookRequest(flask.Request):
    """A request that also carries what its call's log line and metrics need: when it started,
    and what the route found out (a `before_request` hook and `flask.g` cost more)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.perf_counter()
        self.parent: str | None = None      # namespace/name, nothing else from the body
        self.children: int | None = None


def note_parent(body: dict, key: str) -> None:
    """Remember which parent a call is about, for its log line (name and namespace only)."""
    meta = body.get(key, {}).get("metadata") if isinstance(body.get(key), dict) else None
    if isinstance(meta, dict):
        # Strings only: str() of a value nested 1000 deep raises RecursionError.
        namespace, name = (value if isinstance(value, str) else "" for value in (meta.get("namespace"), meta.get("name")))
        flask.request.parent = f"{namespace[:253]}/{name[:253]}"


def etag_of(raw: bytes, config: settings.Settings) -> str:
    """The sync answer's ETag: a digest of everything the answer depends on.

    The answer is a function of the request body, the hook's version and its apply strategy,
    so Metacontroller may reuse a cached answer whenever all three are the same.
    """
    # sha256: hardware-accelerated on current CPUs, about twice as fast as blake2b here.
    digest = hashlib.sha256(f"dittofs-sync\0{__version__}\0{config.apply_strategy}\0".encode())
    # In pieces below hashlib's 2 KiB threshold for letting go of the GIL: given up, the GIL goes
    # to the worker's other thread, and taking it back took ~400 µs of wall time and three times
    # the hashing's CPU under load. The digest is the same.
    view = memoryview(raw)
    for start in range(0, len(view), ETAG_PIECE):
        digest.update(view[start:start + ETAG_PIECE])
    return digest.hexdigest()


def outcome_of(status: int) -> str:
    if status == 304:
        return "not_modified"
    return "ok" if status < 400 else "rejected" if status < 500 else "error"


def register_errors(app: flask.Flask) -> None:
    @app.errorhandler(errors.HookError)
    def hook_error(exc: errors.HookError):
        answer = respond(exc.body(), exc.status)
        if exc.status == 401:
            answer.headers["WWW-Authenticate"] = 'Bearer realm="dittofs-hooks"'
        return answer

    @app.errorhandler(exceptions.HTTPException)
    def http_error(exc: exceptions.HTTPException):
        code = exc.code or 500
        message = "request body is too large" if code == 413 else (exc.description or exc.name)
        return respond(errors.HookError(code, exc.name.replace(" ", ""), message).body(), code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # A bug, not bad input. Log the traceback here; the caller sees only a JSON line.
        log.exception("unhandled error on %s", flask.request.path)
        return respond(errors.HookError(500, "InternalError", "internal error; see the hook's log").body(), 500)


def register_auth(app: flask.Flask, token: auth.StaticToken | auth.FileToken | None) -> None:
    if token is None:
        log.warning("DITTOFS_HOOK_TOKEN and DITTOFS_HOOK_TOKEN_FILE are unset: hook calls are not authenticated")
        return

    @app.before_request
    def require_token():
        if flask.request.path in OPEN_ROUTES:
            return None
        try:
            expected = token.current()
        except auth.Unavailable as exc:
            log.error("refusing hook calls: %s", exc)
            raise errors.HookError(503, "AuthUnavailable", "the hook cannot read its token") from None
        if not auth.allowed(expected, flask.request.headers.get("Authorization")):
            raise errors.HookError(401, "Unauthorized", "a valid bearer token is required")
        return None


def register_observability(app: flask.Flask, meter: metrics.Metrics, call_log: logs.CallLog) -> None:
    app.request_class = HookRequest

    @app.after_request
    def record(answer: flask.Response):
        request: HookRequest = flask.request._get_current_object()
        seconds = time.perf_counter() - request.started
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        status = answer.status_code
        outcome = outcome_of(status)
        meter.observe_call(route, outcome, seconds)
        if request.method == "POST":
            call_log.write(route=route, parent=request.parent, outcome=outcome, status=status,
                           duration_ms=round(seconds * 1000, 3), children=request.children)
        return answer


def register_routes(app: flask.Flask, config: settings.Settings, meter: metrics.Metrics) -> None:
    def request_json() -> dict:
        return read_json(read_body(config.max_body_bytes))

    @app.get("/healthz")
    def healthz():
        return respond({"status": "ok", "version": __version__})

    @app.get("/metrics")
    def metrics_page():
        return flask.Response(meter.exposition(), mimetype="text/plain; version=0.0.4")

    @app.post("/sync")
    def sync_hook():
        raw = read_body(config.max_body_bytes)
        etag = etag_of(raw, config)
        if flask.request.if_none_match.contains(etag):
            # Metacontroller's webhook etag option: it reuses the answer it cached for this ETag.
            not_modified = flask.Response(status=304)
            not_modified.set_etag(etag)
            return not_modified
        body = read_json(raw)
        note_parent(body, "parent")
        result = sync.serialized_state(body, strategy=config.apply_strategy)
        flask.request.children = result.children
        meter.observe_sync(result.kinds, result.status)
        answer = flask.Response(result.body, mimetype=JSON)
        answer.set_etag(etag)
        return answer

    @app.post("/customize")
    def customize_hook():
        body = request_json()
        note_parent(body, "parent")
        return respond(customize.related_resources(body))

    @app.post("/discover")
    def discover_hook():
        body = request_json()
        note_parent(body, "object")
        result, did = app.extensions[discovery.EXTENSION].decide(body)
        meter.discovery_polls.labels(did).inc()
        return respond(result)

    @app.post("/discover/customize")
    def discover_customize_hook():
        body = request_json()
        note_parent(body, "parent")
        return respond(discovery.related_resources(body))

    for kind, resource in declared.RESOURCES.items():
        register_declared(app, resource, kind, request_json)


def register_declared(app: flask.Flask, resource: str, kind: str, request_json) -> None:
    """The customize, sync and finalize hooks of one declared kind, under /<resource>/."""
    def customize_hook():
        body = request_json()
        note_parent(body, "parent")
        return respond(decorate.related_resources(body, kind))

    # One function: a finalize request is a sync request that says `finalizing: true`.
    def sync_hook():
        body = request_json()
        note_parent(body, "object")
        outcome = app.extensions[KEEPER].sync(body, kind)
        return respond(declared_status.answer(outcome, body["object"], datetime.now(timezone.utc)))

    app.add_url_rule(f"/{resource}/customize", f"{resource}_customize", customize_hook, methods=["POST"])
    for hook in ("sync", "finalize"):
        app.add_url_rule(f"/{resource}/{hook}", f"{resource}_{hook}", sync_hook, methods=["POST"])


def create_app(config: settings.Settings | None = None, discovery_client: discovery.Discovery | None = None) -> flask.Flask:
    config = config or settings.Settings.from_env()
    logs.setup(config.log_level)
    app = flask.Flask("hooks")
    meter = metrics.Metrics()
    app.extensions[SETTINGS] = config
    app.extensions[METRICS] = meter
    # One per process: its Session pools connections and its cache keeps login tokens.
    app.extensions[discovery.EXTENSION] = discovery_client or discovery.Discovery(url_template=config.api_url_template)
    # The declared kinds' hooks share discovery's API client: one pool, one token cache.
    found = app.extensions[discovery.EXTENSION]
    app.extensions[KEEPER] = decorate.Keeper(found.api, found.url_template, trust=found.trust)
    register_errors(app)
    register_observability(app, meter, logs.CallLog())
    register_auth(app, auth.source(config.token, config.token_file))
    register_routes(app, config, meter)
    return app
