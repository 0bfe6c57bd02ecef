"""Drives Strongroom's kubernetes auth method with hvac, unmodified, and service account
tokens minted by PyJWT, against a small fake Kubernetes API server on loopback that
answers TokenReviews (and counts them): the TokenReview path (a pod logs in; a token the
cluster does not authenticate, one it says belongs to another uid, an unbound namespace or
name are refused) and the offline path (`pem_keys`: verified locally, TokenReview never
called).

Usage: kubernetes_suite.py BASE_URL ADMIN_TOKEN
"""
import datetime
import http.server
import json
import sys
import threading
import time
import warnings

import hvac
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives.asymmetric import rsa
from hvac import exceptions

warnings.simplefilter("ignore")
base, admin_token = sys.argv[1], sys.argv[2]
admin = hvac.Client(url=base, token=admin_token)
cluster_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# The cluster's signing key as a certificate (hvac accepts pem_keys only in that form).
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "service-accounts")])
cluster_pem = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(cluster_key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1))
    .not_valid_after(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1))
    .sign(cluster_key, hashes.SHA256())
    .public_bytes(serialization.Encoding.PEM)
    .decode()
)
reviews = []
REVIEWER = "reviewer-token-not-a-secret-of-anyone"


def sa_token(namespace, name, uid, aud="https://kubernetes.default.svc"):
    now = int(time.time())
    return jwt.encode(
        {
            "iss": "https://kubernetes.default.svc",
            "aud": [aud],
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "iat": now,
            "exp": now + 600,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        },
        cluster_key,
        algorithm="RS256",
    )


good = sa_token("payments", "api", "uid-1")
stolen = sa_token("payments", "api", "uid-1-old")
unknown = sa_token("payments", "api", "uid-2")
other_ns = sa_token("staging", "api", "uid-3")
other_name = sa_token("payments", "batch", "uid-4")
# What the fake cluster knows: token -> (namespace, name, uid), or not authenticated.
known = {
    good: ("payments", "api", "uid-1"),
    stolen: ("payments", "api", "uid-1"),  # the cluster says: another uid than the token's
    other_ns: ("staging", "api", "uid-3"),
    other_name: ("payments", "batch", "uid-4"),
}


class Api(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reviews.append((self.path, self.headers.get("Authorization"), body))
        token = body["spec"]["token"]
        if token in known:
            ns, name, uid = known[token]
            status = {"authenticated": True, "user": {"username": f"system:serviceaccount:{ns}:{name}", "uid": uid}}
        else:
            status = {"authenticated": False, "error": "invalid token"}
        out = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
threading.Thread(target=api.serve_forever, daemon=True).start()
host = f"http://127.0.0.1:{api.server_address[1]}"

admin.sys.enable_auth_method(method_type="kubernetes")
# The reviewer's token goes only to HTTPS (plain HTTP only on loopback).
for bad in ["http://10.0.0.1:6443", "http://kubernetes.default.svc", "http://localhost.evil.example", "file:///etc/passwd"]:
    try:
        admin.auth.kubernetes.configure(kubernetes_host=bad, token_reviewer_jwt=REVIEWER)
        raise AssertionError(f"kubernetes_host {bad} was accepted")
    except exceptions.InvalidRequest:
        pass
admin.auth.kubernetes.configure(kubernetes_host=host, token_reviewer_jwt=REVIEWER)
assert "token_reviewer_jwt" not in admin.auth.kubernetes.read_config(), "the reviewer's token was shown"
admin.auth.kubernetes.create_role(
    name="api",
    bound_service_account_names=["api"],
    bound_service_account_namespaces=["payments"],
    policies=["default/prod:read"],
    ttl="15m",
)


def login(token, role="api"):
    return hvac.Client(url=base).auth.kubernetes.login(role=role, jwt=token, use_token=False)["auth"]


auth = login(good)
assert auth["policies"] == ["default/prod:read"] and 890 <= auth["lease_duration"] <= 900, auth
assert auth["metadata"]["service_account_name"] == "api" and auth["metadata"]["service_account_namespace"] == "payments", auth
pod = hvac.Client(url=base, token=auth["client_token"])
assert pod.secrets.kv.v2.read_secret_version(path="prod/DB_URL", raise_on_deleted_version=True)["data"]["data"]["value"] == "from-prod"
path, authorization, review = reviews[-1]
assert path == "/apis/authentication.k8s.io/v1/tokenreviews" and authorization == f"Bearer {REVIEWER}", reviews[-1]
assert review["kind"] == "TokenReview" and review["spec"]["token"] == good

for token, why in [
    (unknown, "a token the cluster does not authenticate"),
    (stolen, "a TokenReview answering another uid"),
    (other_ns, "an unbound namespace"),
    (other_name, "an unbound service account name"),
    ("not.a.jwt", "garbage"),
]:
    try:
        login(token)
        raise AssertionError(f"logged in with {why}")
    except exceptions.InvalidRequest:
        pass

# Offline: pem_keys set, the cluster is never asked.
admin.auth.kubernetes.configure(kubernetes_host=host, pem_keys=[cluster_pem])
before = len(reviews)
login(good)
assert len(reviews) == before, "TokenReview was called although pem_keys are set"
forged = jwt.encode(jwt.decode(good, options={"verify_signature": False}), rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256")
try:
    login(forged)
    raise AssertionError("logged in with a token signed by another key")
except exceptions.InvalidRequest:
    pass
print("kubernetes: every check passed")
