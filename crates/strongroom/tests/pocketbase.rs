//! Coming from (and going back to) PocketBase: a PocketBase-shaped `_secrets` table whose
//! values are sealed by an independent AES-GCM implementation (Python's `cryptography`),
//! imported by the CLI; then exported and opened by Python again.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report; the flow reads top to bottom

mod support;

use std::io::Write as _;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use strongroom_crypto::secrecy::ExposeSecret as _;

const PB_KEY: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const MASTER: &str = "5555555555555555555555555555555555555555555555555555555555555555";

fn python(program: &str, args: &[&str]) -> Option<String> {
    if std::env::var_os("STRONGROOM_SKIP_PYTHON_INTEROP").is_some() {
        return None;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("python3 is needed");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// A PocketBase `data.db` with `_secrets` rows sealed by Python.
fn fixture(path: &Path) -> Option<()> {
    let program = r#"
import base64, os, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
path, key, other = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
def seal(k, text):
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(k).encrypt(nonce, text.encode(), None)).decode()
db = sqlite3.connect(path)
db.execute("CREATE TABLE _secrets (id TEXT PRIMARY KEY NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, env TEXT DEFAULT '' NOT NULL, description TEXT DEFAULT '' NOT NULL, created TEXT DEFAULT '' NOT NULL, updated TEXT DEFAULT '' NOT NULL)")
rows = [
    ("pb1", "OPENAI_API_KEY", seal(key, "sk-pb-openai"), "", "OpenAI key"),
    ("pb2", "DATABASE_URL", seal(key, "postgres://pb-prod"), "prod", ""),
    ("pb3", "DATABASE_URL", seal(key, "postgres://pb-global"), "global", "main db"),
    ("pb4", "STRIPE_KEY", seal(other, "sk-wrong-key-value"), "prod", ""),
    ("pb5", "bad key!", seal(key, "sk-bad-name-value"), "", ""),
]
for i, (rid, k, v, env, desc) in enumerate(rows):
    db.execute("INSERT INTO _secrets VALUES (?, ?, ?, ?, ?, ?, ?)", (rid, k, v, env, desc, f"2025-01-0{i+1} 10:00:00.000Z", f"2025-01-0{i+1} 10:00:00.000Z"))
db.commit()
"#;
    python(program, &[path.to_str().unwrap(), PB_KEY, OTHER_KEY]).map(drop)
}

fn strongroom(dir: &Path, args: &[&str]) -> Output {
    strongroom_with(dir, args, &[])
}

fn strongroom_with(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
    for (name, _) in
        std::env::vars().filter(|(n, _)| n.starts_with("STRONGROOM_") || n == "PB_MASTER_KEY")
    {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .current_dir(dir)
        .env("STRONGROOM_MASTER_KEY", MASTER)
        .env("PB_MASTER_KEY", PB_KEY)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"").unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn import_from_pocketbase_then_export_back() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("data.db");
    if fixture(&pb).is_none() {
        return;
    }
    let source = format!("sqlite://{}", pb.display());

    // Dry run: the plan, nothing written.
    let out = strongroom(
        dir.path(),
        &["import", "--from", "pocketbase", &source, "--dry-run"],
    );
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("would create OPENAI_API_KEY")
            && stdout.contains("dry run, nothing written"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 created, 0 overwritten, 0 skipped") && stdout.contains("2 failed"),
        "{stdout}"
    );
    assert!(
        stderr.contains("failed STRIPE_KEY (env prod)") && stderr.contains("failed bad key!"),
        "{stderr}"
    );
    assert_eq!(
        text(&strongroom(dir.path(), &["list", "--json"])).0.trim(),
        "[]"
    );

    // Import: the good rows land; the failures are named by key and env, never by value.
    let out = strongroom(dir.path(), &["import", "--from", "pocketbase", &source]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(8), "{stdout}{stderr}");
    assert!(stdout.contains("imported: 3 created"), "{stdout}");
    assert!(
        !stderr.contains("sk-wrong-key-value")
            && !stderr.contains("sk-bad-name-value")
            && !stdout.contains("sk-")
    );
    assert_eq!(
        strongroom(dir.path(), &["get", "OPENAI_API_KEY"]).stdout,
        b"sk-pb-openai"
    );
    assert_eq!(
        strongroom(dir.path(), &["get", "DATABASE_URL", "--env", "prod"]).stdout,
        b"postgres://pb-prod"
    );
    assert_eq!(
        strongroom(dir.path(), &["get", "DATABASE_URL", "--env", "staging"]).stdout,
        b"postgres://pb-global"
    );
    let listed = text(&strongroom(dir.path(), &["list", "--json"])).0;
    assert!(listed.contains("OpenAI key") && listed.contains("main db"));

    // Again: existing keys are skipped, unless --overwrite.
    let (stdout, _) = text(&strongroom(
        dir.path(),
        &["import", "--from", "pocketbase", &source],
    ));
    assert!(
        stdout.contains("0 created, 0 overwritten, 3 skipped"),
        "{stdout}"
    );
    let (stdout, _) = text(&strongroom(
        dir.path(),
        &["import", "--from", "pocketbase", &source, "--overwrite"],
    ));
    assert!(
        stdout.contains("0 created, 3 overwritten, 0 skipped"),
        "{stdout}"
    );

    // A wrong PB_MASTER_KEY format is a configuration error that does not echo it.
    let bad = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["import", "--from", "pocketbase", &source])
        .current_dir(dir.path())
        .env("STRONGROOM_MASTER_KEY", MASTER)
        .env("PB_MASTER_KEY", "not-a-pocketbase-key")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&bad.stderr).contains("not-a-pocketbase-key"));

    // Back to PocketBase: rows Python opens with the same key, straight into a data.db…
    let back = dir.path().join("back.db");
    let out = strongroom(
        dir.path(),
        &[
            "export",
            "--format",
            "pocketbase",
            "--database",
            &format!("sqlite://{}", back.display()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&back).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "a database the export creates is its owner's alone"
        );
    }
    let reader = r#"
import base64, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex(sys.argv[2])
for k, env, v, desc in sqlite3.connect(sys.argv[1]).execute("SELECT key, env, value, description FROM _secrets ORDER BY env, key"):
    raw = base64.b64decode(v, validate=True)
    print(env, k, AESGCM(key).decrypt(raw[:12], raw[12:], None).decode(), desc, sep="|")
"#;
    let opened = python(reader, &[back.to_str().unwrap(), PB_KEY]).unwrap();
    assert_eq!(
        opened,
        "global|DATABASE_URL|postgres://pb-global|main db\nglobal|OPENAI_API_KEY|sk-pb-openai|OpenAI key\nprod|DATABASE_URL|postgres://pb-prod|\n"
    );
    // …or as an SQL script.
    let script = dir.path().join("export.sql");
    assert!(strongroom(
        dir.path(),
        &[
            "export",
            "--format",
            "pocketbase",
            "--out",
            script.to_str().unwrap(),
            "--env",
            "prod"
        ]
    )
    .status
    .success());
    let loaded = dir.path().join("loaded.db");
    let apply = "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1]); db.executescript(open(sys.argv[2]).read()); db.commit()";
    python(apply, &[loaded.to_str().unwrap(), script.to_str().unwrap()]).unwrap();
    let opened = python(reader, &[loaded.to_str().unwrap(), PB_KEY]).unwrap();
    assert_eq!(opened, "prod|DATABASE_URL|postgres://pb-prod|\n");

    // Into the PocketBase database the rows came from: updated in place, ids kept, no
    // duplicate rows (the empty env of pb1 stays empty).
    let out = strongroom(
        dir.path(),
        &["export", "--format", "pocketbase", "--database", &source],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let ids = python(
        "import sqlite3, sys\nfor row in sqlite3.connect(sys.argv[1]).execute('SELECT id, env, key FROM _secrets ORDER BY id'): print(*row, sep='|')",
        &[pb.to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(
        ids,
        "pb1||OPENAI_API_KEY\npb2|prod|DATABASE_URL\npb3|global|DATABASE_URL\npb4|prod|STRIPE_KEY\npb5||bad key!\n"
    );
}

/// The same import from a PocketBase `_secrets` table in PostgreSQL (the fixture's rows,
/// sealed by Python, copied into a fresh database on the test server).
#[test]
fn import_from_a_pocketbase_postgres_database() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("data.db");
    if fixture(&pb).is_none() {
        return;
    }
    let Some(url) = support::fresh_postgres_database() else {
        return;
    };
    let rows: Vec<[String; 7]> = {
        let db = rusqlite::Connection::open(&pb).unwrap();
        let mut stmt = db
            .prepare("SELECT id, key, value, env, description, created, updated FROM _secrets")
            .unwrap();
        stmt.query_map([], |r| {
            Ok([
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ])
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(
                    "CREATE TABLE _secrets (id TEXT PRIMARY KEY, key TEXT NOT NULL, value TEXT NOT NULL,
                     env TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
                     created TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL DEFAULT '')",
                )
                .await
                .unwrap();
            for row in &rows {
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    row.iter().map(|v| v as _).collect();
                client
                    .execute("INSERT INTO _secrets VALUES ($1, $2, $3, $4, $5, $6, $7)", &params)
                    .await
                    .unwrap();
            }
        });

    // A password on the command line (visible in `ps`) is refused before connecting.
    let with_password = url.replacen("postgres@", "postgres:hunter2@", 1);
    let out = strongroom(
        dir.path(),
        &["import", "--from", "pocketbase", &with_password],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(8), "{stdout}{stderr}");
    assert!(
        stderr.contains("env:VARIABLE") && !stderr.contains("hunter2"),
        "{stderr}"
    );
    // A URL file others can read is refused.
    let url_file = dir.path().join("pb-url");
    std::fs::write(&url_file, &url).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let source = format!("file:{}", url_file.display());
        let out = strongroom(
            dir.path(),
            &["import", "--from", "pocketbase", "--dry-run", &source],
        );
        assert_eq!(out.status.code(), Some(8));
        assert!(text(&out).1.contains("0600"));
    }
    // The URL from a variable, over the main backend's verified TLS transport.
    let ca = std::env::var("STRONGROOM_TEST_POSTGRES_CA")
        .expect("STRONGROOM_TEST_POSTGRES_CA: the server `cargo xtask ci` starts provides it");
    let tls_url = format!(
        "{url}{}sslmode=require",
        if url.contains('?') { '&' } else { '?' }
    );
    let out = strongroom_with(
        dir.path(),
        &["import", "--from", "pocketbase", "env:PB_DATABASE_URL"],
        &[
            ("PB_DATABASE_URL", &tls_url),
            ("STRONGROOM_PG_CA_FILE", &ca),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(8), "{stdout}{stderr}");
    assert!(stdout.contains("imported: 3 created"), "{stdout}");
    assert!(
        stderr.contains("failed STRIPE_KEY (env prod)") && !stderr.contains("sk-wrong-key-value"),
        "{stderr}"
    );
    for (args, expected) in [
        (&["get", "OPENAI_API_KEY"][..], &b"sk-pb-openai"[..]),
        (
            &["get", "DATABASE_URL", "--env", "prod"][..],
            &b"postgres://pb-prod"[..],
        ),
        (&["get", "DATABASE_URL"][..], &b"postgres://pb-global"[..]),
    ] {
        assert_eq!(strongroom(dir.path(), args).stdout, expected, "{args:?}");
    }
    export_back_to_postgres(dir.path(), &url);
}

/// `(id, env, key, value opened with PB_MASTER_KEY)` of every `_secrets` row, by id.
fn postgres_pb_rows(url: &str) -> Vec<(String, String, String, String)> {
    let key = strongroom_crypto::Key::parse(PB_KEY).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .query("SELECT id, env, key, value FROM _secrets ORDER BY id", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    let value: String = r.get(3);
                    let opened = strongroom_crypto::simple::open(&key, &value).map_or_else(
                        |_| "(sealed under another key)".into(),
                        |v| String::from_utf8(v.expose_secret().to_vec()).unwrap(),
                    );
                    (r.get(0), r.get(1), r.get(2), opened)
                })
                .collect()
        })
}

/// Export back into the same PostgreSQL table: PocketBase's row ids are kept (rows are
/// updated in place by `(key, env)`), a new secret is inserted; the SQL script, loaded
/// into PostgreSQL, does the same. A password in the URL is refused.
fn export_back_to_postgres(dir: &Path, url: &str) {
    let value = dir.join("value");
    std::fs::write(&value, "postgres://changed-in-strongroom").unwrap();
    let value = value.to_str().unwrap();
    let set = |args: &[&str]| {
        let mut all = vec!["set"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--value-file", value]);
        assert!(strongroom(dir, &all).status.success());
    };
    set(&["DATABASE_URL", "--env", "prod"]);
    set(&["NEW_ONLY_IN_STRONGROOM"]);
    let with_password = url.replacen("postgres@", "postgres:hunter2@", 1);
    let refused = strongroom(
        dir,
        &[
            "export",
            "--format",
            "pocketbase",
            "--database",
            &with_password,
        ],
    );
    assert_eq!(refused.status.code(), Some(8));
    assert!(!text(&refused).1.contains("hunter2"));
    let out = strongroom_with(
        dir,
        &[
            "export",
            "--format",
            "pocketbase",
            "--database",
            "env:PB_DATABASE_URL",
        ],
        &[("PB_DATABASE_URL", url)],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let rows = postgres_pb_rows(url);
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(rows.len(), 6, "five PocketBase rows and one new: {ids:?}");
    assert!(rows.contains(&(
        "pb2".into(),
        "prod".into(),
        "DATABASE_URL".into(),
        "postgres://changed-in-strongroom".into()
    )));
    assert!(rows
        .iter()
        .any(|r| r.2 == "NEW_ONLY_IN_STRONGROOM" && r.3 == "postgres://changed-in-strongroom"));
    // PocketBase's UNIQUE(key, env) holds in the table.
    let duplicate = support::postgres_batch(
        url,
        "INSERT INTO _secrets (id, key, value, env) VALUES ('dup', 'DATABASE_URL', 'x', 'prod')",
    );
    assert!(duplicate.is_err(), "UNIQUE(key, env)");

    // The SQL script is portable: loaded into PostgreSQL, the same rows, the same ids.
    let script = dir.join("export.sql");
    assert!(strongroom(
        dir,
        &[
            "export",
            "--format",
            "pocketbase",
            "--out",
            script.to_str().unwrap()
        ]
    )
    .status
    .success());
    support::postgres_batch(url, &std::fs::read_to_string(&script).unwrap()).unwrap();
    assert_eq!(postgres_pb_rows(url), rows);
}

/// PocketBase's plugin stores empty strings; a migration carries every row it can decrypt
/// exactly, so an empty value survives the import and the export back (the empty-value
/// rule stays for values people type: a dotenv `KEY=` line is still refused).
#[test]
fn empty_values_survive_a_round_trip_through_pocketbase() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("data.db");
    let program = r#"
import base64, os, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
def seal(text):
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, text.encode(), None)).decode()
db = sqlite3.connect(path)
db.execute("CREATE TABLE _secrets (id TEXT PRIMARY KEY NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, env TEXT DEFAULT '' NOT NULL, description TEXT DEFAULT '' NOT NULL, created TEXT DEFAULT '' NOT NULL, updated TEXT DEFAULT '' NOT NULL)")
db.execute("INSERT INTO _secrets VALUES ('e1', 'FEATURE_FLAG', ?, 'prod', 'left empty on purpose', '2025-01-01 10:00:00.000Z', '2025-01-01 10:00:00.000Z')", (seal(""),))
db.execute("INSERT INTO _secrets VALUES ('e2', 'API_KEY', ?, 'prod', '', '2025-01-01 10:00:00.000Z', '2025-01-01 10:00:00.000Z')", (seal("sk-e2"),))
db.commit()
"#;
    if python(program, &[pb.to_str().unwrap(), PB_KEY]).is_none() {
        return;
    }
    let source = format!("sqlite://{}", pb.display());
    let out = strongroom(dir.path(), &["import", "--from", "pocketbase", &source]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 created") && !stdout.contains("1 failed"),
        "{stdout}"
    );
    let empty = strongroom(dir.path(), &["get", "FEATURE_FLAG", "--env", "prod"]);
    assert_eq!(
        (empty.status.code(), empty.stdout.as_slice()),
        (Some(0), &b""[..])
    );
    let back = dir.path().join("back.db");
    let out = strongroom(
        dir.path(),
        &[
            "export",
            "--format",
            "pocketbase",
            "--database",
            &format!("sqlite://{}", back.display()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let reader = r#"
import base64, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex(sys.argv[2])
for k, v in sqlite3.connect(sys.argv[1]).execute("SELECT key, value FROM _secrets ORDER BY key"):
    raw = base64.b64decode(v, validate=True)
    print(k, repr(AESGCM(key).decrypt(raw[:12], raw[12:], None).decode()), sep="|")
"#;
    let opened = python(reader, &[back.to_str().unwrap(), PB_KEY]).unwrap();
    assert_eq!(opened, "API_KEY|'sk-e2'\nFEATURE_FLAG|''\n");
    // A person's empty value is still refused.
    std::fs::write(dir.path().join("typed.env"), "TYPED=\n").unwrap();
    let out = strongroom(dir.path(), &["import", "--format", "dotenv", "typed.env"]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out).1);
}
