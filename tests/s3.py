"""A real S3 server on 127.0.0.1 for the tests' session: SeaweedFS's `weed server` (master,
volume, filer and S3 gateway in one process) at the version scripts/seaweedfs/go.mod pins,
built by scripts/build-seaweedfs.sh (`make test` runs it).

It listens on free loopback ports only, reports nothing to the internet (its telemetry is off),
and takes only requests signed (AWS Signature V4) with the one identity it is given, as a
production S3 does; DittoFS's remote `s3` block store needs such credentials anyway. The
`Bucket` helpers sign their own requests, so tests need no S3 library.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests import realdfs

ROOT = Path(__file__).resolve().parents[1]
MODULE = "github.com/seaweedfs/seaweedfs"
REGION = "us-east-1"
START_BUDGET_S = 180      # weed answers S3 within about 10 s here; a loaded machine gets more
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def version() -> str:
    """The pinned pseudo-version, read from scripts/seaweedfs/go.mod as the build script does."""
    text = (ROOT / "scripts" / "seaweedfs" / "go.mod").read_text()
    return re.search(rf"^require {re.escape(MODULE)} (\S+)$", text, re.M).group(1)


def binary() -> Path:
    cache = Path(os.environ.get("SEAWEEDFS_CACHE") or ROOT / ".cache" / "seaweedfs")
    path = cache / version() / "weed"
    if not path.exists():
        pytest.fail(f"{path} is missing: `make test` builds it (scripts/build-seaweedfs.sh needs Go)")
    return path


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(method: str, url: str, access_key: str, secret_key: str, body: bytes = b"",
                   region: str = REGION, now: datetime.datetime | None = None) -> dict[str, str]:
    """The headers that sign one request with AWS Signature V4 (service `s3`)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical_query = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                               for k, v in query)
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    names = ";".join(sorted(headers))
    canonical = "\n".join([method, urllib.parse.quote(parts.path or "/", safe="/-_.~"), canonical_query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), names, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {**{k: v for k, v in headers.items() if k != "host"},
            "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={names}, "
                             f"Signature={signature}"}


@dataclass
class S3:
    """A running S3 gateway: its endpoint and the one identity it accepts."""

    port: int
    access_key: str
    secret_key: str
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes = b"", signed: bool = True) -> requests.Response:
        url = self.endpoint + path
        headers = signed_headers(method, url, self.access_key, self.secret_key, body) if signed else {}
        return requests.request(method, url, data=body, headers=headers, timeout=30)

    def bucket(self, name: str) -> "Bucket":
        """A new, empty bucket."""
        made = self.request("PUT", f"/{name}")
        assert made.status_code == 200, f"bucket {name}: {made.status_code} {made.text}"
        return Bucket(self, name)


@dataclass
class Bucket:
    s3: S3
    name: str

    def objects(self, prefix: str = "") -> dict[str, int]:
        """key -> size of every object under `prefix` (ListObjectsV2, all pages)."""
        found: dict[str, int] = {}
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix, **({"continuation-token": token} if token else {})}
            listed = self.s3.request("GET", f"/{self.name}?{urllib.parse.urlencode(query)}")
            assert listed.status_code == 200, f"list {self.name}: {listed.status_code} {listed.text}"
            tree = ET.fromstring(listed.content)
            for item in tree.iter(f"{S3_NS}Contents"):
                found[item.findtext(f"{S3_NS}Key")] = int(item.findtext(f"{S3_NS}Size"))
            token = tree.findtext(f"{S3_NS}NextContinuationToken")
            if tree.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return found

    def get(self, key: str) -> bytes:
        got = self.s3.request("GET", f"/{self.name}/{urllib.parse.quote(key)}")
        assert got.status_code == 200, f"get {key}: {got.status_code} {got.text}"
        return got.content

    def put(self, key: str, body: bytes) -> None:
        put = self.s3.request("PUT", f"/{self.name}/{urllib.parse.quote(key)}", body)
        assert put.status_code == 200, f"put {key}: {put.status_code} {put.text}"


def _answers(s3: S3) -> bool:
    """Whether the gateway serves a signed ListBuckets (the filer and a volume behind it too)."""
    with contextlib.suppress(requests.RequestException):
        return s3.request("GET", "/").status_code == 200
    return False


@contextlib.contextmanager
def server():
    """`weed server -s3` on free loopback ports with one identity; stopped and removed after."""
    root = Path(tempfile.mkdtemp(prefix="dittofs-hooks-s3-"))
    (root / "data").mkdir()
    s3 = S3(port=realdfs.free_port(), access_key="AKDITTOFSTEST" + os.urandom(4).hex().upper(),
            secret_key=os.urandom(20).hex(), log=root / "weed.log")
    identities = {"identities": [{"name": "dittofs", "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                                  "credentials": [{"accessKey": s3.access_key, "secretKey": s3.secret_key}]}]}
    (root / "s3.json").write_text(json.dumps(identities))
    ports = {name: realdfs.free_port() for name in ("master.port", "master.port.grpc", "volume.port",
                                                    "volume.port.grpc", "filer.port", "filer.port.grpc",
                                                    "s3.port.grpc")}
    argv = [str(binary()), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in ports.items()), "-volume.max=100", "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false", "-filer", "-s3", f"-s3.port={s3.port}", "-s3.port.iceberg=0",
            "-s3.port.lance=0", f"-s3.config={root / 's3.json'}", "-s3.autoCreateBucket=false",
            f"-filer.localSocket={root / 'filer.sock'}"]       # not /tmp/seaweedfs-filer-<port>.sock
    with s3.log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    try:
        deadline = time.monotonic() + START_BUDGET_S
        while not _answers(s3):
            if proc.poll() is not None or time.monotonic() > deadline:
                ended = f"exited {proc.returncode}" if proc.poll() is not None else f"no answer in {START_BUDGET_S} s"
                pytest.fail(f"SeaweedFS S3 {ended}:\n{s3.log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
        yield s3
    finally:
        # Its data goes with it: a short grace, then SIGKILL (a clean stop takes 20 s and more).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
        # weed puts a gRPC socket per service in /tmp, named by port, whatever -dir says.
        for name, port in ports.items():
            if name.endswith(".grpc"):
                for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-grpc-{port}.sock"):
                    sock.unlink(missing_ok=True)
