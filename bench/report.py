"""The benchmark's tables (markdown), from the JSON that bench/inprocess.py, bench/over_http.py,
bench/calls.py and bench/declared.py wrote, and the budget per server per minute made from calls.py's.

    .venv/bin/python -m bench.report bench/results/inprocess.json bench/results/http.json \
        bench/results/calls.json bench/results/declared.json
"""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench import workloads

# The targets on a 2-core machine.
INPROCESS_MAX = 3.0       # W1: hook / JSON floor
GROWTH_FACTOR = 1.5       # W3/W1 time at most this times W3/W1 bytes
HTTP_RPS_MIN = 0.6        # W1: hook throughput / bare Flask (aim 0.8)
HTTP_P99_MAX = 2.0        # W1: hook p99 / bare Flask p99


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=workloads.ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=workloads.ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def kb(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def render(inprocess: list[dict], http: dict | None) -> str:
    by = {r["workload"]: r for r in inprocess}
    names = [n for n in workloads.WORKLOADS if n in by]
    out = [
        "## Benchmark",
        "",
        f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; Python "
        f"{platform.python_version()}; revision {revision()}",
        "- workloads: steady-state sync requests (hook API v2) built by converging a DittoServer on "
        "`hooks.tools.applying.Cluster`: W1 metrics + NFS/SMB/WebDAV, W2 16 adapters, W3 256 in the annotation with 16 active",
        "",
        "| | " + " | ".join(n.upper() for n in names) + " | target |",
        "| --- | " + " | ".join("---:" for _ in names) + " | --- |",
        "| adapters (active) | " + " | ".join("{} ({})".format(*workloads.WORKLOADS[n]) for n in names) + " | |",
        "| request / answer size | " + " | ".join(f"{kb(by[n]['request_bytes'])} / {kb(by[n]['response_bytes'])}"
                                                 for n in names) + " | |",
        "| JSON floor: loads + dumps (µs) | " + " | ".join(f"{by[n]['floor_us']:.0f}" for n in names) + " | |",
        "| hook: loads + serialized_state, steady state (µs) | " + " | ".join(f"{by[n]['hook_us']:.0f}" for n in names)
        + " | |",
        "| hook, children built (first sync after a change) (µs) | "
        + " | ".join(f"{by[n]['hook_built_us']:.0f} ({by[n]['built_ratio']:.2f}x)" for n in names) + " | |",
        "| desired_state alone (µs) | " + " | ".join(f"{by[n]['desired_state_us']:.0f}" for n in names) + " | |",
        "| **hook / floor** | " + " | ".join(f"**{by[n]['ratio']:.2f}x**" for n in names)
        + f" | W1 ≤ {INPROCESS_MAX:.0f}x: {verdict(by['w1']['ratio'] <= INPROCESS_MAX) if 'w1' in by else '-'} |",
    ]
    if "w1" in by and "w3" in by:
        w1, w3 = by["w1"], by["w3"]
        time_growth, size_growth = w3["hook_us"] / w1["hook_us"], w3["request_bytes"] / w1["request_bytes"]
        out.append(f"| growth W3/W1: time vs request bytes | {time_growth:.1f}x vs {size_growth:.1f}x "
                   f"(= {time_growth / size_growth:.2f} of the size ratio) |" + " |" * (len(names) - 1)
                   + f" ≤ {GROWTH_FACTOR}: {verdict(time_growth <= GROWTH_FACTOR * size_growth)} |")
    if http:
        g = http["gunicorn"]
        cfg = g["config"]
        extra = f", plus {' '.join(g['extra_args'])}" if g["extra_args"] else ""
        first = http["workloads"][0]
        out += [
            "",
            f"Over HTTP: gunicorn.conf.py ({cfg['worker_class']}, {cfg['workers']} workers × {cfg['threads']} "
            f"threads, keepalive {cfg['keepalive']} s{extra}); wrk, keep-alive POST, {first['threads']} threads, "
            f"{first['connections']} connections; the three servers loaded in turn, {first['rounds']} rounds; medians, "
            "ratios taken within each round. "
            "*hook*: the service as deployed; *core*: bare Flask + `serialized_state` (no ETag, metrics or call "
            "log); *bare*: parse the request and serialize the hook's answer to it (parsed once at start). Server CPU is "
            "the gunicorn processes' CPU time per request, from /proc.",
            "",
            "| workload | | hook | core | bare | **hook / bare** | core / bare | target (hook / bare) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for w in http["workloads"]:
            name, is_w1 = w["workload"].upper(), w["workload"] == "w1"
            h, c, b = w["hook"], w["core"], w["bare"]
            out += [
                f"| {name} ({w['seconds']:g} s runs) | throughput (req/s) | {h['rps']:.0f} | {c['rps']:.0f} | "
                f"{b['rps']:.0f} | **{w['rps_ratio']:.2f}x** | {w['core_rps_ratio']:.2f}x | "
                + (f"≥ {HTTP_RPS_MIN}x (aim 0.8): {verdict(w['rps_ratio'] >= HTTP_RPS_MIN)}" if is_w1 else "") + " |",
                f"| | p50 (ms) | {h['p50_ms']:.1f} | {c['p50_ms']:.1f} | {b['p50_ms']:.1f} | {w['p50_ratio']:.2f}x | "
                f"{w['core_p50_ratio']:.2f}x | |",
                f"| | p99 (ms) | {h['p99_ms']:.1f} | {c['p99_ms']:.1f} | {b['p99_ms']:.1f} | **{w['p99_ratio']:.2f}x** | "
                f"{w['core_p99_ratio']:.2f}x | "
                + (f"≤ {HTTP_P99_MAX:.0f}x: {verdict(w['p99_ratio'] <= HTTP_P99_MAX)}" if is_w1 else "") + " |",
                f"| | server CPU per request (µs) | {h['cpu_us']:.0f} | {c['cpu_us']:.0f} | {b['cpu_us']:.0f} | "
                f"{w['cpu_ratio']:.2f}x | {w['core_cpu_ratio']:.2f}x | |",
            ]
    return "\n".join(out) + "\n"


CALL_NAMES = {
    "sync-304": "`/sync` 304 (W1, unchanged parent)",
    "sync-200": "`/sync` 200 (W1)",
    "discover-steady": "`/discover`, ready and answering (one GET)",
    "discover-refused": "`/discover`, ready, connection refused",
    "discover-not-ready": "`/discover`, no ready replica (no DittoFS call)",
}


def budget(calls: dict, manifests: dict | None = None) -> list[tuple[str, dict, float, float]]:
    """(state, hook calls per minute by call, DittoFS requests per minute, hook CPU ms per
    minute) of one server with the default 30 s polling interval and the shipped manifests."""
    from hooks.dittofs import client, pacing

    found = manifests or resync_periods()
    cc, dc = 60 / found["CompositeController"], 60 / found["DecoratorController"]
    poll = 60 / 30.0
    refreshes = 2 * 60 / (900 * client.TOKEN_REUSE_FRACTION)   # 2 workers, each its own token
    cap = 60 / pacing.MAX_BACKOFF_SECONDS
    states = [
        ("no ready replica", {"discover-not-ready": 60 / pacing.NOT_READY_RESYNC_SECONDS + dc, "sync-304": cc}, 0.0),
        ("ready and steady", {"discover-steady": poll + dc, "sync-304": cc}, poll + dc + refreshes),
        ("ready, not answering (backoff at its cap)", {"discover-refused": cap + dc, "sync-304": cc}, cap + dc),
    ]
    return [(name, per, requests, sum(calls[c]["hook_cpu_us"] * n for c, n in per.items()) / 1000)
            for name, per, requests in states]


def resync_periods() -> dict:
    import yaml

    found = {}
    for kind, file in (("CompositeController", "compositecontroller.yaml"),
                       ("DecoratorController", "decoratorcontroller.yaml")):
        found[kind] = yaml.safe_load((workloads.ROOT / "metacontroller" / file).read_text())["spec"]["resyncPeriodSeconds"]
    return found


def render_calls(found: dict) -> str:
    calls = found["calls"]
    out = [
        "",
        f"Per call over HTTP (bench/calls.py): CPU of the gunicorn processes per request, hook next to a bare "
        f"Flask app doing the least the same answer needs (`bench.bare_app:create_calls_app()`); {found['rounds']} "
        f"rounds of {found['seconds']:g} s, medians, ratios within each round.",
        "",
        "| call | hook CPU (µs) | bare CPU (µs) | hook / bare |",
        "| --- | ---: | ---: | ---: |",
    ]
    for call, name in CALL_NAMES.items():
        c = calls[call]
        out.append(f"| {name} | {c['hook_cpu_us']:.0f} | {c['bare_cpu_us']:.0f} | {c['ratio']:.2f}x |")
    out += [
        "",
        "Budget per server per minute (polling interval 30 s, the shipped resync periods, 2 workers):",
        "",
        "| state | hook calls | DittoFS requests | hook CPU (ms) |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, per, requests, cpu in budget(calls):
        listed = ", ".join(f"{n:.2f} {c}" for c, n in per.items())
        out.append(f"| {name} | {sum(per.values()):.2f} ({listed}) | {requests:.2f} | {cpu:.2f} |")
    return "\n".join(out) + "\n"


def render_declared(found: dict) -> str:
    out = [
        "",
        f"Per polling interval with N declared shares and N users on one server (bench/declared.py): each object's "
        f"sync once and `/discover` once, {found['connections']} connections; hook CPU of the gunicorn processes, "
        f"{found['rounds']} rounds, medians.",
        "",
        "| N shares + N users | hook calls | DittoFS requests (writes) | hook CPU (ms) | per declared object (µs) "
        "| `/discover` alone (µs, request size) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in found["counts"]:
        out.append(f"| {r['count']} | {r['hook_calls']} | {r['dittofs_requests']:.0f} ({r['dittofs_writes']}) | "
                   f"{r['hook_cpu_ms']:.1f} | {r['declared_cpu_us_per_object']:.0f} | "
                   f"{r['discover_cpu_us']:.0f} ({kb(r['discover_request_bytes'])}) |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    inprocess = json.loads(Path(argv[1]).read_text())
    http = json.loads(Path(argv[2]).read_text()) if len(argv) > 2 and Path(argv[2]).exists() else None
    calls = json.loads(Path(argv[3]).read_text()) if len(argv) > 3 and Path(argv[3]).exists() else None
    found = json.loads(Path(argv[4]).read_text()) if len(argv) > 4 and Path(argv[4]).exists() else None
    sys.stdout.write(render(inprocess, http) + (render_calls(calls) if calls else "")
                     + (render_declared(found) if found else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
