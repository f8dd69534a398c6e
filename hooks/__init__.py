"""dittofs-hooks: Metacontroller hooks that run DittoFS servers on Kubernetes.

Layers, imported one way only (each imports from the ones above it, never below):

- ``names``, ``durations``, ``errors``, ``caching``: plain helpers with no project imports.
- ``spec``, ``adapters``, ``observed``: typed views of the request (parent spec, adapter
  annotation, observed children).
- ``context``: everything one sync needs, read once.
- ``ports``, ``secrets``, ``configmap``, ``services``, ``statefulset``, ``networkpolicies``,
  ``status``: one builder per concern.
- ``sync``, ``customize``: compose the builders into a hook response (pure functions;
  ``sync`` keeps serialized children by their exact inputs).
- ``discovery``: the only module that does network I/O.
- ``auth``, ``metrics``, ``logs``: the service's edges (tokens, Prometheus, JSON log lines).
- ``app``: Flask routes, auth, limits and error mapping over all of the above.
- ``cli``: ``python -m hooks render|diff``, the same core without Flask; ``applying`` (the
  model of Metacontroller's dynamic apply) is used by ``cli`` and the tests.
"""

__version__ = "0.1.0"
