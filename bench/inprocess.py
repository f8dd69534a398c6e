"""In-process cost of the sync hook next to the floor any hook pays: parsing its request and
serializing its answer.

For each workload (see bench/workloads.py):
- floor: `orjson.loads(request)` + `orjson.dumps(answer, OPT_SORT_KEYS)`, the answer prebuilt;
- hook:  `serialized_state(orjson.loads(request)).body`, what /sync does between reading the
  body and writing the answer, in steady state: the children of the previous sync with the
  same inputs are reused (see hooks/children/sync.py);
- hook, children built: the same with the kept children dropped before each call, as on the
  first sync after a change to the spec, the adapters or the generated Secrets;
- desired_state alone (builds every child), on a request parsed once.

Deterministic (fixed clock, fixed random values; the answer is checked byte for byte against
the workload's recorded answer). Timeit-style: each sample runs a loop sized to ~40 ms, the
three measurements are interleaved sample by sample so that a noisy neighbour hits them all
alike, and the median per call is reported. GC stays on, as in the server.

    .venv/bin/python -m bench.inprocess [--workloads DIR] [--json OUT] [--rounds N]
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import orjson

from bench import workloads
from hooks.children import sync

SORT = orjson.OPT_SORT_KEYS
SAMPLE_SECONDS = 0.04


def per_call_us(fn, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops * 1e6


def calibrate(fn) -> int:
    """Loops per sample so that one sample takes about SAMPLE_SECONDS."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        took = time.perf_counter() - start
        if took >= SAMPLE_SECONDS / 4:
            return max(1, round(loops * SAMPLE_SECONDS / took))
        loops *= 4


def measure(name: str, directory: Path, rounds: int) -> dict:
    raw = (directory / f"{name}.json").read_bytes()
    expected = (directory / f"{name}.response.json").read_bytes()
    parsed = orjson.loads(raw)
    answer = workloads.desired(parsed)
    if orjson.dumps(answer, option=SORT) != expected or workloads.served(parsed) != expected:
        raise SystemExit(f"{name}: the hook's answer differs from {name}.response.json; regenerate the workloads")
    if orjson.dumps(parsed, option=SORT) != raw:
        raise SystemExit(f"{name}: desired_state modified its request")

    def floor():
        orjson.loads(raw)
        orjson.dumps(answer, option=SORT)

    def hook():
        workloads.served(orjson.loads(raw))

    def hook_built():
        sync.forget()
        workloads.served(orjson.loads(raw))

    def desired_only():
        workloads.desired(parsed)

    cases = {"floor": floor, "hook": hook, "hook_built": hook_built, "desired_state": desired_only}
    loops = {key: calibrate(fn) for key, fn in cases.items()}
    samples: dict[str, list[float]] = {key: [] for key in cases}
    for _ in range(rounds):
        for key, fn in cases.items():
            samples[key].append(per_call_us(fn, loops[key]))
    found = {f"{key}_us": statistics.median(values) for key, values in samples.items()}
    found.update({f"{key}_min_us": min(values) for key, values in samples.items()})
    found.update(workload=name, request_bytes=len(raw), response_bytes=len(expected),
                 rounds=rounds, loops=loops, ratio=found["hook_us"] / found["floor_us"],
                 built_ratio=found["hook_built_us"] / found["floor_us"])
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=Path, default=workloads.DEFAULT_OUT)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv[1:])
    results = []
    for name in workloads.WORKLOADS:
        found = measure(name, args.workloads, args.rounds)
        results.append(found)
        print(f"{name}: request {found['request_bytes']:>7} B  floor {found['floor_us']:9.1f} us  "
              f"hook {found['hook_us']:9.1f} us  (children built {found['hook_built_us']:9.1f} us)  "
              f"desired_state {found['desired_state_us']:9.1f} us  hook/floor {found['ratio']:.2f}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
