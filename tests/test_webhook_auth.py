"""The hook's own webhook authentication: the bearer scheme in any case, and a set of accepted
tokens (current and next) so that a token can be rotated without downtime.

Unit tests of hooks/web/auth.py, the Flask app through its test client, and real gunicorn
processes reading a token file laid out the way the kubelet mounts a Secret.
"""
import hmac
import os

import pytest
import requests

from hooks.web import app as hook_app, auth, settings
from tests import servers

EXAMPLE = (servers.ROOT / "examples" / "sync-request.json").read_text()
OLD, NEW, OTHER = "old-token-1f3a", "new-token-9c7e", "not-accepted-5d2b"


def header(token: str, scheme: str = "Bearer") -> dict:
    return {"Authorization": f"{scheme} {token}"}


class SecretVolume:
    """A directory laid out like a kubelet Secret volume: `token` -> `..data/token`, and
    `..data` -> a timestamped directory that an update replaces by swapping the `..data` link."""

    def __init__(self, root, contents: str):
        self.root, self.generation = root, 0
        self.update(contents)
        os.symlink(os.path.join("..data", "token"), root / "token")

    @property
    def path(self) -> str:
        return str(self.root / "token")

    def update(self, contents: str) -> None:
        self.generation += 1
        version = self.root / f"..2024_01_01_00_00_0{self.generation}"
        version.mkdir()
        (version / "token").write_text(contents)
        link = self.root / "..data_tmp"
        os.symlink(version.name, link)
        os.replace(link, self.root / "..data")   # atomic, as the kubelet's AtomicWriter does


# --- the token list -----------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "tokens"), [
    ("one\ntwo\n", (b"one", b"two")),
    ("one\r\n\r\ntwo\r\n", (b"one", b"two")),
    ("  one  \n\n  two\n\n", (b"one", b"two")),
    ("one,two", (b"one", b"two")),
    ("one, two ,,three", (b"one", b"two", b"three")),
    ("one two\tthree", (b"one", b"two", b"three")),
    ("one\none\n", (b"one",)),
    (b"one\ntwo", (b"one", b"two")),
    ("", ()),
    (" \n,\n ", ()),
])
def test_tokens_are_split_on_newlines_commas_and_whitespace(raw, tokens):
    assert auth.parse(raw) == tokens


# --- the Authorization header --------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_matched_in_any_case(scheme):
    assert auth.allowed((OLD.encode(),), f"{scheme} {OLD}")
    assert not auth.allowed((OLD.encode(),), f"{scheme} {OTHER}")


@pytest.mark.parametrize("value", [
    f"Basic {OLD}", f"Token {OLD}", f"token {OLD}", f"Bearer{OLD}", f"Bearer-{OLD}", f"XBearer {OLD}",
    OLD, "Bearer", "Bearer ", "bearer   ", "", None,
])
def test_another_scheme_or_no_credential_is_refused(value):
    assert not auth.allowed((OLD.encode(), NEW.encode()), value)


def test_surrounding_whitespace_is_ignored_but_a_longer_or_shorter_credential_is_not():
    expected = (OLD.encode(),)
    assert auth.allowed(expected, f"  Bearer   {OLD}  ")
    assert not auth.allowed(expected, f"Bearer {OLD}x")
    assert not auth.allowed(expected, f"Bearer {OLD[:-1]}")
    assert not auth.allowed(expected, f"Bearer {OLD} {NEW}")
    assert not auth.allowed(expected, f"Bearer {OLD},{NEW}")


def test_every_listed_token_is_accepted_and_no_other():
    expected = auth.parse(f"{OLD}\n{NEW}\n")
    assert auth.allowed(expected, f"Bearer {OLD}")
    assert auth.allowed(expected, f"Bearer {NEW}")
    assert not auth.allowed(expected, f"Bearer {OTHER}")
    assert not auth.allowed((), f"Bearer {OLD}")


def test_every_token_is_compared_even_after_a_match(monkeypatch):
    calls, compare = [], hmac.compare_digest

    def counting(a, b):
        calls.append(b)
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    expected = (OLD.encode(), NEW.encode(), b"third")
    assert auth.allowed(expected, f"Bearer {OLD}")      # matches the first one
    assert calls == list(expected)


# --- token sources -------------------------------------------------------------------------

def test_a_file_with_two_tokens_accepts_both_and_refuses_a_third(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"{OLD}\n{NEW}\n")
    source = auth.source(None, str(token_file))
    assert isinstance(source, auth.FileToken)
    assert source.current() == (OLD.encode(), NEW.encode())
    assert auth.allowed(source.current(), f"Bearer {OLD}")
    assert auth.allowed(source.current(), f"bearer {NEW}")
    assert not auth.allowed(source.current(), f"Bearer {OTHER}")


def test_a_rotated_file_takes_effect_without_a_restart(tmp_path):
    volume = SecretVolume(tmp_path, f"{OLD}\n")
    source = auth.FileToken(volume.path)
    assert source.current() == (OLD.encode(),)
    volume.update(f"{OLD}\n{NEW}\n")                    # step 1: the next token is added
    assert source.current() == (OLD.encode(), NEW.encode())
    volume.update(f"{NEW}\n")                           # step 3: the old token is dropped
    assert source.current() == (NEW.encode(),)
    assert not auth.allowed(source.current(), f"Bearer {OLD}")
    assert auth.allowed(source.current(), f"Bearer {NEW}")


@pytest.mark.parametrize("contents", ["", "\n\n", " , \n"])
def test_an_empty_file_refuses_every_call(tmp_path, contents):
    token_file = tmp_path / "token"
    token_file.write_text(contents)
    with pytest.raises(auth.Unavailable, match="empty"):
        auth.FileToken(str(token_file)).current()


def test_a_file_emptied_later_refuses_instead_of_keeping_the_old_tokens(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"{OLD}\n")
    source = auth.FileToken(str(token_file))
    assert source.current() == (OLD.encode(),)
    token_file.write_text("")
    with pytest.raises(auth.Unavailable):
        source.current()


@pytest.mark.parametrize("value", [f"{OLD},{NEW}", f"{OLD} {NEW}", f" {OLD} ,\n{NEW} ,"])
def test_an_env_var_with_two_tokens_accepts_both(value):
    source = auth.source(value, None)
    assert isinstance(source, auth.StaticToken)
    assert source.current() == (OLD.encode(), NEW.encode())
    assert not auth.allowed(source.current(), f"Bearer {OTHER}")


def test_the_file_wins_over_the_env_var(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(NEW)
    assert auth.source(OLD, str(token_file)).current() == (NEW.encode(),)


def test_an_unset_or_blank_env_var_means_unauthenticated_and_only_commas_is_an_error():
    assert auth.source(None, None) is None
    assert auth.source("  \n", None) is None
    with pytest.raises(ValueError, match="DITTOFS_HOOK_TOKEN"):
        auth.source(" , ,", None)


# --- through the app -----------------------------------------------------------------------

def test_the_app_accepts_both_env_tokens_in_any_scheme_case():
    config = settings.Settings.from_env({"DITTOFS_HOOK_TOKEN": f"{OLD},{NEW}"})
    client = hook_app.create_app(config).test_client()
    assert client.post("/sync", data=EXAMPLE, headers=header(OLD, "bearer")).status_code == 200
    assert client.post("/sync", data=EXAMPLE, headers=header(NEW, "BEARER")).status_code == 200
    for refused in (header(OTHER), header(OLD, "Basic"), header(NEW, "Token"), {}):
        resp = client.post("/sync", data=EXAMPLE, headers=refused)
        assert resp.status_code == 401 and resp.json["error"]["code"] == "Unauthorized"


# --- through gunicorn ----------------------------------------------------------------------

def post(base: str, headers: dict) -> requests.Response:
    return requests.post(f"{base}/sync", data=EXAMPLE, headers=headers, timeout=10)


def test_rotation_through_gunicorn_with_a_mounted_secret(tmp_path):
    volume = SecretVolume(tmp_path, f"{OLD}\n{NEW}\n")
    with servers.gunicorn({"DITTOFS_HOOK_TOKEN_FILE": volume.path, "DITTOFS_HOOK_TOKEN": OTHER}) as (base, _):
        # Both listed tokens, in any scheme case; a third token and other schemes are refused.
        for token in (OLD, NEW):
            for scheme in ("Bearer", "bearer", "BEARER"):
                assert post(base, header(token, scheme)).status_code == 200, (token, scheme)
        for refused in (header(OTHER), header(OLD, "Basic"), header(NEW, "Token"), {}):
            resp = post(base, refused)
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "Unauthorized"
        # The old token is dropped from the Secret: refused at once, with no restart.
        volume.update(f"{NEW}\n")
        assert post(base, header(OLD)).status_code == 401
        assert post(base, header(NEW, "bearer")).status_code == 200
        # An emptied Secret refuses every call.
        volume.update("")
        for token in (OLD, NEW, OTHER):
            resp = post(base, header(token))
            assert resp.status_code == 503 and resp.json()["error"]["code"] == "AuthUnavailable"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200


def test_two_tokens_in_the_env_var_through_gunicorn():
    with servers.gunicorn({"DITTOFS_HOOK_TOKEN": f"{OLD},{NEW}"}) as (base, _):
        assert post(base, header(OLD, "bearer")).status_code == 200
        assert post(base, header(NEW, "BEARER")).status_code == 200
        assert post(base, header(OTHER)).status_code == 401
        assert post(base, header(f"{OLD},{NEW}")).status_code == 401
