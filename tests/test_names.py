"""Names: sanitizing, the 15-character port-name rule, and long resource names."""
import hashlib

import pytest
from hypothesis import given, strategies as st

from hooks.request import names
from tests import factory, k8s_rules


@pytest.mark.parametrize("raw, expected", [
    ("nfs", "nfs"),
    ("NFS", "nfs"),
    ("S3_Gateway", "s3-gateway"),
    ("web dav!!", "web-dav"),
    ("--smb--", "smb"),
    ("a__b..c", "a-b-c"),
    ("", "unknown"),
    ("!!!", "unknown"),
    ("ünïcode", "n-code"),
])
def test_sanitize(raw, expected):
    assert names.sanitize(raw) == expected


@pytest.mark.parametrize("sanitized, expected", [
    ("nfs", "adapter-nfs"),
    ("smb", "adapter-smb"),
    ("webdav", "adapter-webdav"),       # exactly 14
    ("abcdefg", "adapter-abcdefg"),     # exactly 15: no hash
    ("custom-adapter-a", "adapter-cu-1e31"),
    ("s3-gateway", "adapter-s3-3ec9"),
])
def test_port_name_matches_reference_operator(sanitized, expected):
    assert names.port_name(sanitized) == expected


def test_port_name_strips_dash_before_hash():
    # "adapter-a-bcdefgh"[:10] is "adapter-a-": the trailing dash must go before "-hash".
    name = names.port_name("a-bcdefgh")
    assert name == "adapter-a-" .rstrip("-") + "-" + hashlib.sha256(b"a-bcdefgh").hexdigest()[:4]
    assert "--" not in name


@given(st.text(max_size=80))
def test_port_name_is_always_a_valid_iana_name(raw):
    name = names.port_name(names.sanitize(raw))
    assert k8s_rules.iana_ok(name), name


@given(st.text(min_size=1, max_size=200))
def test_adapter_resource_name_is_a_dns1035_label(raw):
    name = names.adapter_resource_name("demo", names.sanitize(raw))
    assert len(name) <= 63
    assert k8s_rules.DNS1035_LABEL.match(name), name


def test_long_names_are_shortened_deterministically_and_distinctly():
    parent = "p" * 52
    a = names.adapter_resource_name(parent, "nfs")
    b = names.adapter_resource_name(parent, "smb")
    assert len(a) == 63 and len(b) == 63
    assert a != b
    assert a == names.adapter_resource_name(parent, "nfs")
    assert a.startswith(parent[:20])


def test_short_names_are_not_changed():
    assert names.adapter_resource_name("demo", "nfs") == "demo-adapter-nfs"
    assert names.shorten("x" * 63) == "x" * 63


def test_long_type_label_value_is_shortened_and_used_to_match():
    long_type = "x" * 80
    value = names.label_value(long_type)
    assert len(value) <= 63 and k8s_rules.LABEL_VALUE.match(value)
    resp = factory.sync_of(factory.request(factory.parent(name="p" * 52, adapters=[factory.entry(long_type, 20000)])))
    assert k8s_rules.all_problems(resp) == []
    svc = [c for c in resp["children"] if c["metadata"]["labels"].get("dittofs.io/adapter-type") == value]
    assert len(svc) == 1
