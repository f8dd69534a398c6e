"""The `dittofs` container's merged port list and the adapter Service ports derived from it.

Static ports (`api`, `metrics`) plus one `adapter-*` port per active adapter (NFS also has its
portmapper), resolved against the keys the apply strategy merges by, sorted by name. The
resolution order is fixed (static first, then by name, an adapter's own port before another
adapter's auxiliary port of the same name), so the result never depends on input order.
"""
import functools
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from hooks.request import adapters, names

Strategy = Literal["dynamic-apply", "server-side-apply"]
DYNAMIC: Strategy = "dynamic-apply"
SERVER_SIDE: Strategy = "server-side-apply"

PORTMAPPER_TARGET = 10111   # where the NFS adapter's embedded portmapper listens in the pod
PORTMAPPER_PORT = 111       # what NFS clients query on the Service
PM_TCP_NAME = "adapter-nfs-pm"
PM_UDP_NAME = "adapter-pm-udp"
PM_SERVICE_NAME, PM_UDP_SERVICE_NAME = "portmap", "portmap-udp"
# How clients find the adapters (DittoFS v0.29, the Go operator's #1609): every adapter answers
# mDNS on one shared port; SMB adds WS-Discovery and its metadata exchange.
MDNS = ("adapter-mdns", 5353, "UDP", "mdns")
WSD = ("adapter-wsd", 3702, "UDP", "wsd")
WSD_META = ("adapter-wsdmeta", 5357, "TCP", "wsd-meta")
SMB = "smb"


class Port(NamedTuple):
    """One container port. A NamedTuple rather than a dataclass: a sync with many adapters
    builds hundreds of these, and a tuple is several times cheaper to make."""

    name: str
    container_port: int
    protocol: str = "TCP"
    owner: str | None = None          # sanitized adapter type; None for static or kept ports
    primary: bool = True              # the adapter's own port, not its portmapper
    service_name: str | None = None   # name and port on the adapter Service, when it has one
    service_port: int | None = None
    shared: bool = False              # one container port that several adapters' Services use (mDNS)
    service_only: bool = False        # on the adapter's Service only (NFS's data port over UDP)

    def as_container_port(self) -> dict:
        return {"name": self.name, "containerPort": self.container_port, "protocol": self.protocol}

    def as_service_port(self) -> dict:
        return {
            "name": self.service_name,
            "port": self.service_port,
            "targetPort": self.container_port,
            "protocol": self.protocol,
        }


@dataclass(frozen=True)
class Plan:
    ports: tuple[Port, ...]                      # the container's list, sorted by name
    adapters: tuple[adapters.Adapter, ...]       # adapters whose own port survived
    conflicts: tuple[str, ...]
    # Ports of an adapter's Service that are not its own entry in the container's list: a shared
    # port another adapter's entry stands for, and Service-only ports.
    extra: tuple["Port", ...] = ()
    # The ports by owner, in `ports` order: each adapter's Service and NetworkPolicy ask for
    # theirs, and scanning every port for each adapter would be quadratic in adapters.
    _by_owner: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_owner: dict[str, list[Port]] = {}
        for port in (*self.ports, *self.extra):
            if port.owner is not None:
                by_owner.setdefault(port.owner, []).append(port)
        object.__setattr__(self, "_by_owner", {owner: tuple(found) for owner, found in by_owner.items()})

    def ports_of(self, adapter_type: str) -> tuple[Port, ...]:
        return self._by_owner.get(adapter_type, ())


def static_ports(api_port: int, metrics_port: int | None) -> list[Port]:
    found = [Port("api", api_port)]
    if metrics_port is not None:
        found.append(Port("metrics", metrics_port))
    return found


def _aux(adapter: adapters.Adapter, spec: tuple, shared: bool = False) -> Port:
    name, number, protocol, service_name = spec
    return Port(name, number, protocol, adapter.type, False, service_name, number, shared=shared)


def adapter_candidates(adapter: adapters.Adapter, strategy: Strategy) -> list[Port]:
    """The ports one active adapter asks for: its own, mDNS, and NFS's portmapper or SMB's
    WS-Discovery. A UDP twin of a TCP port (NFS's portmapper and data port) only under
    server-side apply: dynamic apply keys ports by number alone and would collapse the two."""
    name = names.port_name(adapter.type)
    found = [Port(name, adapter.port, owner=adapter.type, service_name=name, service_port=adapter.port),
             _aux(adapter, MDNS, shared=True)]
    if adapter.is_nfs:
        found.append(Port(PM_TCP_NAME, PORTMAPPER_TARGET, "TCP", adapter.type, False, PM_SERVICE_NAME, PORTMAPPER_PORT))
        if strategy == SERVER_SIDE:
            found.append(Port(PM_UDP_NAME, PORTMAPPER_TARGET, "UDP", adapter.type, False, PM_UDP_SERVICE_NAME, PORTMAPPER_PORT))
            # NLM, NSM and MOUNT over UDP on the data port (the Go operator's #1356).
            found.append(Port(f"{name}-udp", adapter.port, "UDP", adapter.type, False, f"{name}-udp",
                              adapter.port, service_only=True))
    if adapter.type == SMB:
        found += [_aux(adapter, WSD), _aux(adapter, WSD_META)]
    return found


def kept_candidates(observed_ports: list[dict]) -> list[Port]:
    """Observed `adapter-*` container ports, kept as they are while adapter state is unknown."""
    found = []
    for item in observed_ports:
        name, number, protocol = item.get("name"), item.get("containerPort"), item.get("protocol")
        if isinstance(name, str) and name.startswith(names.ADAPTER_PORT_PREFIX) and isinstance(number, int):
            found.append(Port(name, number, protocol if isinstance(protocol, str) and protocol else "TCP", primary=False))
    return found


def merge_key(number: int, protocol: str, strategy: Strategy) -> tuple:
    """What Metacontroller matches container and Service ports by: the number alone under
    dynamic apply, number and protocol under server-side apply."""
    return (number,) if strategy == DYNAMIC else (number, protocol)


def resolve(static: list[Port], dynamic: list[Port], strategy: Strategy) -> tuple[list[Port], list[str], list[Port]]:
    """Drop every port whose name or merge key is already taken, in priority order: static ports,
    then adapters' ports by name (an adapter's own port before an auxiliary port of the same
    name), then the shared ports. Returns the container's ports, the clashes, and the ports
    adapters' Services have beyond them (a shared port another adapter's entry stands for;
    Service-only ports)."""
    taken_names: dict[str, Port] = {}
    taken_keys: dict[tuple, Port] = {}
    lost_owners: set[str] = set()
    kept, conflicts, extra = [], [], []

    def clash(port: Port) -> Port | None:
        return taken_names.get(port.name) or taken_keys.get(merge_key(port.container_port, port.protocol, strategy))

    def refuse(port: Port, winner: Port) -> None:
        conflicts.append(f"port {port.name} ({port.container_port}/{port.protocol}) clashes with "
                         f"{winner.name} ({winner.container_port}/{winner.protocol}) and is left out")

    def take(port: Port) -> None:
        taken_names[port.name] = port
        taken_keys[merge_key(port.container_port, port.protocol, strategy)] = port
        kept.append(port)

    ordered = sorted((p for p in dynamic if not p.shared and not p.service_only),
                     key=lambda p: (p.name, not p.primary, p.container_port, p.protocol))
    for port in static + ordered:
        if port.owner in lost_owners:
            continue   # an adapter whose own port lost keeps none of its auxiliary ports
        winner = clash(port)
        if winner is None:
            take(port)
            continue
        refuse(port, winner)
        if port.primary and port.owner is not None:
            lost_owners.add(port.owner)
    for port in sorted((p for p in dynamic if p.shared and p.owner not in lost_owners),
                       key=lambda p: (p.name, p.owner or "")):
        winner = clash(port)
        if winner is None:
            take(port)
        elif winner.shared and (winner.name, winner.container_port, winner.protocol) == \
                (port.name, port.container_port, port.protocol):
            extra.append(port)   # the one container port stands for every adapter's
        else:
            refuse(port, winner)
    extra += [p for p in dynamic if p.service_only and p.owner not in lost_owners]
    return sorted(kept, key=lambda p: p.name), conflicts, extra


def plan(
    state: adapters.State,
    api_port: int,
    metrics_port: int | None,
    observed_ports: list[dict],
    strategy: Strategy,
) -> Plan:
    """The merged port list for this input, with the adapters it applies and any clashes."""
    if state.known:
        return _known_plan(state, api_port, metrics_port, strategy)
    return _plan(state, api_port, metrics_port, kept_candidates(observed_ports), strategy)


@functools.lru_cache(maxsize=256)
def _known_plan(state: adapters.State, api_port: int, metrics_port: int | None, strategy: Strategy) -> Plan:
    """The plan when adapter state is known: it does not depend on what is observed, so it is
    cached by its inputs (a parent's syncs repeat them until its spec or adapters change).
    A Plan is immutable."""
    dynamic = [p for a in state.adapters for p in adapter_candidates(a, strategy)]
    return _plan(state, api_port, metrics_port, dynamic, strategy)


def _plan(state: adapters.State, api_port: int, metrics_port: int | None, dynamic: list[Port],
          strategy: Strategy) -> Plan:
    kept, conflicts, extra = resolve(static_ports(api_port, metrics_port), dynamic, strategy)
    owners = {p.owner for p in kept if p.primary}
    applied = tuple(a for a in state.adapters if a.type in owners)
    return Plan(tuple(kept), applied, tuple(conflicts), tuple(extra))


# Where each auxiliary port goes on an adapter Service, in the Go operator's order (its tests
# expect it): the adapter's own port, NFS's portmapper over TCP then UDP and its data port over
# UDP, mDNS, then SMB's WS-Discovery.
_SERVICE_ORDER = {PM_SERVICE_NAME: 1, PM_UDP_SERVICE_NAME: 2, MDNS[3]: 4, WSD[3]: 5, WSD_META[3]: 6}
_DATA_PORT_UDP = 3


def _service_rank(port: Port) -> tuple:
    if port.primary:
        return (0, port.service_name or "")
    rank = _DATA_PORT_UDP if port.service_only else _SERVICE_ORDER.get(port.service_name, len(_SERVICE_ORDER) + 1)
    return (rank, port.service_name or "")


def service_ports(ports: tuple[Port, ...], strategy: Strategy) -> list[dict]:
    """An adapter Service's ports in the Go operator's order, unique by the merge key of
    Service ports (port[, protocol]): the adapter's own port comes first and wins a clash."""
    seen, found = set(), []
    for port in sorted(ports, key=_service_rank):
        key = merge_key(port.service_port, port.protocol, strategy)
        if key not in seen:
            seen.add(key)
            found.append(port.as_service_port())
    return found
