"""Caps on live tokens (Vault's lease-count quotas), driven by hvac unmodified: a role's
quota refuses the login past its cap with 429 (hvac's RateLimitExceeded) and writes
nothing; an ended token frees its place; a global quota caps child tokens too; a scoped
token can not lift a quota; /metrics (parsed by prometheus_client) shows the cap, the
live count and the refusals.

Usage: quota_suite.py BASE_URL ADMIN_TOKEN
"""
import sys
import threading
import warnings

import hvac
import requests
from hvac import exceptions
from prometheus_client.openmetrics.parser import text_string_to_metric_families

warnings.simplefilter("ignore")
base, admin_token = sys.argv[1], sys.argv[2]
admin = hvac.Client(url=base, token=admin_token)
admin.sys.enable_auth_method(method_type="approle")
admin.auth.approle.create_or_update_approle(role_name="ci", token_policies=["default/dev:read"], token_ttl="10m")
admin.auth.approle.create_or_update_approle(role_name="other", token_policies=["default/dev:read"], token_ttl="10m")
ci_id = admin.auth.approle.read_role_id("ci")["data"]["role_id"]
ci_secret = admin.auth.approle.generate_secret_id("ci")["data"]["secret_id"]
other_id = admin.auth.approle.read_role_id("other")["data"]["role_id"]
other_secret = admin.auth.approle.generate_secret_id("other")["data"]["secret_id"]


def login(rid, sid):
    return hvac.Client(url=base).auth.approle.login(role_id=rid, secret_id=sid, use_token=False)["auth"]


def refused_by_quota(make, why):
    try:
        make()
        raise AssertionError(f"a quota let through: {why}")
    except exceptions.RateLimitExceeded:
        pass


def live_tokens():
    return len([t for t in admin.adapter.request("LIST", "/v1/auth/token/accessors")["data"]["keys"]])


# Bad quotas are refused at write, and only a superuser writes one.
for bad in [{"path": "auth/approle/", "max_leases": 0}, {"path": "secret/", "max_leases": 3}, {"role": "ci", "max_leases": 3}]:
    try:
        admin.adapter.post("/v1/sys/quotas/lease-count/bad", json=bad)
        raise AssertionError(f"a bad quota was accepted: {bad}")
    except exceptions.InvalidRequest:
        pass
admin.adapter.post("/v1/sys/quotas/lease-count/ci-two", json={"path": "auth/approle/", "role": "ci", "max_leases": 2})
quota = admin.adapter.get("/v1/sys/quotas/lease-count/ci-two")["data"]
assert quota["max_leases"] == 2 and quota["role"] == "ci" and quota["type"] == "lease-count", quota
assert admin.adapter.request("LIST", "/v1/sys/quotas/lease-count")["data"]["keys"] == ["ci-two"]

# Two live tokens for the role; the third login is refused, and writes no token.
first = login(ci_id, ci_secret)
second = login(ci_id, ci_secret)
before = live_tokens()
refused_by_quota(lambda: login(ci_id, ci_secret), "a third login under a cap of two")
assert live_tokens() == before, "a refused login left a token behind"
# Another role is not under this quota.
login(other_id, other_secret)
# Revoking one frees its place.
admin.auth.token.revoke_accessor(first["accessor"])
third = login(ci_id, ci_secret)
refused_by_quota(lambda: login(ci_id, ci_secret), "the place was taken again")

# Raced: eight logins at once under a fresh cap of three: exactly three win.
admin.adapter.post("/v1/sys/quotas/lease-count/ci-two", json={"max_leases": 4})
results = []


def race():
    try:
        login(ci_id, ci_secret)
        results.append("ok")
    except exceptions.RateLimitExceeded:
        results.append("429")


threads = [threading.Thread(target=race) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert results.count("ok") == 2 and results.count("429") == 6, results

# A scoped token can not lift a quota.
scoped = hvac.Client(url=base, token=second["client_token"])
try:
    scoped.adapter.post("/v1/sys/quotas/lease-count/ci-two", json={"max_leases": 1000})
    raise AssertionError("a scoped token lifted a quota")
except exceptions.Forbidden:
    pass

# A global quota caps child tokens as well as logins.
live = live_tokens()
admin.adapter.post("/v1/sys/quotas/lease-count/global", json={"path": "", "max_leases": live + 1})
admin.auth.token.create(policies=["default/dev:read"], ttl="1h")
refused_by_quota(lambda: admin.auth.token.create(policies=["default/dev:read"], ttl="1h"), "a child token over the global cap")
refused_by_quota(lambda: login(other_id, other_secret), "a login over the global cap")
# The native API issues tokens under the same quotas.
native = requests.post(f"{base}/api/tokens", headers={"Authorization": f"Bearer {admin_token}"},
                       json={"name": "native-over", "superuser": False, "scopes": ["default/dev:read"]})
assert native.status_code == 429 and native.json()["data"]["reason"] == "quota_reached", native.text

# /metrics: the caps, what they count, and the refusals.
text = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {admin_token}"}).text
seen = {}
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        if sample.name.startswith("strongroom_quota"):
            seen[(sample.name, sample.labels.get("quota"))] = sample.value
assert seen[("strongroom_quota_max_leases", "ci-two")] == 4, seen
assert seen[("strongroom_quota_live_leases", "ci-two")] == 4, seen
assert seen[("strongroom_quota_live_leases", "global")] == live + 1, seen
assert seen[("strongroom_quota_refusals_total", "ci-two")] == 8, seen
assert seen[("strongroom_quota_refusals_total", "global")] == 3, seen

# Deleting the quota lifts the cap.
admin.adapter.delete("/v1/sys/quotas/lease-count/global")
admin.adapter.delete("/v1/sys/quotas/lease-count/ci-two")
login(ci_id, ci_secret)
# Attack: a login refused by a quota spends nothing. A single-use secret ID refused at the
# cap still logs in once a place is free (Vault checks quotas before the login).
admin.auth.approle.create_or_update_approle(role_name="once", token_policies=["default/dev:read"], token_ttl="10m",
                                            secret_id_num_uses=1)
once_id = admin.auth.approle.read_role_id("once")["data"]["role_id"]
admin.adapter.post("/v1/sys/quotas/lease-count/once-one", json={"path": "auth/approle/", "role": "once", "max_leases": 1})
holder = login(once_id, admin.auth.approle.generate_secret_id("once")["data"]["secret_id"])
single = admin.auth.approle.generate_secret_id("once")["data"]["secret_id"]
refused_by_quota(lambda: login(once_id, single), "a second token under a cap of one")
refused_by_quota(lambda: login(once_id, single), "still at the cap")
admin.auth.token.revoke_accessor(holder["accessor"])
login(once_id, single)  # its one use was not spent by the refusals
try:
    login(once_id, single)
    raise AssertionError("a single-use secret ID logged in twice")
except exceptions.InvalidRequest:
    pass
admin.adapter.delete("/v1/sys/quotas/lease-count/once-one")

print("quota: every check passed")
