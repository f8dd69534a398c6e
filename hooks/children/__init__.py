"""The sync hook's answer: one builder per child kind, the parent's status, and `sync`, which
composes them. Pure: no network, no Flask.

Imports `hooks.dittofs` and `hooks.request`.
"""
