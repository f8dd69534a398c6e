"""Generated Secrets: the JWT signing secret and the first admin's credentials.

Values are random only until the Secret exists; from then on the observed data is returned
unchanged, as `data` (base64), so Metacontroller never rewrites them.
"""
import base64
import secrets
import string

from hooks.dittofs import layout
from hooks.request import context, observed

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def generated(ctx: context.Context) -> list[tuple[str, dict]]:
    """(name suffix, {key: factory of its first value}) of each Secret this spec has the hook make."""
    found = []
    if ctx.spec.identity.jwt.secret_ref is None:
        found.append((layout.JWT_SUFFIX, {layout.JWT_KEY: lambda: ctx.random_token(64)}))
    if ctx.spec.identity.admin.password_secret_ref is None:
        found.append((layout.ADMIN_SUFFIX, {
            layout.USERNAME_KEY: lambda: ctx.spec.identity.admin.username,
            layout.PASSWORD_KEY: lambda: ctx.random_token(32),
        }))
    return found


def _observed_data(ctx: context.Context, name: str) -> dict:
    return observed.dig(ctx.observed.of(observed.SECRET).get(name), "data", default={})


def _secret(ctx: context.Context, suffix: str, wanted: dict) -> dict:
    """A Secret whose observed keys win; `wanted` maps each key to a factory of its first value."""
    name = ctx.child_name(suffix)
    current = _observed_data(ctx, name)
    data = {key: current[key] if isinstance(current.get(key), str) else _b64(make()) for key, make in sorted(wanted.items())}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.meta(name), "type": "Opaque", "data": data}


def build(ctx: context.Context) -> list[dict]:
    return [_secret(ctx, suffix, wanted) for suffix, wanted in generated(ctx)]


def existing_values(ctx: context.Context) -> tuple[str, ...] | None:
    """The observed value of every generated key, in a fixed order, or None when one is missing
    (`build` would make it up at random)."""
    found = []
    for suffix, wanted in generated(ctx):
        current = _observed_data(ctx, ctx.child_name(suffix))
        for key in sorted(wanted):
            value = current.get(key)
            if not isinstance(value, str):
                return None
            found.append(value)
    return tuple(found)
