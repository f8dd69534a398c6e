"""The Flask app: routes, body limits and the mapping of every failure to a JSON answer.

Built by `create_app()` (Flask's application factory); importing this module does nothing.
The core below it never imports Flask, so it runs the same under the CLI and the tests.
"""
import hashlib
import logging

import flask
import orjson
from werkzeug import exceptions

from hooks import __version__, customize, discovery, errors, settings, sync

log = logging.getLogger("hooks.app")
JSON = "application/json"


def respond(body: dict, status: int = 200) -> flask.Response:
    """Canonical JSON (sorted keys), so equal answers are equal bytes."""
    return flask.Response(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), status=status, mimetype=JSON)


def read_body() -> bytes:
    """The raw request body. Reading enforces MAX_CONTENT_LENGTH (413)."""
    return flask.request.get_data(cache=False)


def read_json(raw: bytes | None = None) -> object:
    """The request body as a JSON object, or a 400."""
    raw = read_body() if raw is None else raw
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.HookError(400, "InvalidJSON", f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise errors.HookError(400, "InvalidJSON", "request body must be a JSON object")
    return body


def etag_of(raw: bytes, config: settings.Settings) -> str:
    """The sync answer's ETag: a digest of everything the answer depends on.

    The answer is a function of the request body, the hook's version and its apply strategy,
    so Metacontroller may reuse a cached answer whenever all three are the same.
    """
    digest = hashlib.blake2b(raw, digest_size=20, person=b"dittofs-sync")
    digest.update(f"\0{__version__}\0{config.apply_strategy}".encode())
    return digest.hexdigest()


def register_errors(app: flask.Flask) -> None:
    @app.errorhandler(errors.HookError)
    def hook_error(exc: errors.HookError):
        return respond(exc.body(), exc.status)

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


def register_routes(app: flask.Flask, config: settings.Settings) -> None:
    @app.get("/healthz")
    def healthz():
        return respond({"status": "ok", "version": __version__})

    @app.post("/sync")
    def sync_hook():
        raw = read_body()
        etag = etag_of(raw, config)
        if flask.request.if_none_match.contains(etag):
            # Metacontroller's webhook etag option: it reuses the answer it cached for this ETag.
            not_modified = flask.Response(status=304)
            not_modified.set_etag(etag)
            return not_modified
        answer = respond(sync.desired_state(read_json(raw), strategy=config.apply_strategy))
        answer.set_etag(etag)
        return answer

    @app.post("/customize")
    def customize_hook():
        return respond(customize.related_resources(read_json()))

    @app.post("/discover")
    def discover_hook():
        return respond(discovery.discover(read_json(), app.extensions[discovery.EXTENSION]))

    @app.post("/discover/customize")
    def discover_customize_hook():
        return respond(discovery.related_resources(read_json()))


def create_app(config: settings.Settings | None = None, discovery_client: discovery.Client | None = None) -> flask.Flask:
    config = config or settings.Settings.from_env()
    app = flask.Flask("hooks")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.extensions["dittofs_settings"] = config
    # One per process: its Session pools connections and its cache keeps login tokens.
    app.extensions[discovery.EXTENSION] = discovery_client or discovery.Client()
    register_errors(app)
    register_routes(app, config)
    return app
