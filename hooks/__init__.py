"""dittofs-hooks: Metacontroller hooks that run DittoFS servers on Kubernetes.

Layers are folders, and imports run one way, downward (a test checks it):

- ``tools``: ``python -m hooks render|diff`` and the apply model.
- ``web``: the Flask app, auth, metrics, logs, settings, customize.
- ``children``: one builder per child kind, status, and ``sync`` composing them.
- ``dittofs``: what one DittoFS version fixes (config.yaml, Secret and env names, the pinned
  version, the control-plane client).
- ``request``: the parent's spec, adapters, observed children, ports, the context.
"""

__version__ = "0.1.0"
