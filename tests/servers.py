"""Start the hook the way `make serve` does (gunicorn with the project's config) on a free port."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, deadline_s: float = 30.0, **kwargs) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=1, **kwargs).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


@contextlib.contextmanager
def gunicorn(env: dict | None = None, argv: list[str] | None = None, scheme: str = "http", **kwargs):
    """Yield (base_url, process); stop the server afterwards (SIGTERM, then SIGKILL)."""
    port = free_port()
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
                "WEB_CONCURRENCY": "1", **(env or {})}
    argv = argv or [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "hooks.web.app:create_app()"]
    # Own process group, so that a wrapper (`make serve`) and the gunicorn it starts stop together.
    proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, **kwargs)
        yield url, proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, timeout_s: float = 20) -> None:
    """SIGTERM to the process group of `proc` (started with start_new_session), SIGKILL after
    `timeout_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
