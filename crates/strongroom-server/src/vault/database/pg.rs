//! The PostgreSQL side of dynamic credentials: connecting with a connection's
//! configuration, rendering statements, making and dropping logins.
//!
//! Names and passwords are generated from alphabets that can not end a quoted identifier
//! or a string literal (`[a-z0-9-]`, `[A-Za-z0-9]`), so an operator's statement template
//! is the only SQL that runs; errors report PostgreSQL's SQLSTATE, never a statement (it
//! may hold a password).

use serde_json::Value;
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretString};

/// The longest PostgreSQL identifier (NAMEDATALEN - 1).
const MAX_NAME: usize = 63;

/// Why talking to the database failed: what a client and the lease's record may see.
#[derive(Debug, Clone)]
pub(super) struct DbFailure(pub(super) String);

impl DbFailure {
    fn of(error: &tokio_postgres::Error) -> Self {
        match error.code() {
            Some(code) => Self(format!("SQLSTATE {}", code.code())),
            None => Self("the database could not be reached".into()),
        }
    }
}

/// A connection's settings, as stored (sealed) and as a lease keeps them.
#[derive(Clone)]
pub(super) struct Connection {
    /// `postgresql://{{username}}:{{password}}@host:port/db?sslmode=...`.
    pub(super) url_template: String,
    /// The login Strongroom uses.
    pub(super) username: String,
    /// Its password (never returned).
    pub(super) password: SecretString,
    /// How many connections are kept open between requests (`max_open_connections`).
    pub(super) max_idle: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The connection of a stored configuration (`connection_url`, `username`, `password`).
    pub(super) fn from_value(value: &Value) -> Option<Self> {
        Some(Self {
            url_template: value.get("connection_url")?.as_str()?.to_owned(),
            username: value
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            password: SecretString::from(
                value
                    .get("password")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            max_idle: value
                .get("max_open_connections")
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(4)
                .min(64),
        })
    }

    /// The fields a lease's sealed record keeps (the password included: it is sealed).
    pub(super) fn to_value(&self) -> Value {
        serde_json::json!({
            "connection_url": self.url_template,
            "username": self.username,
            "password": self.password.expose_secret(),
            "max_open_connections": self.max_idle,
        })
    }

    /// The URL with the username and password in place (percent-encoded, so no character
    /// of either can change the URL's shape). A `postgres://` URL with one host or several
    /// (`host1:5432,host2:5432`, with `target_session_attrs=read-write` to follow a
    /// failover), as libpq takes it.
    fn url(&self) -> Result<String, DbFailure> {
        use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
        /// Everything but RFC 3986's unreserved characters.
        const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let invalid = || {
            DbFailure(
                "connection_url is not a PostgreSQL URL (postgres://…, one host or several)".into(),
            )
        };
        let template = &self.url_template;
        if !(template.starts_with("postgres://") || template.starts_with("postgresql://")) {
            return Err(invalid());
        }
        let url = template
            .replace(
                "{{username}}",
                &utf8_percent_encode(&self.username, USERINFO).to_string(),
            )
            .replace(
                "{{password}}",
                &utf8_percent_encode(self.password.expose_secret(), USERINFO).to_string(),
            );
        url.parse::<tokio_postgres::Config>()
            .map_err(|_| invalid())?;
        Ok(url)
    }

    /// A client of the pool for this connection, or a new one (see `pool.rs`).
    pub(super) async fn client(&self) -> Result<super::pool::Pooled, DbFailure> {
        let key = super::pool::key(&self.url()?);
        let client = match super::pool::take(&key) {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(super::pool::Pooled::new(client, key, self.max_idle))
    }

    /// A new client connected as the connection's login (verifying a connection or a
    /// password: never one from the pool).
    pub(super) async fn connect(&self) -> Result<tokio_postgres::Client, DbFailure> {
        let url = self.url()?;
        let connecting =
            strongroom_store::backend::postgres::connect_client(&url, None, "connection_url");
        match tokio::time::timeout(std::time::Duration::from_secs(10), connecting).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(_)) | Err(_) => Err(DbFailure("the database could not be reached".into())),
        }
    }
}

/// Statements as Vault takes them: a list, one `;`-separated string, a JSON-array string,
/// or base64 of either. A statement holding a dollar-quoted block (`$$ … $$`: PL/pgSQL)
/// is never split.
pub(super) fn statements(value: Option<&Value>) -> Vec<String> {
    use base64::Engine as _;
    let texts: Vec<String> = match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(text)) => vec![text.clone()],
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for text in texts {
        let text = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or(text);
        if let Ok(list) = serde_json::from_str::<Vec<String>>(&text) {
            out.extend(list);
        } else if text.contains("$$") {
            out.push(text);
        } else {
            out.extend(
                text.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// A statement with `{{name}}` (`{{username}}`), `{{password}}` and `{{expiration}}` in
/// place.
fn render(statement: &str, name: &str, password: &str, expiration: &str) -> String {
    statement
        .replace("{{name}}", name)
        .replace("{{username}}", name)
        .replace("{{password}}", password)
        .replace("{{expiration}}", expiration)
}

/// An expiry as PostgreSQL reads it, with an explicit UTC offset (`VALID UNTIL` is
/// then right whatever the server's time zone).
pub(super) fn expiration(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0)),
    )
    .to_string()
    .replace('T', " ")
    .replace('Z', "+00:00")
}

/// Random text of `len` characters from `alphabet` (the OS CSPRNG; rejection sampling,
/// so every character is equally likely).
fn random_text(alphabet: &[u8], len: usize) -> Result<String, DbFailure> {
    let mut out = String::with_capacity(len);
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        let mut bytes = [0u8; 64];
        getrandom::getrandom(&mut bytes).map_err(|_| DbFailure("no randomness".into()))?;
        for b in bytes {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

/// A password: 32 characters of `A-Za-z0-9` (about 190 bits) with at least one of each
/// class (policies that demand them are met).
pub(super) fn new_password() -> Result<SecretString, DbFailure> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    loop {
        let candidate = random_text(ALPHABET, 32)?;
        if candidate.bytes().any(|b| b.is_ascii_uppercase())
            && candidate.bytes().any(|b| b.is_ascii_lowercase())
            && candidate.bytes().any(|b| b.is_ascii_digit())
        {
            return Ok(SecretString::from(candidate));
        }
    }
}

/// A login's name, unique and traceable: `v-{token}-{role}-{random}-{unix time}`, each
/// part cut and made of `[a-z0-9_]`, the whole at most 63 bytes.
pub(super) fn new_name(token: &str, role: &str, unix_secs: i64) -> Result<String, DbFailure> {
    let clean = |text: &str, max: usize| -> String {
        text.chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(max)
            .collect()
    };
    let random = random_text(b"abcdefghijklmnopqrstuvwxyz0123456789", 20)?;
    let mut name = format!(
        "v-{}-{}-{random}-{unix_secs}",
        clean(token, 8),
        clean(role, 8)
    );
    name.truncate(MAX_NAME);
    Ok(name)
}

/// A quoted identifier (our names never hold `"`, but a quote is doubled regardless).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether a failed transaction may simply be run again: a serialization failure, a
/// deadlock, or PostgreSQL's "tuple concurrently updated" (concurrent `GRANT`s on one
/// object: two logins made at once for a role that grants on a table).
fn retryable(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        matches!(code.code(), "40001" | "40P01" | "XX000")
            && error
                .as_db_error()
                .is_some_and(|db| code.code() != "XX000" || db.message().contains("concurrently"))
    })
}

/// Runs a role's creation statements in one transaction: the login exists after it, or
/// nothing was made. A transaction that lost a race with another (see [`retryable`]) is
/// run again, up to five times.
pub(super) async fn create_login(
    connection: &Connection,
    statements: &[String],
    name: &str,
    password: &SecretString,
    expires_ms: i64,
) -> Result<(), DbFailure> {
    let mut client = connection.client().await?;
    let expiry = expiration(expires_ms);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome = async {
            let tx = client.transaction().await?;
            for statement in statements {
                tx.batch_execute(&render(statement, name, password.expose_secret(), &expiry))
                    .await?;
            }
            tx.commit().await
        }
        .await;
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 && retryable(&e) => {
                let mut jitter = [0u8; 1];
                let _ = getrandom::getrandom(&mut jitter);
                let wait = 5 * u64::from(attempt) + u64::from(jitter[0] % 20);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            Err(e) => return Err(DbFailure::of(&e)),
        }
    }
}

/// Moves a login's `VALID UNTIL` to a renewed expiry (the role's renew statements, else
/// `ALTER ROLE … VALID UNTIL`).
pub(super) async fn renew_login(
    connection: &Connection,
    statements: &[String],
    name: &str,
    expires_ms: i64,
) -> Result<(), DbFailure> {
    let client = connection.client().await?;
    let expiry = expiration(expires_ms);
    let defaults = [format!(
        "ALTER ROLE {} VALID UNTIL '{expiry}'",
        quoted(name)
    )];
    let statements: &[String] = if statements.is_empty() {
        &defaults
    } else {
        statements
    };
    for statement in statements {
        client
            .batch_execute(&render(statement, name, "", &expiry))
            .await
            .map_err(|e| DbFailure::of(&e))?;
    }
    Ok(())
}

/// Sets a new password for the connection's own login (`root_rotation_statements` with
/// `{{username}}`/`{{password}}`, else `ALTER ROLE … WITH PASSWORD`).
pub(super) async fn rotate_password(
    connection: &Connection,
    statements: &[String],
    password: &SecretString,
) -> Result<(), DbFailure> {
    set_password(connection, statements, &connection.username, password).await
}

/// Sets a new password for the login `name` through `connection` (`statements` with
/// `{{name}}`/`{{username}}` and `{{password}}`, else `ALTER ROLE … WITH PASSWORD`).
pub(super) async fn set_password(
    connection: &Connection,
    statements: &[String],
    name: &str,
    password: &SecretString,
) -> Result<(), DbFailure> {
    let client = connection.client().await?;
    let defaults = [format!(
        "ALTER ROLE {} WITH PASSWORD '{}'",
        quoted(name),
        password.expose_secret()
    )];
    let statements: &[String] = if statements.is_empty() {
        &defaults
    } else {
        statements
    };
    for statement in statements {
        client
            .batch_execute(&render(statement, name, password.expose_secret(), ""))
            .await
            .map_err(|e| DbFailure::of(&e))?;
    }
    Ok(())
}

/// Drops a login: the role's revocation statements, else its sessions ended, what it owns
/// reassigned and dropped, the role dropped. A login that is already gone counts as
/// dropped.
pub(super) async fn drop_login(
    connection: &Connection,
    statements: &[String],
    name: &str,
) -> Result<(), DbFailure> {
    let client = connection.client().await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .map_err(|e| DbFailure::of(&e))?
        .is_some();
    if !exists {
        return Ok(());
    }
    // A connection login with CREATEROLE (not a superuser) may end the login's sessions
    // and take over what it owns only as a member of it: become one (harmless when it
    // already is, or is a superuser).
    let _ = client
        .batch_execute(&format!("GRANT {} TO CURRENT_USER", quoted(name)))
        .await;
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&name],
        )
        .await
        .map_err(|e| DbFailure::of(&e))?;
    let defaults = [
        format!("REASSIGN OWNED BY {} TO CURRENT_USER", quoted(name)),
        format!("DROP OWNED BY {}", quoted(name)),
        format!("DROP ROLE IF EXISTS {}", quoted(name)),
    ];
    let statements: &[String] = if statements.is_empty() {
        &defaults
    } else {
        statements
    };
    for statement in statements {
        client
            .batch_execute(&render(statement, name, "", ""))
            .await
            .map_err(|e| DbFailure::of(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn connection(template: &str, username: &str, password: &str) -> Connection {
        Connection {
            url_template: template.into(),
            username: username.into(),
            password: SecretString::from(password.to_owned()),
            max_idle: 1,
        }
    }

    /// Attack: a username or password holding URL syntax (`@`, `:`, `/`, `?`, `#`, `,`,
    /// `%`) must not move the connection to another host, port, database or option; it
    /// arrives as written. Several hosts (failover) are kept; other spellings refused.
    #[test]
    fn credentials_can_not_change_the_urls_shape_and_several_hosts_are_kept() {
        let hostile = "p@evil.example:1/x?host=evil#,%41";
        let made = connection(
            "postgresql://{{username}}:{{password}}@127.0.0.1:5432/app?sslmode=disable",
            "u@evil.example",
            hostile,
        )
        .url()
        .unwrap();
        let config: tokio_postgres::Config = made.parse().unwrap();
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Tcp("127.0.0.1".into())]
        );
        assert_eq!(config.get_ports(), [5432]);
        assert_eq!(config.get_dbname(), Some("app"));
        assert_eq!(config.get_user(), Some("u@evil.example"));
        assert_eq!(config.get_password(), Some(hostile.as_bytes()));
        let several = connection(
            "postgres://{{username}}:{{password}}@10.0.0.1:5432,10.0.0.2:5433/app?target_session_attrs=read-write",
            "app",
            "pw",
        )
        .url()
        .unwrap();
        let config: tokio_postgres::Config = several.parse().unwrap();
        assert_eq!(config.get_hosts().len(), 2);
        assert_eq!(config.get_ports(), [5432, 5433]);
        for refused in [
            "host=db user={{username}}",
            "mysql://{{username}}@db/x",
            "postgres://[oops",
        ] {
            let failure = connection(refused, "u", "p").url().unwrap_err();
            assert!(
                !failure.0.contains('{'),
                "the template is not echoed: {}",
                failure.0
            );
        }
    }

    #[test]
    fn statements_take_vaults_spellings_and_keep_plpgsql_whole() {
        let list = serde_json::json!(["CREATE ROLE \"{{name}}\"", "GRANT x TO \"{{name}}\""]);
        assert_eq!(statements(Some(&list)).len(), 2);
        let joined = serde_json::json!("CREATE ROLE a; GRANT x TO a;");
        assert_eq!(statements(Some(&joined)), ["CREATE ROLE a", "GRANT x TO a"]);
        let json_text = serde_json::json!(r#"["A; B", "C"]"#);
        assert_eq!(statements(Some(&json_text)), ["A; B", "C"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("X; Y");
        assert_eq!(statements(Some(&serde_json::json!(b64))), ["X", "Y"]);
        let block = "DO $$ BEGIN CREATE ROLE a; GRANT x TO a; END $$;";
        assert_eq!(statements(Some(&serde_json::json!(block))), [block]);
    }

    #[test]
    fn names_and_passwords_can_not_break_out_of_quotes() {
        let name = new_name("Robert'); DROP", "app\"role", 1_800_000_000).unwrap();
        assert!(name.len() <= MAX_NAME, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            "{name}"
        );
        let long = new_name(&"x".repeat(100), &"y".repeat(100), 1_800_000_000).unwrap();
        assert!(long.len() <= MAX_NAME);
        let password = new_password().unwrap();
        assert_eq!(password.expose_secret().len(), 32);
        assert!(password
            .expose_secret()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn expirations_carry_an_explicit_utc_offset() {
        assert_eq!(expiration(1_800_000_000_000), "2027-01-15 08:00:00+00:00");
    }
}
