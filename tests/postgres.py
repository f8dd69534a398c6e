"""A private PostgreSQL cluster on 127.0.0.1 and a free port, from Debian's `postgresql`
package (scripts/install-debian-packages.sh installs it), for the tests' session.

PostgreSQL refuses to run as root, so the cluster belongs to the package's `postgres` user.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import realdfs


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"PostgreSQL's {name} is missing: `make test` installs Debian's postgresql")
    return found[-1]


@dataclass
class Cluster:
    port: int
    user: str
    password: str
    socket_dir: str

    def psql(self, database: str, sql: str) -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        return subprocess.run(
            [_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
             "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            env=env, capture_output=True, text=True, check=True).stdout

    def create_database(self, name: str) -> str:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return name

    def query(self, database: str, sql: str) -> list[str]:
        return self.psql(database, sql).split()


def _as_postgres(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


@contextlib.contextmanager
def cluster():
    root = Path(tempfile.mkdtemp(prefix="dittofs-hooks-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    password = "test-password-" + os.urandom(6).hex()
    (root / "pw").write_text(password)
    if os.geteuid() == 0:
        ids = pwd.getpwnam("postgres")
        for path in (root, sockets, root / "pw"):
            os.chown(path, ids.pw_uid, ids.pw_gid)
    init = _as_postgres([_bin("initdb"), "-D", str(data), "-U", "dittofs", "--auth=scram-sha-256",
                         f"--pwfile={root / 'pw'}", "--no-sync"])
    assert init.returncode == 0, init.stderr
    port = realdfs.free_port()
    start = _as_postgres([_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
                          f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off", "start"])
    assert start.returncode == 0, start.stderr + (root / "log").read_text(errors="replace")
    try:
        yield Cluster(port=port, user="dittofs", password=password, socket_dir=str(sockets))
    finally:
        _as_postgres([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)
