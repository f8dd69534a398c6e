"""The real `dfs` server, started from the hook's own children, the way its StatefulSet would.

A `Pod` holds what the hook's answer says about the pod: the container's command, arguments and
env (each `secretKeyRef` resolved from the Secrets given), its mounts, ports and security
context, and the ConfigMap's `config.yaml`. `start` runs it as the user the pod runs as (the
image's 65532 unless the securityContext says otherwise, with `fsGroup` as a supplementary
group, the volumes group-writable and the config read-only, as the kubelet lays them out),
changing only what a pod gets from Kubernetes and a test cannot give, each in one function here:

- `mount_paths`: every mount path maps to a folder of the pod's own temporary directory, and
  paths in `config.yaml` and the arguments are mapped the same way; with `pod_paths=True` the
  server also sees each folder at its mount path (`pod_filesystem`: a mount namespace and a
  chroot), for paths that reach it through its API;
- the pod's network: the server runs in a network namespace of its own (as a pod does), so it
  listens on exactly what its config says, the Go operator's fixed adapter ports included,
  and nothing of it reaches the machine's interfaces; `PortForward` maps each container port
  to a free port on 127.0.0.1 (as `kubectl port-forward` does), and `Server.forward` any other
  port the server listens on (an adapter made through the API).

Needs root (network namespaces), `unshare`/`nsenter`/`ip` (util-linux, iproute2) and the
binaries that `scripts/build-dfs.sh` builds (`make test` runs it).
"""
from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from hooks.dittofs import version

ROOT = Path(__file__).resolve().parents[1]
# Where scripts/build-dfs.sh puts the binaries (DITTOFS_CACHE moves it, for both).
CACHE = Path(os.environ.get("DITTOFS_CACHE") or ROOT / ".cache" / "dittofs") / version.VERSION
CLONE_NEWNET = 0x40000000


def binary(name: str = "dfs") -> Path:
    path = CACHE / name
    if not path.exists():
        pytest.fail(f"{path} is missing: `make test` builds it (scripts/build-dfs.sh needs Go 1.25+)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child(children: list[dict], kind: str) -> dict:
    found = [c for c in children if c["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def _decoded(secret: dict, key: str) -> str | None:
    value = (secret.get("data") or {}).get(key)
    return None if value is None else base64.b64decode(value).decode()


@dataclass
class Pod:
    """The DittoFS pod of a sync answer."""

    command: list[str]
    args: list[str]
    env: dict[str, str]
    config_yaml: str
    mounts: dict[str, str]               # mountPath -> volume name
    ports: dict[str, int]                # container port name -> containerPort (TCP)
    container: dict = field(repr=False)
    pod_spec: dict = field(repr=False, default_factory=dict)
    secret_files: dict[str, dict[str, bytes]] = field(repr=False, default_factory=dict)   # volume -> files

    @property
    def config(self) -> dict:
        return yaml.safe_load(self.config_yaml)

    @property
    def user(self) -> tuple[int, int, int | None]:
        """(uid, gid, fsGroup) the container runs as: its securityContext, the pod's, or the image's."""
        pod = self.pod_spec.get("securityContext") or {}
        own = self.container.get("securityContext") or {}
        uid = own.get("runAsUser", pod.get("runAsUser", version.RUN_AS))
        gid = own.get("runAsGroup", pod.get("runAsGroup", version.RUN_AS))
        return uid, gid, pod.get("fsGroup")


def pod_of(answer: dict, secrets: list[dict] = ()) -> Pod:
    """The pod of a sync answer; env from its own generated Secrets and from `secrets`."""
    children = answer["children"]
    sts = _child(children, "StatefulSet")
    config_map = _child(children, "ConfigMap")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    by_name = {s["metadata"]["name"]: s for s in [*children, *secrets] if s["kind"] == "Secret"}
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        value = _decoded(by_name[ref["name"]], ref["key"]) if ref["name"] in by_name else None
        if value is None:
            assert ref.get("optional"), f"{item['name']}: Secret {ref['name']} key {ref['key']} is missing"
            continue
        env[item["name"]] = value
    secret_files = {}
    for volume in sts["spec"]["template"]["spec"].get("volumes", []):
        if "secret" in volume:
            found = by_name[volume["secret"]["secretName"]]
            data = {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}
            items = volume["secret"].get("items")   # projected keys only, under their paths
            secret_files[volume["name"]] = {i["path"]: data[i["key"]] for i in items} if items else data
    (config_yaml,) = config_map["data"].values()
    return Pod(
        command=list(container["command"]), args=list(container.get("args", [])), env=env,
        config_yaml=config_yaml,
        mounts={m["mountPath"]: m["name"] for m in container["volumeMounts"]},
        ports={p["name"]: p["containerPort"] for p in container["ports"] if p.get("protocol", "TCP") == "TCP"},
        container=container, pod_spec=sts["spec"]["template"]["spec"], secret_files=secret_files,
    )


def mount_paths(pod: Pod, root: Path) -> dict[str, str]:
    """Each mount path of the pod, mapped to a folder under `root` (volumes live as long as
    `root`, so a restart keeps them, as a PVC does). Volumes are owned as the kubelet leaves them
    with an fsGroup (group-owned, group-writable, setgid); the ConfigMap is read-only."""
    uid, gid, fs_group = pod.user
    found = {}
    for path in sorted(pod.mounts):
        local = root / "volumes" / path.strip("/").replace("/", "_")
        local.mkdir(parents=True, exist_ok=True)
        if pod.mounts[path] in pod.secret_files:          # a Secret volume: its keys as files
            # As the kubelet writes them: the volume's defaultMode (0644 unless it says), group
            # the pod's fsGroup, so a 0440 keytab is readable by the pod's user through its group.
            mode = next((v["secret"].get("defaultMode", 0o644) for v in pod.pod_spec.get("volumes", [])
                         if v["name"] == pod.mounts[path]), 0o644)
            os.chmod(local, 0o755)
            for key, value in pod.secret_files[pod.mounts[path]].items():
                (local / key).write_bytes(value)
                os.chown(local / key, 0, fs_group if fs_group is not None else 0)
                os.chmod(local / key, mode)
        elif any(m["mountPath"] == path and m.get("readOnly") for m in pod.container["volumeMounts"]):
            os.chmod(local, 0o755)
        else:
            os.chown(local, 0, fs_group if fs_group is not None else gid)
            os.chmod(local, 0o2775)
        found[path] = str(local)
    return found


def _localized(value: str, paths: dict[str, str]) -> str:
    for path in sorted(paths, key=len, reverse=True):
        if value == path or value.startswith(path + "/"):
            return paths[path] + value[len(path):]
    return value


def _localize_tree(value, paths: dict[str, str]):
    if isinstance(value, dict):
        return {k: _localize_tree(v, paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_localize_tree(v, paths) for v in value]
    return _localized(value, paths) if isinstance(value, str) else value


def pod_filesystem(paths: dict[str, str], rootfs: Path, argv: list[str]) -> list[str]:
    """`argv` run as the pod's filesystem has it: in a private mount namespace, chrooted to
    `rootfs`, which shows this machine's top-level folders (bind mounts) except those a mount
    path of the pod starts with, and each of `paths` (mount path -> its folder) at its mount
    path. Paths DittoFS is given through its API (a store's directory under a claim) then work
    as in the pod. The mounts live only as long as the server's process; nothing of the machine
    changes but `rootfs`'s empty mount points."""
    ours = {Path(path).parts[1] for path in paths}
    rootfs.mkdir(exist_ok=True)
    lines = ["set -e"]
    for entry in sorted(os.listdir("/")):
        source = Path("/") / entry
        if entry in ours or (rootfs / entry).is_symlink():
            continue
        if source.is_symlink():                    # /bin -> usr/bin on a merged /usr
            os.symlink(os.readlink(source), rootfs / entry)
        elif source.is_dir():
            (rootfs / entry).mkdir(exist_ok=True)
            lines.append(f"mount --rbind {shlex.quote(str(source))} {shlex.quote(str(rootfs / entry))}")
    for path in sorted(paths, key=len):                # a parent mount before what is inside it
        target = shlex.quote(str(rootfs / path.lstrip("/")))
        lines.append(f"mkdir -p {target} && mount --bind {shlex.quote(paths[path])} {target}")
    lines.append(f"exec chroot {shlex.quote(str(rootfs))} {shlex.join(argv)}")
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(lines)]


class Namespace:
    """A network namespace with loopback up, held by a sleeping process (a pod's sandbox)."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 86400"],
                                       start_new_session=True)
        deadline = time.monotonic() + 10
        while not self._ready():
            if self.holder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("could not make a network namespace (needs root, unshare and ip)")
            time.sleep(0.02)
        self.path = f"/proc/{self.holder.pid}/ns/net"

    def _ready(self) -> bool:
        try:
            return os.readlink(f"/proc/{self.holder.pid}/ns/net") != os.readlink("/proc/self/ns/net") and \
                Path(f"/proc/{self.holder.pid}/cmdline").read_bytes().startswith(b"sleep")
        except OSError:
            return False

    def run(self, argv: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["nsenter", f"--net={self.path}", "--", *argv], **kwargs)

    def enter_this_thread(self) -> None:
        """Move the calling thread (only it) into the namespace: its new sockets live there."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def listening(self) -> set[tuple[str, int]]:
        """(address, port) of every TCP socket listening in the namespace."""
        found = set()
        for name in ("tcp", "tcp6"):
            text = subprocess.run(["nsenter", f"--net={self.path}", "cat", f"/proc/net/{name}"],
                                  capture_output=True, text=True, check=True).stdout
            for line in text.splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A":   # LISTEN
                    address, port = local.split(":")
                    found.add((address, int(port, 16)))
        return found

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.holder.pid, signal.SIGKILL)
        self.holder.wait()


def _in_namespace(namespace: "Namespace", make):
    """`make()` run on a thread of its own inside the namespace (sockets it makes live there)."""
    found: list = []

    def run():
        try:
            namespace.enter_this_thread()   # this thread ends right after
            found.append(make())
        except OSError as exc:
            found.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(found[0], OSError):
        raise found[0]
    return found[0]


class PortForward:
    """127.0.0.1:<free port> on one side to 127.0.0.1:<port> on the other: from this machine
    into the pod (`into`, as `kubectl port-forward`), or from the pod out to a server on this
    machine (`out_of`, as a Service in front of a database would be)."""

    def __init__(self, listener: socket.socket, connect) -> None:
        self.listener, self.connect = listener, connect
        self.port = listener.getsockname()[1]
        self.closed = threading.Event()
        self.streams: list[bytearray] = []     # what each connection sent towards the server
        self.delay = 0.0                       # seconds added before each chunk goes through
        threading.Thread(target=self._accept, daemon=True).start()

    @classmethod
    def into(cls, namespace: "Namespace", port: int) -> "PortForward":
        return cls(socket.create_server(("127.0.0.1", 0)),
                   lambda: _in_namespace(namespace, lambda: socket.create_connection(("127.0.0.1", port), timeout=10)))

    @classmethod
    def out_of(cls, namespace: "Namespace", port: int) -> "PortForward":
        listener = _in_namespace(namespace, lambda: socket.create_server(("127.0.0.1", 0)))
        return cls(listener, lambda: socket.create_connection(("127.0.0.1", port), timeout=10))

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(conn,), daemon=True).start()

    def _pump(self, outer: socket.socket) -> None:
        try:
            inner = self.connect()
        except OSError:
            outer.close()
            return
        sent = bytearray()
        self.streams.append(sent)
        with outer, inner, selectors.DefaultSelector() as sel:
            sel.register(outer, selectors.EVENT_READ, inner)
            sel.register(inner, selectors.EVENT_READ, outer)
            while not self.closed.is_set():
                for key, _ in sel.select(timeout=0.5):
                    try:
                        data = key.fileobj.recv(65536)
                        if data and key.fileobj is outer:
                            sent += data
                            time.sleep(self.delay)
                        if data:
                            key.data.sendall(data)
                    except OSError:
                        data = b""
                    if not data:
                        return

    def close(self) -> None:
        self.closed.set()
        self.listener.close()

    def requests(self) -> list[tuple[str, str, str | None]]:
        """(method, path, login username or None) of every HTTP request sent through so far, as
        the server received them (plain HTTP only)."""
        found = []
        for stream in list(self.streams):
            parts = REQUEST_LINE.split(bytes(stream))
            for method, path, rest in zip(parts[1::3], parts[2::3], parts[3::3]):
                user = LOGIN_USER.search(rest) if path.endswith(b"/auth/login") else None
                found.append((method.decode(), path.decode(), user.group(1).decode() if user else None))
        return found

    def forget(self) -> None:
        """Start counting afresh (open connections keep going: their record is emptied in place)."""
        for stream in self.streams:
            del stream[:]


REQUEST_LINE = re.compile(rb"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]\r\n")
LOGIN_USER = re.compile(rb'"username":\s*"([^"]*)"')


class Server:
    """A running `dfs` of a Pod: `url(port name)` reaches a container port from this machine."""

    def __init__(self, pod: Pod, root: Path, namespace: Namespace | None = None, pod_paths: bool = False) -> None:
        self.pod = pod
        # With `pod_paths`, the server also sees each volume at its mount path (`pod_filesystem`),
        # so paths that reach it through the API (a store's directory) work as in the pod.
        self.pod_paths = pod_paths
        # The pod's own directory: reachable by its non-root user (pytest's tmp_path is not).
        self.root = Path(tempfile.mkdtemp(prefix="dittofs-pod-"))
        os.chmod(self.root, 0o755)
        self.namespace = namespace or Namespace()
        self.forwards = {name: PortForward.into(self.namespace, port) for name, port in pod.ports.items()}
        self.proc: subprocess.Popen | None = None
        self.log = root / "dfs.log"
        # The API serves HTTPS when config.yaml gives it a certificate; `verify` is what this
        # side trusts (a CA bundle's path, as `requests` takes it).
        self.scheme = "https" if "tls" in (pod.config.get("controlplane") or {}) else "http"
        self.verify: bool | str = True

    def volume(self, mount_path: str) -> Path:
        """The folder that stands for a mount path of the pod."""
        return Path(mount_paths(self.pod, self.root)[mount_path])

    def argv(self) -> list[str]:
        paths = mount_paths(self.pod, self.root)
        config_dir = Path(paths["/config"])
        # The ConfigMap's content at its mount, with paths into volumes mapped like the mounts.
        (config_dir / "config.yaml").write_text(yaml.safe_dump(_localize_tree(self.pod.config, paths)))
        assert self.pod.command == [version.BINARY]
        return [str(binary()), *(_localized(a, paths) for a in self.pod.args)]

    def start(self) -> "Server":
        uid, gid, fs_group = self.pod.user
        home = self.root / "home"   # the image's home and temp folder, writable by its user
        home.mkdir(exist_ok=True)
        os.chown(home, uid, gid)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "TMPDIR": str(home), **self.pod.env}
        groups = ",".join(str(g) for g in dict.fromkeys([gid, *([fs_group] if fs_group is not None else [])]))
        as_user = ["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={groups}", "--"]
        argv = [*as_user, *self.argv()]
        if self.pod_paths:
            argv = pod_filesystem(mount_paths(self.pod, self.root), self.root / "rootfs", argv)
        with self.log.open("ab") as out:
            self.proc = self.namespace.run(argv, env=env, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def forward(self, port: int) -> int:
        """A port on 127.0.0.1 that reaches `port` inside the pod's network namespace, whether or
        not the container declares it (an adapter made through DittoFS's API listens on a port the
        StatefulSet may not name); one forward per port, closed with the server."""
        name = next((n for n, p in self.pod.ports.items() if p == port), f"port-{port}")
        if name not in self.forwards:
            self.forwards[name] = PortForward.into(self.namespace, port)
        return self.forwards[name].port

    def kill(self) -> None:
        """SIGKILL to the server's process group, as a pod that crashes or loses its node:
        nothing is flushed or closed (stop() is the kubelet's graceful SIGTERM)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        for forward in self.forwards.values():
            forward.close()
        self.namespace.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, port_name: str = "api") -> str:
        scheme = self.scheme if port_name == "api" else "http"
        return f"{scheme}://127.0.0.1:{self.forwards[port_name].port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_healthy(self, budget_s: float, path: str = "/health") -> float:
        """Seconds until `path` answers 200 on the api port; fails past `budget_s`."""
        started = time.monotonic()
        while time.monotonic() - started < budget_s:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"dfs exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url() + path, timeout=2, verify=self.verify).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.2)
        pytest.fail(f"{path} did not answer 200 within {budget_s} s:\n{self.output()[-4000:]}")

    def login(self, username: str, password: str) -> dict:
        response = requests.post(self.url() + "/api/v1/auth/login", verify=self.verify,
                                 json={"username": username, "password": password}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@contextlib.contextmanager
def running(pod: Pod, root: Path, budget_s: float | None = None, verify: bool | str = True, **kwargs):
    """A started Server of `pod`, healthy within the startup probe's budget; closed afterwards."""
    server = Server(pod, root, **kwargs)
    server.verify = verify
    try:
        server.start()
        server.wait_healthy(budget_s if budget_s is not None else startup_budget(pod))
        yield server
    finally:
        server.close()


def startup_budget(pod: Pod) -> float:
    """What the startup probe allows: initial delay + period x failure threshold."""
    probe = pod.container["startupProbe"]
    return probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]


def dfsctl(home: Path, url: str, password: str, username: str = "admin"):
    """DittoFS's own CLI, logged in to `url` (its credentials kept under `home`): a function
    that runs one command and fails the test with its output when it fails."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}

    def run(*argv: str) -> str:
        done = subprocess.run([str(binary("dfsctl")), *argv], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"dfsctl {' '.join(argv)}: {done.stdout}{done.stderr}"
        return done.stdout

    run("login", "--server", url, "-u", username, "-p", password)
    return run
