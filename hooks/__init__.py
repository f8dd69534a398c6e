"""dittofs-hooks: Metacontroller hooks that run DittoFS servers on Kubernetes.

Layers, imported one way only (each imports from the ones above it, never below):

- ``names``, ``durations``, ``errors``: plain helpers with no project imports.
- ``spec``, ``adapters``, ``observed``: typed views of the request (parent spec, adapter
  annotation, observed children).
- ``ports``, ``secrets``, ``configmap``, ``services``, ``statefulset``, ``status``: one
  builder per concern.
- ``sync``, ``customize``: compose the builders into a hook response (pure functions).
- ``discovery``: the only module that does network I/O.
- ``app``: Flask routes, auth, limits and error mapping over all of the above.
"""

__version__ = "0.1.0"
