"""A private OpenLDAP directory on 127.0.0.1 and a free port, from Debian's `slapd` package
(scripts/install-debian-packages.sh installs it), for the tests' session: two organizations'
worth of entries and a service account that DittoFS binds as.
"""
from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import realdfs

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=com"
BIND_DN = f"cn=dittofs,{SUFFIX}"
PEOPLE, STAFF = f"ou=people,{SUFFIX}", f"ou=staff,{SUFFIX}"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw {admin_password}
directory {root}/db
"""

ENTRIES = """\
dn: {suffix}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: {bind_dn}
objectClass: person
cn: dittofs
sn: dittofs
userPassword: {bind_password}

dn: {people}
objectClass: organizationalUnit
ou: people

dn: {staff}
objectClass: organizationalUnit
ou: staff

dn: uid=alice,{people}
objectClass: inetOrgPerson
objectClass: posixAccount
cn: Alice
sn: Example
uid: alice
uidNumber: 1001
gidNumber: 1001
homeDirectory: /home/alice
"""


@dataclass
class Directory:
    port: int
    bind_dn: str
    bind_password: str


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def directory():
    if not Path(SLAPD).exists():
        pytest.fail("OpenLDAP's slapd is missing: `make test` installs Debian's slapd")
    root = Path(tempfile.mkdtemp(prefix="dittofs-hooks-ldap-"))
    (root / "db").mkdir()
    bind_password = "bind-" + secrets.token_hex(8)
    (root / "slapd.conf").write_text(CONFIG.format(root=root, suffix=SUFFIX, admin_password="admin-" + secrets.token_hex(8)))
    (root / "entries.ldif").write_text(ENTRIES.format(suffix=SUFFIX, bind_dn=BIND_DN, bind_password=bind_password,
                                                      people=PEOPLE, staff=STAFF))
    loaded = subprocess.run(["/usr/sbin/slapadd", "-f", str(root / "slapd.conf"), "-l", str(root / "entries.ldif")],
                            capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    port = realdfs.free_port()
    # -d 0: stay in the foreground (this process owns it) and log nothing.
    server = subprocess.Popen([SLAPD, "-d", "0", "-f", str(root / "slapd.conf"), "-h", f"ldap://127.0.0.1:{port}/"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"slapd did not start: {server.stderr.read().decode(errors='replace')}")
            time.sleep(0.05)
        yield Directory(port, BIND_DN, bind_password)
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        server.kill()
        shutil.rmtree(root, ignore_errors=True)
