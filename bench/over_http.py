"""The sync hook over HTTP next to a bare Flask app, all under the project's gunicorn settings.

For each workload, three servers are started exactly as `make serve` starts the hook:
`gunicorn --config gunicorn.conf.py APP` with HOST=127.0.0.1 and a free PORT, where APP is
- `hooks.web.app:create_app()`: the hook as deployed;
- `bench.bare_app:create_core_app()`: bare Flask + `sync.serialized_state`, without
  what hooks.web.app adds (ETag, metrics, call log, error mapping), to tell the two costs apart;
- `bench.bare_app:create_app()`: parses the request and serializes the hook's answer to it
  (parsed once at start): what any sync hook must do.
Each is checked to answer the workload's recorded answer byte for byte, warmed up, then loaded
with wrk (keep-alive, POST via bench/post.lua) in turn, hook core bare hook core bare, so that
drift on a shared machine hits all alike. Besides wrk's throughput and latency, the servers'
CPU time per request is read from /proc (master and workers): it is what a request costs,
and much less disturbed by other load on the machine than throughput is.

    .venv/bin/python -m bench.over_http [--workload w1:6 ...] [--json OUT]
        [--threads 2] [--connections 16] [--rounds 3] [--gunicorn-arg=--workers=3 ...]

`--gunicorn-arg` adds command-line settings (they override gunicorn.conf.py), for tuning.
Only 127.0.0.1 is used; every server started is stopped before the next workload.
"""
import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import workloads

ROOT = workloads.ROOT
BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "post.lua"
# hook: the service as deployed. core: bare Flask + serialized_state (no ETag, metrics, call log),
# to tell the core's cost from hooks.web.app's. bare: parse the request, serialize the answer.
APPS = {"hook": "hooks.web.app:create_app()", "core": "bench.bare_app:create_core_app()",
        "bare": "bench.bare_app:create_app()"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (gunicorn's master and workers),
    from /proc. Less sensitive to a busy machine than throughput: what one request costs."""
    pids, found = {pid}, True
    while found:
        found = False
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in pids:
                with contextlib.suppress(OSError, IndexError, ValueError):
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) in pids:
                        pids.add(int(entry.name))
                        found = True
    ticks = 0
    for each in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (Path("/proc") / str(each) / "stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, and cutime, cstime: a worker recycled mid-run is counted by its parent.
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextlib.contextmanager
def server(app: str, response_file: Path, extra: list[str], log: Path, env: dict | None = None):
    """A gunicorn serving `app` on 127.0.0.1; yields (base URL, master pid); stops it afterwards."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}   # one per server
    env = {**inherited, **(env or {}), "HOST": "127.0.0.1", "PORT": str(port), "BENCH_RESPONSE": str(response_file),
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    argv = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", *extra, app]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app} exited with {proc.returncode}; see {log}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not become healthy; see {log}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(url: str, body_file: Path, seconds: float, threads: int, connections: int, path: str = "/sync") -> dict:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(LUA), f"{url}{path}"]
    done = subprocess.run(argv, env={**os.environ, "BENCH_BODY": str(body_file)}, capture_output=True,
                          text=True, timeout=seconds + 60, check=True)
    line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    found = json.loads(line.split(" ", 1)[1])
    found["rps"] = found["requests"] / (found["duration_us"] / 1e6)
    # A worker recycled by max_requests closes its connections: a few socket errors are fine.
    errors = sum(found[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    if found["status_errors"] or errors > max(10, found["requests"] // 100):
        raise RuntimeError(f"wrk saw errors against {url}: {found}")
    return found


def run_workload(name: str, seconds: float, args, log: Path) -> dict:
    body = args.workloads / f"{name}.json"
    expected_file = args.workloads / f"{name}.response.json"
    expected = expected_file.read_bytes()
    runs: dict[str, list[dict]] = {app: [] for app in APPS}
    with contextlib.ExitStack() as stack:
        started = {app: stack.enter_context(server(target, expected_file, args.gunicorn_arg, log))
                   for app, target in APPS.items()}
        urls = {app: url for app, (url, _) in started.items()}
        for app, url in urls.items():
            status, answer = post(f"{url}/sync", body.read_bytes())
            if status != 200 or answer != expected:
                raise RuntimeError(f"{app} on {name}: HTTP {status}, answer differs from {expected_file}")
            wrk(url, body, min(2.0, seconds), args.threads, args.connections)   # warm-up, discarded
        for _ in range(args.rounds):
            for app, (url, pid) in started.items():
                cpu = tree_cpu_seconds(pid)
                found = wrk(url, body, seconds, args.threads, args.connections)
                found["server_cpu_us_per_request"] = (tree_cpu_seconds(pid) - cpu) / found["requests"] * 1e6
                runs[app].append(found)
    summary = {}
    for app, items in runs.items():
        summary[app] = {
            "rps": statistics.median(r["rps"] for r in items),
            "p50_ms": statistics.median(r["p50_us"] for r in items) / 1e3,
            "p99_ms": statistics.median(r["p99_us"] for r in items) / 1e3,
            "cpu_us": statistics.median(r["server_cpu_us_per_request"] for r in items),
            "runs": items,
        }

    def ratio(app: str, key: str) -> float:
        """Median over rounds of app / bare within each round: the servers of one round ran
        back to back, so a neighbour's load cancels out better than in a ratio of medians."""
        return statistics.median(a[key] / b[key] for a, b in zip(runs[app], runs["bare"]))

    return {
        "workload": name, "seconds": seconds, "rounds": args.rounds, "request_bytes": body.stat().st_size,
        "response_bytes": len(expected), "threads": args.threads, "connections": args.connections,
        **summary,
        "rps_ratio": ratio("hook", "rps"),
        "p50_ratio": ratio("hook", "p50_us"),
        "p99_ratio": ratio("hook", "p99_us"),
        "cpu_ratio": ratio("hook", "server_cpu_us_per_request"),
        "core_rps_ratio": ratio("core", "rps"),
        "core_p50_ratio": ratio("core", "p50_us"),
        "core_p99_ratio": ratio("core", "p99_us"),
        "core_cpu_ratio": ratio("core", "server_cpu_us_per_request"),
    }


def gunicorn_settings(extra: list[str]) -> dict:
    """The settings gunicorn.conf.py gives under the current environment, plus extra args."""
    # In a child process: reading the file has side effects (environment, temp directories).
    keys = ["worker_class", "workers", "threads", "keepalive", "max_requests", "max_requests_jitter", "preload_app"]
    code = ("import json, sys; env = {'__file__': 'gunicorn.conf.py'}; "
            "exec(compile(open('gunicorn.conf.py').read(), 'gunicorn.conf.py', 'exec'), env); "
            f"print(json.dumps({{k: env.get(k) for k in {keys!r}}}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": "unused"})
    return {"config": json.loads(done.stdout.strip().splitlines()[-1]), "extra_args": extra}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=Path, default=workloads.DEFAULT_OUT)
    parser.add_argument("--workload", action="append", help="NAME:SECONDS, repeatable (default w1:6)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gunicorn-arg", action="append", default=[])
    parser.add_argument("--log", type=Path, default=ROOT / "bench" / "results" / "gunicorn.log")
    args = parser.parse_args(argv[1:])
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (bench/run.sh installs it)")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_bytes(b"")
    results = {"gunicorn": gunicorn_settings(args.gunicorn_arg), "workloads": []}
    for spec in args.workload or ["w1:6"]:
        name, _, seconds = spec.partition(":")
        found = run_workload(name, float(seconds or 6), args, args.log)
        results["workloads"].append(found)
        for app in APPS:
            print(f"{name} {app}: {found[app]['rps']:7.0f} req/s  p50 {found[app]['p50_ms']:6.2f} ms  "
                  f"p99 {found[app]['p99_ms']:6.2f} ms  server CPU {found[app]['cpu_us']:6.0f} us/request",
                  file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
