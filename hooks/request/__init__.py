"""The request, read: the parent's spec, the adapters annotation, the observed children, the
merged port model and the `Context` one sync is built from. Plain data and pure functions.

Imports nothing else of `hooks`.
"""
