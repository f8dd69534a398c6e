"""Gunicorn settings for the hook service, read by `make serve`, the image and the tests.

HOST and PORT choose the listen address (127.0.0.1:8080 unless set); WEB_CONCURRENCY the
number of worker processes (the tests use 1). The choices below were measured with
`make bench` (bench/over_http.py; README, performance section) on a 2-core machine.
"""
import gc
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"

# Worker model, measured with W1 (a 33 KiB steady-state sync; wrk, 16 keep-alive connections,
# 3 alternated rounds, 2-core machine shared with other jobs; 2026-11-26, revision c5878e1):
#   workers x threads   req/s   p50    p99     server CPU per request
#   gthread 2 x 1       2000    7.6    14.8    913 us
#   gthread 2 x 2       2270    6.8    14.5    823 us
#   gthread 2 x 4       2260    8.6    27.5    807 us
#   gthread 3 x 1       2120    7.8    22.1    888 us
#   gthread 3 x 2       2180    7.5    18.5    864 us
#   sync 2              2250    9.8    18.1    825 us
# - gthread, because it keeps connections alive: Metacontroller's Go client reuses them, while
#   the sync worker closes every connection (a TCP handshake per hook call, and a higher p50).
# - 2 workers, one per core (the Deployment allows 1 CPU): a third adds memory (~55 MB PSS)
#   and latency, not throughput.
# - 2 threads per worker: the best throughput and p99; 4 threads double p99, because the hooks
#   are CPU-bound under the GIL and more threads only queue inside the worker. Two still let a
#   worker answer /sync while a /discover call waits on the DittoFS API (at most 4 s, well
#   inside Metacontroller's 10 s hook timeout). Raise WEB_CONCURRENCY, not threads, for more
#   capacity.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = 2
timeout = 30
graceful_timeout = 20

# Idle keep-alive connections are kept longer than the client keeps them. Metacontroller's
# webhook client is Go's http.DefaultTransport (IdleConnTimeout 90 s) for plain HTTP. If the
# server closed an idle connection first, a request the client sends on it at that moment
# fails (Go retries a request only if nothing of it was written, and a POST is not
# idempotent), and Metacontroller backs off and retries the whole sync. With 120 s the client
# always closes first. (With a caBundle Metacontroller builds its own Transport with no idle
# timeout; then the server's 120 s bounds idle connections and the race is left to that rare
# moment.)
keepalive = 120

# Load the app once in the master and fork workers from it; freeze what was loaded so that
# the workers' garbage collections never touch (and so never copy) those shared pages.
# Measured after W1 and W3 load: private memory 43 MB per worker instead of 52-58 MB, and
# 132 MB PSS for master and 2 workers instead of 156 MB. (No measurable CPU difference.)
preload_app = True


def pre_fork(server, worker):
    gc.freeze()


# Recycle workers now and then (a worker finishes its requests, then a fresh fork of the
# preloaded master replaces it), so that memory held after rare huge requests is returned.
# Jitter keeps the workers from restarting together. Rarely, though: each recycled worker
# leaves its Prometheus multiprocess files behind (~8 KB, and /metrics reads them all); at a
# busy 5 hook calls/s, 50000 plus up to 5000 requests is a recycle every 5.5 to 6 hours per
# worker.
max_requests = 50000
max_requests_jitter = 5000

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
