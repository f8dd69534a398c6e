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


def dns1123_label_ok(name: str) -> bool:
    return len(name) <= 63 and bool(DNS1123_LABEL.match(name))


def port_list_problems(ports: list[dict], what: str, number: str, name_ok, strategy: str) -> list[str]:
    """Names valid and unique, numbers in range, and no two ports sharing the apply's merge key
    (number alone under dynamic apply, number and protocol under server-side apply)."""
    found, names, keys = [], set(), set()
    for port in ports:
        if not name_ok(port["name"]):
            found.append(f"{what} port name {port['name']!r} is not valid")
        if not 1 <= port[number] <= 65535:
            found.append(f"{what} port {port[number]} out of range")
        if port["name"] in names:
            found.append(f"duplicate {what} port name {port['name']}")
        names.add(port["name"])
        key = (port[number], port.get("protocol", "TCP"))
        key = key if strategy == "server-side-apply" else key[:1]
        if key in keys:
            found.append(f"{what} ports share merge key {key}")
        keys.add(key)
    return found


def service_problems(svc: dict, strategy: str) -> list[str]:
    return port_list_problems(svc["spec"]["ports"], "service", "port", dns1123_label_ok, strategy)


def statefulset_problems(sts: dict, strategy: str) -> list[str]:
    found = []
    if len(sts["metadata"]["name"]) > 52:
        found.append("StatefulSet name over 52 characters")
    template = sts["spec"]["template"]
    selector = sts["spec"]["selector"]["matchLabels"]
    if any(template["metadata"]["labels"].get(k) != v for k, v in selector.items()):
        found.append("template labels do not match the selector")
    # Port names and merge keys are unique across the whole pod, not per container.
    ports = [port for container in template["spec"]["containers"] for port in container.get("ports", [])]
    return found + port_list_problems(ports, "container", "containerPort", iana_ok, strategy)


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
