"""Drives Strongroom's /v1 with hvac, unmodified (PyPI), as a Vault user would.

Usage: hvac_suite.py BASE_URL ADMIN_TOKEN PROD_ONLY_TOKEN
Every assertion failure exits non-zero with the reason; the Rust test runs this.
"""
import sys
import time
import warnings

import hvac
from hvac import exceptions

warnings.simplefilter("ignore")
base, admin_token, prod_token = sys.argv[1:4]
admin = hvac.Client(url=base, token=admin_token)
assert admin.is_authenticated(), "the admin token is accepted"
kv = admin.secrets.kv.v2

# Create, read, a new version, read a version.
written = kv.create_or_update_secret(path="prod/DB_URL", secret={"value": "postgres://one"})
assert written["data"]["version"] == 1, written
read = kv.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)
assert read["data"]["data"] == {"value": "postgres://one"}, read
assert read["data"]["metadata"]["version"] == 1
assert read["data"]["metadata"]["deletion_time"] == ""
assert read["data"]["metadata"]["destroyed"] is False
kv.create_or_update_secret(path="prod/DB_URL", secret={"value": "postgres://two"}, cas=1)
old = kv.read_secret_version(path="prod/DB_URL", version=1, raise_on_deleted_version=True)
assert old["data"]["data"]["value"] == "postgres://one", old

# CAS refused: Vault's 400, nothing written.
try:
    kv.create_or_update_secret(path="prod/DB_URL", secret={"value": "lost"}, cas=1)
    raise AssertionError("a stale cas was accepted")
except exceptions.InvalidRequest as e:
    assert "check-and-set" in str(e), e
assert kv.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)["data"]["data"]["value"] == "postgres://two"
try:
    kv.create_or_update_secret(path="prod/NEW", secret={"value": "x"}, cas=3)
    raise AssertionError("cas on a missing secret was accepted")
except exceptions.InvalidRequest:
    pass
kv.create_or_update_secret(path="prod/NEW", secret={"value": "created-with-cas-0"}, cas=0)

# A multi-field map is kept whole; a key may hold '/'.
kv.create_or_update_secret(path="prod/app/creds", secret={"user": "u", "password": "p", "port": 5432})
creds = kv.read_secret_version(path="prod/app/creds", raise_on_deleted_version=True)["data"]["data"]
assert creds == {"user": "u", "password": "p", "port": 5432}, creds

# Metadata and custom metadata.
meta = kv.read_secret_metadata(path="prod/DB_URL")["data"]
assert meta["current_version"] == 2 and meta["oldest_version"] == 1, meta
assert set(meta["versions"]) == {"1", "2"}, meta
assert meta["max_versions"] == 0 and meta["cas_required"] is False  # 0: the engine's setting, as Vault
kv.update_metadata(path="prod/DB_URL", custom_metadata={"managed-by": "external-secrets"})
assert kv.read_secret_metadata(path="prod/DB_URL")["data"]["custom_metadata"] == {"managed-by": "external-secrets"}

# Per-secret settings: max_versions and cas_required.
kv.create_or_update_secret(path="prod/STRICT", secret={"value": "s1"})
kv.update_metadata(path="prod/STRICT", max_versions=2, cas_required=True)
strict = kv.read_secret_metadata(path="prod/STRICT")["data"]
assert strict["max_versions"] == 2 and strict["cas_required"] is True, strict
try:
    kv.create_or_update_secret(path="prod/STRICT", secret={"value": "no-cas"})
    raise AssertionError("a write without cas was accepted")
except exceptions.InvalidRequest as e:
    assert "check-and-set parameter required" in str(e), e
kv.create_or_update_secret(path="prod/STRICT", secret={"value": "s2"}, cas=1)
kv.create_or_update_secret(path="prod/STRICT", secret={"value": "s3"}, cas=2)
strict = kv.read_secret_metadata(path="prod/STRICT")["data"]
assert sorted(strict["versions"]) == ["2", "3"] and strict["oldest_version"] == 2, strict
kv.delete_metadata_and_all_versions(path="prod/STRICT")

# Listing: envs at the root, keys in an env, folders.
assert kv.list_secrets(path="")["data"]["keys"] == ["prod/"]
listed = kv.list_secrets(path="prod")["data"]["keys"]
assert listed == ["DB_URL", "NATIVE", "NEW", "app/"], listed
assert kv.list_secrets(path="prod/app")["data"]["keys"] == ["creds"]

# A value written natively reads through /v1.
native = kv.read_secret_version(path="prod/NATIVE", raise_on_deleted_version=True)["data"]["data"]
assert native == {"value": "written-natively"}, native

# Delete metadata and all versions: gone.
kv.delete_metadata_and_all_versions(path="prod/app/creds")
try:
    kv.read_secret_version(path="prod/app/creds", raise_on_deleted_version=True)
    raise AssertionError("a deleted secret was read")
except exceptions.InvalidPath:
    pass

# Soft delete, undelete, destroy.
kv.create_or_update_secret(path="prod/VERSIONS", secret={"value": "v-one"})
kv.create_or_update_secret(path="prod/VERSIONS", secret={"value": "v-two"})
kv.delete_latest_version_of_secret(path="prod/VERSIONS")
try:
    kv.read_secret_version(path="prod/VERSIONS", raise_on_deleted_version=True)
    raise AssertionError("a deleted version was read")
except exceptions.InvalidPath:
    pass
deleted = kv.read_secret_version(path="prod/VERSIONS", raise_on_deleted_version=False)
assert deleted["data"]["data"] is None and deleted["data"]["metadata"]["deletion_time"] != "", deleted
kv.undelete_secret_versions(path="prod/VERSIONS", versions=[2])
assert kv.read_secret_version(path="prod/VERSIONS", raise_on_deleted_version=True)["data"]["data"]["value"] == "v-two"
kv.delete_secret_versions(path="prod/VERSIONS", versions=[1])
assert kv.read_secret_metadata(path="prod/VERSIONS")["data"]["versions"]["1"]["deletion_time"] != ""
kv.destroy_secret_versions(path="prod/VERSIONS", versions=[1])
versions = kv.read_secret_metadata(path="prod/VERSIONS")["data"]["versions"]
assert versions["1"]["destroyed"] is True and versions["2"]["destroyed"] is False, versions
try:
    kv.read_secret_version(path="prod/VERSIONS", version=1, raise_on_deleted_version=True)
    raise AssertionError("a destroyed version was read")
except exceptions.InvalidPath:
    pass
kv.delete_metadata_and_all_versions(path="prod/VERSIONS")

# lookup-self fields.
me = admin.auth.token.lookup_self()["data"]
assert me["type"] == "service" and isinstance(me["ttl"], int) and me["policies"] == ["root"], me
assert me["display_name"] == "token-admin" and "expire_time" in me, me

# A scoped token reads its env and is refused another.
scoped = hvac.Client(url=base, token=prod_token)
assert scoped.secrets.kv.v2.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)["data"]["data"]["value"] == "postgres://two"
try:
    scoped.secrets.kv.v2.read_secret_version(path="staging/DB_URL", raise_on_deleted_version=True)
    raise AssertionError("a prod-only token read staging")
except exceptions.Forbidden:
    pass
assert scoped.auth.token.lookup_self()["data"]["policies"] == ["default/prod:read"]

# A bad token: Vault's 403.
try:
    hvac.Client(url=base, token="sr.000000000000.nope").secrets.kv.v2.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)
    raise AssertionError("a bad token was accepted")
except exceptions.Forbidden:
    pass
# sys: health, seal status, mounts; the engine's configuration.
assert admin.sys.read_health_status(method="GET")["sealed"] is False
assert admin.sys.read_seal_status()["sealed"] is False
assert admin.sys.list_mounted_secrets_engines()["secret/"]["options"]["version"] == "2"
assert kv.read_configuration()["data"]["cas_required"] is False
kv.configure(max_versions=0, cas_required=False)

# Tokens are identities: a token made through Vault's API has an accessor, a ttl, a max
# and a use count; it reaches nothing its maker does not and is revoked with it.
made = admin.auth.token.create(policies=["default/prod:read"], ttl="1h", explicit_max_ttl="2h", display_name="ci")["auth"]
tok, acc = made["client_token"], made["accessor"]
assert 3590 <= made["lease_duration"] <= 3600 and made["renewable"] is True, made
assert made["policies"] == ["default/prod:read"] and acc and acc not in tok, made
ci = hvac.Client(url=base, token=tok)
me = ci.auth.token.lookup_self()["data"]
assert me["accessor"] == acc and me["expire_time"] and 3500 < me["ttl"] <= 3600, me
assert me["explicit_max_ttl"] == 7200 and me["num_uses"] == 0 and me["id"] == "", me
assert ci.secrets.kv.v2.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)["data"]["data"]["value"] == "postgres://two"
assert not hvac.Client(url=base, token=acc).is_authenticated(), "the accessor worked as a token"
renewed = ci.auth.token.renew_self(increment="10h")["auth"]
assert 7100 < renewed["lease_duration"] <= 7200, renewed  # capped at the max
assert admin.auth.token.lookup_accessor(acc)["data"]["accessor"] == acc
# A child of the child: within its scopes; a wider one is refused.
grand = ci.auth.token.create(policies=["default/prod:read"], ttl="30m")["auth"]["client_token"]
try:
    ci.auth.token.create(policies=["default/staging:read"])
    raise AssertionError("a child reached further than its parent")
except exceptions.InvalidRequest:
    pass
# Another token can not look up or revoke it by accessor.
try:
    scoped.auth.token.revoke_accessor(acc)
    raise AssertionError("a stranger revoked a token by accessor")
except exceptions.Forbidden:
    pass
# Revoked by accessor: it and its child stop working.
admin.auth.token.revoke_accessor(acc)
assert not ci.is_authenticated() and not hvac.Client(url=base, token=grand).is_authenticated()
# One use: the read spends it, and the token is then refused.
once = hvac.Client(url=base, token=admin.auth.token.create(policies=["default/prod:read"], num_uses=1)["auth"]["client_token"])
once.secrets.kv.v2.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)
assert not once.is_authenticated(), "a used-up token still works"
# Not renewable: renewing is refused and moves nothing.
fixed = hvac.Client(url=base, token=admin.auth.token.create(policies=["default/prod:read"], ttl="1h", renewable=False)["auth"]["client_token"])
try:
    fixed.auth.token.renew_self()
    raise AssertionError("a token that is not renewable was renewed")
except exceptions.InvalidRequest:
    pass
# A short ttl: it works, then is refused like a bad token.
brief = hvac.Client(url=base, token=admin.auth.token.create(policies=["default/prod:read"], ttl="2s")["auth"]["client_token"])
assert brief.is_authenticated()
time.sleep(2.5)
assert not brief.is_authenticated(), "an expired token still works"

# Renew (nothing to renew) and revoke-self: the revoked token stops working at once.
assert admin.auth.token.renew_self()["auth"]["renewable"] is False
scoped.auth.token.revoke_self()
assert not scoped.is_authenticated(), "a revoked token still works"
print("hvac: every check passed")
