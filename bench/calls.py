"""CPU per hook call over HTTP, for each call Metacontroller makes of a server, next to a bare
Flask app doing the least the same answer needs (`bench.bare_app:create_calls_app()`), under the
project's gunicorn settings; the figures the README's budget per server is made of.

The calls (W1's parent, bench/workloads.py):
- `sync-304`: the W1 sync request with the ETag of its answer (a resync of an unchanged parent);
- `sync-200`: the same request without it (the parent or a child changed);
- `discover-steady`: a ready server whose API answers (a stand-in DittoFS on 127.0.0.1, in this
  process: login and `GET /api/v1/adapters`, so the hook's token is cached and each call is
  one GET, as in a steady state);
- `discover-refused`: a ready server whose API port refuses the connection (each call a poll:
  the request carries no backoff annotation, as the call the backoff timer makes);
- `discover-not-ready`: the StatefulSet has no ready replica (no DittoFS call).

Each app is started as bench/over_http.py starts it, checked to give the expected answer,
warmed up, then loaded with wrk (keep-alive POST, bench/post.lua) in turn, hook bare hook bare;
the CPU time of the gunicorn processes (from /proc) divided by the requests answered is the
per-call CPU. Only 127.0.0.1 is used.

    .venv/bin/python -m bench.calls [--workloads DIR] [--json OUT] [--seconds 4] [--rounds 3]
"""
import argparse
import base64
import contextlib
import json
import socket
import statistics
import sys
import threading
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

from bench import over_http, workloads
from hooks.dittofs import client, pacing
from hooks.request import adapters, controlplane

APPS = {"hook": "hooks.web.app:create_app()", "bare": "bench.bare_app:create_calls_app()"}
CALLS = ("sync-304", "sync-200", "discover-steady", "discover-refused", "discover-not-ready")
DISCOVER_CONNECTIONS = 4   # the hook's 2 workers x 2 threads: each call waits on DittoFS
ADAPTERS = orjson.dumps([
    {"id": str(i), "type": t, "enabled": True, "running": True, "port": port, "config": {},
     "created_at": "2026-11-20T09:14:03Z", "updated_at": "2026-11-20T09:14:03Z"}
    for i, (t, port) in enumerate((("nfs", 12049), ("smb", 12445), ("webdav", 12080)))])
LOGIN = orjson.dumps({"access_token": "bench-token", "refresh_token": "bench-refresh", "token_type": "Bearer",
                      "expires_in": 900})


class StandIn(BaseHTTPRequestHandler):
    """DittoFS's login and adapter list. Each answer is one write (headers and body), or the
    client's delayed ACK would stall every request 40 ms."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _answer(self, body: bytes, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.wfile.write(f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
                         + b"Content-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(LOGIN)

    def do_GET(self) -> None:
        self._answer(ADAPTERS)


@contextlib.contextmanager
def stand_in(handler: type[BaseHTTPRequestHandler] = StandIn):
    """A DittoFS stand-in on 127.0.0.1, in this process (its CPU is not the hook's); yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def discover_body(url: str, ready: int) -> bytes:
    """A DecoratorController request for W1's parent: polled with a Secret that names the API
    URL, its NFS portmapper already checked (no admin write), its StatefulSet related."""
    parent = workloads.parent(3)
    parent["spec"]["adapterDiscovery"] = {"credentialsSecretRef": {"name": "bench-creds"}}
    parent["metadata"]["annotations"][controlplane.APPLIED_ANNOTATION] = \
        controlplane.Applied(portmapper="nfs:12049").encode()
    ns, name = workloads.NAMESPACE, workloads.NAME
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-creds", "namespace": ns},
              "data": {"username": b64("k8s-operator"), "password": b64("bench-password"), "server-url": b64(url)}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns},
           "spec": {"replicas": 1}, "status": {"replicas": 1, "readyReplicas": ready}}
    return orjson.dumps({"controller": {}, "object": parent, "attachments": {}, "finalizing": False,
                         "related": {"Secret.v1": {f"{ns}/bench-creds": secret},
                                     "StatefulSet.apps/v1": {f"{ns}/{name}": sts}}}, option=orjson.OPT_SORT_KEYS)


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def check(call: str, app: str, status: int, answer: bytes) -> None:
    """Each app gives the answer the call is about (the hook's exactly; the bare app's in kind)."""
    if call == "sync-304":
        ok = status == 304
    elif call == "sync-200":
        ok = status == 200 and len(answer) > 1000
    else:
        annotations = orjson.loads(answer)["annotations"] if status == 200 else {}
        if app == "bare":
            ok = {"discover-steady": "ok", "discover-refused": "unreachable",
                  "discover-not-ready": "not ready"}[call] == annotations.get(controlplane.STATE_ANNOTATION)
        else:
            state = controlplane.read_state(annotations)
            reason = {"discover-steady": controlplane.AUTHENTICATED, "discover-refused": controlplane.UNREACHABLE,
                      "discover-not-ready": controlplane.NOT_READY}[call]
            ok = state is not None and state.reason == reason
            ok = ok and (adapters.ANNOTATION in annotations) == (call == "discover-steady")
            ok = ok and (pacing.BACKOFF_ANNOTATION in annotations) == (call == "discover-refused")
    if not ok:
        raise RuntimeError(f"{app} on {call}: HTTP {status}, not the expected answer: {answer[:300]!r}")


def run(args, log: Path, api_url: str) -> dict:
    w1 = args.workloads / "w1.json"
    bodies = {"sync-304": w1.read_bytes(), "sync-200": w1.read_bytes(),
              "discover-steady": discover_body(api_url, 1),
              "discover-refused": discover_body(f"http://127.0.0.1:{closed_port()}", 1),
              "discover-not-ready": discover_body(api_url, 0)}
    files = {}
    for call, body in bodies.items():
        files[call] = args.workloads / f"calls-{call}.json"
        files[call].write_bytes(body)
    runs: dict[tuple[str, str], list[float]] = {(call, app): [] for call in CALLS for app in APPS}
    with contextlib.ExitStack() as stack:
        started = {app: stack.enter_context(over_http.server(target, args.workloads / "w1.response.json", [], log))
                   for app, target in APPS.items()}
        etags = {}
        for app, (url, _) in started.items():
            etags[app] = post(f"{url}/sync", bodies["sync-200"])[2].get("ETag", "")
            for call in CALLS:
                path = "/sync" if call.startswith("sync") else "/discover"
                headers = {"If-None-Match": etags[app]} if call == "sync-304" else {}
                status, answer, _ = post(url + path, bodies[call], headers)
                check(call, app, status, answer)
        for call in CALLS:
            path = "/sync" if call.startswith("sync") else "/discover"
            connections = args.connections if call.startswith("sync") else DISCOVER_CONNECTIONS
            for round_ in range(args.rounds + 1):            # the first round warms up, discarded
                for app, (url, pid) in started.items():
                    env = {"BENCH_IF_NONE_MATCH": etags[app] if call == "sync-304" else ""}
                    with patched_env(env):
                        cpu = over_http.tree_cpu_seconds(pid)
                        found = over_http.wrk(url, files[call], args.seconds if round_ else 1.0,
                                              args.threads, connections, path=path)
                        if round_:
                            runs[(call, app)].append((over_http.tree_cpu_seconds(pid) - cpu) / found["requests"] * 1e6)
    results = {}
    for call in CALLS:
        hook, bare = runs[(call, "hook")], runs[(call, "bare")]
        results[call] = {"hook_cpu_us": statistics.median(hook), "bare_cpu_us": statistics.median(bare),
                         "ratio": statistics.median(h / b for h, b in zip(hook, bare)), "runs": {"hook": hook, "bare": bare}}
    return results


@contextlib.contextmanager
def patched_env(values: dict):
    import os

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=Path, default=workloads.DEFAULT_OUT)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--log", type=Path, default=workloads.ROOT / "bench" / "results" / "gunicorn-calls.log")
    args = parser.parse_args(argv[1:])
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_bytes(b"")
    with stand_in() as api_url:
        results = run(args, args.log, api_url)
    for call, found in results.items():
        print(f"{call:20s} hook {found['hook_cpu_us']:6.0f} us  bare {found['bare_cpu_us']:6.0f} us  "
              f"ratio {found['ratio']:.2f}x", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "rounds": args.rounds,
                                         "token_renewal_seconds": 900 * client.TOKEN_REUSE_FRACTION,
                                         "calls": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
