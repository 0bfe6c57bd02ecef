"""Drives Strongroom's jwt auth method with hvac, unmodified, and JWTs minted by PyJWT
(another language's JOSE library), signed by keys served from a JWKS on loopback, as a
CI job's OIDC token would be. Then every refusal of the contract, each a JWT that must
not log in.

Usage: jwt_suite.py BASE_URL ADMIN_TOKEN
"""
import base64
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time
import warnings

import hvac
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hvac import exceptions

warnings.simplefilter("ignore")
base, admin_token = sys.argv[1], sys.argv[2]
admin = hvac.Client(url=base, token=admin_token)

ISSUER = "https://token.actions.githubusercontent.com"
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
fetches = []


def jwk(key, kid, alg):
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()) if alg.startswith("RS") else jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    data.update({"kid": kid, "alg": alg, "use": "sig"})
    return data


JWKS = {"keys": [jwk(rsa_key, "rsa-1", "RS256"), jwk(ec_key, "ec-1", "ES256")]}


# Other key sets, each at its own URL (`?set=NAME`): rotated, taken down, slow, huge.
SETS = {}
DOWN, SLOW = set(), set()


class Jwks(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200
        if self.path == "/.well-known/openid-configuration":
            issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
            body = json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}/.well-known/jwks"}).encode()
        elif "?set=" in self.path:
            name = self.path.split("?set=")[1]
            fetches.append((name, time.time()))
            if name in SLOW:
                time.sleep(8)
            if name in DOWN:
                status, body = 503, b"down"
            elif name == "huge":
                body = json.dumps({"keys": [], "padding": "x" * (2 * 1024 * 1024)}).encode()
            else:
                body = json.dumps(SETS[name]).encode()
        else:
            fetches.append(("default", time.time()))
            body = json.dumps(JWKS).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
threading.Thread(target=server.serve_forever, daemon=True).start()
jwks_url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks"

# Configuration through hvac, as an operator would.
admin.sys.enable_auth_method(method_type="jwt")
admin.auth.jwt.configure(jwks_url=jwks_url, bound_issuer=ISSUER)
admin.auth.jwt.create_role(
    name="deploy",
    role_type="jwt",
    user_claim="sub",
    allowed_redirect_uris=[],
    bound_audiences=["https://github.com/acme"],
    bound_claims={"repository": "acme/app", "ref": "refs/heads/main"},
    token_policies=["default/prod:read"],
    token_ttl="10m",
    token_max_ttl="1h",
)
assert "jwt/" in admin.sys.list_auth_methods()["data"]


def claims(**changes):
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": "https://github.com/acme",
        "sub": "repo:acme/app:ref:refs/heads/main",
        "repository": "acme/app",
        "repository_id": "123456",
        "ref": "refs/heads/main",
        "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def sign(body, key=rsa_key, kid="rsa-1", alg="RS256"):
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def login(token, role="deploy"):
    return hvac.Client(url=base).auth.jwt.jwt_login(role=role, jwt=token, use_token=False)


# A GitHub Actions job logs in and reads; its token expires on its own.
auth = login(sign(claims()))["auth"]
assert auth["policies"] == ["default/prod:read"] and 590 <= auth["lease_duration"] <= 600, auth
job = hvac.Client(url=base, token=auth["client_token"])
assert job.secrets.kv.v2.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)["data"]["data"]["value"] == "from-prod"
me = job.auth.token.lookup_self()["data"]
assert me["path"] == "auth/jwt/login" and me["expire_time"], me
try:
    job.secrets.kv.v2.read_secret_version(path="staging/DB_URL", raise_on_deleted_version=True)
    raise AssertionError("a jwt login reached beyond its role's policies")
except exceptions.Forbidden:
    pass
# An EC key from the same JWKS; vault-action's exact body (`"role": ""` uses default_role).
login(sign(claims(), key=ec_key, kid="ec-1", alg="ES256"))
admin.auth.jwt.configure(jwks_url=jwks_url, bound_issuer=ISSUER, default_role="deploy")
resp = hvac.Client(url=base).adapter.post("/v1/auth/jwt/login", json={"role": "", "jwt": sign(claims())})
assert resp["auth"]["client_token"], resp
# iat 30 s ahead is inside the leeway.
login(sign(claims(iat=int(time.time()) + 30)))

public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def unsigned(body, alg):
    header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT", "kid": "rsa-1"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
    signing_input = header + b"." + payload
    if alg == "none":
        return (signing_input + b".").decode()
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


good = sign(claims())
head, payload, signature = good.split(".")
tampered_payload = base64.urlsafe_b64encode(json.dumps(claims(repository="acme/other")).encode()).rstrip(b"=").decode()
now = int(time.time())
refusals = {
    "expired": sign(claims(exp=now - 120, iat=now - 600, nbf=now - 600)),
    "not yet valid": sign(claims(nbf=now + 300)),
    "issued 90 s ahead": sign(claims(iat=now + 90)),
    "wrong audience": sign(claims(aud="https://github.com/evil")),
    "wrong issuer": sign(claims(iss="https://evil.example")),
    "unbound repository": sign(claims(repository="acme/other")),
    "unbound ref": sign(claims(ref="refs/heads/feature")),
    "alg none": unsigned(claims(), "none"),
    "HMAC with the public key as secret": unsigned(claims(), "HS256"),
    "unknown kid": sign(claims(), key=other_key, kid="rsa-unknown"),
    "tampered payload": f"{head}.{tampered_payload}.{signature}",
    "another key's signature": sign(claims(), key=other_key, kid="rsa-1"),
    "no exp, nbf or iat": sign(claims(exp=None, nbf=None, iat=None)),
    "over 16 KiB": sign(claims(padding="x" * 17000)),
}
for name, token in refusals.items():
    try:
        login(token)
        raise AssertionError(f"logged in with: {name}")
    except exceptions.InvalidRequest:
        pass

# Many random kids cause few fetches (at most one per 10 s).
fetches[:] = [f for f in fetches if f[0] == "default"]
before = len(fetches)
for i in range(20):
    try:
        login(sign(claims(), key=other_key, kid=f"random-{i}"))
    except exceptions.InvalidRequest:
        pass
assert len(fetches) - before <= 1, f"{len(fetches) - before} JWKS fetches for 20 unknown kids"

# A GitHub Actions job with an environment: `sub` has no ref, the role binds repository and
# ref through bound_claims and still matches; claim_mappings copy claims into the login's
# metadata.
admin.auth.jwt.create_role(
    name="deploy", role_type="jwt", user_claim="sub", allowed_redirect_uris=[],
    bound_audiences=["https://github.com/acme"], bound_claims={"repository": "acme/app", "ref": "refs/heads/main"},
    claim_mappings={"repository": "repo", "job_workflow_ref": "workflow"},
    token_policies=["default/prod:read"], token_ttl="10m", token_max_ttl="1h",
)
env_job = login(sign(claims(sub="repo:acme/app:environment:production", environment="production")))["auth"]
assert env_job["metadata"]["repo"] == "acme/app", env_job
assert env_job["metadata"]["workflow"].endswith("deploy.yml@refs/heads/main"), env_job

# Leeways: a role may allow a JWT that expired two minutes ago (expiration_leeway); the
# default (60 s) refuses it; an hour is the most a role may set.
admin.auth.jwt.create_role(
    name="lenient", role_type="jwt", user_claim="sub", allowed_redirect_uris=[],
    bound_audiences=["https://github.com/acme"], token_policies=["default/prod:read"],
    expiration_leeway=300, not_before_leeway=300,
)
late = claims(exp=now - 120, iat=now - 600, nbf=now - 600)
login(sign(late), role="lenient")
login(sign(claims(nbf=now + 120)), role="lenient")
for role in ["deploy"]:
    try:
        login(sign(late), role=role)
        raise AssertionError("an expired JWT passed the default leeway")
    except exceptions.InvalidRequest:
        pass
try:
    admin.auth.jwt.create_role(name="lenient", role_type="jwt", user_claim="sub", allowed_redirect_uris=[], bound_audiences=["x"], token_policies=["default/prod:read"], expiration_leeway=86400)
    raise AssertionError("a day of leeway was accepted")
except exceptions.InvalidRequest:
    pass

# A JWKS over plain HTTP is only for loopback; other schemes and look-alike hosts refused.
for url in ["http://example.com/jwks", "http://10.0.0.1/jwks", "http://localhost.evil.example/jwks", "http://127.0.0.1.evil.example/jwks", "file:///etc/passwd", "ftp://127.0.0.1/jwks"]:
    try:
        admin.auth.jwt.configure(jwks_url=url, bound_issuer=ISSUER)
        raise AssertionError(f"jwks_url {url} was accepted")
    except exceptions.InvalidRequest:
        pass
admin.auth.jwt.configure(jwks_url=jwks_url, bound_issuer=ISSUER, default_role="deploy")

# GitLab CI id_tokens: `aud` a list, `ref` without refs/heads/, booleans as strings, ids
# as strings; the role binds them as GitLab's docs show (a bool bound matches "true").
GITLAB = "https://gitlab.example.com"
port = server.server_address[1]
admin.sys.enable_auth_method(method_type="jwt", path="gitlab")
admin.auth.jwt.configure(jwks_url=jwks_url, bound_issuer=GITLAB, path="gitlab")
admin.auth.jwt.create_role(
    name="gitlab-main", role_type="jwt", user_claim="user_login", allowed_redirect_uris=[],
    bound_audiences=["https://strongroom.example"], bound_claims_type="glob",
    bound_claims={"project_path": "acme/*", "ref": "main", "ref_type": "branch", "ref_protected": True},
    token_policies=["default/prod:read"], path="gitlab",
)
gitlab = dict(
    iss=GITLAB, aud=["https://strongroom.example"], sub="project_path:acme/app:ref_type:branch:ref:main",
    namespace_id="42", namespace_path="acme", project_id="99", project_path="acme/app", user_id="7",
    user_login="alice", ref="main", ref_type="branch", ref_protected="true", pipeline_source="push",
    repository=None, repository_id=None, job_workflow_ref=None,
)
found = hvac.Client(url=base).auth.jwt.jwt_login(role="gitlab-main", jwt=sign(claims(**gitlab)), use_token=False, path="gitlab")
assert found["auth"]["client_token"], found
for change in [dict(ref_protected="false"), dict(project_path="evil/app"), dict(ref="feature")]:
    try:
        hvac.Client(url=base).auth.jwt.jwt_login(role="gitlab-main", jwt=sign(claims(**{**gitlab, **change})), use_token=False, path="gitlab")
        raise AssertionError(f"a GitLab token logged in with {change}")
    except exceptions.InvalidRequest:
        pass

other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def mount(name, keys):
    SETS[name] = {"keys": keys}
    admin.sys.enable_auth_method(method_type="jwt", path=name)
    admin.auth.jwt.configure(jwks_url=f"{jwks_url}?set={name}", bound_issuer=ISSUER, path=name)
    admin.auth.jwt.create_role(
        name="r", role_type="jwt", user_claim="sub", allowed_redirect_uris=[],
        bound_audiences=["https://github.com/acme"], token_policies=["default/prod:read"], path=name,
    )


def login_at(name, token):
    return hvac.Client(url=base).auth.jwt.jwt_login(role="r", jwt=token, use_token=False, path=name)


def refused_at(name, token, why):
    try:
        login_at(name, token)
        raise AssertionError(f"logged in at {name}: {why}")
    except exceptions.InvalidRequest:
        pass


# Rotation: the issuer publishes a new key and drops the old one; a JWT with the new kid
# refetches the set, and the dropped key stops verifying at once.
mount("rotating", [jwk(rsa_key, "rsa-1", "RS256")])
login_at("rotating", sign(claims()))
SETS["rotating"] = {"keys": [jwk(other_rsa, "rsa-2", "RS256")]}
login_at("rotating", sign(claims(), key=other_rsa, kid="rsa-2"))
refused_at("rotating", sign(claims()), "a key the issuer dropped")

# The issuer goes down: the last good set stays in use; an unknown kid is refused.
mount("down", [jwk(rsa_key, "rsa-1", "RS256")])
login_at("down", sign(claims()))
DOWN.add("down")
login_at("down", sign(claims()))
refused_at("down", sign(claims(), key=other_rsa, kid="rsa-new"), "an unknown kid while the issuer is down")

# A slow issuer: the refetch for an unknown kid gives up after a short timeout, and a login
# with a known key does not wait for it.
mount("slow", [jwk(rsa_key, "rsa-1", "RS256")])
login_at("slow", sign(claims()))
SLOW.add("slow")
# A configuration written on another mount keeps this mount's keys: a login with a known
# key still does not wait on the slow issuer (before, any method's config or role write
# dropped every mount's keys, and this login waited 5 s for the slow issuer and failed).
admin.auth.jwt.create_role(
    name="r2", role_type="jwt", user_claim="sub", allowed_redirect_uris=[],
    bound_audiences=["https://github.com/acme"], token_policies=["default/prod:read"], path="rotating",
)
login_at("slow", sign(claims()))
finished = []


def unknown_kid_login():
    refused_at("slow", sign(claims(), key=other_rsa, kid="rsa-slow"), "an unknown kid from a slow issuer")
    finished.append("unknown")


waiting = threading.Thread(target=unknown_kid_login)
waiting.start()
time.sleep(0.5)
login_at("slow", sign(claims()))
finished.append("known")
waiting.join()
assert finished == ["known", "unknown"], finished

# A JWKS over 1 MiB is not read: no key from it, and the server goes on serving.
mount("huge", [])
refused_at("huge", sign(claims()), "a key from a 2 MiB JWKS")
assert admin.sys.read_health_status(method="GET")["initialized"]

# Hostile mount paths are refused; `token` is taken.
for path in ["..%2F..%2Fsys", "JWT", "a.b", "x" * 65, "token"]:
    try:
        admin.adapter.post(f"/v1/sys/auth/{path}", json={"type": "jwt"})
        raise AssertionError(f"a method was enabled at {path!r}")
    except (exceptions.InvalidRequest, exceptions.InvalidPath):
        pass

# A role without a binding, and a role without user_claim, are refused at write.
for bad in [dict(bound_audiences=None, bound_claims=None), dict(user_claim="")]:
    args = dict(name="loose", role_type="jwt", user_claim="sub", allowed_redirect_uris=[], bound_audiences=None, token_policies=["default/prod:read"])
    args.update(bad)
    try:
        admin.auth.jwt.create_role(**{k: v for k, v in args.items() if v is not None or k == "bound_audiences"})
        raise AssertionError(f"a role was accepted: {bad}")
    except exceptions.InvalidRequest:
        pass

# A scoped token can not configure the method.
try:
    job.auth.jwt.configure(jwks_url=jwks_url, bound_issuer="https://evil.example")
    raise AssertionError("a scoped token configured the jwt method")
except exceptions.Forbidden:
    pass

# OIDC discovery: the provider's document names its JWKS and issuer (another mount path).
discovery_url = f"http://127.0.0.1:{server.server_address[1]}"
admin.sys.enable_auth_method(method_type="jwt", path="oidc")
admin.auth.jwt.configure(oidc_discovery_url=discovery_url, path="oidc")
admin.auth.jwt.create_role(
    name="ci", role_type="jwt", user_claim="sub", allowed_redirect_uris=[],
    bound_audiences=["https://github.com/acme"], token_policies=["default/prod:read"], path="oidc",
)
found = hvac.Client(url=base).auth.jwt.jwt_login(role="ci", jwt=sign(claims(iss=discovery_url)), use_token=False, path="oidc")
assert found["auth"]["client_token"], found
try:
    hvac.Client(url=base).auth.jwt.jwt_login(role="ci", jwt=sign(claims()), use_token=False, path="oidc")
    raise AssertionError("the discovered issuer was not enforced")
except exceptions.InvalidRequest:
    pass

# Disabling the method: its tokens stop working.
admin.sys.disable_auth_method(path="jwt")
assert not job.is_authenticated(), "a token of a disabled method still works"
print("jwt: every check passed")
