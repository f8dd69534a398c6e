"""What the API server checks beyond the OpenAPI schema (METACONTROLLER_FACTS.md), for the tests.

`kubernetes-validate` checks each child against the official schema; these functions check the
rules that the schema cannot express and that would make the API server reject a child.
"""
import re

import kubernetes_validate

K8S_VERSION = "1.31"
IANA_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def problems(child: dict, strategy: str = "dynamic-apply") -> list[str]:
    """Every reason the API server (or Metacontroller's merge) would mangle or reject `child`."""
    found = []
    try:
        kubernetes_validate.validate(child, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        found.append(f"schema: {exc.message}")
    name = child["metadata"]["name"]
    for key, value in (child["metadata"].get("labels") or {}).items():
        if len(value) > 63 or not LABEL_VALUE.match(value):
            found.append(f"label {key}={value!r} is not a valid label value")
    kind = child["kind"]
    if kind == "Service":
        found += service_problems(child, strategy)
        if len(name) > 63 or not DNS1035_LABEL.match(name):
            found.append(f"Service name {name!r} is not a DNS-1035 label")
    elif len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        found.append(f"{kind} name {name!r} is not a DNS-1123 subdomain")
    if kind == "StatefulSet":
        found += statefulset_problems(child, strategy)
    return found


def iana_ok(name: str) -> bool:
    return len(name) <= 15 and bool(IANA_NAME.match(name)) and "--" not in name and re.search("[a-z]", name) is not None


def service_problems(svc: dict, strategy: str) -> list[str]:
    found, names, keys = [], set(), set()
    for port in svc["spec"]["ports"]:
        if not DNS1123_LABEL.match(port["name"]) or len(port["name"]) > 63:
            found.append(f"service port name {port['name']!r} is not a DNS-1123 label")
        if not 1 <= port["port"] <= 65535:
            found.append(f"service port {port['port']} out of range")
        if port["name"] in names:
            found.append(f"duplicate service port name {port['name']}")
        names.add(port["name"])
        key = (port["port"], port.get("protocol", "TCP"))
        merge_key = key if strategy == "server-side-apply" else key[:1]
        if merge_key in keys:
            found.append(f"duplicate service port {key}")
        keys.add(merge_key)
    return found


def statefulset_problems(sts: dict, strategy: str) -> list[str]:
    found, names, keys = [], set(), set()
    if len(sts["metadata"]["name"]) > 52:
        found.append("StatefulSet name over 52 characters")
    template = sts["spec"]["template"]
    selector = sts["spec"]["selector"]["matchLabels"]
    if any(template["metadata"]["labels"].get(k) != v for k, v in selector.items()):
        found.append("template labels do not match the selector")
    for container in template["spec"]["containers"]:
        for port in container.get("ports", []):
            if not iana_ok(port["name"]):
                found.append(f"container port name {port['name']!r} is not an IANA service name")
            if not 1 <= port["containerPort"] <= 65535:
                found.append(f"container port {port['containerPort']} out of range")
            if port["name"] in names:
                found.append(f"duplicate container port name {port['name']}")
            names.add(port["name"])
            key = (port["containerPort"], port["protocol"]) if strategy == "server-side-apply" else (port["containerPort"],)
            if key in keys:
                found.append(f"container ports share merge key {key}")
            keys.add(key)
    return found


def all_problems(response: dict, strategy: str = "dynamic-apply") -> list[str]:
    found = []
    seen = set()
    for child in response["children"]:
        ident = (child["kind"], child["metadata"]["name"])
        if ident in seen:
            found.append(f"duplicate child {ident}")
        seen.add(ident)
        found += [f"{ident}: {p}" for p in problems(child, strategy)]
    return found
