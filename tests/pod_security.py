"""The `restricted` Pod Security Standard (Kubernetes Pod Security Admission, policy version
latest), as rules on a pod spec: what a namespace labelled
`pod-security.kubernetes.io/enforce: restricted` checks before it admits a pod.

Each rule returns what it finds wrong; `violations` gathers them all.
"""
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def _containers(pod: dict) -> list[dict]:
    return [*pod.get("initContainers", []), *pod.get("containers", []), *pod.get("ephemeralContainers", [])]


def _sc(container: dict) -> dict:
    return container.get("securityContext") or {}


def host_namespaces(pod: dict) -> list[str]:
    return [f"spec.{key} is true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]


def privileged(pod: dict) -> list[str]:
    return [f"{c['name']}: privileged" for c in _containers(pod) if _sc(c).get("privileged")]


def host_ports(pod: dict) -> list[str]:
    return [f"{c['name']}: hostPort {p['hostPort']}" for c in _containers(pod)
            for p in c.get("ports", []) if p.get("hostPort")]


def volume_types(pod: dict) -> list[str]:
    found = []
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    return found


def privilege_escalation(pod: dict) -> list[str]:
    return [f"{c['name']}: allowPrivilegeEscalation is not false" for c in _containers(pod)
            if _sc(c).get("allowPrivilegeEscalation") is not False]


def non_root(pod: dict) -> list[str]:
    pod_says = (pod.get("securityContext") or {}).get("runAsNonRoot")
    found = []
    for c in _containers(pod):
        says = _sc(c).get("runAsNonRoot")
        if says is False or (says is None and pod_says is not True):
            found.append(f"{c['name']}: runAsNonRoot is not true")
    for where, sc in [("pod", pod.get("securityContext") or {}), *((c["name"], _sc(c)) for c in _containers(pod))]:
        if sc.get("runAsUser") == 0:
            found.append(f"{where}: runAsUser is 0")
    return found


def seccomp(pod: dict) -> list[str]:
    allowed = {"RuntimeDefault", "Localhost"}
    pod_type = ((pod.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    found = [] if pod_type in (None, *allowed) else [f"pod: seccompProfile {pod_type}"]
    for c in _containers(pod):
        own = (_sc(c).get("seccompProfile") or {}).get("type")
        if own is not None and own not in allowed:
            found.append(f"{c['name']}: seccompProfile {own}")
        elif own is None and pod_type is None:
            found.append(f"{c['name']}: no seccompProfile (pod or container)")
    return found


def capabilities(pod: dict) -> list[str]:
    found = []
    for c in _containers(pod):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{c['name']}: capabilities do not drop ALL")
        added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"{c['name']}: adds capabilities {sorted(added)}")
    return found


RULES = (host_namespaces, privileged, host_ports, volume_types, privilege_escalation, non_root, seccomp, capabilities)


def violations(pod: dict) -> list[str]:
    return [problem for rule in RULES for problem in rule(pod)]
