//! `strongroom import --from pocketbase` and `strongroom export --format pocketbase`.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget};
mod table;

use table as pocketbase;
use table::ImportAction;

use crate::exit::{code, Failure};

fn pb_key() -> Result<strongroom_crypto::Key, Failure> {
    let text = std::env::var("PB_MASTER_KEY")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Failure {
            message: "PB_MASTER_KEY: not set; expected PocketBase's 64 hex character master key"
                .into(),
            code: code::CONFIG,
        })?;
    Ok(pocketbase::parse_pb_key(&text)?)
}

/// Imports PocketBase's `_secrets` rows. Rows that fail are listed (by key and env) and
/// make the exit code 8; every other row lands in one transaction.
pub async fn import_pocketbase(
    source: &str,
    namespace: Option<&str>,
    dry_run: bool,
    overwrite: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let key = pb_key()?;
    let source = resolve_source(source)?;
    let source = source.as_str();
    let rows = if let Some(path) = source.strip_prefix("sqlite://") {
        pocketbase::read_sqlite(Path::new(path))?
    } else if source.starts_with("postgres://") || source.starts_with("postgresql://") {
        let ca_file = std::env::var_os("STRONGROOM_PG_CA_FILE").map(std::path::PathBuf::from);
        pocketbase::read_postgres(source, ca_file.as_deref()).await?
    } else {
        return Err(Failure::input(
            "the PocketBase source must be sqlite://PATH/data.db or postgres://...",
        ));
    };
    let store = crate::commands::open().await?;
    let bar = ProgressBar::with_draw_target(
        Some(rows.len() as u64),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    let report = pocketbase::import(&store, &key, &rows, namespace, overwrite, dry_run, |n| {
        bar.set_position(n as u64);
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    if json {
        return crate::envfiles::import_json(&report, dry_run);
    }
    for item in &report.items {
        let target = if item.env.is_empty() {
            "(default env)"
        } else {
            item.env.as_str()
        };
        match &item.action {
            ImportAction::Fail(reason) => {
                eprintln!("strongroom: failed {} (env {target}): {reason}", item.key);
            }
            action if dry_run => println!("would {} {} (env {target})", verb(action), item.key),
            _ => {}
        }
    }
    let (created, overwritten, skipped, failed) = report.counts();
    println!(
        "{}: {created} created, {overwritten} overwritten, {skipped} skipped (already present{}), {failed} failed, of {} rows",
        if dry_run { "dry run, nothing written" } else { "imported" },
        if overwrite { "" } else { "; --overwrite replaces them" },
        report.items.len()
    );
    Ok(if failed > 0 {
        ExitCode::from(code::INPUT)
    } else {
        ExitCode::SUCCESS
    })
}

/// The PocketBase source: as given, or read from an environment variable (`env:NAME`) or
/// a file (`file:PATH`, mode 0600 or stricter) so a database password never sits on the
/// command line, where `ps` shows it. A `postgres://` URL with a password given directly
/// is refused.
fn resolve_source(source: &str) -> Result<String, Failure> {
    let resolved = if let Some(name) = source.strip_prefix("env:") {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Failure::input(format!("{name}: not set (the PocketBase database URL)"))
            })?
    } else if let Some(path) = source.strip_prefix("file:") {
        crate::files::read_private(Path::new(path))
            .map_err(Failure::input)?
            .trim()
            .to_owned()
    } else {
        if (source.starts_with("postgres://") || source.starts_with("postgresql://"))
            && has_password(source)
        {
            return Err(Failure::input(
                "the PocketBase database URL holds a password, which the process list shows: \
                 pass env:VARIABLE or file:PATH instead",
            ));
        }
        return Ok(source.to_owned());
    };
    Ok(resolved)
}

/// Whether a `postgres://user:password@host/...` URL carries a password.
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        || url.contains("password=")
}

fn verb(action: &ImportAction) -> &'static str {
    match action {
        ImportAction::Create => "create",
        ImportAction::Overwrite => "overwrite",
        ImportAction::SkipExisting => "skip (exists)",
        ImportAction::Fail(_) => "fail",
    }
}

/// Exports secrets as PocketBase rows: an SQL script or straight into a PocketBase
/// SQLite database.
pub async fn export_pocketbase(
    out: Option<&Path>,
    database: Option<&str>,
    env: Option<&str>,
    namespace: Option<&str>,
    strict: bool,
) -> Result<ExitCode, Failure> {
    let key = pb_key()?;
    let store = crate::commands::open().await?;
    let exported = pocketbase::export(&store, &key, namespace, env).await?;
    crate::states::leave_out(&exported.left_out, strict)?;
    let rows = exported.rows;
    match (out, database) {
        (Some(path), _) => {
            crate::files::write_private(path, pocketbase::to_sql(&rows).as_bytes())?;
            println!(
                "wrote {} row(s) to {} (load with: sqlite3 pb_data/data.db < {}, or psql -v ON_ERROR_STOP=1 -f {})",
                rows.len(),
                path.display(),
                path.display(),
                path.display()
            );
        }
        (None, Some(target)) => {
            let target = resolve_source(target)?;
            if let Some(path) = target.strip_prefix("sqlite://") {
                pocketbase::write_sqlite(Path::new(path), &rows)?;
                println!("wrote {} row(s) into {path}", rows.len());
            } else if target.starts_with("postgres://") || target.starts_with("postgresql://") {
                let ca_file =
                    std::env::var_os("STRONGROOM_PG_CA_FILE").map(std::path::PathBuf::from);
                pocketbase::write_postgres(&target, ca_file.as_deref(), &rows).await?;
                println!("wrote {} row(s) into the PostgreSQL _secrets table", rows.len());
            } else {
                return Err(Failure::input(
                    "--database must be sqlite://PATH/data.db, postgres://..., env:VARIABLE or file:PATH",
                ));
            }
        }
        (None, None) => {
            return Err(Failure::input(
                "give --out FILE.sql or --database (sqlite://PATH | postgres://... | env:VARIABLE | file:PATH)",
            ))
        }
    }
    Ok(ExitCode::SUCCESS)
}
