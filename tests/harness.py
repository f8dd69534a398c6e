"""Metacontroller in a box: a DittoServer, a fake namespace (`applying.Cluster`, or the real
API server through `tests.realcluster.Store`) and the loop that sends sync requests built from
the cluster and applies the answers back to it.

Status is written to the parent the way Metacontroller does (whole status, only when it
differs), so a status that flips between calls shows up as a sync that never settles.

Events, as Metacontroller's watches deliver them: every input the loop changes (the parent's
spec or annotations, a child's status, a related Secret) and every write of a sync (a child,
the parent's status) is an event, and `on_events()` syncs only while one is pending. What is
left for a periodic resync is then what `resync()` finds: a sync with no event, later on the
clock. `tests/test_convergence.py` shows it finds nothing, so no state relies on the resync
period.
"""
import copy
from datetime import timedelta

from hooks.children import adoption, sync
from hooks.dittofs import layout
from hooks.request import ports
from hooks.tools import applying
from hooks.web import customize
from tests import factory as f

PARENT_UID = "0c0ffee0-0000-4000-8000-000000000001"


class Loop:
    def __init__(self, spec=None, adapters=None, name="demo", namespace="storage",
                 strategy="dynamic-apply", groups=f.GROUPS, version="v2", related=(), store=applying.Cluster,
                 uid=PARENT_UID):
        self.parent = f.parent(name=name, namespace=namespace, spec=spec, adapters=adapters)
        # `uid`: the real server's, for a DittoServer stored there (owner references name it).
        self.parent["metadata"]["uid"] = uid
        # The fake namespace, or the real API server (tests/realcluster.py) for the same scenarios.
        self.cluster = store(namespace=namespace, parent_uid=uid, parent_name=name)
        self.strategy, self.groups, self.version = strategy, groups, version
        self.related = list(related)
        self.status_writes = 0
        self.last: dict | None = None
        self.now = f.NOW                # the hook's clock (condition transition times)
        self.pending = True             # an event not synced yet: the parent was just created
        self.event_syncs = 0            # syncs `on_events` made

    # --- inputs -------------------------------------------------------------------------------
    def set_adapters(self, adapters) -> None:
        """Entries, a raw annotation string, or None to remove the annotation."""
        annotations = self.parent["metadata"]["annotations"]
        if adapters is None:
            annotations.pop("dittofs.io/adapters", None)
        else:
            annotations["dittofs.io/adapters"] = adapters if isinstance(adapters, str) else f.annotation(*adapters)
        self.pending = True

    def set_spec(self, spec: dict) -> None:
        self.parent["spec"] = copy.deepcopy(spec)
        self.parent["metadata"]["generation"] += 1
        self.pending = True

    def set_annotation(self, key: str, value: str | None) -> None:
        """What `/discover` writes (a null deletes), or anyone else."""
        f.merge_annotations(self.parent, {key: value})
        self.pending = True

    def set_related(self, related: list[dict]) -> None:
        """The related Secrets as they are now (created, rotated, deleted): a watched change."""
        self.related = list(related)
        self.pending = True

    # --- one round trip -----------------------------------------------------------------------
    def request(self) -> dict:
        return {
            "controller": {"metadata": {"name": "dittofs"}},
            "parent": copy.deepcopy(self.parent),
            "children": self.cluster.observed(self.version, self.groups),
            "related": self.related_map(),
            "finalizing": False,
        }

    def related_map(self) -> dict:
        """The user's Secrets, and every live object the customize hook relates by name (the
        objects the children would be, children or not), as Metacontroller gathers them."""
        live = self.cluster.objects
        found = list(self.related)
        for rule in customize.related_resources({"parent": self.parent})["relatedResources"]:
            group = next((g for g, v, r in adoption.KINDS if (v, r) == (rule["apiVersion"], rule["resource"])), None)
            if group in self.groups:
                kind = group.partition(".")[0]
                found += [live[(kind, name)] for name in rule["names"] if (kind, name) in live]
        return f.children_map(found, self.version, ()) if found else {}

    def sync(self) -> list[applying.Change]:
        """One sync: the hook's answer applied to the cluster and the parent's status."""
        self.last = sync.desired_state(self.request(), strategy=self.strategy, now=self.now,
                                       random_token=f.fake_token)
        status = dict(self.last["status"], observedGeneration=self.parent["metadata"]["generation"])
        # Type-exact, as Go's DeepEqual compares: with `!=`, 1 == 1.0 == True would hide a
        # status that flips between an int and a float on every sync.
        status_writes = self.status_writes
        if not applying.same(self.parent.get("status"), status):
            self.parent["status"] = status
            self.status_writes += 1
        changes = self.cluster.apply(self.last["children"])
        # Each write is an event the next sync answers; a sync that wrote nothing leaves none.
        self.pending = bool(changes) or self.status_writes != status_writes
        return changes

    def on_events(self, limit: int = 6) -> int:
        """Sync only while an event is pending, as Metacontroller's watches trigger syncs;
        the number of syncs made."""
        made = 0
        while self.pending:
            if made == limit:
                raise AssertionError(f"events still pending after {limit} syncs; last writes: {self.cluster.writes[-5:]}")
            self.sync()
            made += 1
        self.event_syncs += made
        return made

    def resync(self, later: timedelta = timedelta(hours=1)) -> list[applying.Change]:
        """A periodic resync: no event, `later` on the hook's clock. The changes it made (and
        a status write shows in `status_writes`)."""
        self.now += later
        return self.sync()

    def settle(self, limit: int = 5) -> int:
        """Sync until a sync writes nothing (children or status); the number of syncs taken."""
        for rounds in range(1, limit + 1):
            status_before = self.status_writes
            if not self.sync() and self.status_writes == status_before:
                return rounds
        raise AssertionError(f"did not settle in {limit} syncs; last writes: {self.cluster.writes[-5:]}")

    # --- what is live ---------------------------------------------------------------------------
    def live(self, kind: str, name: str) -> dict | None:
        return self.cluster.objects.get((kind, name))

    def live_names(self, kind: str) -> list[str]:
        return sorted(name for k, name in self.cluster.objects if k == kind)

    def live_ports(self) -> list[dict]:
        sts = self.live("StatefulSet", self.parent["metadata"]["name"])
        return sts["spec"]["template"]["spec"]["containers"][0]["ports"]

    def live_port_set(self) -> set[tuple]:
        return {(p["name"], p["containerPort"], p["protocol"]) for p in self.live_ports()}

    def mark_ready(self, ready: int = 1) -> None:
        self.cluster.set_statefulset_status(self.parent["metadata"]["name"], ready=ready)
        self.pending = True


def hook_statuses() -> list[dict]:
    """Statuses the hook really returns, covering every condition and adapter state: running
    with adapters and a port clash, then stopped with a storage change it cannot make and
    unknown adapters."""
    loop = Loop({"storage": {"metadataSize": "10Gi"}}, [f.entry("nfs", 12049), f.entry("smb", 8080)])
    loop.settle()
    loop.mark_ready()
    loop.settle()
    statuses = [loop.parent["status"]]
    loop.set_spec({"storage": {"metadataSize": "99Gi"}, "replicas": 0})
    loop.set_adapters("broken")
    loop.settle()
    statuses.append(loop.parent["status"])
    return statuses


GO_OPERATOR_FINALIZER = "dittofs.dittofs.com/finalizer"
GO_OPERATOR_SECRET = "c2V0IGJ5IHRoZSBHbyBvcGVyYXRvcg=="   # "set by the Go operator"


def go_operator_children(loop: Loop, strategy: str = ports.SERVER_SIDE) -> list[dict]:
    """The children the DittoFS Go operator v0.29 sends the API server for the loop's parent:
    the hook's render under `strategy` (SERVER_SIDE: NFS's UDP twins, as the Go operator always
    has them; DYNAMIC leaves them out) with what the Go operator writes otherwise
    (`as_the_go_operator_writes`), built by its typed client: a controller ownerReference to
    the DittoServer, no `controller-uid` label, no managed-by label, no last-applied
    annotation, Secret values of its own."""
    answer = sync.desired_state(loop.request(), strategy=strategy, now=f.NOW,
                                random_token=f.fake_token)
    made = []
    for obj in copy.deepcopy(answer["children"]):
        metadata = obj["metadata"]
        if metadata["name"].endswith(f"-{layout.MANAGER_SUFFIX}"):
            continue   # this project's account for declared shares: the Go operator has none
        metadata["labels"] = {k: v for k, v in (metadata.get("labels") or {}).items()
                              if k != "app.kubernetes.io/managed-by"}
        metadata.update(namespace=loop.cluster.namespace, ownerReferences=[loop.cluster.owner_ref()])
        if obj["kind"] == "Secret":
            obj["data"] = {key: GO_OPERATOR_SECRET for key in obj["data"]}
        made.append(as_the_go_operator_writes(obj))
    return made


GO_OPERATOR_CONFIG_HASH = "9e0d" * 16   # its hash covers other inputs (the generation among them)


def as_the_go_operator_writes(obj: dict) -> dict:
    """Where the Go operator v0.29.0's object differs from the hook's (read in its
    `dittoserver_controller.go` and `networkpolicy_reconciler.go`, and seen on a real cluster):
    its pod template has a config hash of its own, probes that name the API port by number, a
    config mount that is not read-only and an optional bootstrap admin password; an NFS
    NetworkPolicy allows the data port and the portmapper over TCP and UDP, in its order."""
    if obj["kind"] == "StatefulSet":
        template = obj["spec"]["template"]
        template["metadata"]["annotations"]["dittofs.io/config-hash"] = GO_OPERATOR_CONFIG_HASH
        container = template["spec"]["containers"][0]
        api_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "api")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            for action in ("httpGet", "tcpSocket"):
                if action in container[probe]:
                    container[probe][action]["port"] = api_port
        for mount in container["volumeMounts"]:
            if mount["name"] == "config":
                mount.pop("readOnly", None)
        for env in container["env"]:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if env["name"] == "DITTOFS_ADMIN_INITIAL_PASSWORD" and ref.get("name", "").endswith("-admin-bootstrap-credentials"):
                ref["optional"] = True
    adapter = (obj["metadata"].get("labels") or {}).get("dittofs.io/adapter-type")
    if obj["kind"] == "NetworkPolicy" and adapter:
        rule = obj["spec"]["ingress"][0]
        # Its policies open the adapter's own port, not the discovery ports its Services expose.
        data = next(p["port"] for p in rule["ports"] if p["protocol"] == "TCP"
                    and p["port"] not in (ports.PORTMAPPER_TARGET, 5357))
        rule["ports"] = [{"port": data, "protocol": "TCP"}]
        if adapter == "nfs":
            rule["ports"] += [{"port": ports.PORTMAPPER_TARGET, "protocol": "TCP"},
                              {"port": ports.PORTMAPPER_TARGET, "protocol": "UDP"}, {"port": data, "protocol": "UDP"}]
    return obj


def go_operator_world(loop: Loop) -> None:
    """The loop's fake namespace as the DittoFS Go operator v0.29 leaves it: its children
    (`go_operator_children`) as the server stores them, the StatefulSet running, and its
    finalizer on the parent."""
    for child in go_operator_children(loop):
        obj = applying.server_defaults(child)
        obj["metadata"].update(uid=f"go-{obj['kind']}-{obj['metadata']['name']}", resourceVersion="1",
                               generation=1, creationTimestamp=applying.CREATION_TIMESTAMP)
        loop.cluster.objects[(obj["kind"], obj["metadata"]["name"])] = obj
    loop.parent["metadata"]["finalizers"] = [GO_OPERATOR_FINALIZER]
    loop.mark_ready()
