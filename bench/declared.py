"""DittoFS API requests and hook CPU per polling interval against the number of declared shares
and users on one server: N `DittoShare`s and N `DittoUser`s (N = 1, 10, 100) on one
`DittoServer`, everything settled.

One interval is what Metacontroller sends in one polling interval (30 s by default) once nothing
changes: each declared object's sync once (their hooks answer `resyncAfterSeconds` = the
server's polling interval) and the server's `/discover` once. Each request is built as its
controller builds it: the object, and in `related` what the kind's customize hook names (the
DittoServer, its `{server}-manager-credentials` Secret, a user's password Secret); for
`/discover`, the server's Secrets, its StatefulSet and every declared object of the namespace.
Share i grants read-write to user i. A first pass lets the hooks settle the objects (a user's
password is set once, then recorded in its annotation) and their statuses are kept, so in the
measured intervals each answer repeats what the object holds: Metacontroller writes nothing.

The hook runs as deployed (gunicorn, `bench/over_http.py`'s `server`) against the stand-in
DittoFS of `bench/calls.py` on 127.0.0.1, here answering each GET a steady state makes with the
body `dfs` v0.29.0 gives for it (same fields, fixed ids and times) and counting every request.
A write, or any GET but the expected ones, fails the run. The CPU of the gunicorn processes
(from /proc, as `bench/calls.py` reads it) is taken over a batch of intervals (at least
`MIN_CALLS` calls, well above /proc's 10 ms tick) and divided by the intervals in it; `/discover`
is also measured alone, as its request carries every declared object of the namespace.

    .venv/bin/python -m bench.declared [--counts 1,10,100] [--rounds 5] [--json OUT]
"""
import argparse
import collections
import copy
import http.client
import json
import math
import os
import statistics
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from bench import calls, over_http, workloads
from hooks.dittofs import decorate, discovery, layout, stores
from hooks.request import controlplane, declared, spec
from tests import factory

SERVER, NAMESPACE = "demo", "storage"
SPEC = {"storage": {"metadataSize": "10Gi", "contentSize": "100Gi"},
        "stores": {"metadata": [{"name": "meta", "type": "badger"}], "local": [{"name": "blocks", "type": "fs"}]}}
API_VERSION = f"{declared.API_GROUP}/v1alpha1"
COUNTS = (1, 10, 100)
MIN_CALLS = 400           # per measured batch: ~0.6 s of hook CPU, 60 ticks of /proc's clock
DISCOVER_BATCH = 200      # /discover alone, per round (a multiple of CONNECTIONS)
CONNECTIONS = 4           # Metacontroller's concurrent calls (the hook's 2 workers x 2 threads)
LOGIN_PATH = "/api/v1/auth/login"
# What each related resource of a customize answer is, by its resource name.
KINDS = {"dittoservers": "DittoServer", "secrets": "Secret", "statefulsets": "StatefulSet",
         **{resource: kind for kind, resource in declared.RESOURCES.items()}}
CREATED = "2026-12-04T19:24:01.613606645Z"


# --- the declared objects and what DittoFS holds for them ------------------------------------------

def user_name(i: int) -> str:
    return f"user-{i:03d}"


def share_name(i: int) -> str:
    return f"share-{i:03d}"


def obj(kind: str, name: str, body: dict) -> dict:
    """A declared object as the API server returns it."""
    return {"apiVersion": API_VERSION, "kind": kind, "spec": body,
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1, "uid": f"u-{name}",
                         "resourceVersion": "1"}}


def user(i: int) -> dict:
    return obj("DittoUser", user_name(i), {"server": SERVER, "uid": 10000 + i, "gid": 10000 + i,
                                           "passwordSecretRef": {"name": f"{user_name(i)}-password"}})


def share(i: int) -> dict:
    return obj("DittoShare", share_name(i), {"server": SERVER, "metadataStore": "meta", "localStore": "blocks",
                                             "permissions": [{"user": user_name(i), "level": "read-write"}]})


def password_secret(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"{user_name(i)}-password", "namespace": NAMESPACE, "resourceVersion": "1"},
            "data": {declared.PASSWORD_KEY: calls.b64(f"password-{i:04d}")}}


def uuid(kind: int, i: int) -> str:
    return f"00000000-0000-4000-8{kind:03d}-{i:012d}"


def held(count: int) -> dict[str, bytes]:
    """DittoFS's answers to the GETs of a steady state, by path: the fields `dfs` v0.29.0 gives
    (read from its answers to the same objects), with fixed ids and times."""
    found = {"/api/v1/adapters": calls.ADAPTERS,
             # /discover's inventory of what nothing declares (one of each, left alone).
             "/api/v1/shares": orjson.dumps([{"name": f"/{share_name(i)}"} for i in range(count)] + [{"name": "/manual"}]),
             "/api/v1/users": orjson.dumps([{"username": user_name(i)} for i in range(count)]
                                           + [{"username": "admin"}, {"username": "k8s-manager"}, {"username": "bob"}]),
             "/api/v1/groups": orjson.dumps([{"name": "admins"}, {"name": "users"}, {"name": "staff"}])}
    for i in range(count):
        name = share_name(i)
        found[f"/api/v1/shares/%2F{name}"] = orjson.dumps({
            "id": uuid(1, i), "name": f"/{name}", "metadata_store_id": uuid(2, 0), "local_block_store_id": uuid(3, 0),
            "remote_block_store_id": None, "read_only": False, "enabled": True, "encrypt_data": False,
            "default_permission": "none", "retention_policy": "lru", "used_bytes": 0, "physical_bytes": 0,
            "usage_percent": 0, "acl_flag_inherited_canonicalization": True, "access_based_enumeration": False,
            "change_notify_disabled": False, "streams_disabled": False, "continuous_availability": False,
            "allow_mfsymlink": False, "trash_enabled": False, "trash_retention_days": 0,
            "trash_restrict_to_admin": False, "trash_max_bytes": 0, "created_at": CREATED, "updated_at": CREATED,
            "status": {"status": "healthy", "checked_at": CREATED}})
        found[f"/api/v1/shares/%2F{name}/permissions"] = orjson.dumps(
            [{"type": "user", "name": user_name(i), "level": "read-write"}])
        found[f"/api/v1/users/{user_name(i)}"] = orjson.dumps({
            "id": uuid(4, i), "username": user_name(i), "role": "user", "uid": 10000 + i, "gid": 10000 + i,
            "enabled": True, "must_change_password": False, "created_at": CREATED})
    return found


class Counting(calls.StandIn):
    """bench/calls.py's stand-in answering from `ANSWERS` (404 for what it does not hold) and
    recording every request. A write is answered 200 with an empty object (the settling pass
    sets each user's password once); the measured passes must make none."""

    ANSWERS: dict[str, bytes] = {}
    SEEN: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.SEEN.append((self.command, self.path))
        body = self.ANSWERS.get(self.path)
        if body is None:
            self._answer(b'{"title":"Not Found","status":404}', HTTPStatus.NOT_FOUND)
        else:
            self._answer(body)

    def do_POST(self) -> None:
        self.SEEN.append((self.command, self.path))
        if self.path == LOGIN_PATH:
            super().do_POST()
        else:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(b"{}")

    do_PUT = do_DELETE = do_POST


# --- the requests Metacontroller sends ------------------------------------------------------------

def server_objects() -> tuple[dict, list[dict]]:
    """The DittoServer and the Secrets its sync hook made (with the resourceVersion the cluster gives)."""
    parent = factory.parent(SERVER, NAMESPACE, spec=SPEC)
    made = factory.sync_of(factory.request(parent))
    secrets = [{**c, "metadata": {**c["metadata"], "resourceVersion": "1"}} for c in made["children"] if c["kind"] == "Secret"]
    return parent, secrets


def settled_parent(parent: dict, secrets: list[dict]) -> dict:
    """The DittoServer after discovery made its stores and the manager account: the `applied`
    annotation a steady state carries (checked: the hook answers it unchanged)."""
    parsed = spec.parse_spec(parent["spec"], "spec")
    manager = next(s for s in secrets if s["metadata"]["name"] == f"{SERVER}-{layout.MANAGER_SUFFIX}")
    applied = controlplane.Applied(portmapper="nfs:12049", manager=discovery.secret_digest(manager),
                                   stores=tuple(sorted((w.key, w.digest(None)) for w in stores.wanted(parsed.stores))))
    found = copy.deepcopy(parent)
    found["metadata"]["annotations"][controlplane.APPLIED_ANNOTATION] = applied.encode()
    return found


def selected(rules: list[dict], pool: list[dict]) -> list[dict]:
    """The objects of `pool` that a customize answer's `relatedResources` names."""
    found = []
    for rule in rules:
        names = rule.get("names")
        found += [o for o in pool if o["kind"] == KINDS[rule["resource"]] and o["metadata"]["namespace"] == rule["namespace"]
                  and (names is None or o["metadata"]["name"] in names)]
    return found


def keep_request(item: dict, pool: list[dict]) -> dict:
    kind = item["kind"]
    rules = decorate.related_resources({"parent": item}, kind)["relatedResources"]
    return {"controller": {}, "object": item, "finalizing": False, "attachments": {},
            "related": factory.children_map(selected(rules, pool), "v2",
                                            groups=(f"DittoServer.{API_VERSION}", "Secret.v1"))}


def discover_request(parent: dict, pool: list[dict]) -> dict:
    rules = discovery.related_resources({"parent": parent})["relatedResources"]
    return {"controller": {}, "object": parent, "finalizing": False, "attachments": {},
            "related": factory.discovery_related(selected(rules, pool))}


# --- calling the hook --------------------------------------------------------------------------------

class Caller:
    """Keep-alive POSTs to the hook over `CONNECTIONS` connections, one per thread."""

    def __init__(self, url: str):
        self.host, self.port = urlsplit(url).hostname, urlsplit(url).port
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(CONNECTIONS)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):   # a worker recycled by max_requests closes its connections
            conn = getattr(self.local, "conn", None) or http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.local.conn = conn
            try:
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                answer = conn.getresponse()
                return answer.status, answer.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def all(self, requests: list[tuple[str, bytes]]) -> list[tuple[int, bytes]]:
        return list(self.pool.map(lambda r: self.post(*r), requests))

    def close(self) -> None:
        self.pool.shutdown()


class Fleet:
    """One server with `count` shares and users: their objects as Metacontroller holds them."""

    def __init__(self, count: int, parent: dict, secrets: list[dict]):
        self.count = count
        self.shares = [share(i) for i in range(count)]
        self.users = [user(i) for i in range(count)]
        self.parent, self.secrets = parent, [*secrets, *(password_secret(i) for i in range(count))]

    @property
    def objects(self) -> list[dict]:
        return [*self.shares, *self.users]

    def pool(self) -> list[dict]:
        return [self.parent, *self.secrets, factory.statefulset(SERVER, NAMESPACE), *self.objects]

    def interval(self) -> list[tuple[str, bytes]]:
        """One polling interval's calls, each as its own body."""
        pool = self.pool()
        found = [("/discover", orjson.dumps(discover_request(self.parent, pool)))]
        for item in self.objects:
            found.append((f"/{item['kind'].lower()}s/sync", orjson.dumps(keep_request(item, pool))))
        return found

    def settle(self, caller: Caller) -> None:
        """Call each declared object's hook and keep its status and annotations, as
        Metacontroller does, until the answers repeat what the objects hold."""
        for _ in range(3):
            changed = False
            requests = self.interval()[1:]
            for item, (status, raw) in zip(self.objects, caller.all(requests)):
                answer = orjson.loads(raw)
                if status != 200:
                    raise RuntimeError(f"{item['metadata']['name']}: HTTP {status}: {raw[:300]!r}")
                annotations = item["metadata"].setdefault("annotations", {})
                if answer["status"] != item.get("status") or any(annotations.get(k) != v for k, v in
                                                                 (answer.get("annotations") or {}).items()):
                    changed = True
                item["status"] = answer["status"]
                annotations.update(answer.get("annotations") or {})
            if not changed:
                return
        raise RuntimeError("the declared objects did not settle in 3 passes")

    def check(self, answers: list[tuple[int, bytes]]) -> None:
        """A steady interval: discovery authenticated with nothing to write, each object synced
        and answered exactly the status it holds, with nothing to attach or annotate."""
        status, raw = answers[0]
        found = orjson.loads(raw) if status == 200 else {}
        state = controlplane.read_state(found.get("annotations") or {})
        if state is None or state.reason != controlplane.AUTHENTICATED or \
                controlplane.APPLIED_ANNOTATION in found["annotations"]:
            raise RuntimeError(f"/discover: HTTP {status}, not a steady poll: {raw[:400]!r}")
        for item, (status, raw) in zip(self.objects, answers[1:]):
            answer = orjson.loads(raw) if status == 200 else {}
            synced = next((c for c in item["status"]["conditions"] if c["type"] == "Synced"), {})
            if answer.get("status") != item["status"] or answer.get("attachments") != [] or \
                    answer.get("annotations") or synced.get("status") != "True":
                raise RuntimeError(f"{item['metadata']['name']}: HTTP {status}, not a steady answer: {raw[:400]!r}")


# --- measuring -------------------------------------------------------------------------------------

def cpu_batch(caller: Caller, pid: int, batch: list[list[tuple[str, bytes]]]) -> float:
    """Hook CPU seconds for a batch of rounds of calls, each round sent concurrently."""
    before = over_http.tree_cpu_seconds(pid)
    for round_calls in batch:
        for status, raw in caller.all(round_calls):
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {raw[:300]!r}")
    return over_http.tree_cpu_seconds(pid) - before


def writes_in(records: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The requests that change DittoFS (a login changes nothing)."""
    return [r for r in records if r[0] != "GET" and r[1] != LOGIN_PATH]


def measure(fleet: Fleet, caller: Caller, pid: int, rounds: int) -> dict:
    seen = Counting.SEEN
    fleet.settle(caller)
    interval = fleet.interval()
    mark = len(seen)
    fleet.check(caller.all(interval))
    reads = collections.Counter(path for method, path in seen[mark:] if method == "GET")
    wanted = collections.Counter(list(held(fleet.count)))
    writes = writes_in(seen[mark:])
    if writes or reads != wanted:
        raise RuntimeError(f"N={fleet.count}: not a steady interval: writes {writes[:5]}, reads beyond the "
                           f"expected {dict(reads - wanted)}, missing {dict(wanted - reads)}")
    reps = math.ceil(MIN_CALLS / len(interval))
    per_interval, discover, requests, logins, writes = [], [], [], 0, []
    for round_ in range(rounds + 1):                  # the first round warms up, discarded
        mark = len(seen)
        spent = cpu_batch(caller, pid, [interval] * reps)
        asked = seen[mark:]
        alone = cpu_batch(caller, pid, [[interval[0]] * DISCOVER_BATCH])
        if not round_:
            continue
        writes += writes_in(asked)
        if writes:
            raise RuntimeError(f"N={fleet.count}: writes in a steady state: {writes[:5]}")
        logins += sum(1 for r in asked if r[1] == LOGIN_PATH)
        requests.append(sum(1 for r in asked if r[0] == "GET") / reps)
        per_interval.append(spent / reps * 1e3)
        discover.append(alone / DISCOVER_BATCH * 1e6)
    cpu_ms = statistics.median(per_interval)
    discover_us = statistics.median(discover)
    return {"count": fleet.count, "hook_calls": len(interval), "intervals_per_batch": reps,
            "dittofs_requests": statistics.median(requests), "dittofs_writes": len(writes), "logins_while_measured": logins,
            "hook_cpu_ms": cpu_ms, "hook_cpu_us_per_call": cpu_ms * 1e3 / len(interval),
            "discover_cpu_us": discover_us, "declared_cpu_us_per_object": (cpu_ms * 1e3 - discover_us) / (2 * fleet.count),
            "discover_request_bytes": len(interval[0][1]),
            "declared_request_bytes": statistics.mean(len(body) for _, body in interval[1:]),
            "runs": {"hook_cpu_ms": per_interval, "discover_cpu_us": discover}}


def run(args) -> list[dict]:
    parent, secrets = server_objects()
    parent = settled_parent(parent, secrets)
    Counting.ANSWERS = held(max(args.counts))
    results = []
    with calls.stand_in(Counting) as api_url:
        env = {"DITTOFS_HOOK_API_URL_TEMPLATE": api_url}
        with over_http.server("hooks.web.app:create_app()", Path(os.devnull), [], args.log, env) as (url, pid):
            caller = Caller(url)
            try:
                for count in args.counts:
                    results.append(measure(Fleet(count, parent, secrets), caller, pid, args.rounds))
                    r = results[-1]
                    print(f"N={count:<4d} {r['hook_calls']:4d} hook calls  {r['dittofs_requests']:5.0f} DittoFS requests  "
                          f"hook CPU {r['hook_cpu_ms']:7.1f} ms/interval ({r['hook_cpu_us_per_call']:5.0f} us/call, "
                          f"/discover {r['discover_cpu_us']:5.0f} us, {r['declared_cpu_us_per_object']:5.0f} us/object)",
                          file=sys.stderr)
            finally:
                caller.close()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=lambda text: tuple(int(n) for n in text.split(",")), default=COUNTS,
                        help="shares (and as many users) per server, comma-separated (default 1,10,100)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--log", type=Path, default=workloads.ROOT / "bench" / "results" / "gunicorn-declared.log")
    args = parser.parse_args(argv[1:])
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_bytes(b"")
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "connections": CONNECTIONS, "counts": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
