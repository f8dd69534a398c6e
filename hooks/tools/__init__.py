"""Tools beside the service: `python -m hooks render|diff|...` (`cli`) and the model of how
Metacontroller and the API server apply a desired child (`applying`), which the CLI and the
tests use.

May import every other layer.
"""
