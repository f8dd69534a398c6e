"""Go's `time.ParseDuration` format (`30s`, `1m30s`, `500ms`, `2h`), as used in the CRD."""
import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse(text: str) -> float | None:
    """Seconds in a Go duration string, or None when it is not one."""
    if not isinstance(text, str):
        return None
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body:
        return None
    return -total if text.startswith("-") else total


def positive_or(text: str, default: float) -> float:
    """The duration in seconds when valid and positive, else `default`."""
    seconds = parse(text)
    return seconds if seconds is not None and seconds > 0 else default
