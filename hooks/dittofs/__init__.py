"""What one DittoFS version fixes: the keys of its `config.yaml`, the names of its Secrets and
environment variables, the pinned version, and the client of its control-plane API (the
discovery hook, the only code that does network I/O).

Imports `hooks.request` only.
"""
