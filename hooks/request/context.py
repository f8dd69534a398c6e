"""Everything one sync needs, read once from the request: the parent, its spec, adapter state,
the observed children and the hook's own settings. Builders take a `Context` and return dicts.
"""
import functools
from dataclasses import dataclass
from typing import Callable

from hooks.request import adapters, observed, ports, spec

SELECTOR_APP = "dittofs-server"
MANAGED_BY = "dittofs-hooks"
CONTAINER = "dittofs"


@dataclass(frozen=True)
class Context:
    name: str
    namespace: str
    parent: dict
    spec: spec.DittoServerSpec
    state: adapters.State
    observed: observed.Observed
    strategy: ports.Strategy
    random_token: Callable[[int], str]   # only used for Secrets that do not exist yet

    @property
    def selector(self) -> dict:
        """The pod selector labels; also the Services' selector."""
        return {"app": SELECTOR_APP, "instance": self.name}

    @property
    def labels(self) -> dict:
        """The selector labels plus managed-by (a new dict each time, like `selector`)."""
        return {"app": SELECTOR_APP, "instance": self.name, "app.kubernetes.io/managed-by": MANAGED_BY}

    def meta(self, name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
        merged = self.labels
        if labels:
            merged.update(labels)
        found = {"name": name, "namespace": self.namespace, "labels": merged}
        if annotations:
            found["annotations"] = dict(annotations)
        return found

    def child_name(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    @functools.cached_property
    def statefulset(self) -> dict | None:
        """The observed StatefulSet, if there is one."""
        return self.observed.of(observed.STATEFULSET).get(self.name)

    def kept_adapter_children(self, group: str, label: str) -> list[dict]:
        """Observed adapter children of one kind, handed back as they are while adapter state is
        unknown (none when it is known). Found by label and, should the label be gone, by name."""
        if self.state.known:
            return []
        return self.observed.of(group).labelled_or_named(label, "true", observed.adapter_name_prefix(self.name))

    @property
    def metrics_port(self) -> int | None:
        return self.spec.metrics.port if self.spec.metrics.enabled else None

    @property
    def api_port(self) -> int:
        return self.spec.control_plane.port
