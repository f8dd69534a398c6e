"""Gunicorn settings for the hook service, read by `make serve`, the image and the tests.

HOST and PORT choose the listen address (127.0.0.1:8080 unless set). Worker settings are
tuned in the performance issue; see the README's performance section.
"""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = 4
timeout = 30
graceful_timeout = 20
keepalive = 75
preload_app = True
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# gunicorn >= 25.1 opens a control socket under $HOME or $XDG_RUNTIME_DIR; the image runs with a
# read-only root filesystem and no home directory, and nothing here uses the socket.
control_socket_disable = True

# --- metrics across workers and TLS (kept by the lead; see hooks/metrics.py) -----------------
import shutil as _shutil
import tempfile as _tempfile

# prometheus_client's multiprocess mode: every worker writes its samples under this directory
# and /metrics adds them up. It must be set before the app (and prometheus_client) is loaded,
# which preload_app does right after this file is read; a fresh directory per server start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _tempfile.mkdtemp(prefix="dittofs-hooks-metrics-")


def on_exit(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(path).startswith("dittofs-hooks-metrics-"):
        _shutil.rmtree(path, ignore_errors=True)


# HTTPS when both are set (Metacontroller's webhook `caBundle` then verifies this certificate).
certfile = os.environ.get("DITTOFS_HOOK_TLS_CERT") or None
keyfile = os.environ.get("DITTOFS_HOOK_TLS_KEY") or None
