//! `strongroom backup FILE`, `backup verify FILE` and `restore FILE`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use strongroom_store::backend::sqlite::SqliteBackend;
use strongroom_store::backend::Backend;
use strongroom_store::tokens::Tokens;
use strongroom_store::Store;

use crate::cli::{BackupArgs, BackupCommand, RestoreArgs};
use crate::exit::{code, Failure};
use crate::settings::Settings;

type Outcome = Result<ExitCode, Failure>;

impl BackupArgs {
    /// `strongroom backup FILE` or `strongroom backup verify FILE`.
    pub async fn run(self) -> Outcome {
        match (self.action, self.file) {
            (Some(BackupCommand::Verify { file, json }), _) => verify(&file, json).await,
            (None, Some(file)) => backup(&file).await,
            (None, None) => Err(Failure::input(
                "backup: name the file to write (strongroom backup FILE)",
            )),
        }
    }
}

impl RestoreArgs {
    /// `strongroom restore FILE`.
    pub async fn run(self) -> Outcome {
        restore(&self.file).await
    }
}

async fn backend(settings: &Settings) -> Result<Arc<dyn Backend>, Failure> {
    Ok(strongroom_store::open_backend_with(&settings.database_url, &settings.backend).await?)
}

/// A consistent online copy of the configured database (SQLite's backup API), while the
/// server keeps running; the file must not exist and is created 0600.
async fn backup(file: &Path) -> Outcome {
    let backend = backend(&Settings::from_env()?).await?;
    backend.backup_to(file).await?;
    eprintln!(
        "strongroom: wrote a consistent copy to {} (mode 0600); check it with `strongroom backup verify {}`",
        file.display(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What a whole backup holds, as checked, and the checked copy itself (in a scratch
/// directory that goes away with it): a restore writes exactly the bytes that were checked,
/// and never opens the backup file (no `-wal`/`-shm` left beside it).
struct Checked {
    events: u64,
    values: u64,
    tokens: usize,
    copy: std::path::PathBuf,
    _scratch: tempfile::TempDir,
}

/// Opens a copy of the backup (the file itself is never written) and checks everything a
/// restore would bring back: the audit chain, that every stored value opens with the
/// configured keys, and that every token row's keyed tag matches (a forged or edited row
/// is named). Prints no value.
async fn check_backup(file: &Path) -> Result<Checked, Failure> {
    if !file.is_file() {
        return Err(Failure::input(format!(
            "{}: no such backup file",
            file.display()
        )));
    }
    let scratch = tempfile::tempdir()
        .map_err(|e| Failure::io(format!("cannot make a scratch directory: {e}")))?;
    let copy = scratch.path().join("backup.db");
    std::fs::copy(file, &copy)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", file.display())))?;
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&copy)?);
    let settings = Settings::from_env()?;
    let keys = crate::keys::key_source(backend.as_ref()).await?;
    let store = Store::open(backend, keys, settings.store).await?;
    let integrity = |what: String| Failure {
        message: format!("backup {}: {what}", file.display()),
        code: code::INTEGRITY,
    };
    let audit = store.verify_audit().await?;
    if let Some((seq, why)) = &audit.broken_at {
        return Err(integrity(format!(
            "the audit log is broken at event {seq}: {why}"
        )));
    }
    let values = store
        .check_values()
        .await
        .map_err(|e| integrity(format!("a stored value does not open: {e}")))?;
    let problems = store.token_problems().await?;
    if !problems.is_empty() {
        let named: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(integrity(format!(
            "{} token row(s) written without the key: {}",
            problems.len(),
            named.join("; ")
        )));
    }
    let tokens = Tokens::new(&store, None)?.list().await?.len();
    drop(store);
    Ok(Checked {
        events: audit.events,
        values: values.opened,
        tokens,
        copy,
        _scratch: scratch,
    })
}
/// `backup verify`: [`check_backup`], then a summary.
async fn verify(file: &Path, json: bool) -> Outcome {
    let checked = check_backup(file).await?;
    if json {
        crate::output::print_json(&serde_json::json!({
            "file": file.display().to_string(),
            "events": checked.events,
            "values": checked.values,
            "tokens": checked.tokens,
            "intact": true,
        }))?;
    } else {
        println!(
            "backup {} is whole: {} audit event(s) verified, {} value(s) open with the configured keys, {} token row(s) authentic",
            file.display(),
            checked.events,
            checked.values,
            checked.tokens
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Restores a backup into the configured database, which must be empty. The backup is
/// checked first exactly as `backup verify` checks it, so a tampered value, a broken audit
/// chain or a forged token row is refused before anything is written; the restored chain
/// is verified again after.
async fn restore(file: &Path) -> Outcome {
    let checked = check_backup(file).await?;
    let settings = Settings::from_env()?;
    let backend = backend(&settings).await?;
    if !strongroom_store::is_empty(backend.as_ref()).await? {
        return Err(Failure::input(
            "refusing to restore: the configured database holds data (restore into an empty database)",
        ));
    }
    backend.restore_from(&checked.copy).await?;
    let keys = crate::keys::key_source(backend.as_ref()).await?;
    let store = Store::open(backend, keys, settings.store).await?;
    let audit = store.verify_audit().await?;
    if let Some((seq, why)) = &audit.broken_at {
        return Err(Failure {
            message: format!("restored, but the audit log is broken at event {seq}: {why}"),
            code: code::INTEGRITY,
        });
    }
    eprintln!(
        "strongroom: restored {} ({} audit event(s) verified, {} value(s) and {} token row(s) checked first)",
        file.display(),
        audit.events,
        checked.values,
        checked.tokens
    );
    Ok(ExitCode::SUCCESS)
}
