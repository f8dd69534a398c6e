"""The hook's children against the real `dfs` of the pinned DittoFS version (tests/realdfs.py).

Each test builds a sync answer, starts `dfs` from its StatefulSet and ConfigMap, and checks
what DittoFS itself does with them.
"""
import base64
from pathlib import Path
import json
import time

import pytest
import requests

from hooks.dittofs import config, layout, version
from tests import factory, realdfs, worlds

pytestmark = pytest.mark.dittofs

USER_ADMIN_PASSWORD = "user-chosen admin password 1!"
JWT_SECRET = "a-user-given-signing-secret-of-more-than-32-characters"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "storage"},
            "type": "Opaque", "data": {k: b64(v) for k, v in data.items()}}


def answer(spec: dict, adapters=None) -> dict:
    return factory.sync_of(factory.request(factory.parent(spec=spec, adapters=adapters)))


FULL_SECRETS = [secret("jwt", signing=JWT_SECRET), secret("admin-pw", password=USER_ADMIN_PASSWORD)]


def _bootstrap(response: dict) -> tuple[str, str]:
    found = factory.child(response, "Secret", f"demo-{layout.ADMIN_SUFFIX}")
    return (base64.b64decode(found["data"]["username"]).decode(),
            base64.b64decode(found["data"]["password"]).decode())


def _clean_start(server: realdfs.Server) -> None:
    log = server.output()
    assert "unknown keys" not in log, log[-3000:]
    assert "validation failed" not in log.lower(), log[-3000:]


def test_minimal_spec_starts_clean_and_probes_answer(tmp_path):
    response = answer(factory.SPEC)
    pod = realdfs.pod_of(response)
    with realdfs.running(pod, tmp_path) as server:
        _clean_start(server)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = pod.container[probe]["httpGet"]
            assert get["port"] == "api"
            assert requests.get(server.url(get["port"]) + get["path"], timeout=5).status_code == 200
        # The control-plane database is where the config says, on the controlplane volume.
        assert list(server.volume("/data/controlplane").glob("controlplane.db*"))
        # As the image's non-root user, with the fsGroup the pod gives it.
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        groups = next(line.split()[1:] for line in status.splitlines() if line.startswith("Groups:"))
        assert set(uids) == {str(version.RUN_AS)} and str(pod.user[2]) in groups


def test_metrics_off_writes_no_metrics_block_and_dfs_serves_no_metrics(tmp_path):
    """The Go operator leaves `metrics:` out when metrics are off, and so does the hook: the
    real server then starts clean and listens on no metrics port, neither DittoFS's default
    (9090) nor the port the spec names while disabled."""
    response = answer({**factory.SPEC, "metrics": {"enabled": False, "port": 9191}})
    pod = realdfs.pod_of(response)
    assert "metrics" not in pod.config and "metrics" not in pod.ports
    with realdfs.running(pod, tmp_path) as server:
        _clean_start(server)
        assert requests.get(server.url("api") + "/health/ready", timeout=5).status_code == 200
        # Once the adapters DittoFS makes at first boot listen, start-up is over.
        deadline = time.monotonic() + 60
        while not {12049, 1445} <= {port for _, port in server.namespace.listening()}:
            assert time.monotonic() < deadline, server.output()[-3000:]
            time.sleep(0.2)
        ports = {port for _, port in server.namespace.listening()}
    assert pod.ports["api"] in ports and not {9090, 9191} & ports, ports


def test_full_spec_starts_clean_with_its_logging_metrics_and_tokens(tmp_path):
    response = answer(factory.FULL_SPEC)
    pod = realdfs.pod_of(response, FULL_SECRETS)
    assert pod.ports["api"] == 8181 and pod.ports["metrics"] == 9191
    with realdfs.running(pod, tmp_path) as server:
        _clean_start(server)
        # logging: text at DEBUG (the JSON format would start lines with '{').
        assert "level=DEBUG" in server.output()
        # metrics answer on the rendered port and path, and not on the default path.
        assert requests.get(server.url("metrics") + "/prom/metrics", timeout=5).status_code == 200
        assert requests.get(server.url("metrics") + "/metrics", timeout=5).status_code == 404
        tokens = server.login("admin", USER_ADMIN_PASSWORD)
        assert tokens["expires_in"] == 20 * 60
        assert _jwt_lifetime(tokens["refresh_token"]) == 48 * 3600
        assert list((server.volume("/data/controlplane") / "db").glob("cp.db*"))


def _jwt_lifetime(token: str) -> int:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims["exp"] - claims["iat"]


def test_control_plane_and_metrics_listen_on_every_interface(tmp_path):
    response = answer({**factory.SPEC, "metrics": {"enabled": True}})
    pod = realdfs.pod_of(response)
    assert pod.config["controlplane"]["host"] == pod.config["metrics"]["host"] == config.LISTEN_HOST
    with realdfs.running(pod, tmp_path) as server:
        listening = server.namespace.listening()
    wildcard = {"00000000", "00000000000000000000000000000000"}
    for name in ("api", "metrics"):
        bound = {address for address, port in listening if port == pod.ports[name]}
        assert bound and bound <= wildcard, (name, bound)


def test_generated_bootstrap_admin_logs_in_with_the_default_token_lifetimes(tmp_path):
    response = answer(factory.SPEC)
    username, password = _bootstrap(response)
    with realdfs.running(realdfs.pod_of(response), tmp_path) as server:
        tokens = server.login(username, password)
        assert tokens["expires_in"] == 15 * 60
        assert _jwt_lifetime(tokens["refresh_token"]) == 168 * 3600
        # A password the hook chose need not be changed: the user can use the API at once.
        me = requests.get(server.url() + "/api/v1/adapters", timeout=5,
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200, me.text


def test_adopted_legacy_admin_secret_keeps_the_running_servers_password(tmp_path):
    """A server started with the pre-v0.29 Secret keeps its admin password after the move."""
    legacy = secret(f"demo-{layout.LEGACY_ADMIN_SUFFIX}", username="admin", password="legacy-password-123")
    first = factory.sync_of(factory.request(factory.parent(), observed=[legacy]))
    username, password = _bootstrap(first)
    assert (username, password) == ("admin", "legacy-password-123")
    with realdfs.running(realdfs.pod_of(first), tmp_path) as server:
        server.login(username, password)


# --- PostgreSQL --------------------------------------------------------------------------------

POSTGRES_SPEC = {**factory.SPEC, "database": {"postgresSecretRef": {"name": "pg", "key": "ignored"}}}


def _postgres_secret(pg, database: str, port: int) -> dict:
    return secret("pg", host="127.0.0.1", port=str(port), database=database, user=pg.user,
                  password=pg.password, sslmode="disable")


def test_postgres_database_keeps_users_across_a_restart(tmp_path, postgres):
    database = postgres.create_database("dittofs_restart")
    response = answer(POSTGRES_SPEC)
    namespace = realdfs.Namespace()
    # PostgreSQL as the pod would reach it: an address in its own network.
    database_port = realdfs.PortForward.out_of(namespace, postgres.port).port
    pod = realdfs.pod_of(response, [_postgres_secret(postgres, database, database_port)])
    assert pod.config["database"] == {"type": "postgres"}
    server = realdfs.Server(pod, tmp_path, namespace=namespace)
    try:
        server.start().wait_healthy(realdfs.startup_budget(pod))
        _clean_start(server)
        admin = server.login(*_bootstrap(response))
        created = requests.post(server.url() + "/api/v1/users", timeout=10,
                                headers={"Authorization": f"Bearer {admin['access_token']}"},
                                json={"username": "alice", "password": "alice-password-1", "role": "operator"})
        assert created.status_code == 201, created.text
        server.stop()
        server.start().wait_healthy(realdfs.startup_budget(pod))
        server.login("alice", "alice-password-1")
        assert not list(server.root.rglob("*.db"))   # nothing went to sqlite
    finally:
        server.close()
    assert "alice" in postgres.query(database, "SELECT username FROM users")


# --- discovery and sync against the real API ----------------------------------------------------

def test_discovered_adapters_become_ports_and_services_and_stopping_one_removes_them(tmp_path):
    with worlds.world(tmp_path) as w:
        admin = w.admin()
        # DittoFS starts NFS (12049) and SMB (1445) on its first boot.
        seen = json.loads(w.discover()["annotations"]["dittofs.io/adapters"])
        assert {(a["type"], a["port"]) for a in seen} == {("nfs", 12049), ("smb", 1445)}
        synced = w.sync()
        assert {"adapter-nfs", "adapter-smb"} <= set(factory.port_names(synced))
        assert {"demo-adapter-nfs", "demo-adapter-smb"} <= set(factory.names_of(synced, "Service"))

        stopped = requests.put(w.server.url() + "/api/v1/adapters/smb", headers=admin, json={"enabled": False},
                               timeout=10)
        assert stopped.status_code == 200, stopped.text
        seen = json.loads(w.discover()["annotations"]["dittofs.io/adapters"])
        assert [(a["type"], a["enabled"] and a["running"]) for a in seen] == [("nfs", True), ("smb", False)]
        synced = w.sync()
        assert "adapter-smb" not in factory.port_names(synced)
        assert "demo-adapter-smb" not in factory.names_of(synced, "Service")
        assert "demo-adapter-nfs" in factory.names_of(synced, "Service")

        # Removed, then created again on another port through the API: the new port reaches the
        # pod and the adapter's Service.
        assert requests.delete(w.server.url() + "/api/v1/adapters/smb", headers=admin, timeout=10).status_code in (200, 204)
        created = requests.post(w.server.url() + "/api/v1/adapters", headers=admin, timeout=10,
                                json={"type": "smb", "enabled": True, "port": 1446})
        assert created.status_code == 201, created.text
        seen = json.loads(w.discover()["annotations"]["dittofs.io/adapters"])
        assert {(a["type"], a["port"], a["running"]) for a in seen} == {("nfs", 12049, True), ("smb", 1446, True)}
        synced = w.sync()
        assert {"name": "adapter-smb", "containerPort": 1446, "protocol": "TCP"} in factory.container_ports(synced)
        service = factory.child(synced, "Service", "demo-adapter-smb")
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"] if p["name"] == "adapter-smb"] == [(1446, 1446)]


def test_building_dfs_without_go_is_a_clear_error(tmp_path):
    """`make test` must stop and say what is missing, never skip the real-server tests."""
    import os
    import subprocess
    import sys

    env = {"PATH": os.environ["PATH"], "GO": "/nonexistent/go", "PYTHON": sys.executable, "DITTOFS_CACHE": str(tmp_path)}
    found = subprocess.run(["bash", str(realdfs.ROOT / "scripts" / "build-dfs.sh")], env=env,
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 1
    assert f"the Go toolchain (go 1.25 or newer) is needed to build dfs {version.VERSION}" in found.stderr
    assert not list(tmp_path.rglob("dfs"))


def test_metrics_with_a_bearer_token_refuse_a_scrape_without_it(tmp_path):
    spec = {**factory.SPEC, "metrics": {"enabled": True, "bearerTokenSecret": {"name": "scrape", "key": "tok"}}}
    response = answer(spec)
    pod = realdfs.pod_of(response, [secret("scrape", tok="a-scrape-token")])
    assert pod.config["metrics"]["auth"] == "token"
    with realdfs.running(pod, tmp_path) as server:
        _clean_start(server)
        url = server.url("metrics") + "/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, timeout=5, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(url, timeout=5, headers={"Authorization": "Bearer a-scrape-token"}).status_code == 200
    service = factory.child(response, "Service", "demo-metrics")
    assert service["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                                                  "prometheus.io/path": "/metrics"}
    # The token is in the pod only while metrics are on.
    off = answer({**spec, "metrics": {**spec["metrics"], "enabled": False}})
    volumes = factory.child(off, "StatefulSet", "demo")["spec"]["template"]["spec"]["volumes"]
    assert [v["name"] for v in volumes] == ["config"]
