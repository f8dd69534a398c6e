"""Real NFS and SMB clients from Debian, for tests that prove the data path with bytes.

NFS goes through libnfs's `nfs-cp` and `nfs-ls` (package `libnfs-utils`), which speak NFSv3 and
MOUNT from user space: no kernel mount, no root, no portmapper (the URL names both ports, and
DittoFS serves MOUNT on its NFS port). SMB goes through Samba's `smbclient` (package
`smbclient`) with SMB3 and NTLM. `scripts/install-debian-packages.sh` installs both.

Every call takes the host port that reaches the adapter (`realdfs.Server.forward(port)`), moves
bytes through temporary files, is bounded by `TIMEOUT_S`, and raises `ClientError` carrying
the client's own output when it fails; `ClientError.denied` tells a refusal (wrong password,
no permission) from any other failure.

How the names map (DittoFS v0.29.0, `internal/adapter/nfs/mount/handlers/mount.go` and
`internal/adapter/smb/handlers/tree_connect.go`): the NFS export path is the share's name as
DittoFS keeps it (`/export`); the SMB share name is that name without its slash, matched in
lower case (`//host/export`, `//host/EXPORT` alike).
"""
from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

HOST = "127.0.0.1"
TIMEOUT_S = 60           # generous for a client on a loaded 2-core machine, under the test's 120 s
# What the clients print when the server refuses rather than fails: SMB's NTSTATUS codes for a
# bad logon or a denied access, libnfs's NFSv3/MOUNT "access" and "permission" errors.
DENIED = re.compile(r"NT_STATUS_(LOGON_FAILURE|ACCESS_DENIED|WRONG_PASSWORD|ACCOUNT_DISABLED|ACCOUNT_LOCKED_OUT)"
                    r"|NFS3ERR_(ACCES|PERM)|MNT3ERR_(ACCES|PERM)")


class ClientError(AssertionError):
    """A client that exited non-zero, printed an NTSTATUS error, or ran past its time."""

    def __init__(self, argv: list[str], returncode: int | None, output: str) -> None:
        self.argv, self.returncode, self.output = argv, returncode, output
        ended = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(f"{' '.join(_shown(argv))} {ended}:\n{output.strip()}")

    @property
    def denied(self) -> bool:
        """Whether the server refused the credentials or the access (not any other failure)."""
        return bool(DENIED.search(self.output))


def _shown(argv: list[str]) -> list[str]:
    """argv with the SMB password masked, for messages."""
    return [re.sub(r"%.*", "%***", a) if i and argv[i - 1] == "-U" else a for i, a in enumerate(argv)]


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: `make test` installs Debian's {package} (scripts/install-debian-packages.sh)")
    return found


def _run(argv: list[str], timeout: float) -> str:
    """Run a client; its stdout and stderr together, or ClientError. smbclient exits 0 after some
    failed commands, so an NTSTATUS error in its output counts as a failure too."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        output = b"".join(x for x in (exc.stdout, exc.stderr) if x).decode(errors="replace")
        raise ClientError(argv, None, output) from None
    output = (done.stdout + done.stderr).decode(errors="replace")
    if done.returncode != 0 or re.search(r"\bNT_STATUS_(?!OK\b)\w+", output):
        raise ClientError(argv, done.returncode, output)
    return output


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="dittofs-client-"))


# NFS (libnfs-utils) ---------------------------------------------------------------------------

def nfs_url(port: int, share: str, path: str = "", uid: int | None = None, gid: int | None = None) -> str:
    """`nfs://127.0.0.1/<share>/<path>?nfsport=P&mountport=P[&uid=U&gid=G]`. `share` is the
    export path (DittoFS's share name, `/export`); `path` a file at the share's root (libnfs
    mounts everything before the URL's last slash). `uid`/`gid` set the AUTH_SYS credential
    (the client's own ids otherwise: root here)."""
    url = f"nfs://{HOST}/{share.strip('/')}" + (f"/{path.strip('/')}" if path else "")
    args = {"nfsport": port, "mountport": port, "uid": uid, "gid": gid}
    return url + "?" + "&".join(f"{k}={v}" for k, v in args.items() if v is not None)


def nfs_write(port: int, share: str, path: str, data: bytes, uid: int | None = None, gid: int | None = None,
              timeout: float = TIMEOUT_S) -> None:
    """Write `data` as the file `path` at the share's root (created or replaced) with `nfs-cp`."""
    scratch = _scratch()
    try:
        (scratch / "data").write_bytes(data)
        _run([_tool("nfs-cp", "libnfs-utils"), str(scratch / "data"), nfs_url(port, share, path, uid, gid)], timeout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def nfs_read(port: int, share: str, path: str, uid: int | None = None, gid: int | None = None,
             timeout: float = TIMEOUT_S) -> bytes:
    """The bytes of the file `path` at the share's root, read with `nfs-cp` into a temporary file."""
    scratch = _scratch()
    try:
        _run([_tool("nfs-cp", "libnfs-utils"), nfs_url(port, share, path, uid, gid), str(scratch / "data")], timeout)
        return (scratch / "data").read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# `nfs-ls` prints `mode nlink uid gid size name`, one entry a line.
NFS_LS_LINE = re.compile(r"^(?P<mode>[-dlcbps][-rwxsStT]{9})\s+\d+\s+(?P<uid>\d+)\s+(?P<gid>\d+)\s+(?P<size>\d+)\s(?P<name>.+)$")


def nfs_list(port: int, share: str, uid: int | None = None, gid: int | None = None,
             timeout: float = TIMEOUT_S) -> dict[str, dict]:
    """The share's root directory: name -> {mode, uid, gid, size} (`.` and `..` left out)."""
    output = _run([_tool("nfs-ls", "libnfs-utils"), nfs_url(port, share, uid=uid, gid=gid)], timeout)
    found = {}
    for line in output.splitlines():
        match = NFS_LS_LINE.match(line)
        if match and match["name"] not in (".", ".."):
            found[match["name"]] = {"mode": match["mode"], "uid": int(match["uid"]), "gid": int(match["gid"]),
                                    "size": int(match["size"])}
    return found


# SMB (smbclient) ------------------------------------------------------------------------------

def _smbclient(port: int, share: str, user: str, password: str, commands: str, timeout: float) -> str:
    """One smbclient session: SMB3, NTLM with `user`/`password` (no Kerberos, no smb.conf of the
    machine's), the share by its SMB name (DittoFS's share name without the slash)."""
    service = f"//{HOST}/{share.strip('/')}"
    return _run([_tool("smbclient", "smbclient"), service, "-p", str(port), "-U", f"{user}%{password}",
                 "-m", "SMB3", "--use-kerberos=off", "--configfile=/dev/null", "-c", commands], timeout)


def _smb_name(path: str) -> str:
    if not re.fullmatch(r"[\w.-]+", path):
        raise ValueError(f"{path!r}: these helpers take a plain file name at the share's root")
    return path


def smb_put(port: int, share: str, user: str, password: str, path: str, data: bytes,
            timeout: float = TIMEOUT_S) -> None:
    """Write `data` as the file `path` at the share's root (created or replaced)."""
    scratch = _scratch()
    try:
        (scratch / "data").write_bytes(data)
        _smbclient(port, share, user, password, f"put {scratch / 'data'} {_smb_name(path)}", timeout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def smb_get(port: int, share: str, user: str, password: str, path: str, timeout: float = TIMEOUT_S) -> bytes:
    """The bytes of the file `path` at the share's root."""
    scratch = _scratch()
    try:
        _smbclient(port, share, user, password, f"get {_smb_name(path)} {scratch / 'data'}", timeout)
        if not (scratch / "data").exists():
            raise ClientError(["smbclient", "get", path], 0, "smbclient said nothing and wrote no file")
        return (scratch / "data").read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# `ls` prints `  name   ATTRS   size  Www Mmm dd hh:mm:ss yyyy`, one entry a line.
SMB_LS_LINE = re.compile(r"^  (?P<name>.+?)\s+(?P<attrs>[ADHNRSac]*)\s+(?P<size>\d+)\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")


def smb_list(port: int, share: str, user: str, password: str, timeout: float = TIMEOUT_S) -> dict[str, int]:
    """The share's root directory: name -> size (`.` and `..` left out)."""
    output = _smbclient(port, share, user, password, "ls", timeout)
    found = {}
    for line in output.splitlines():
        match = SMB_LS_LINE.match(line)
        if match and match["name"] not in (".", ".."):
            found[match["name"]] = int(match["size"])
    return found


def smb_logon(port: int, share: str, user: str, password: str, timeout: float = TIMEOUT_S) -> None:
    """Log on and connect to the share, nothing else: ClientError (`denied`) when refused."""
    _smbclient(port, share, user, password, "ls", timeout)


PORTMAPPER_PROGRAM, PORTMAPPER_VERSION = 100000, 2


def portmapper_answers(port: int) -> bool:
    """Whether an ONC RPC portmapper answers the NULL procedure on `port` (TCP, RFC 5531's record
    marking): what a macOS NFS client asks first. False when nothing listens there."""
    xid = 0x0D1770F5
    # xid, CALL, RPC version 2, program, version, procedure NULL, AUTH_NONE credential and verifier.
    call = struct.pack(">10I", xid, 0, 2, PORTMAPPER_PROGRAM, PORTMAPPER_VERSION, 0, 0, 0, 0, 0)
    try:
        with socket.create_connection((HOST, port), timeout=10) as conn:
            conn.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)
            reply = b""
            while len(reply) < 28 and (chunk := conn.recv(64)):
                reply += chunk
    except OSError:
        return False
    # Record mark, xid, REPLY, MSG_ACCEPTED, AUTH_NONE verifier, SUCCESS.
    return len(reply) >= 28 and struct.unpack(">7I", reply[:28])[1:] == (xid, 1, 0, 0, 0, 0)
