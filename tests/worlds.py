"""A DittoServer in a box for the discovery tests: the hook's sync answer, the real `dfs` it
describes (tests/realdfs.py), the hook on a real gunicorn pointed at it, and the parent and its
Secrets as Metacontroller holds them between calls."""
import base64
import contextlib
import copy

import requests

from hooks.dittofs import layout
from hooks.request import controlplane
from tests import factory, realdfs, servers


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def decoded(secret: dict, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def secret(name: str, version: str = "1", **data: str) -> dict:
    """A Secret as the API server returns it (`version`: its resourceVersion)."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "storage", "resourceVersion": version},
            "type": "Opaque", "data": {k: b64(v) for k, v in data.items()}}


class World:
    def __init__(self, server: realdfs.Server, hook: str, response: dict, spec: dict, secrets: list[dict] = ()):
        self.server, self.hook, self.response = server, hook, response
        self.parent = factory.parent(spec=spec)
        self.secrets = list(secrets)    # the user's, which the spec names (related to both hooks)
        self.related = [*(c for c in response["children"] if c["kind"] == "Secret"), *secrets]
        self.last: dict = {}
        self.declared: list[dict] = []   # DittoShares, DittoUsers and DittoGroups in the namespace
        self.ready = 1                   # the StatefulSet's ready replicas, as the declared hooks see it

    @property
    def api(self) -> realdfs.PortForward:
        return self.server.forwards["api"]

    def discover(self) -> dict:
        """One DecoratorController call; its annotations are kept, as Metacontroller does. The
        StatefulSet has a ready replica: the real `dfs` runs."""
        request = {"controller": {}, "object": copy.deepcopy(self.parent), "finalizing": False,
                   "attachments": {},
                   "related": factory.discovery_related([*self.related, factory.statefulset(), *self.declared])}
        found = requests.post(self.hook + "/discover", json=request, timeout=20)
        assert found.status_code == 200, found.text
        self.last = found.json()
        assert "status" not in self.last
        assert self.last["attachments"] == []
        factory.merge_annotations(self.parent, self.last["annotations"])
        return self.last

    def sync(self) -> dict:
        found = requests.post(self.hook + "/sync", json=factory.request(self.parent, related=self.secrets), timeout=20)
        assert found.status_code == 200, found.text
        return found.json()

    def keep(self, obj: dict, finalizing: bool = False, attachments: list[dict] = ()) -> dict:
        """One call of a declared kind's DecoratorController (sync, or finalize when
        `finalizing`), with what its customize hook relates: the server, its Secrets and the
        user's. Status, annotations and attachments are kept as Metacontroller keeps them."""
        resource = obj["kind"].lower() + "s"
        kept = obj.setdefault("attachments", [])
        request = {"controller": {}, "object": {k: v for k, v in obj.items() if k != "attachments"},
                   "finalizing": finalizing, "attachments": factory.children_map(list(attachments) or kept, "v2"),
                   "related": factory.children_map([self.parent, *self.related, factory.statefulset(ready=self.ready)], "v2",
                                                   groups=("DittoServer.dittofs.dittofs.com/v1alpha1", "Secret.v1",
                                                           "StatefulSet.apps/v1"))}
        found = requests.post(f"{self.hook}/{resource}/{'finalize' if finalizing else 'sync'}", json=request, timeout=30)
        assert found.status_code == 200, found.text
        answer = found.json()
        obj["status"] = answer["status"]
        obj["metadata"].setdefault("annotations", {}).update(answer.get("annotations") or {})
        obj["attachments"] = [{**a, "metadata": {**a["metadata"], "resourceVersion": "1"}} for a in answer["attachments"]]
        return answer

    def state(self) -> controlplane.State:
        return controlplane.read_state(self.last["annotations"])

    def operator_secret(self) -> dict:
        return next(s for s in self.related if s["metadata"]["name"].endswith(layout.OPERATOR_SUFFIX))

    def bootstrap_password(self) -> str:
        bootstrap = next(s for s in self.related if s["metadata"]["name"].endswith(layout.ADMIN_SUFFIX))
        return decoded(bootstrap, "password")

    def admin(self, password: str | None = None) -> dict:
        token = self.server.login("admin", password or self.bootstrap_password())["access_token"]
        return {"Authorization": f"Bearer {token}"}


def declared(kind: str, name: str, spec: dict, namespace: str = "storage") -> dict:
    """A DittoShare, DittoUser or DittoGroup as the API server returns it."""
    return {"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "generation": 1, "uid": f"u-{name}"}, "spec": spec}


@contextlib.contextmanager
def world(tmp_path, spec=None, hook_env=None, secrets: list[dict] = (), namespace: realdfs.Namespace | None = None):
    """`secrets`: the user's Secrets the spec names; `namespace`: the pod's network, when a test
    made it first (to forward a server on this machine into it)."""
    spec = spec or factory.SPEC
    response = factory.sync_of(factory.request(factory.parent(spec=spec), related=list(secrets)))
    # pod_paths: the stores the hooks make are at their pod paths (/data/store/...), as in a pod.
    with realdfs.running(realdfs.pod_of(response, list(secrets)), tmp_path, namespace=namespace, pod_paths=True) as server:
        env = {"DITTOFS_HOOK_API_URL_TEMPLATE": server.url(), **(hook_env or {})}
        with servers.gunicorn(env) as (hook, _):
            yield World(server, hook, response, spec, list(secrets))
