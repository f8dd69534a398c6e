"""Fuzzing the hook's HTTP surface in-process (Flask test client), contract section 6.

Whatever arrives, the answer is JSON: 200 with exactly the hook's keys, or a 4xx with
`{"error": {"code", "message", "field"}}`; never a 5xx, never a traceback. For /sync a 200
deletes every observed child it leaves out, so a mutated request that still gets a 200 must
keep every observed child the unmutated request kept, unless the mutation validly asks for a
removal (it touched the parent's spec, name or namespace, or the adapter annotation in a way
that leaves the adapter state known), and it must return every generated Secret's observed
data unchanged.

Requests are built the way Metacontroller sends them (tests/harness.Loop: converge, then the
next request), then one random path is mutated: replaced by a random JSON value, a value of
another type, a special string (100 KB, NUL, RTL, ...) or raw JSON text that Python cannot
produce (lone surrogate escapes, 1e309, -0, 2**64, nesting 200 to 1100 levels deep), deleted,
or given an extra key. /discover never reaches the network: its client only ever connects to
127.0.0.1, to a port that is bound and never listens.
"""
import atexit
import base64
import copy
import functools
import json
import math
import socket
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from hooks.dittofs import client as api
from hooks.dittofs import discovery
from hooks.request import adapters
from hooks.web import app as hook_app, settings as hook_settings
from tests import factory as f
from tests.harness import Loop

TRACEBACK = "Traceback (most recent call last)"
SYNC_KEYS = {"status", "children", "resyncAfterSeconds"}
DECORATOR_KEYS = {"labels", "annotations", "status", "attachments", "resyncAfterSeconds", "finalized"}
DECLARED_ROUTES = tuple(f"/{r}/{hook}" for r in ("dittoshares", "dittousers", "dittogroups")
                        for hook in ("sync", "finalize", "customize"))
ROUTES = ("/sync", "/customize", "/discover", "/discover/customize", *DECLARED_ROUTES)
GENERATED_SECRETS = {"jwt-secret": ("jwt-secret",), "admin-bootstrap-credentials": ("username", "password")}
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# --- values -----------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=16),
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
SPECIAL_STRINGS = [
    "", " ", "x" * 100_000, "é" * 50_000, "\u202e" * 1000 + "nfs", "a\x00b", "\x00", "\u202edemo\u202c",
    "\u200f\u05d0\u05d1", "\ufeff", "\u2028\u2029", "😀" * 100, "9" * 400 + "h", "-1s", "0", "1e309",
    "http://[::1", "http://127.0.0.1:99999", "http://user:pw@127.0.0.1/", "Ⅷ", "ǅ", "İ", "ß",
    "demo", "storage", "true", "null", "[]", "{}",
]


PARSER_DEPTH = 1024   # orjson.loads refuses deeper documents


def nested(depth: int, kind: str = "object") -> bytes:
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b"[" * depth + b"]" * depth


# JSON text that the Python side cannot build (or orjson.dumps cannot write), spliced in raw.
RAW_VALUES = [
    b"1e309", b"-1e309", b"1E400", b"-0", b"-0.0", b"0e0", b"1e-400", b"18446744073709551616",
    b"18446744073709551615", b"-9223372036854775809", b"123456789012345678901234567890",
    b'"\\ud800"', b'"x\\udfff\\ud800y"', b'"\\ud83d\\ude00"', b'"a\\u0000b"', b'"\\u202e\\u200f"',
    b"NaN", b"Infinity", b"-Infinity", b"nul", b'"\xff\xfe"', b'"\xed\xa0\x80"',
    nested(200), nested(200, "array"), nested(260), nested(260, "array"), nested(600),
    nested(1100), nested(1100, "array"),
]
RAW_MARK = "@@fuzz-raw@@"
RAW_MARK_JSON = orjson.dumps(RAW_MARK)


# --- the app and what it answers ----------------------------------------------------------------

class LoopbackOnly(requests.adapters.HTTPAdapter):
    """A transport that refuses, before any DNS lookup, every host but 127.0.0.1."""

    def send(self, request, **kwargs):
        host = urlsplit(request.url).hostname
        if host != "127.0.0.1":
            raise requests.ConnectionError(f"test guard: {host!r} is not 127.0.0.1")
        return super().send(request, **kwargs)


@functools.cache
def closed_port() -> int:
    """A port bound and never listening: a connection to it is refused at once. The socket
    stays open (and the port taken) for the rest of the session."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    atexit.register(sock.close)
    return sock.getsockname()[1]


def guarded_client() -> discovery.Discovery:
    session = api.new_session()
    session.trust_env = False           # no proxy, no netrc from the environment
    for prefix in ("http://", "https://"):
        session.mount(prefix, LoopbackOnly(max_retries=0))
    # The API Services are looked for on a loopback port where nothing listens.
    return discovery.Discovery(api.Client(session=session, connect_timeout=0.2, read_timeout=0.2, budget=0.5),
                               url_template=f"http://127.0.0.1:{closed_port()}")


@functools.cache
def clients() -> dict:
    """Test clients of the app under both apply strategies, with discovery kept on 127.0.0.1."""
    return {
        strategy: hook_app.create_app(hook_settings.Settings(apply_strategy=strategy),
                                      discovery_client=guarded_client()).test_client()
        for strategy in ("dynamic-apply", "server-side-apply")
    }


def post(client, route: str, body: bytes):
    resp = client.post(route, data=body, content_type="application/json")
    resp.sent = body   # what `checked` derives the one right class of answer from
    return resp


def answer_classes(sent: bytes) -> tuple[int, ...]:
    """The answers a body may get: not a JSON object is a 400, an object a 200 or a 422. Never
    a 500, nor a 200 that hides an error (Metacontroller would delete every child)."""
    try:
        value = orjson.loads(sent)
    except orjson.JSONDecodeError:
        return (400,)
    return (200, 422) if isinstance(value, dict) else (400,)


def checked(resp, route: str) -> object:
    """The answer's JSON body, after checking the shape every answer must have."""
    text = resp.get_data(as_text=True)
    assert resp.status_code in answer_classes(resp.sent), f"{route}: {resp.status_code} {text[:300]}"
    assert TRACEBACK not in text
    assert resp.mimetype == "application/json", f"{route}: {resp.status_code} {resp.mimetype}"
    body = orjson.loads(resp.data)
    if resp.status_code == 200:
        if route == "/sync":
            assert set(body) == SYNC_KEYS
            assert isinstance(body["children"], list) and isinstance(body["status"], dict)
        elif route.endswith("/customize"):
            assert set(body) == {"relatedResources"}
        elif route in DECLARED_ROUTES:
            # The declared kinds' hooks own their object's status.
            assert set(body) <= DECORATOR_KEYS and isinstance(body["status"], dict)
        else:
            assert set(body) <= DECORATOR_KEYS and "status" not in body
    else:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
        assert (body["error"]["code"] == "InvalidJSON") == (resp.status_code == 400), body
    return body


# --- requests as Metacontroller sends them ---------------------------------------------------------

NFS, SMB, WEBDAV = f.entry("nfs", 12049), f.entry("smb", 12445), f.entry("webdav", 8081)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def user_secret(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "storage", "uid": f"uid-{name}", "resourceVersion": "7"},
            "data": {key: b64(value) for key, value in data.items()}}


def converged(loop: Loop) -> Loop:
    loop.settle()
    loop.mark_ready()
    loop.settle()
    return loop


def sync_bases() -> dict[str, dict]:
    typical = converged(Loop({"storage": {"metadataSize": "10Gi", "contentSize": "100Gi"}, "metrics": {"enabled": True}},
                             [NFS, SMB, f.entry("nfs", 2049, running=False)], groups=f.WITH_POLICIES))
    refs = converged(Loop(
        {"storage": {"metadataSize": "1Gi", "storageClassName": "fast"},
         "identity": {"jwt": {"secretRef": {"name": "user-jwt", "key": "k"}}},
         "s3": {"credentialsSecretRef": {"secretName": "s3-creds"}, "bucket": "b", "region": "r"},
         "adapterServices": {"type": "NodePort", "annotations": {"a": "b"}}},
        [WEBDAV, f.entry("S3 Gateway", 9000)], version="v1",
        related=[user_secret("user-jwt", k="signing-key"), user_secret("s3-creds", accessKeyId="AK", secretAccessKey="SK")],
    ))
    unknown = copy.deepcopy(typical)
    unknown.set_adapters(None)   # adapter state unknown: every observed adapter child is kept
    return {"typical-v2": typical.request(), "refs-v1": refs.request(), "unknown-v2": unknown.request()}


def discover_bases(port: int) -> dict[str, dict]:
    def request(spec_extra: dict, secret_name: str, url: str) -> dict:
        parent = f.parent(spec={**f.SPEC, **spec_extra}, adapters=[NFS])
        secret = user_secret(secret_name, username="admin", password="pw", **{"server-url": url})
        return {"controller": {"metadata": {"name": "dittofs-discovery"}}, "object": parent, "attachments": {},
                "related": {"Secret.v1": {f"storage/{secret_name}": secret}}, "finalizing": False}
    return {
        "generated": request({"adapterDiscovery": {"pollingInterval": "45s"}}, "demo-admin-bootstrap-credentials",
                             f"http://127.0.0.1:{port}"),
        "named": request({"adapterDiscovery": {"credentialsSecretRef": {"name": "poll"}}, "controlPlane": {"port": 9000}},
                         "poll", f"https://127.0.0.1:{port}/"),
    }


def paths(value, prefix=()) -> list[tuple]:
    """Every path in a JSON document but the root; strings inside it are leaves."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found.append((*prefix, key))
        found += paths(inner, (*prefix, key))
    return found


def at(doc, path: tuple):
    for key in path:
        doc = doc[key]
    return doc


# --- mutations ------------------------------------------------------------------------------------

OPS = ("replace", "retype", "special", "raw", "deepest", "delete", "add")


class Mutated:
    """A mutated request: its body, the path changed, and the document the hook reads."""

    def __init__(self, body: bytes, path: tuple, doc: dict, what: str):
        self.body, self.path, self.doc, self.what = body, path, doc, what

    def __iter__(self):
        return iter((self.body, self.path, self.doc))

    def __repr__(self) -> str:   # what hypothesis prints for a failing case: short
        return f"Mutated(path={self.path!r}, {self.what[:300]})"


@st.composite
def mutation(draw, doc: dict, candidates: list[tuple]) -> Mutated:
    """One random change to a copy of `doc`."""
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(candidates))
    op = draw(st.sampled_from(OPS))
    holder, key = at(doc, path[:-1]), path[-1]
    raw = value = None
    if op == "delete":
        del holder[key]
    elif op == "add" and isinstance(holder[key], dict):
        value = holder[key][draw(st.text(max_size=12))] = draw(JSON)
    elif op == "retype":
        old = holder[key]
        value = holder[key] = draw(JSON.filter(lambda v: type(v) is not type(old)))
    elif op == "special":
        value = holder[key] = draw(st.sampled_from(SPECIAL_STRINGS))
    elif op == "raw":
        holder[key], raw = RAW_MARK, draw(st.sampled_from(RAW_VALUES))
    elif op == "deepest":   # nested right up to the parser's limit of 1024 levels
        holder[key], raw = RAW_MARK, nested(PARSER_DEPTH - len(path), draw(st.sampled_from(["object", "array"])))
    else:
        value = holder[key] = draw(JSON)
    body = orjson.dumps(doc)
    if raw is not None:
        body = body.replace(RAW_MARK_JSON, raw, 1)
        try:
            doc = orjson.loads(body)   # what the hook reads (it answers 400 to the rest)
        except orjson.JSONDecodeError:
            pass
    shown = raw[:120] if raw is not None else repr(value)[:120] + (f"... ({len(repr(value))} chars)" if len(repr(value)) > 120 else "")
    return Mutated(body, path, doc, f"op={op}, value={shown}")


@st.composite
def annotation_mutation(draw, req: dict) -> Mutated:
    """A change inside the adapters annotation's JSON text (it stays a string)."""
    text = req["parent"]["metadata"]["annotations"]["dittofs.io/adapters"]
    entries = json.loads(text)
    inner = draw(mutation({"a": entries}, paths({"a": entries})))
    body = inner.body
    doc = copy.deepcopy(req)
    try:
        new_text = json.dumps(orjson.loads(body).get("a"))
    except orjson.JSONDecodeError:   # a raw value that is not JSON: splice it into the text instead
        new_text = body.decode("utf-8", "replace")[len('{"a":'):-1]
    doc["parent"]["metadata"]["annotations"]["dittofs.io/adapters"] = new_text
    return Mutated(orjson.dumps(doc), ("parent", "metadata", "annotations", "dittofs.io/adapters"), doc,
                   f"annotation text={new_text[:200]!r}")


# --- what a 200 must keep ---------------------------------------------------------------------------

def observed_children(req: dict) -> set[tuple[str, str]]:
    """(group, name) of every object the request shows as a child of the parent, in its namespace."""
    namespace = req["parent"]["metadata"]["namespace"]
    found = set()
    for group in f.WITH_POLICIES:
        objects = req["children"].get(group)
        for obj in objects.values() if isinstance(objects, dict) else ():
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            if isinstance(meta, dict) and isinstance(meta.get("name"), str) and meta.get("namespace", namespace) == namespace:
                found.add((group, meta["name"]))
    return found


def answered(body: dict) -> set[tuple[str, str]]:
    return {(f.group_of(c), c["metadata"]["name"]) for c in body["children"]}


def no_drop_is_owed(path: tuple) -> bool:
    """Whether a change at `path` must keep every child (see the module docstring)."""
    if path[0] != "parent":
        return True                      # children, related, controller, finalizing, extra keys
    if len(path) < 2 or path[1] == "spec":
        return False
    if path[1] == "metadata":
        return len(path) > 2 and path[2] not in ("annotations", "name", "namespace")
    return True                          # kind, apiVersion, status: a 422 or no effect


def adapters_known(body: dict) -> bool:
    return next(c for c in body["status"]["conditions"] if c["type"] == "AdaptersKnown")["status"] == "True"


def check_sync_answer(body: dict, path: tuple, doc: dict, kept_before: set) -> None:
    observed_now = observed_children(doc)
    unknown_after_annotation_change = path[:3] == ("parent", "metadata", "annotations") and not adapters_known(body)
    if no_drop_is_owed(path) or unknown_after_annotation_change:
        dropped = (kept_before & observed_now) - answered(body)
        assert not dropped, f"a 200 after changing {path} deletes {sorted(dropped)}"
    check_generated_secrets(body, doc)


def check_generated_secrets(body: dict, doc: dict) -> None:
    """An observed generated Secret's data is returned unchanged (no 200 may rotate it)."""
    parent = doc["parent"]["metadata"]["name"]
    secrets = doc["children"].get("Secret.v1")
    if not isinstance(secrets, dict):
        return
    answer = {c["metadata"]["name"]: c for c in body["children"] if c["kind"] == "Secret"}
    namespace = doc["parent"]["metadata"]["namespace"]
    for obj in secrets.values():
        name = obj["metadata"]["name"]
        if obj["metadata"].get("namespace", namespace) != namespace:
            continue
        for suffix, keys in GENERATED_SECRETS.items():
            if name != f"{parent}-{suffix}" or name not in answer:
                continue
            if "data" not in obj:
                continue                 # a Secret without keys: generating them is right
            data = obj["data"]
            assert isinstance(data, dict), f"a 200 although observed Secret {name} has data {data!r:.80}"
            for key in keys:
                if key in data:
                    assert answer[name]["data"][key] == data[key], f"a 200 rewrites {name}.data.{key}"


# --- the tests -------------------------------------------------------------------------------------

@functools.cache
def sync_cases() -> list:
    """Each base request with every path in it, and the children each strategy's answer keeps."""
    cases = []
    for name, req in sync_bases().items():
        kept = {}
        for strategy, client in clients().items():
            body = checked(post(client, "/sync", orjson.dumps(req)), "/sync")
            kept[strategy] = observed_children(req) & answered(body)
            assert kept[strategy] == observed_children(req), f"{name}: the unmutated request drops a child"
        cases.append((name, req, paths(req), kept))
    return cases


@settings(FUZZ, max_examples=300)
@given(route=st.sampled_from(ROUTES), value=JSON)
def test_any_json_value_gets_json_and_never_a_5xx(route, value):
    checked(post(clients()["dynamic-apply"], route, orjson.dumps(value)), route)


@settings(FUZZ, max_examples=200)
@given(route=st.sampled_from(ROUTES), raw=st.binary(max_size=256) | st.sampled_from(RAW_VALUES))
def test_any_bytes_get_json_and_never_a_5xx(route, raw):
    checked(post(clients()["dynamic-apply"], route, raw), route)


HOOK_KEYS = ("controller", "parent", "object", "children", "related", "attachments", "finalizing")


@settings(FUZZ, max_examples=300)
@given(route=st.sampled_from(ROUTES), body=st.dictionaries(st.sampled_from(HOOK_KEYS), JSON, max_size=7))
def test_objects_with_the_hook_keys_get_json_and_never_a_5xx(route, body):
    checked(post(clients()["dynamic-apply"], route, orjson.dumps(body)), route)


@settings(FUZZ, max_examples=1000)
@given(data=st.data())
def test_mutated_sync_requests_never_5xx_and_a_200_drops_nothing(data):
    name, req, candidates, kept = data.draw(st.sampled_from(sync_cases()), label="base")
    strategy = data.draw(st.sampled_from(sorted(clients())), label="strategy")
    has_annotation = "dittofs.io/adapters" in req["parent"]["metadata"]["annotations"]
    if has_annotation and data.draw(st.integers(0, 9), label="annotation?") == 0:
        body, path, doc = data.draw(annotation_mutation(req), label="mutation")
    else:
        body, path, doc = data.draw(mutation(req, candidates), label="mutation")
    resp = post(clients()[strategy], "/sync", body)
    answer = checked(resp, "/sync")
    if resp.status_code == 200:
        check_sync_answer(answer, path, doc, kept[strategy])
    # The customize hook reads the same parent (the other keys are ignored).
    checked(post(clients()[strategy], "/customize", body), "/customize")


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_mutated_discover_requests_never_5xx_and_never_leave_the_machine(data):
    bases = discover_bases(closed_port())
    req = bases[data.draw(st.sampled_from(sorted(bases)), label="base")]
    body, path, _ = data.draw(mutation(req, paths(req)), label="mutation")
    for route in ("/discover", "/discover/customize"):
        resp = post(clients()["dynamic-apply"], route, body)
        answer = checked(resp, route)
        if resp.status_code == 200 and route == "/discover":
            # Nothing answers on 127.0.0.1:closed_port and nothing else is reachable: every poll
            # fails, so the annotation is left alone; the resync is a real positive number.
            assert adapters.ANNOTATION not in answer["annotations"], path
            assert answer["attachments"] == []
            resync = answer["resyncAfterSeconds"]
            assert isinstance(resync, (int, float)) and math.isfinite(resync) and resync > 0, (path, resync)


def declared_bases() -> dict[str, dict]:
    """A share, a user and a group of a ready server whose DittoFS is on a closed loopback port,
    with everything their customize hooks relate."""
    server = f.parent(spec={**f.SPEC, "storage": {"metadataSize": "1Gi", "contentSize": "1Gi"},
                            "stores": {"metadata": [{"name": "meta", "type": "badger"}],
                                       "local": [{"name": "blocks", "type": "fs"}]}})
    manager = user_secret("demo-manager-credentials", username="k8s-manager", password="a-manager-password")
    password = user_secret("alice-password", password="alice-password-1")
    related = f.children_map([server, manager, password, f.statefulset()], "v2",
                             groups=("DittoServer.dittofs.dittofs.com/v1alpha1", "Secret.v1", "StatefulSet.apps/v1"))
    specs = {"DittoShare": {"server": "demo", "metadataStore": "meta", "localStore": "blocks",
                            "permissions": [{"user": "alice", "level": "read"}], "deletionPolicy": "Delete"},
             "DittoUser": {"server": "demo", "uid": 1, "passwordSecretRef": {"name": "alice-password"}},
             "DittoGroup": {"server": "demo", "gid": 5}}
    return {kind: {"controller": {}, "finalizing": False, "attachments": {"Secret.v1": {}}, "related": related,
                   "object": {"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": kind,
                              "metadata": {"name": "alice", "namespace": "storage", "generation": 2}, "spec": spec}}
            for kind, spec in specs.items()}


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_mutated_declared_requests_never_5xx_and_never_finalize_what_they_could_not_delete(data):
    bases = declared_bases()
    kind = data.draw(st.sampled_from(sorted(bases)), label="kind")
    req = copy.deepcopy(bases[kind])
    req["finalizing"] = data.draw(st.booleans(), label="finalizing")
    body, path, _ = data.draw(mutation(req, paths(req)), label="mutation")
    resource = kind.lower() + "s"
    for hook in ("sync", "finalize", "customize"):
        route = f"/{resource}/{hook}"
        resp = post(clients()["dynamic-apply"], route, body)
        answer = checked(resp, route)
        if resp.status_code == 200 and hook != "customize":
            # Nothing answers on the closed port: nothing can have been deleted in DittoFS, so a
            # deletion is done only when the server is gone, or the policy (or no deletion) says Retain.
            if answer.get("finalized") is True:
                sent = orjson.loads(body)
                spec = (sent.get("object") or {}).get("spec") if isinstance(sent.get("object"), dict) else None
                policy = spec.get("deletionPolicy", "Retain") if isinstance(spec, dict) else None
                reason = next(c["reason"] for c in answer["status"]["conditions"] if c["type"] == "Synced")
                assert policy != "Delete" or reason in ("ServerNotFound", "ServerDeleting"), (path, reason)


# --- fixed cases: each edge named in the issue, whatever the random draw --------------------------

def test_base_requests_are_answered_and_keep_everything():
    assert [name for name, *_ in sync_cases()] == ["typical-v2", "refs-v1", "unknown-v2"]


def splice(req: dict, path: tuple, raw: bytes) -> bytes:
    """`req` with `raw` JSON text at `path` (missing maps on the way are added)."""
    doc = copy.deepcopy(req)
    holder = doc
    for key in path[:-1]:
        holder = holder.setdefault(key, {}) if isinstance(holder, dict) else holder[key]
    holder[path[-1]] = RAW_MARK
    return orjson.dumps(doc).replace(RAW_MARK_JSON, raw, 1)


def last_applied(inner: bytes) -> bytes:
    """A last-applied annotation (a JSON string) naming the adapter Service, with `inner` in it."""
    text = b'{"metadata": {"name": "demo-adapter-nfs"}, "spec": {"x": ' + inner + b"}}"
    return orjson.dumps(text.decode())


STS = ("children", "StatefulSet.apps/v1", "storage/demo")
NFS_SERVICE = ("children", "Service.v1", "storage/demo-adapter-nfs")
ADMIN = ("children", "Secret.v1", "storage/demo-admin-bootstrap-credentials")
EDGE_PATHS = [
    ("parent", "apiVersion"),
    ("parent", "kind"),
    ("parent", "spec", "resources"),
    ("parent", "spec", "securityContext"),
    ("parent", "spec", "podSecurityContext"),
    ("parent", "spec", "storage", "metadataSize"),
    ("parent", "spec", "adapterDiscovery", "pollingInterval"),
    ("parent", "metadata", "name"),
    ("parent", "metadata", "namespace"),
    ("parent", "metadata", "annotations"),
    ("parent", "metadata", "annotations", "dittofs.io/adapters"),
    ("parent", "metadata", "labels"),
    ("parent", "status"),
    ("parent", "status", "conditions"),
    (*NFS_SERVICE, "spec"),
    (*NFS_SERVICE, "spec", "ports"),
    (*NFS_SERVICE, "spec", "ports", 0, "name"),
    (*NFS_SERVICE, "metadata", "labels"),
    (*NFS_SERVICE, "metadata", "annotations", "metacontroller.k8s.io/last-applied-configuration"),
    (*STS, "spec", "volumeClaimTemplates"),
    (*STS, "spec", "selector", "matchLabels"),
    (*STS, "spec", "template", "spec", "containers"),
    (*STS, "spec", "template", "spec", "containers", 0, "ports"),
    (*STS, "spec", "template", "spec", "containers", 0, "ports", 0, "protocol"),
    (*STS, "status"),
    (*ADMIN, "data"),
    (*ADMIN, "data", "password"),
    ("related",),
    ("controller",),
    ("finalizing",),
]
EDGE_VALUES = [
    *RAW_VALUES,
    orjson.dumps("x" * 100_000), orjson.dumps("\u202e" * 1000), b'"a\\u0000b\\u0000"', b'[1, "a", null]',
    b'{"a": 1}', b'"9999999999999999999999999999999999999999h"', b"[{}, [], 0]",
    last_applied(b"[" * 300 + b"]" * 300), last_applied(b'"\\ud800"'), last_applied(b"1e999"),
]


@pytest.mark.parametrize("path", EDGE_PATHS, ids=lambda p: ".".join(map(str, p[-3:])))
def test_edge_values_at_sensitive_paths(path):
    """Every edge value at every sensitive path, with adapter state unknown and known."""
    _, unknown, _, kept = next(case for case in sync_cases() if case[0] == "unknown-v2")
    known = copy.deepcopy(unknown)
    known["parent"]["metadata"]["annotations"]["dittofs.io/adapters"] = f.annotation(NFS, SMB)
    deepest = [nested(PARSER_DEPTH - len(path), kind) for kind in ("object", "array")]
    client = clients()["dynamic-apply"]
    for base in (unknown, known):
        for raw in (*EDGE_VALUES, *deepest):
            body = splice(base, path, raw)
            resp = post(client, "/sync", body)
            answer = checked(resp, "/sync")
            if resp.status_code == 200:
                check_sync_answer(answer, path, orjson.loads(body), kept["dynamic-apply"])
            checked(post(client, "/customize", body), "/customize")


@pytest.mark.parametrize("raw", [nested(1100), nested(1100, "array"), b"[" * 5000, nested(PARSER_DEPTH + 1)])
@pytest.mark.parametrize("route", ROUTES)
def test_nesting_past_the_parser_limit_is_a_400(route, raw):
    resp = post(clients()["dynamic-apply"], route, raw)
    assert resp.status_code == 400 and checked(resp, route)["error"]["code"] == "InvalidJSON"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("raw", [b'{"parent": "\\ud800"}', b'{"parent": "\\udc00\\ud800"}', b'{"parent": 1e309}',
                                 b'{"parent": "\xed\xa0\x80"}', b'{"parent": NaN}'])
def test_what_the_parser_refuses_is_a_400(route, raw):
    resp = post(clients()["dynamic-apply"], route, raw)
    assert resp.status_code == 400 and checked(resp, route)["error"]["code"] == "InvalidJSON"


def unknown_request() -> dict:
    return copy.deepcopy(next(req for name, req, *_ in sync_cases() if name == "unknown-v2"))


@pytest.mark.parametrize("group", ["Service.v1", "NetworkPolicy.networking.k8s.io/v1"])
@pytest.mark.parametrize("labels", [None, {}, {"dittofs.io/adapter-service": "false", "dittofs.io/adapter-networkpolicy": "no"}])
def test_unknown_state_keeps_an_adapter_child_whose_label_was_removed(group, labels):
    """Unknown adapter state deletes nothing, even an adapter child someone relabelled."""
    req = unknown_request()
    meta = req["children"][group]["storage/demo-adapter-nfs"]["metadata"]
    if labels is None:
        del meta["labels"]
    else:
        meta["labels"] = labels
    for client in clients().values():
        resp = post(client, "/sync", orjson.dumps(req))
        assert resp.status_code == 200
        assert (group, "demo-adapter-nfs") in answered(checked(resp, "/sync"))


@pytest.mark.parametrize("value", [5, "x", [], ["cGFzcw=="], None, {"password": 5}, {"password": None},
                                   {"password": ["cGFzcw=="]}, {"password": {"a": "b"}}])
@pytest.mark.parametrize("secret", ["demo-admin-bootstrap-credentials", "demo-jwt-secret"])
def test_a_generated_secret_with_unreadable_data_is_refused_not_rotated(secret, value):
    req = unknown_request()
    req["children"]["Secret.v1"][f"storage/{secret}"]["data"] = value
    resp = post(clients()["dynamic-apply"], "/sync", orjson.dumps(req))
    assert resp.status_code == 422
    assert checked(resp, "/sync")["error"]["field"] == f"children.Secret.v1.{secret}.data"


@pytest.mark.parametrize("value", [5, "x", ["a"], [1, "a"], None, {"k": 5}, {"k": [[[]]]}])
def test_a_referenced_secret_with_unreadable_data_is_refused(value):
    req = copy.deepcopy(next(req for name, req, *_ in sync_cases() if name == "refs-v1"))
    req["related"]["Secret.v1"]["user-jwt"]["data"] = value
    resp = post(clients()["dynamic-apply"], "/sync", orjson.dumps(req))
    assert resp.status_code == 422 and checked(resp, "/sync")["error"]["code"] == "InvalidRelated"


# --- discovery: regressions found by the fuzzer (fixes in hooks/dittofs/discovery.py) ---------------------

def discover_with(key: str, value: str, base: str = "generated") -> object:
    req = discover_bases(closed_port())[base]
    secret = next(iter(req["related"]["Secret.v1"].values()))
    secret["data"][key] = value
    resp = post(clients()["dynamic-apply"], "/discover", orjson.dumps(req))
    return resp.status_code, checked(resp, "/discover")


@pytest.mark.parametrize("key", ["username", "password", "server-url"])
@pytest.mark.parametrize("value", ["é", "ééé=", "\u202e", "\x00", "\ud7ff"])
def test_discovery_with_a_non_ascii_secret_value_fails_the_poll_not_the_call(key, value):
    """base64.b64decode raises a plain ValueError for non-ASCII text: a failed poll, not a 500."""
    status, answer = discover_with(key, value)
    assert status == 200 and adapters.ANNOTATION not in answer["annotations"]


@pytest.mark.parametrize("url", ["http://[::1", "http://[127.0.0.1]/", "https://[zz::1]:80", "http://ex\uff0fample.com",
                                 "http://a\u2100b/", "http://127.0.0.1:99999", "http://:80", "http://127.0.0.1\x00/"])
def test_discovery_with_an_unparsable_server_url_fails_the_poll_not_the_call(url):
    """urlsplit raises ValueError for bad IPv6 brackets and NFKC-unsafe netlocs: a failed poll, not a 500."""
    status, answer = discover_with("server-url", b64(url), base="named")
    assert status == 200 and adapters.ANNOTATION not in answer["annotations"]


@pytest.mark.parametrize("interval", ["9" * 400 + "h", "2562048h", "99999999999999999999s"])
def test_a_polling_interval_longer_than_go_allows_means_the_default(interval):
    req = discover_bases(closed_port())["generated"]
    req["object"]["spec"]["adapterDiscovery"]["pollingInterval"] = interval
    resp = post(clients()["dynamic-apply"], "/discover", orjson.dumps(req))
    assert resp.status_code == 200 and checked(resp, "/discover")["resyncAfterSeconds"] == 30.0


DISCOVER_EDGE_PATHS = [
    ("object", "apiVersion"),
    ("object", "metadata", "name"),
    ("object", "metadata", "namespace"),
    ("object", "metadata", "annotations"),
    ("object", "spec", "adapterDiscovery"),
    ("object", "spec", "adapterDiscovery", "pollingInterval"),
    ("object", "spec", "controlPlane", "port"),
    ("related", "Secret.v1"),
    ("related", "Secret.v1", "storage/demo-admin-bootstrap-credentials", "metadata"),
    ("related", "Secret.v1", "storage/demo-admin-bootstrap-credentials", "data"),
    ("related", "Secret.v1", "storage/demo-admin-bootstrap-credentials", "data", "server-url"),
]


@pytest.mark.parametrize("path", DISCOVER_EDGE_PATHS, ids=lambda p: ".".join(map(str, p[-2:])))
def test_discover_edge_values_at_sensitive_paths(path):
    req = discover_bases(closed_port())["generated"]
    deepest = [nested(PARSER_DEPTH - len(path), kind) for kind in ("object", "array")]
    for raw in (*EDGE_VALUES, *deepest):
        body = splice(req, path, raw)
        for route in ("/discover", "/discover/customize"):
            resp = post(clients()["dynamic-apply"], route, body)
            answer = checked(resp, route)
            if resp.status_code == 200 and route == "/discover":
                assert adapters.ANNOTATION not in answer["annotations"] and answer["resyncAfterSeconds"] > 0
