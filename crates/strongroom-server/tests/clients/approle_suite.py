"""Drives Strongroom's approle auth method with hvac, unmodified: a role, its role id, a
secret id, a login; then the refusals (a wrong secret id, another role's, a used-up one,
one bound to another network, an expired one), a single-use secret id raced by two
logins, and a scoped token that may not configure anything.

Usage: approle_suite.py BASE_URL ADMIN_TOKEN
"""
import sys
import threading
import time
import warnings

import hvac
from hvac import exceptions

warnings.simplefilter("ignore")
base, admin_token = sys.argv[1], sys.argv[2]
admin = hvac.Client(url=base, token=admin_token)
admin.sys.enable_auth_method(method_type="approle")
assert "approle/" in admin.sys.list_auth_methods()["data"]
admin.auth.approle.create_or_update_approle(
    role_name="worker",
    token_policies=["default/prod:read,list", "default/dev:read"],
    token_ttl="10m",
    token_max_ttl="1h",
    secret_id_num_uses=0,
)
admin.auth.approle.create_or_update_approle(role_name="other", token_policies=["default/dev:read"])
role_id = admin.auth.approle.read_role_id("worker")["data"]["role_id"]
other_id = admin.auth.approle.read_role_id("other")["data"]["role_id"]
made = admin.auth.approle.generate_secret_id("worker")["data"]
secret_id = made["secret_id"]
assert made["secret_id_accessor"] and made["secret_id_accessor"] != secret_id


def login(rid, sid):
    return hvac.Client(url=base).auth.approle.login(role_id=rid, secret_id=sid, use_token=False)["auth"]


def refused(rid, sid, why):
    try:
        login(rid, sid)
        raise AssertionError(f"logged in with {why}")
    except exceptions.InvalidRequest as e:
        assert "invalid role or secret ID" in str(e), e


auth = login(role_id, secret_id)
assert sorted(auth["policies"]) == ["default/dev:read", "default/prod:list,read"], auth
assert 590 <= auth["lease_duration"] <= 600, auth
worker = hvac.Client(url=base, token=auth["client_token"])
assert worker.secrets.kv.v2.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)["data"]["data"]["value"] == "from-prod"
assert worker.auth.token.lookup_self()["data"]["path"] == "auth/approle/login"

refused(role_id, "0" * 64, "a wrong secret id")
refused(other_id, secret_id, "another role's id")
refused("not-a-role", secret_id, "an unknown role id")

# Single use, raced by two logins: exactly one wins.
admin.auth.approle.create_or_update_approle(role_name="single", token_policies=["default/dev:read"], secret_id_num_uses=1)
single_id = admin.auth.approle.read_role_id("single")["data"]["role_id"]
once = admin.auth.approle.generate_secret_id("single")["data"]["secret_id"]
results = []


def race():
    try:
        login(single_id, once)
        results.append("ok")
    except exceptions.InvalidRequest:
        results.append("refused")


threads = [threading.Thread(target=race) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert sorted(results) == ["ok", "refused"], results
refused(single_id, once, "a used-up secret id")

# Bound to another network: refused from loopback; bound to loopback: works.
far = admin.auth.approle.generate_secret_id("worker", cidr_list=["10.9.8.0/24"])["data"]["secret_id"]
refused(role_id, far, "a secret id bound to another network")
near = admin.auth.approle.generate_secret_id("worker", cidr_list=["127.0.0.0/8"])["data"]["secret_id"]
login(role_id, near)

# Expired: a 1 s secret id.
admin.auth.approle.create_or_update_approle(role_name="brief", token_policies=["default/dev:read"], secret_id_ttl="1s")
brief_id = admin.auth.approle.read_role_id("brief")["data"]["role_id"]
brief = admin.auth.approle.generate_secret_id("brief")["data"]["secret_id"]
time.sleep(1.5)
refused(brief_id, brief, "an expired secret id")

# Renewal re-reads the role: a deleted role ends the token.
renewable = login(role_id, near)
renewing = hvac.Client(url=base, token=renewable["client_token"])
assert renewing.auth.token.renew_self()["auth"]["lease_duration"] > 0
admin.auth.approle.create_or_update_approle(role_name="gone", token_policies=["default/dev:read"], token_ttl="5m")
gone_id = admin.auth.approle.read_role_id("gone")["data"]["role_id"]
gone_token = login(gone_id, admin.auth.approle.generate_secret_id("gone")["data"]["secret_id"])["client_token"]
gone = hvac.Client(url=base, token=gone_token)
assert gone.is_authenticated()
admin.auth.approle.delete_role("gone")
try:
    gone.auth.token.renew_self()
    raise AssertionError("a token of a deleted role was renewed")
except exceptions.Forbidden:
    pass
assert not gone.is_authenticated(), "a token of a deleted role still works after its renewal was refused"

# A scoped token configures nothing.
try:
    worker.auth.approle.create_or_update_approle(role_name="mine", token_policies=["*/*"])
    raise AssertionError("a scoped token wrote a role")
except exceptions.Forbidden:
    pass
try:
    worker.auth.approle.generate_secret_id("worker")
    raise AssertionError("a scoped token minted a secret id")
except exceptions.Forbidden:
    pass
# token_bound_cidrs through hvac: stored, and a login from outside them (this client is on
# 127.0.0.1) is refused like any other failure (tests/identity.rs checks the token's use).
admin.auth.approle.create_or_update_approle(role_name="cidr", token_policies=["default/dev:read"], token_bound_cidrs=["10.0.0.0/8"])
assert admin.auth.approle.read_role("cidr")["data"]["token_bound_cidrs"] == ["10.0.0.0/8"]
cidr_id = admin.auth.approle.read_role_id("cidr")["data"]["role_id"]
refused(cidr_id, admin.auth.approle.generate_secret_id("cidr")["data"]["secret_id"], "a login from outside token_bound_cidrs")
# An unsupported binding is refused, not ignored.
try:
    admin.auth.approle.create_or_update_approle(role_name="nosecret", token_policies=["default/dev:read"], bind_secret_id=False)
    raise AssertionError("bind_secret_id false was silently accepted")
except exceptions.InvalidRequest:
    pass
print("approle: every check passed")
