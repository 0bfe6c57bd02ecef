"""Drives Strongroom's database secrets engine with hvac, unmodified, against a real
PostgreSQL; every issued login is used with psycopg (a client nobody here wrote), with
password authentication (pg_hba makes members of strongroom_password_login use SCRAM).

Usage: database_suite.py BASE_URL ADMIN_TOKEN POSTGRES_URL
"""
import sys
import time
import uuid
import warnings

import hvac
import psycopg
import requests
from hvac import exceptions
from prometheus_client.openmetrics.parser import text_string_to_metric_families

warnings.simplefilter("ignore")
base, admin_token, pg_url = sys.argv[1], sys.argv[2], sys.argv[3]
admin = hvac.Client(url=base, token=admin_token)

# A database of this run, a table to grant on, the group whose logins need passwords.
db = "dyn_" + uuid.uuid4().hex[:10]
with psycopg.connect(pg_url, autocommit=True) as c:
    c.execute(f"CREATE DATABASE {db}")
    if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = 'strongroom_password_login'").fetchone():
        c.execute("CREATE ROLE strongroom_password_login NOLOGIN")
host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
db_url = f"postgresql://postgres@{host_port}/{db}"
with psycopg.connect(db_url, autocommit=True) as c:
    c.execute("CREATE TABLE orders (id int)")
    c.execute("INSERT INTO orders VALUES (1), (2)")
    c.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")


def connect_as(username, password):
    return psycopg.connect(f"postgresql://{username}:{password}@{host_port}/{db}", connect_timeout=5)


def role_exists(name):
    with psycopg.connect(db_url) as c:
        return c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def valid_until(name):
    with psycopg.connect(db_url) as c:
        return float(c.execute("SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = %s", (name,)).fetchone()[0])


# A connection: verified on write; its password never read back; a bad one refused.
try:
    admin.secrets.database.configure(
        name="broken-db", plugin_name="postgresql-database-plugin",
        connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:1/{db}",
        username="postgres", password="x", allowed_roles=["app"],
    )
    raise AssertionError("an unreachable connection was accepted")
except exceptions.InvalidRequest:
    pass
admin.secrets.database.configure(
    name="app-db", plugin_name="postgresql-database-plugin",
    connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@{host_port}/{db}",
    username="postgres", password="root-password-not-used-by-trust",
    allowed_roles=["app", "short", "broken", "owner"],
)
# Options this engine does not implement are refused, not ignored.
for option in [{"username_template": "{{.RoleName}}"}, {"password_policy": "strict"}]:
    try:
        admin.secrets.database.configure(name="app-db", plugin_name="postgresql-database-plugin", **option)
        raise AssertionError(f"{option} was silently accepted")
    except exceptions.InvalidRequest:
        pass
shown = admin.secrets.database.read_connection(name="app-db")["data"]
assert "password" not in shown and "root-password" not in str(shown), shown

create = [
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE strongroom_password_login",
    "GRANT SELECT ON orders TO \"{{name}}\"",
]
admin.secrets.database.create_role(name="app", db_name="app-db", creation_statements=create, default_ttl="1h", max_ttl="2h")
admin.secrets.database.create_role(name="short", db_name="app-db", creation_statements=create, default_ttl="2s", max_ttl="2s")
admin.secrets.database.create_role(name="broken", db_name="app-db", creation_statements=["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'", "GRANT SELECT ON no_such_table TO \"{{name}}\""])
admin.secrets.database.create_role(name="owner", db_name="app-db", creation_statements=create, default_ttl="1h")
admin.secrets.database.create_role(name="elsewhere", db_name="app-db", creation_statements=create)

# Creds work at once, with their password and only it, and expire with their lease.
made = admin.secrets.database.generate_credentials(name="app")
lease_id, username, password = made["lease_id"], made["data"]["username"], made["data"]["password"]
assert lease_id.startswith("database/creds/app/") and made["renewable"] and 3590 <= made["lease_duration"] <= 3600, made
assert len(username) <= 63 and username.startswith("v-"), username
assert len(password) == 32 and password.isalnum(), "password alphabet"
with connect_as(username, password) as c:
    assert c.execute("SELECT count(*) FROM orders").fetchone()[0] == 2
try:
    connect_as(username, password[:-1] + ("a" if password[-1] != "a" else "b")).close()
    raise AssertionError("a wrong password logged in: authentication is not by password")
except psycopg.OperationalError:
    pass
lease = admin.sys.read_lease(lease_id=lease_id)["data"]
assert abs(valid_until(username) - (time.time() + lease["ttl"])) < 5, "VALID UNTIL is the lease's expiry"

# Renewal: capped by max_ttl (2 h), VALID UNTIL moves with it.
renewed = admin.sys.renew_lease(lease_id=lease_id, increment=36000)
assert 7100 <= renewed["lease_duration"] <= 7200, renewed
assert abs(valid_until(username) - (time.time() + renewed["lease_duration"])) < 5

# Listing and revocation: the login is gone and can not connect.
keys = admin.sys.list_leases(prefix="database/creds/app/")["data"]["keys"]
assert lease_id.rsplit("/", 1)[1] in keys, keys
admin.sys.revoke_lease(lease_id=lease_id)
assert not role_exists(username)
try:
    connect_as(username, password).close()
    raise AssertionError("a revoked login still connects")
except psycopg.OperationalError:
    pass
try:
    admin.sys.read_lease(lease_id=lease_id)
    raise AssertionError("a revoked lease is still found")
except exceptions.InvalidRequest:
    pass

# A login that owns a table and holds a session is removed entirely on revoke.
owner = admin.secrets.database.generate_credentials(name="owner")
session = connect_as(owner["data"]["username"], owner["data"]["password"])
session.execute("CREATE TABLE owned_by_login (x int)")
session.commit()
admin.sys.revoke_lease(lease_id=owner["lease_id"])
assert not role_exists(owner["data"]["username"])
try:
    session.execute("SELECT 1")
    raise AssertionError("the revoked login's session survived")
except psycopg.Error:
    pass

# The server ends a lease on time, with no one asking.
short = admin.secrets.database.generate_credentials(name="short")
deadline = time.time() + 30
while role_exists(short["data"]["username"]) and time.time() < deadline:
    time.sleep(0.2)
assert not role_exists(short["data"]["username"]), "an expired lease's login was not dropped"

# Statements that fail leave no login and no lease.
with psycopg.connect(db_url) as c:
    before = c.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%%-broken-%%'").fetchone()[0]
try:
    admin.secrets.database.generate_credentials(name="broken")
    raise AssertionError("a failing role issued creds")
except exceptions.InternalServerError as e:
    assert "SQLSTATE 42P01" in str(e), e
with psycopg.connect(db_url) as c:
    assert c.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%%-broken-%%'").fetchone()[0] == before

# allowed_roles: a role the connection does not allow issues nothing.
try:
    admin.secrets.database.generate_credentials(name="elsewhere")
    raise AssertionError("a role outside allowed_roles issued creds")
except exceptions.InvalidRequest:
    pass

# Authorisation: database/creds/app:read gets app logins and nothing else; it can not
# configure, list or revoke others' leases.
scoped = hvac.Client(url=base, token=admin.auth.token.create(policies=["database/creds/app:read"], ttl="1h")["auth"]["client_token"])
mine = scoped.secrets.database.generate_credentials(name="app")
scoped.sys.read_lease(lease_id=mine["lease_id"])
for attempt in [
    lambda: scoped.secrets.database.generate_credentials(name="owner"),
    lambda: scoped.secrets.database.create_role(name="x", db_name="app-db", creation_statements=create),
    lambda: scoped.secrets.database.read_connection(name="app-db"),
    lambda: scoped.sys.list_leases(prefix="database/creds/app/"),
]:
    try:
        attempt()
        raise AssertionError("a scoped token went beyond database/creds/app")
    except exceptions.Forbidden:
        pass
other = admin.secrets.database.generate_credentials(name="app")
try:
    scoped.sys.revoke_lease(lease_id=other["lease_id"])
    raise AssertionError("a token revoked a lease it did not make")
except exceptions.InvalidRequest:
    pass
scoped.sys.revoke_lease(lease_id=mine["lease_id"])
assert not role_exists(mine["data"]["username"])

# A lease never outlives its token, and ends when the token is revoked.
brief = hvac.Client(url=base, token=admin.auth.token.create(policies=["database/creds/app:read"], ttl="3s", explicit_max_ttl="3s")["auth"]["client_token"])
capped = brief.secrets.database.generate_credentials(name="app")
assert capped["lease_duration"] <= 3, capped
made_by = admin.auth.token.create(policies=["database/creds/app:read"], ttl="1h")["auth"]
orphaned = hvac.Client(url=base, token=made_by["client_token"]).secrets.database.generate_credentials(name="app")
admin.auth.token.revoke_accessor(made_by["accessor"])
deadline = time.time() + 40
while (role_exists(orphaned["data"]["username"]) or role_exists(capped["data"]["username"])) and time.time() < deadline:
    time.sleep(0.5)
assert not role_exists(orphaned["data"]["username"]), "a revoked token's lease kept its login"
assert not role_exists(capped["data"]["username"]), "a lease outlived its token"

# The database unreachable at revocation: the lease stays, is retried (visible in
# /metrics), and its login is dropped once the database is back.
admin.secrets.database.configure(
    name="flaky-db", plugin_name="postgresql-database-plugin",
    connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@{host_port}/{db}",
    username="postgres", password="x", allowed_roles=["flaky"],
)
admin.secrets.database.create_role(name="flaky", db_name="flaky-db", creation_statements=create, default_ttl="1h")
stuck = admin.secrets.database.generate_credentials(name="flaky")
admin.secrets.database.configure(
    name="flaky-db", plugin_name="postgresql-database-plugin",
    connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:1/{db}",
    username="postgres", password="x", allowed_roles=["flaky"], verify_connection=False,
)
admin.sys.revoke_lease(lease_id=stuck["lease_id"])
assert role_exists(stuck["data"]["username"])


def failing_leases():
    text = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {admin_token}"}).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "strongroom_leases" and sample.labels.get("state") == "failing":
                return sample.value
    return 0


deadline = time.time() + 20
while failing_leases() < 1 and time.time() < deadline:
    time.sleep(0.3)
assert failing_leases() == 1, "a lease whose revocation failed is not shown as failing"
admin.secrets.database.configure(
    name="flaky-db", plugin_name="postgresql-database-plugin",
    connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@{host_port}/{db}",
    username="postgres", password="x", allowed_roles=["flaky"],
)
deadline = time.time() + 40
while role_exists(stuck["data"]["username"]) and time.time() < deadline:
    time.sleep(0.5)
assert not role_exists(stuck["data"]["username"]), "a lease was forgotten while its database was down"
assert failing_leases() == 0

# Logins made at once for a role that grants on one table: PostgreSQL's concurrent GRANTs
# race ("tuple concurrently updated"); each creation is retried, every request succeeds.
import threading
results = []


def concurrent():
    try:
        results.append(admin.secrets.database.generate_credentials(name="app")["data"]["username"])
    except Exception as e:  # noqa: BLE001 - reported below
        results.append(e)


threads = [threading.Thread(target=concurrent) for _ in range(12)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert all(isinstance(r, str) for r in results), results
assert all(role_exists(r) for r in results)

# revoke-prefix is a path: database/creds/ap matches nothing of app.
admin.sys.revoke_prefix(prefix="database/creds/ap")
assert role_exists(other["data"]["username"])
admin.sys.revoke_prefix(prefix="database/creds/app")
assert not role_exists(other["data"]["username"])
assert not any(role_exists(r) for r in results)

# A PostgreSQL server not on UTC: VALID UNTIL is still the lease's end (the expiration
# carries its offset), on create and on renew.
with psycopg.connect(db_url, autocommit=True) as c:
    c.execute(f"ALTER DATABASE {db} SET timezone = 'America/New_York'")
    c.execute("ALTER ROLE postgres SET timezone = 'Asia/Kolkata'")
try:
    away = admin.secrets.database.generate_credentials(name="app")
    looked = admin.sys.read_lease(lease_id=away["lease_id"])["data"]
    assert abs(valid_until(away["data"]["username"]) - (time.time() + looked["ttl"])) < 5, "VALID UNTIL off UTC"
    renewed = admin.sys.renew_lease(lease_id=away["lease_id"], increment=1800)
    assert abs(valid_until(away["data"]["username"]) - (time.time() + renewed["lease_duration"])) < 5
    admin.sys.revoke_lease(lease_id=away["lease_id"])
finally:
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute(f"ALTER DATABASE {db} RESET timezone")
        c.execute("ALTER ROLE postgres RESET timezone")

# rotate-root: the connection's own login gets a password only Strongroom knows.
with psycopg.connect(db_url, autocommit=True) as c:
    c.execute(f"CREATE ROLE {db}_root LOGIN CREATEROLE PASSWORD 'initial-root-password' IN ROLE strongroom_password_login")
    c.execute(f"GRANT SELECT ON orders TO {db}_root WITH GRANT OPTION")
admin.secrets.database.configure(
    name="rooted", plugin_name="postgresql-database-plugin",
    connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@{host_port}/{db}",
    username=f"{db}_root", password="initial-root-password", allowed_roles=["rooted"],
)
admin.secrets.database.create_role(name="rooted", db_name="rooted", creation_statements=create, default_ttl="1h")
admin.secrets.database.rotate_root_credentials(name="rooted")
try:
    connect_as(f"{db}_root", "initial-root-password").close()
    raise AssertionError("the old root password still works after rotate-root")
except psycopg.OperationalError:
    pass
rooted = admin.secrets.database.generate_credentials(name="rooted")
with connect_as(rooted["data"]["username"], rooted["data"]["password"]) as c:
    c.execute("SELECT count(*) FROM orders")
admin.sys.revoke_lease(lease_id=rooted["lease_id"])
assert not role_exists(rooted["data"]["username"])
assert "initial-root-password" not in str(admin.secrets.database.read_connection(name="rooted"))

# revoke-force: a lease whose database is gone for good is forgotten (audited), its login
# dropped if the database answers.
forced = admin.secrets.database.generate_credentials(name="app")
admin.adapter.put("/v1/sys/leases/revoke-force/database/creds/app")
assert not role_exists(forced["data"]["username"])
try:
    admin.sys.read_lease(lease_id=forced["lease_id"])
    raise AssertionError("a forced lease is still found")
except exceptions.InvalidRequest:
    pass

# Static roles: an existing login whose password Strongroom rotates at once, on demand and
# on a period; readers get the current password, which works.
with psycopg.connect(db_url, autocommit=True) as c:
    for svc in ["svc", "tick"]:
        c.execute(f"CREATE ROLE {db}_{svc} LOGIN PASSWORD 'initial-{svc}' IN ROLE strongroom_password_login")
admin.secrets.database.configure(name="app-db", plugin_name="postgresql-database-plugin", allowed_roles=["app", "short", "broken", "owner", "svc", "tick"])
rotate = ["ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'"]
admin.secrets.database.create_static_role(name="svc", db_name="app-db", username=f"{db}_svc", rotation_statements=rotate, rotation_period=3600)
first = admin.secrets.database.get_static_credentials(name="svc")["data"]
assert first["username"] == f"{db}_svc" and 3590 <= first["ttl"] <= 3600 and first["last_vault_rotation"], first
connect_as(first["username"], first["password"]).close()
try:
    connect_as(f"{db}_svc", "initial-svc").close()
    raise AssertionError("the imported password still works: it was not rotated")
except psycopg.OperationalError:
    pass
admin.secrets.database.rotate_static_role_credentials(name="svc")
second = admin.secrets.database.get_static_credentials(name="svc")["data"]
assert second["password"] != first["password"]
connect_as(second["username"], second["password"]).close()
try:
    connect_as(first["username"], first["password"]).close()
    raise AssertionError("the password before a rotation still works")
except psycopg.OperationalError:
    pass
# On a period, with nobody asking.
admin.secrets.database.create_static_role(name="tick", db_name="app-db", username=f"{db}_tick", rotation_statements=rotate, rotation_period=5)
was = admin.secrets.database.get_static_credentials(name="tick")["data"]["password"]
deadline = time.time() + 30
now = was
while now == was and time.time() < deadline:
    time.sleep(0.5)
    now = admin.secrets.database.get_static_credentials(name="tick")["data"]["password"]
assert now != was, "a static role was not rotated on its period"
connect_as(f"{db}_tick", now).close()
# Read by a token with database/static-creds/svc:read only.
reader = hvac.Client(url=base, token=admin.auth.token.create(policies=["database/static-creds/svc:read"], ttl="1h")["auth"]["client_token"])
assert reader.secrets.database.get_static_credentials(name="svc")["data"]["password"] == second["password"]
try:
    reader.secrets.database.get_static_credentials(name="tick")
    raise AssertionError("a token read another static role")
except exceptions.Forbidden:
    pass
admin.secrets.database.delete_static_role(name="tick")

# Deleting the role and the connection strands nothing: the lease keeps what its
# revocation needs.
admin.secrets.database.configure(
    name="doomed-db", plugin_name="postgresql-database-plugin",
    connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@{host_port}/{db}",
    username="postgres", password="x", allowed_roles=["doomed"],
)
admin.secrets.database.create_role(name="doomed", db_name="doomed-db", creation_statements=create, default_ttl="1h")
stranded = admin.secrets.database.generate_credentials(name="doomed")
admin.secrets.database.delete_role(name="doomed")
admin.secrets.database.delete_connection(name="doomed-db")
admin.sys.revoke_lease(lease_id=stranded["lease_id"])
assert not role_exists(stranded["data"]["username"]), "a deleted connection stranded a login"

# Hostile names are refused before anything is stored.
for bad in ['a"b', "a'b", "a b", "x" * 65]:
    try:
        admin.secrets.database.create_role(name=bad, db_name="app-db", creation_statements=create)
        raise AssertionError(f"a role named {bad!r} was accepted")
    except (exceptions.InvalidRequest, exceptions.InvalidPath):
        pass
print("database: every check passed")
