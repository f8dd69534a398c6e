"""Kubernetes names for DittoFS objects: sanitized adapter types, IANA port names, DNS labels.

The port-name rule is bit-compatible with the reference Go operator, so a cluster moved over
from it keeps its container port names and no pod restarts for a rename.
"""
import hashlib
import re

PORT_NAME_MAX = 15          # IANA service name limit for container port names
DNS_LABEL_MAX = 63          # Service names and label values
ADAPTER_PORT_PREFIX = "adapter-"

_NOT_ALLOWED = re.compile(r"[^a-z0-9-]")
_DASH_RUNS = re.compile(r"-{2,}")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def sanitize(adapter_type: str) -> str:
    """Lowercase, map anything outside [a-z0-9-] to '-', collapse and trim dashes."""
    cleaned = _DASH_RUNS.sub("-", _NOT_ALLOWED.sub("-", adapter_type.lower())).strip("-")
    return cleaned or "unknown"


def port_name(sanitized: str) -> str:
    """Container port name of an adapter: `adapter-<type>`, hash-shortened past 15 chars."""
    name = ADAPTER_PORT_PREFIX + sanitized
    if len(name) <= PORT_NAME_MAX:
        return name
    return f"{name[:10].rstrip('-')}-{_digest(sanitized, 4)}"


def shorten(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """Fit `name` into `limit` characters: truncate and append an 8-hex hash of the whole.

    Names within the limit are returned unchanged, so shortening never renames an object
    that already fits.
    """
    if len(name) <= limit:
        return name
    return f"{name[:limit - 9].rstrip('-')}-{_digest(name, 8)}"


def adapter_resource_name(parent: str, sanitized: str) -> str:
    """`{parent}-adapter-{type}`, shortened to a DNS-1035 label when too long."""
    return shorten(f"{parent}-adapter-{sanitized}")


def label_value(sanitized: str) -> str:
    """A sanitized type as a label value (at most 63 characters)."""
    return shorten(sanitized)


def is_dns1035_label(name: str, limit: int = DNS_LABEL_MAX) -> bool:
    return len(name) <= limit and DNS1035_LABEL.match(name) is not None


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_dns1123_subdomain(name: str) -> bool:
    """A name Kubernetes accepts for most objects (at most 253 characters)."""
    return len(name) <= 253 and DNS1123_SUBDOMAIN.match(name) is not None
