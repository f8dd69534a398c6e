"""The web service: the Flask app factory and its routes, webhook auth, Prometheus metrics, call
logs, settings from the environment, and the customize hooks.

Imports `hooks.children`, `hooks.dittofs` and `hooks.request`.
"""
