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
