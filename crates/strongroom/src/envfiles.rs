//! `strongroom run`, `import --format dotenv` and `export --format dotenv|json`.

use std::path::Path;
use std::process::ExitCode;

use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_crypto::secrecy::SecretSlice;
use strongroom_store::import::{self, ImportAction, ImportRow};

use crate::cli::ExportFormat;
use crate::exit::{code, Failure};

impl crate::cli::ImportArgs {
    /// `strongroom import`: PocketBase's table, or a dotenv file.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let namespace = self.namespace.as_deref();
        if self.from.is_some() {
            crate::pocketbase::import_pocketbase(
                &self.source,
                namespace,
                self.dry_run,
                self.overwrite,
                self.json,
            )
            .await
        } else {
            import_dotenv(
                &self.source,
                self.env.as_deref(),
                namespace,
                [self.dry_run, self.overwrite, self.json],
            )
            .await
        }
    }
}

impl crate::cli::ExportArgs {
    /// `strongroom export`: PocketBase rows (sealed), or plaintext dotenv/JSON.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let (env, namespace) = (self.env.as_deref(), self.namespace.as_deref());
        if self.format == ExportFormat::Pocketbase {
            crate::pocketbase::export_pocketbase(
                self.out.as_deref(),
                self.database.as_deref(),
                env,
                namespace,
                self.strict,
            )
            .await
        } else {
            export_plaintext(
                self.format,
                self.out.as_deref(),
                env,
                namespace,
                self.plaintext,
                self.strict,
            )
            .await
        }
    }
}

impl crate::cli::RunArgs {
    /// `strongroom run`: a child process with the env's secrets.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let mask = masking(self.mask, self.no_mask);
        run(self, mask).await
    }
}

impl crate::cli::FileArgs {
    /// `strongroom file export|import`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        file(self.action).await
    }
}

/// Whether `run` masks the child's output: `--mask` or `--no-mask` when given, else on when
/// `CI` is set to anything but empty, `0` or `false`.
fn masking(mask: bool, no_mask: bool) -> bool {
    if mask || no_mask {
        return mask;
    }
    std::env::var("CI").is_ok_and(|ci| {
        let ci = ci.trim();
        !ci.is_empty() && ci != "0" && !ci.eq_ignore_ascii_case("false")
    })
}

/// Whether `name` can be an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Starts `command` with the env's secrets as environment variables, passes SIGINT,
/// SIGTERM, SIGHUP and SIGQUIT on to it, and exits with its exit code (128 + N when a
/// signal ended it). Keys that are not valid variable names are reported and left out.
///
/// The child inherits no `STRONGROOM_*` variable (nor `PB_MASTER_KEY`), and secrets named
/// on the denylist of [`crate::childenv`] (`LD_PRELOAD`, `PATH`, `NODE_OPTIONS`, ...) are
/// refused, listed in the error, and nothing runs, unless each is named in `allow_names`.
///
/// With `--lock FILE`, exactly the locked versions are injected, each checked against its
/// hash; if any can not be, nothing starts. With `mask`, the child's output is masked
/// ([`strongroom::mask`]).
pub async fn run(args: crate::cli::RunArgs, mask: bool) -> Result<ExitCode, Failure> {
    let (env, namespace) = (args.env.as_deref(), args.namespace.as_deref());
    let (allow_names, command) = (&args.allow_name, &args.command);
    let store = crate::commands::open().await?;
    let reads = match &args.lock {
        Some(lock) => crate::lockfile::locked_reads(&store, lock, namespace, env).await?,
        None => {
            let view = store
                .resolve_env(namespace, env, args.only.as_deref())
                .await?;
            crate::states::leave_out(&view.left_out, args.strict)?;
            view.reads
        }
    };
    let dynamic_names: Vec<String> = args
        .dynamic
        .iter()
        .filter_map(|spec| spec.split_once('=').map(|(name, _)| name))
        .flat_map(|name| [format!("{name}_USERNAME"), format!("{name}_PASSWORD")])
        .collect();
    let refused = crate::childenv::refused(
        reads
            .iter()
            .map(|s| s.id().key.as_str())
            .chain(dynamic_names.iter().map(String::as_str)),
        allow_names,
    );
    if !refused.is_empty() {
        return Err(Failure::input(format!(
            "refusing to run: these secrets would set variables that change what code runs \
             ({}); allow each one with --allow-name NAME if that is intended (STRONGROOM_* never)",
            refused.join(", ")
        )));
    }
    let mut child = tokio::process::Command::new(&command[0]);
    child.args(&command[1..]);
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(crate::childenv::is_own_configuration)
        {
            child.env_remove(name);
        }
    }
    let mut passed = Vec::with_capacity(reads.len());
    for read in reads {
        let key = &read.id().key;
        if valid_env_name(key) {
            passed.push(read);
        } else {
            eprintln!("strongroom: not passing {key}: not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
        }
    }
    // One transaction records every read the child may receive, before any value is used.
    let secrets = store
        .commit_reads(passed, strongroom_store::Action::Read)
        .await?;
    let mut injected = 0;
    let mut masked: Vec<&[u8]> = Vec::new();
    // Dynamic logins last: made only once everything else is known to start.
    let (dynamic, dynamic_vars) = if args.dynamic.is_empty() {
        (None, Vec::new())
    } else {
        let (logins, vars) =
            crate::dynamic_run::DynamicLogins::issue(store.clone(), &args.dynamic).await?;
        (Some(logins), vars)
    };
    for (name, value) in &dynamic_vars {
        child.env(name, value.expose_secret());
        masked.push(value.expose_secret().as_bytes());
        injected += 1;
    }
    for secret in &secrets {
        let key = &secret.id.key;
        let Ok(value) = std::str::from_utf8(secret.value.expose_secret()) else {
            eprintln!("strongroom: not passing {key}: the value is not UTF-8 text");
            continue;
        };
        if value.contains('\0') {
            eprintln!("strongroom: not passing {key}: the value contains a NUL byte");
            continue;
        }
        child.env(key, value);
        masked.push(value.as_bytes());
        injected += 1;
    }
    supervise(child, command, &masked, mask, injected, dynamic).await
}

/// Starts the child with its environment, masks its output when asked, forwards signals,
/// revokes its dynamic logins when it ends, and exits with its code.
async fn supervise(
    mut child: tokio::process::Command,
    command: &[String],
    masked: &[&[u8]],
    mask: bool,
    injected: usize,
    dynamic: Option<crate::dynamic_run::DynamicLogins>,
) -> Result<ExitCode, Failure> {
    let maskers = if mask {
        masking_note(masked);
        strongroom::mask::Masker::new(masked.iter().copied())
            .zip(strongroom::mask::Masker::new(masked.iter().copied()))
    } else {
        None
    };
    if maskers.is_some() {
        child
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
    }
    let mut child = match child.spawn() {
        Ok(child) => child,
        Err(e) => {
            if let Some(dynamic) = dynamic {
                dynamic.revoke_all().await;
            }
            return Err(Failure {
                message: format!("cannot start {}: {e}", command[0]),
                code: if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                },
            });
        }
    };
    announce(injected);
    let pumps = match (maskers, child.stdout.take(), child.stderr.take()) {
        (Some((out_masker, err_masker)), Some(stdout), Some(stderr)) => Some((
            tokio::spawn(pump(stdout, tokio::io::stdout(), out_masker)),
            tokio::spawn(pump(stderr, tokio::io::stderr(), err_masker)),
        )),
        _ => None,
    };
    let status = wait_forwarding_signals(&mut child).await;
    if let Some(dynamic) = dynamic {
        dynamic.revoke_all().await;
    }
    let status = status.map_err(|e| Failure::io(format!("waiting for the command: {e}")))?;
    if let Some((out, err)) = pumps {
        // The rest of the output (and a held-back tail) is written before exiting. A
        // closed stdout of ours ended its pump early; the child saw that as its own EPIPE.
        let _ = out.await;
        let _ = err.await;
    }
    Ok(ExitCode::from(exit_code(status)))
}

/// Says (on stderr, counts only) how many values are masked and how many are too short.
fn masking_note(values: &[&[u8]]) {
    let short = values
        .iter()
        .filter(|v| v.len() < strongroom::mask::MIN_MASKED_LEN)
        .count();
    if short > 0 && std::env::var_os("STRONGROOM_QUIET").is_none() {
        eprintln!(
            "strongroom: masking output; {short} value(s) shorter than {} bytes are not masked",
            strongroom::mask::MIN_MASKED_LEN
        );
    }
}

/// Copies `from` to `to` through `masker` until `from` ends, flushing after every read
/// so output arrives as the child writes it.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut masker: strongroom::mask::Masker,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = zeroize::Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(64 * 1024));
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        masker.push(&buffer[..read], &mut out);
        if !out.is_empty() {
            to.write_all(&out).await?;
            to.flush().await?;
            out.clear();
        }
    }
    masker.finish(&mut out);
    to.write_all(&out).await?;
    to.flush().await
}

/// A one-line note on stderr (counts only, never names or values of the env).
fn announce(injected: usize) {
    if std::env::var_os("STRONGROOM_QUIET").is_none() {
        eprintln!("strongroom: started with {injected} secret(s) in the environment");
    }
}

#[cfg(unix)]
async fn wait_forwarding_signals(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use tokio::signal::unix::{signal, SignalKind};
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    loop {
        let forward = tokio::select! {
            status = child.wait() => return status,
            _ = int.recv() => Signal::SIGINT,
            _ = term.recv() => Signal::SIGTERM,
            _ = hup.recv() => Signal::SIGHUP,
            _ = quit.recv() => Signal::SIGQUIT,
        };
        if let Some(pid) = pid {
            let _ = kill(pid, forward);
        }
    }
}

#[cfg(not(unix))]
async fn wait_forwarding_signals(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    child.wait().await
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return u8::try_from(128 + signal).unwrap_or(1);
    }
    1
}

/// Imports a dotenv file into `env`: one transaction, existing keys skipped unless
/// `overwrite`; parse errors name the line.
pub async fn import_dotenv(
    file: &str,
    env: Option<&str>,
    namespace: Option<&str>,
    [dry_run, overwrite, json]: [bool; 3],
) -> Result<ExitCode, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| Failure::input(format!("{file}: {e}")))?;
    let pairs = crate::dotenv::parse(&text).map_err(|e| Failure::input(format!("{file}: {e}")))?;
    let store = crate::commands::open().await?;
    let rows = pairs
        .into_iter()
        .map(|(key, value)| ImportRow {
            key,
            env: env.map(str::to_owned),
            description: None,
            metadata: None,
            value: Ok(SecretSlice::from(value.into_bytes())),
        })
        .collect();
    let report = import::import(
        &store,
        rows,
        namespace,
        [overwrite, dry_run],
        import::EmptyValues::Refuse,
        |_| {},
    )
    .await?;
    if json {
        return import_json(&report, dry_run);
    }
    for item in &report.items {
        match &item.action {
            ImportAction::Fail(reason) => eprintln!("strongroom: failed {}: {reason}", item.key),
            ImportAction::Create if dry_run => println!("would create {}", item.key),
            ImportAction::Overwrite if dry_run => println!("would overwrite {}", item.key),
            ImportAction::SkipExisting if dry_run => println!("would skip (exists) {}", item.key),
            _ => {}
        }
    }
    let (created, overwritten, skipped, failed) = report.counts();
    println!(
        "{}: {created} created, {overwritten} overwritten, {skipped} skipped (already present), {failed} failed",
        if dry_run { "dry run, nothing written" } else { "imported" }
    );
    Ok(if failed > 0 {
        ExitCode::from(code::INPUT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes an env's view (after fallback) as plaintext dotenv or JSON. Refused without
/// `--plaintext`; every value written is a `read` audit event.
pub async fn export_plaintext(
    format: ExportFormat,
    out: Option<&Path>,
    env: Option<&str>,
    namespace: Option<&str>,
    plaintext: bool,
    strict: bool,
) -> Result<ExitCode, Failure> {
    if !plaintext {
        return Err(Failure::input(
            "a dotenv or JSON export writes plaintext values: confirm with --plaintext",
        ));
    }
    let store = crate::commands::open().await?;
    let view = store.resolve_env(namespace, env, None).await?;
    crate::states::leave_out(&view.left_out, strict)?;
    let reads = view.reads;
    // The reads are recorded before any value is used (a refused export is still a read).
    let secrets = store
        .commit_reads(reads, strongroom_store::Action::Read)
        .await?;
    let mut pairs = Vec::with_capacity(secrets.len());
    for secret in &secrets {
        let value = std::str::from_utf8(secret.value.expose_secret()).map_err(|_| {
            Failure::input(format!(
                "{}: the value is not UTF-8 text; it can not be exported as {format:?}",
                secret.id.key
            ))
        })?;
        pairs.push((secret.id.key.clone(), value.to_owned()));
    }
    let text = if format == ExportFormat::Json {
        let map: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k, v.into())).collect();
        let mut text =
            serde_json::to_string_pretty(&map).map_err(|e| Failure::io(e.to_string()))?;
        text.push('\n');
        text
    } else {
        // Every pair is checked before anything is written: one refusal writes nothing.
        let mut text = String::new();
        let mut refused = Vec::new();
        for (key, value) in &pairs {
            match crate::dotenv::line(key, value) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(e) => refused.push(e.to_string()),
            }
        }
        if !refused.is_empty() {
            return Err(Failure::input(format!(
                "nothing exported; {}",
                refused.join("; ")
            )));
        }
        text
    };
    match out {
        Some(path) => {
            crate::files::write_private(path, text.as_bytes())?;
            eprintln!(
                "strongroom: wrote {} secret(s) in plaintext to {}",
                secrets.len(),
                path.display()
            );
        }
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| Failure::io(e.to_string()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `strongroom file export|import`.
async fn file(action: crate::cli::FileCommand) -> Result<ExitCode, Failure> {
    let store = crate::commands::open().await?;
    match action {
        crate::cli::FileCommand::Export {
            path,
            env,
            namespace,
            strict,
        } => {
            let exported =
                strongroom_store::filestore::export(&store, namespace.as_deref(), env.as_deref())
                    .await?;
            crate::states::leave_out(&exported.left_out, strict)?;
            let text = exported.text;
            crate::files::write_private(&path, text.as_bytes())?;
            let lines = text.lines().count().saturating_sub(3);
            println!("wrote {lines} sealed secret(s) to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        crate::cli::FileCommand::Import {
            path,
            dry_run,
            json,
        } => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            let report = strongroom_store::filestore::import(&store, &text, dry_run).await?;
            if json {
                return import_json(&report, dry_run);
            }
            for item in &report.items {
                match &item.action {
                    ImportAction::Fail(reason) => {
                        eprintln!("strongroom: {}/{}: {reason}", item.env, item.key);
                    }
                    ImportAction::Create if dry_run => {
                        println!("would create {}/{}", item.env, item.key);
                    }
                    ImportAction::Overwrite if dry_run => {
                        println!("would update {}/{} (the file is newer)", item.env, item.key);
                    }
                    _ => {}
                }
            }
            let (created, updated, unchanged, conflicts) = report.counts();
            println!(
                "{}: {created} created, {updated} updated, {unchanged} unchanged, {conflicts} conflict(s)",
                if dry_run { "dry run, nothing written" } else { "merged" }
            );
            Ok(if conflicts > 0 {
                ExitCode::from(code::INPUT)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// An import's report as JSON: `{"dry_run", "created", "overwritten", "skipped", "failed",
/// "items": [{"key", "env", "action", "reason"?}]}`; exit 8 when an item failed.
pub fn import_json(
    report: &strongroom_store::import::ImportReport,
    dry_run: bool,
) -> Result<ExitCode, Failure> {
    let items: Vec<serde_json::Value> = report
        .items
        .iter()
        .map(|item| {
            let (action, reason) = match &item.action {
                ImportAction::Create => ("create", None),
                ImportAction::Overwrite => ("overwrite", None),
                ImportAction::SkipExisting => ("skip", None),
                ImportAction::Fail(reason) => ("fail", Some(reason.clone())),
            };
            serde_json::json!({"key": item.key, "env": item.env, "action": action, "reason": reason})
        })
        .collect();
    let (created, overwritten, skipped, failed) = report.counts();
    crate::output::print_json(&serde_json::json!({
        "dry_run": dry_run,
        "created": created,
        "overwritten": overwritten,
        "skipped": skipped,
        "failed": failed,
        "items": items,
    }))?;
    Ok(if failed > 0 {
        ExitCode::from(code::INPUT)
    } else {
        ExitCode::SUCCESS
    })
}
