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


class Jwks(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
            body = json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}/.well-known/jwks"}).encode()
        else:
            fetches.append(time.time())
            body = json.dumps(JWKS).encode()
        self.send_response(200)
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
before = len(fetches)
for i in range(20):
    try:
        login(sign(claims(), key=other_key, kid=f"random-{i}"))
    except exceptions.InvalidRequest:
        pass
assert len(fetches) - before <= 1, f"{len(fetches) - before} JWKS fetches for 20 unknown kids"

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
