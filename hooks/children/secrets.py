"""Generated Secrets: the JWT signing secret, the admin's bootstrap credentials, the password of
the `k8s-operator` account the discovery hook polls with, and the password of the `k8s-manager`
account the DittoShare, DittoUser and DittoGroup hooks write with.

Values are random only until the Secret exists (as a child, or as an object of its name that
Metacontroller has not adopted yet); from then on the observed data is returned unchanged, as
`data` (base64), so Metacontroller never rewrites them. The bootstrap Secret is read by DittoFS
once, at first boot: after someone changes the admin password it is history.

A legacy `{p}-admin-credentials` (this project's name before DittoFS v0.29, and the Go
operator's) is adopted: its values seed the bootstrap Secret, so a running server keeps its
admin password, and it is handed back unchanged until the bootstrap Secret is observed with
its keys; then it is left out, and Metacontroller deletes it.
"""
import base64
import secrets
import string

from hooks.dittofs import layout
from hooks.request import context, observed, spec

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def generated_suffixes(s: spec.DittoServerSpec) -> list[str]:
    """The name suffixes of the Secrets this spec has the hook make."""
    found = []
    if s.identity.jwt.secret_ref is None:
        found.append(layout.JWT_SUFFIX)
    if s.identity.admin.password_secret_ref is None:
        found.append(layout.ADMIN_SUFFIX)
    # The discovery hook makes the account with this password (it never invents one). A child
    # here, not a decorator attachment: the CompositeController owns Secrets of this parent and
    # would release an attachment. A user's credentials Secret means no account is made.
    if s.adapter_discovery.credentials_secret_ref is None:
        found.append(layout.OPERATOR_SUFFIX)
    # Declared shares, users and groups are written as this admin-role account. Its Secret's
    # name is derived from the server's, as it must be: their hooks see only their own object.
    found.append(layout.MANAGER_SUFFIX)
    return found


def generated(ctx: context.Context) -> list[tuple[str, dict]]:
    """(name suffix, {key: factory of its first value}) of each Secret this spec has the hook make."""
    def account(user: str) -> dict:
        return {layout.USERNAME_KEY: lambda: user, layout.PASSWORD_KEY: lambda: ctx.random_token(32)}
    factories = {
        layout.JWT_SUFFIX: lambda: {layout.JWT_KEY: lambda: ctx.random_token(64)},
        layout.ADMIN_SUFFIX: lambda: account(layout.ADMIN_USER),
        layout.OPERATOR_SUFFIX: lambda: account(layout.OPERATOR_USER),
        layout.MANAGER_SUFFIX: lambda: account(layout.MANAGER_USER),
    }
    return [(suffix, factories[suffix]()) for suffix in generated_suffixes(ctx.spec)]


def _observed_data(ctx: context.Context, suffix: str, released: bool = False) -> dict:
    """The child's data. With `released`, else that of an object of its name that is not a child
    yet (related by name: one the Go operator made and Metacontroller released, which
    server-side apply takes over at once and dynamic apply adopts once labelled; its values are
    the server's), unless the spec names it as the user's own Secret, which is never taken."""
    name = ctx.child_name(suffix)
    found = ctx.observed.of(observed.SECRET).get(name)
    if found is None and released and name not in ctx.spec.referenced_secrets():
        found = ctx.observed.related_of(observed.SECRET).get(name)
    data = observed.dig(found, "data", default={})
    return data if isinstance(data, dict) else {}


def _complete(data: dict, keys, suffix: str = "") -> bool:
    return all(_present(data.get(key), suffix) for key in keys)


def _present(value: object, suffix: str) -> bool:
    """A value to keep. An emptied account password is made again: the discovery hook sets the
    account to whatever it holds, and an empty one works for nobody. Any other generated value
    stays as it is (rewriting it could lock a running server out)."""
    return isinstance(value, str) and (value != "" or suffix not in layout.ACCOUNT_SUFFIXES)


def current_data(ctx: context.Context, suffix: str, keys) -> dict:
    """The observed data a generated Secret keeps: its own, or for the admin bootstrap Secret
    not made yet, the legacy Secret's."""
    data = _observed_data(ctx, suffix, released=True)
    if suffix == layout.ADMIN_SUFFIX and not _complete(data, keys):
        legacy = _observed_data(ctx, layout.LEGACY_ADMIN_SUFFIX)
        if _complete(legacy, keys):
            return legacy
    return data


def _secret(ctx: context.Context, suffix: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.meta(ctx.child_name(suffix)), "type": "Opaque",
            "data": data}


def legacy_kept(ctx: context.Context) -> dict | None:
    """The legacy admin Secret's data while it must stay: until the bootstrap Secret is observed
    with every key (or, with a user's password Secret, not at all)."""
    legacy = _observed_data(ctx, layout.LEGACY_ADMIN_SUFFIX)
    if not legacy or ctx.spec.identity.admin.password_secret_ref is not None:
        return None
    if _complete(_observed_data(ctx, layout.ADMIN_SUFFIX), (layout.USERNAME_KEY, layout.PASSWORD_KEY)):
        return None
    return {key: value for key, value in sorted(legacy.items()) if isinstance(value, str)}


def referenced_own(ctx: context.Context) -> dict[str, dict]:
    """Secrets this hook made that the spec now names as the user's own (e.g. the bootstrap
    Secret, edited, as `identity.admin.passwordSecretRef`): handed back as observed, by name.
    Left out, Metacontroller would delete the very Secret the spec points to."""
    s = ctx.spec
    refs = {ref.name for ref in (s.identity.jwt.secret_ref, s.identity.admin.password_secret_ref,
                                 s.adapter_discovery.credentials_secret_ref) if ref is not None}
    made_now = {ctx.child_name(suffix) for suffix, _ in generated(ctx)}
    found = {}
    for suffix in (layout.JWT_SUFFIX, layout.ADMIN_SUFFIX, layout.OPERATOR_SUFFIX):
        name = ctx.child_name(suffix)
        data = _observed_data(ctx, suffix)
        if name in refs and name not in made_now and data:
            found[suffix] = {key: value for key, value in sorted(data.items()) if isinstance(value, str)}
    return found


def manager_ca(ctx: context.Context) -> str | None:
    """The control plane's CA (`ca.crt` of its certificate Secret, as stored), which the manager
    Secret carries: the declared kinds' hooks verify the server with it, and cannot relate the
    certificate Secret themselves (its name is the server's to choose). It follows the
    certificate Secret, as it is public."""
    name = ctx.spec.control_plane.cert_secret_name
    data = observed.dig(ctx.observed.related_secrets.get(name), "data", default={}) if name else {}
    value = data.get(layout.CA_KEY) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def build(ctx: context.Context) -> list[dict]:
    found = [_secret(ctx, suffix, data) for suffix, data in referenced_own(ctx).items()]
    for suffix, wanted in generated(ctx):
        current = current_data(ctx, suffix, wanted)
        data = {key: current[key] if _present(current.get(key), suffix) else _b64(make())
                for key, make in sorted(wanted.items())}
        if suffix == layout.MANAGER_SUFFIX and (ca := manager_ca(ctx)) is not None:
            data = dict(sorted({**data, layout.CA_KEY: ca}.items()))
        found.append(_secret(ctx, suffix, data))
    legacy = legacy_kept(ctx)
    if legacy is not None:
        found.append(_secret(ctx, layout.LEGACY_ADMIN_SUFFIX, legacy))
    return found


def existing_values(ctx: context.Context) -> tuple | None:
    """Every observed value the Secrets are built from, in a fixed order, or None when one is
    missing (`build` would make it up at random)."""
    found: list = []
    for suffix, wanted in generated(ctx):
        current = current_data(ctx, suffix, wanted)
        if not _complete(current, wanted, suffix):
            return None
        found += [current[key] for key in sorted(wanted)]
    legacy = legacy_kept(ctx)
    found.append(None if legacy is None else tuple(legacy.items()))
    found.append(tuple((suffix, tuple(data.items())) for suffix, data in referenced_own(ctx).items()))
    found.append(manager_ca(ctx))
    return tuple(found)
