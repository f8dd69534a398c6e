"""The real API server (tests/apiserver.py) as the convergence harness's store: the same
interface as `applying.Cluster`, but every write is a real request and every object is what the
server stored, defaults, validation and the server-side apply merge included.

Metacontroller's two ways of writing a child:
- dynamic apply: the three-way merge of `applying` (live, last applied, desired), created with
  POST and updated with PUT, so the server, not the model, says what is stored;
- server-side apply: the desired object as an apply patch (field manager `metacontroller`,
  force), the server merging by its own list-map keys.
A write is a change of the object's resourceVersion (a no-op update or apply stores nothing),
a pod-template write one that changed a StatefulSet's stored template.

Before each sync the parent claims its children by `applying.Cluster`'s rules (Metacontroller's
ClaimObject, `applying.claim_verdict`), each release or adoption a real PUT of the object's
ownerReferences as Metacontroller's atomicUpdate sends it; only children are observed, updated
or deleted, and a create the server refuses with `AlreadyExists` is swallowed, as
Metacontroller swallows it.
"""
from __future__ import annotations

import copy
import dataclasses
import json

from hooks.request import ports
from hooks.tools import applying
from tests import apiserver, factory

SYSTEM = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


class Store:
    def __init__(self, api: apiserver.Api, strategy: str = ports.DYNAMIC, *, namespace: str,
                 parent_uid: str, parent_name: str) -> None:
        self.api, self.strategy = api, strategy
        self.namespace, self.parent_uid, self.parent_name = api.namespace(namespace), parent_uid, parent_name
        self.kinds = ("ConfigMap", "Secret", "Service", "StatefulSet", "NetworkPolicy")
        self.writes: list[applying.Change] = []
        self.requests: list[tuple[str, str]] = []   # (kind/name, how it was written)
        self.released: list[tuple[str, str]] = []
        self.adopted: list[tuple[str, str]] = []
        self.already_exists: list[tuple[str, str]] = []

    # --- what is live -------------------------------------------------------------------------
    @property
    def objects(self) -> dict[tuple[str, str], dict]:
        return {(obj["kind"], obj["metadata"]["name"]): obj
                for kind in self.kinds for obj in self.api.list(kind, self.namespace)}

    def claim(self) -> dict[tuple[str, str], dict]:
        """Release, adopt, and return the parent's children by (kind, name), as stored after."""
        children = {}
        for key, obj in self.objects.items():
            verdict = applying.claim_verdict(obj, self.parent_uid)
            if verdict in ("release", "adopt"):
                obj = self._set_owners(key, obj, verdict)
            if verdict in ("adopt", "child"):
                children[key] = obj
        return children

    def _set_owners(self, key: tuple[str, str], obj: dict, verdict: str) -> dict:
        # Metacontroller's atomicUpdate: GET, then PUT with the resourceVersion read (no patch
        # type edits one entry of ownerReferences idempotently); the list read is that GET.
        body = copy.deepcopy(obj)
        body["metadata"]["ownerReferences"] = applying.claimed_refs(obj, verdict, self.owner_ref())
        (self.released if verdict == "release" else self.adopted).append(key)
        self.requests.append((f"{key[0]}/{key[1]}", verdict))
        return self.api.replace(body)

    def owner_ref(self) -> dict:
        return applying.owner_ref(self.parent_name, self.parent_uid)

    def observed(self, version: str = "v1", kinds: tuple[str, ...] = factory.GROUPS) -> dict:
        children: dict[str, dict] = {group: {} for group in kinds}
        for (kind, name), obj in self.claim().items():
            group = children.get(f"{kind}.{obj['apiVersion']}")
            if group is not None:
                group[name if version == "v1" else f"{self.namespace}/{name}"] = obj
        return children

    def pod_template_writes(self) -> int:
        return sum(1 for c in self.writes if c.action == "update" and c.restarts_pod)

    def set_statefulset_status(self, name: str, ready: int) -> None:
        """What the StatefulSet controller would write (there is none: the server has no
        controllers), through the status subresource."""
        sts = self.api.get("StatefulSet", name, self.namespace)
        replicas = sts["spec"].get("replicas", 1)
        sts["status"] = {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                         "currentReplicas": replicas, "updatedReplicas": replicas,
                         "observedGeneration": sts["metadata"]["generation"]}
        self.api.replace(sts, "/status")

    # --- one sync response ------------------------------------------------------------------------
    def apply(self, desired_children: list[dict]) -> list[applying.Change]:
        """Deletes first, as Metacontroller does; an API error is raised after the other writes
        (a rejected immutable StatefulSet field as applying.ImmutableFieldError)."""
        desired = applying.prepare_desired(desired_children, self.namespace, self.parent_uid)
        children = self.claim()
        errors: list[apiserver.ApiError] = []
        done = [c for c in (self._delete(children, desired) + self._write(children, desired, errors)) if c]
        self.writes += done
        if errors:
            immutable = all(e.status == 422 and "Forbidden: updates to statefulset spec" in e.body for e in errors)
            raise (applying.ImmutableFieldError if immutable else RuntimeError)("; ".join(map(str, errors)))
        return done

    def _delete(self, live: dict, desired: list[dict]) -> list[applying.Change]:
        wanted = {(c["kind"], c["metadata"]["name"]) for c in desired}
        gone = sorted(key for key in live if key not in wanted)
        for kind, name in gone:
            self.api.delete(kind, name, self.namespace)
            self.requests.append((f"{kind}/{name}", "DELETE"))
        return [applying.Change(kind, name, "delete", (), kind == "StatefulSet") for kind, name in gone]

    def _write(self, children: dict, desired: list[dict], errors: list) -> list[applying.Change | None]:
        if self.strategy == ports.SERVER_SIDE:
            # An apply patch takes over whatever holds the name, child or not: compare with that.
            stored = self.objects
            pairs = [(stored.get((c["kind"], c["metadata"]["name"])), self._owned(c)) for c in desired]
            return [self._send(before, body, "apply", errors) for before, body in pairs]
        planned = applying.writes(list(children.values()), desired)
        return [self._dynamic(change, before, body, errors) for change, before, body in planned
                if change.action in ("create", "update")]

    def _dynamic(self, change: applying.Change, before: dict | None, body: dict, errors: list
                 ) -> applying.Change | None:
        failed = len(errors)
        written = self._send(before, self._owned(body) if change.action == "create" else body,
                             change.action, errors)
        if written is None and change.action == "update" and len(errors) == failed:
            # Metacontroller sends what the model plans: an update the server finds a no-op is
            # still a request on every sync, so it counts (it stores nothing, rolls nothing).
            return dataclasses.replace(change, restarts_pod=False)
        return written

    def _owned(self, child: dict) -> dict:
        """The child with the parent's controller reference, as Metacontroller sends it."""
        body = copy.deepcopy(child)
        body["metadata"]["ownerReferences"] = [self.owner_ref()]
        return body

    def _send(self, before: dict | None, body: dict, how: str, errors: list) -> applying.Change | None:
        send = {"apply": self.api.apply, "create": self.api.create, "update": self.api.replace}[how]
        self.requests.append((f"{body['kind']}/{body['metadata']['name']}", how))
        try:
            after = send(body)
        except apiserver.ApiError as exc:
            if how == "create" and already_exists(exc):   # a non-child holds the name
                self.already_exists.append((body["kind"], body["metadata"]["name"]))
            else:
                errors.append(exc)
            return None
        return changed(before, after)


def already_exists(error: apiserver.ApiError) -> bool:
    """Whether the server refused a create because the name is taken (Metacontroller logs
    `child object already exists` and goes on: no error, no retry)."""
    return error.status == 409 and json.loads(error.body).get("reason") == "AlreadyExists"


def changed(before: dict | None, after: dict) -> applying.Change | None:
    """The write `after` is, compared with `before` as the server stored both; None for none."""
    kind, name = after["kind"], after["metadata"]["name"]
    if before is None:
        return applying.Change(kind, name, "create", (), kind == "StatefulSet")
    if before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]:
        return None
    fields = tuple(sorted(applying.diff_paths(content(before), content(after))))
    restarts = kind == "StatefulSet" and not applying.same(before["spec"]["template"], after["spec"]["template"])
    return applying.Change(kind, name, "update", fields, restarts)


def content(obj: dict) -> dict:
    """`obj` without what the server keeps for itself (uid, versions, managedFields)."""
    out = copy.deepcopy(obj)
    for key in SYSTEM:
        out["metadata"].pop(key, None)
    return out
