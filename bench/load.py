"""Sustained load and graceful shutdown of the hook server, run exactly as `make serve` runs it.

    bash bench/load.sh            # or: .venv/bin/python -m bench.load [--duration 60] [--connections 64]

Not part of `make test`. Everything runs on 127.0.0.1 and stops by itself.

1. A steady-state /sync request is built with tests/harness.Loop (a DittoServer with metrics,
   NFS + SMB + WebDAV and NetworkPolicies, converged, its StatefulSet ready; hook API v2), and
   written to bench/results/load-request.json with the wrk script bench/results/load.lua.
2. `.venv/bin/gunicorn --config gunicorn.conf.py 'hooks.web.app:create_app()'` starts with HOST=127.0.0.1
   and a free PORT (nothing else set: the workers, threads and timeouts of gunicorn.conf.py).
3. Load: wrk, --duration seconds at --connections keep-alive connections. Every answer's status
   is counted (wrk's Lua `response`), with wrk's socket errors. Each worker's RSS (VmRSS in
   /proc/<pid>/status) is sampled every second; "flat" means that after the warm-up no sample
   is more than 25% above the sample taken at the end of the warm-up.
4. Graceful shutdown: wrk runs again, and while it is in flight the gunicorn master gets
   SIGTERM. Three things are measured, because wrk alone cannot tell an expected refusal (the
   listener is closed) from a request lost mid-flight:
   - slow uploads: requests whose headers and first half of the body were sent before SIGTERM
     and the rest after it; every one must be answered 200 with a complete sync answer;
   - probes: keep-alive clients that send requests back to back across the SIGTERM; every
     request sent before it must be answered 200, and those sent after it are classified
     (answered, refused at connect, closed without an answer);
   - the master's exit code and time after SIGTERM, against gunicorn.conf.py's graceful_timeout.
   wrk's non-2xx count must stay 0; its socket errors after the SIGTERM are reported as they are.

Prints a markdown table and writes it to bench/results/load.md (raw outputs beside it).
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import factory as f  # noqa: E402
from tests.harness import Loop  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
FLAT_LIMIT = 0.25
SLOW_UPLOADS = 8
PROBES = 4

LUA = r"""
-- POST one steady-state sync request on every connection; count the answers by status.
local path = os.getenv("LOAD_BODY")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.path = "/sync"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("STATUS %d %d\n", status, n))
  end
  local e = summary.errors
  io.write(string.format("ERRORS connect=%d read=%d write=%d status=%d timeout=%d\n",
                         e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("TOTAL requests=%d duration_us=%d\n", summary.requests, summary.duration))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("LATENCY p%s %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("LATENCY max %d\n", latency.max))
end
"""


# --- the request -------------------------------------------------------------------------------

def steady_state_request() -> dict:
    """The next request Metacontroller sends once a typical DittoServer has settled."""
    spec = {"storage": {"metadataSize": "10Gi", "contentSize": "100Gi"}, "metrics": {"enabled": True}}
    adapters = [f.entry("nfs", 12049), f.entry("smb", 12445), f.entry("webdav", 8081)]
    loop = Loop(spec, adapters, groups=f.WITH_POLICIES, version="v2")
    loop.settle()
    loop.mark_ready()
    loop.settle()
    return loop.request()


# --- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_settings() -> dict:
    """gunicorn.conf.py's settings (workers, graceful_timeout, ...), read the way gunicorn reads them."""
    namespace: dict = {"__file__": str(ROOT / "gunicorn.conf.py")}
    env_before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    if env_before is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):   # the config made a directory
        os.rmdir(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"))
    return namespace


def start_server(port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DITTOFS_HOOK_", "WEB_CONCURRENCY", "PROMETHEUS_"))}
    env.update(HOST="127.0.0.1", PORT=str(port))
    return subprocess.Popen(
        [str(GUNICORN), "--config", "gunicorn.conf.py", "hooks.web.app:create_app()"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_ready(port: int, proc: subprocess.Popen, worker_count: int, seconds: float = 30.0) -> None:
    """Until /healthz answers and every worker has booted."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see its log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            healthy = conn.getresponse().status == 200
            conn.close()
            if healthy and len(workers(proc.pid)) >= worker_count:
                time.sleep(0.5)   # let the last worker finish booting
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not become ready in 30 s")


def workers(master: int) -> list[int]:
    try:
        return sorted(int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split())
    except OSError:
        return []


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemorySampler(threading.Thread):
    """RSS of every worker of `master`, once a second, until stopped (bounded by `limit` samples)."""

    def __init__(self, master: int, limit: int):
        super().__init__(daemon=True)
        self.master, self.limit = master, limit
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        for _ in range(self.limit):
            now = {pid: kib for pid in workers(self.master) if (kib := rss_kib(pid)) is not None}
            self.samples.append((time.monotonic() - start, now))
            if self.stop.wait(1.0):
                return


# --- wrk ----------------------------------------------------------------------------------------

@dataclass
class WrkResult:
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0
    latency_us: dict[str, int] = field(default_factory=dict)
    raw: str = ""

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def socket_errors(self) -> int:
        return sum(self.errors.get(k, 0) for k in ("connect", "read", "write", "timeout"))


def start_wrk(port: int, seconds: int, connections: int, lua: Path, body: Path) -> subprocess.Popen:
    threads = min(connections, max(1, os.cpu_count() or 1))
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
         "-s", str(lua), f"http://127.0.0.1:{port}/sync"],
        env={**os.environ, "LOAD_BODY": str(body)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finish_wrk(proc: subprocess.Popen, seconds: int) -> WrkResult:
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    result = WrkResult(raw=out)
    for line in out.splitlines():
        if m := re.match(r"STATUS (\d+) (\d+)", line):
            result.statuses[int(m[1])] = int(m[2])
        elif line.startswith("ERRORS "):
            result.errors = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
        elif m := re.match(r"TOTAL requests=(\d+) duration_us=(\d+)", line):
            result.requests, result.seconds = int(m[1]), int(m[2]) / 1e6
        elif m := re.match(r"LATENCY (\S+) (\d+)", line):
            result.latency_us[m[1]] = int(m[2])
    return result


# --- shutdown clients --------------------------------------------------------------------------

def read_answer(conn: socket.socket, limit: float) -> tuple[int | None, bytes]:
    """Status and body of one HTTP/1.1 answer (Connection: close) read from `conn`."""
    conn.settimeout(limit)
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return (int(m[1]) if m else None), body


def complete_sync_answer(body: bytes) -> bool:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(answer, dict) and set(answer) == {"status", "children", "resyncAfterSeconds"}


class SlowUpload(threading.Thread):
    """One request whose body trickles in over `spread` seconds, in flight across SIGTERM."""

    def __init__(self, port: int, body: bytes, spread: float):
        super().__init__(daemon=True)
        self.port, self.body, self.spread = port, body, spread
        self.headers_sent_at: float | None = None
        self.status: int | None = None
        self.complete = False
        self.error: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
                conn.sendall(b"POST /sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(self.body))
                self.headers_sent_at = time.monotonic()
                pieces = 10
                step = -(-len(self.body) // pieces)
                for i in range(pieces):
                    conn.sendall(self.body[i * step:(i + 1) * step])
                    time.sleep(self.spread / pieces)
                self.status, answer = read_answer(conn, 30)
                self.complete = complete_sync_answer(answer)
        except OSError as exc:
            self.error = type(exc).__name__


@dataclass
class Call:
    sent: float                 # when the request was written (or the connect tried)
    done: float
    outcome: str                # "200", "status N", "refused", "reset", ...
    reused: bool                # on a kept-alive connection


class Probe(threading.Thread):
    """Keep-alive requests back to back until `until`; each one timed and classified."""

    def __init__(self, port: int, body: bytes, until: float):
        super().__init__(daemon=True)
        self.port, self.body, self.until = port, body, until
        self.calls: list[Call] = []

    def run(self) -> None:
        conn, reused = None, False
        for _ in range(100_000):                   # bounded; ends by time long before
            if time.monotonic() >= self.until:
                break
            sent = time.monotonic()
            try:
                if conn is None:
                    conn, reused = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15), False
                    conn.connect()
                sent = time.monotonic()
                conn.request("POST", "/sync", body=self.body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                ok = resp.status == 200 and complete_sync_answer(data)
                self.calls.append(Call(sent, time.monotonic(), "200" if ok else f"status {resp.status}", reused))
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                else:
                    reused = True
            except ConnectionRefusedError:
                self.calls.append(Call(sent, time.monotonic(), "refused", False))
                conn = None
                time.sleep(0.05)
            except (http.client.HTTPException, OSError) as exc:
                what = "reset" if isinstance(exc, ConnectionResetError) else f"closed ({type(exc).__name__})"
                self.calls.append(Call(sent, time.monotonic(), what, reused))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


# --- the run ------------------------------------------------------------------------------------

def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def memory_summary(samples: list[tuple[float, dict[int, int]]], warmup: float) -> tuple[list[str], bool, str]:
    pids = sorted({pid for _, now in samples for pid in now})
    lines, flat = [], True
    for pid in pids:
        series = [(t, now[pid]) for t, now in samples if pid in now]
        after = [kib for t, kib in series if t >= warmup]
        if not after:
            continue
        base, top, low = after[0], max(after), min(after)
        growth = (top - base) / base
        flat &= growth <= FLAT_LIMIT
        lines.append(f"worker {pid}: {mib(series[0][1])} MiB at start, {mib(base)} at {warmup:.0f} s, "
                     f"{mib(series[-1][1])} at end; after warm-up {mib(low)}–{mib(top)} ({growth:+.1%} max vs {warmup:.0f} s)")
    restarts = "none" if all(set(now) == set(samples[0][1]) for _, now in samples if now) else "WORKERS CHANGED"
    return lines, flat, restarts


def keep_server_log_short(log: Path) -> None:
    """Drop the one-line-per-call access log lines (tens of MB); keep everything else."""
    calls, kept = 0, []
    with log.open("rb") as lines:
        for line in lines:
            if b'"message":"hook call"' in line:
                calls += 1
            else:
                kept.append(line)
    log.write_bytes(b"".join(kept) + b"(%d per-call log lines left out)\n" % calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--shutdown-after", type=float, default=5.0, help="SIGTERM this long into the second wrk run")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)

    request = steady_state_request()
    body = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    body_path, lua_path = RESULTS / "load-request.json", RESULTS / "load.lua"
    body_path.write_bytes(body)
    lua_path.write_text(LUA)
    conf = gunicorn_settings()
    grace, worker_count = float(conf.get("graceful_timeout", 30)), int(conf.get("workers", 1))
    port = free_port()
    log = RESULTS / "load-server.log"
    server = start_server(port, log)
    report: list[tuple[str, str]] = []
    ok = True
    try:
        wait_ready(port, server, worker_count)
        print(f"gunicorn pid {server.pid} on 127.0.0.1:{port}, workers {workers(server.pid)}; "
              f"request {len(body)} bytes; {args.duration} s at {args.connections} connections", flush=True)

        # 1. sustained load, memory sampled every second
        sampler = MemorySampler(server.pid, limit=args.duration + 30)
        sampler.start()
        load = finish_wrk(start_wrk(port, args.duration, args.connections, lua_path, body_path), args.duration)
        sampler.stop.set()
        sampler.join(5)
        (RESULTS / "load-wrk.txt").write_text(load.raw)
        mem_lines, flat, restarts = memory_summary(sampler.samples, args.warmup)
        (RESULTS / "load-memory.json").write_text(json.dumps(
            [{"t": round(t, 2), "rss_kib": now} for t, now in sampler.samples], indent=1))
        ok &= load.non_2xx == 0 and load.socket_errors == 0 and flat and load.statuses.get(200, 0) > 0
        lat = load.latency_us
        report += [
            ("Load", f"wrk {args.duration} s, {args.connections} keep-alive connections, POST /sync ({len(body) // 1024} KiB steady-state request)"),
            ("Requests answered 200", f"{load.statuses.get(200, 0):,} ({load.statuses.get(200, 0) / max(load.seconds, 1e-9):,.0f}/s)"),
            ("Non-2xx answers", f"{load.non_2xx} {dict(sorted(load.statuses.items())) if load.non_2xx else ''}".strip()),
            ("Socket errors (connect/read/write/timeout)", "/".join(str(load.errors.get(k, 0)) for k in ("connect", "read", "write", "timeout"))),
            ("Latency p50 / p90 / p99 / max", " / ".join(f"{lat.get(k, 0) / 1000:.1f} ms" for k in ("p50", "p90", "p99", "max"))),
            ("Worker RSS", "<br>".join(mem_lines) or "no samples"),
            (f"RSS flat (≤ {FLAT_LIMIT:.0%} above the {args.warmup:.0f} s sample)", "yes" if flat else "NO"),
            ("Worker restarts during load", restarts),
        ]
        print("load phase done", flush=True)

        # 2. SIGTERM to the master while wrk is in flight
        second = int(args.shutdown_after) + 3
        wrk = start_wrk(port, second, args.connections, lua_path, body_path)
        probes = [Probe(port, body, until=time.monotonic() + args.shutdown_after + 3.0) for _ in range(PROBES)]
        for probe in probes:
            probe.start()
        time.sleep(args.shutdown_after - 1.0)
        uploads = [SlowUpload(port, body, spread=2.0) for _ in range(SLOW_UPLOADS)]
        for upload in uploads:
            upload.start()
        time.sleep(1.0)
        term_at = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        try:
            code = server.wait(timeout=grace + 10)
        except subprocess.TimeoutExpired:
            code = None
        exit_seconds = time.monotonic() - term_at
        for thread in (*uploads, *probes):
            thread.join(40)
        during = finish_wrk(wrk, second)
        (RESULTS / "load-shutdown-wrk.txt").write_text(during.raw)

        in_flight = [u for u in uploads if u.headers_sent_at is not None and u.headers_sent_at < term_at]
        uploads_ok = sum(1 for u in in_flight if u.status == 200 and u.complete)
        calls = [call for p in probes for call in p.calls]
        before = [c.outcome for c in calls if c.sent < term_at]
        spanning = [c.outcome for c in calls if c.sent < term_at <= c.done]
        after_counts: dict[str, int] = {}
        for c in calls:
            if c.sent >= term_at:
                label = c.outcome if c.outcome in ("200", "refused") else \
                    f"{c.outcome} on a {'kept-alive' if c.reused else 'new'} connection"
                after_counts[label] = after_counts.get(label, 0) + 1
        exit_ok = code == 0 and exit_seconds <= grace
        # wrk 4 ignores "Connection: close": each of its connections sees the server's close once
        # as a read error; its reconnects to the closed listener are refused (wrk counts those as
        # write errors). More read errors, or timeouts, would be requests lost mid-flight.
        closes_ok = during.errors.get("read", 0) <= args.connections and during.errors.get("timeout", 0) == 0
        ok &= (len(in_flight) == SLOW_UPLOADS and uploads_ok == SLOW_UPLOADS and before.count("200") == len(before)
               and during.non_2xx == 0 and closes_ok and exit_ok)
        report += [
            ("Shutdown", f"SIGTERM to the master {args.shutdown_after:.0f} s into a second wrk run ({args.connections} connections)"),
            ("Slow uploads in flight at SIGTERM, answered 200 with a complete answer",
             f"{uploads_ok}/{len(in_flight)} (of {SLOW_UPLOADS}; body sent over 2 s, headers 1 s before SIGTERM)"
             + "".join(f"; {u.error or u.status}" for u in uploads if not (u.status == 200 and u.complete))),
            ("Probe requests sent before SIGTERM, answered 200",
             f"{before.count('200')}/{len(before)} ({spanning.count('200')}/{len(spanning)} of them in flight at SIGTERM)"),
            ("Probe requests sent after SIGTERM", ", ".join(f"{k}: {v}" for k, v in sorted(after_counts.items())) or "none"),
            ("wrk during shutdown: 200 / non-2xx", f"{during.statuses.get(200, 0):,} / {during.non_2xx}"),
            ("wrk during shutdown: socket errors (connect/read/write/timeout)",
             "/".join(str(during.errors.get(k, 0)) for k in ("connect", "read", "write", "timeout"))
             + f" (expected after SIGTERM: at most one read error per connection, {args.connections}, when the server "
               "closes it; wrk counts its refused reconnects to the closed listener as write errors)"),
            ("Master exit after SIGTERM", f"code {code}, {exit_seconds:.1f} s (graceful_timeout {grace:.0f} s)"),
        ]
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=grace + 5)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()

    keep_server_log_short(log)
    table = ["| Measure | Result |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in report)]
    text = "\n".join([
        f"# Load and graceful shutdown ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, wrk and gunicorn on the same machine)", "",
        "Server: `.venv/bin/gunicorn --config gunicorn.conf.py 'hooks.web.app:create_app()'` (as `make serve`), "
        "127.0.0.1 only.", "",
        *table, "", f"Overall: {'PASS' if ok else 'FAIL'}", ""])
    (RESULTS / "load.md").write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
