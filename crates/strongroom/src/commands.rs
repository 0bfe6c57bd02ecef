//! The subcommands, each a few lines over the store.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use strongroom_crypto::secrecy::{ExposeSecret as _, SecretSlice};
use strongroom_crypto::Key;
use strongroom_store::{
    parse_duration, AuditQuery, Expiry, ListQuery, RotateOptions, SetRequest, State, Store,
};

use crate::cli::{self, StateArg, Target};
use crate::exit::{code, Failure};
use crate::output::{print_json, print_table};
use crate::settings::Settings;

/// What a command returns: its exit code, or a failure to report.
pub type Outcome = Result<ExitCode, Failure>;

impl cli::KeygenArgs {
    /// `strongroom keygen`.
    pub fn run(self) -> Outcome {
        keygen(self.base64)
    }
}

impl cli::SetArgs {
    /// `strongroom set`.
    pub async fn run(self) -> Outcome {
        let json = self.json;
        set(self, json).await
    }
}

impl cli::GetArgs {
    /// `strongroom get`.
    pub async fn run(self) -> Outcome {
        get(self.key, self.target).await
    }
}

impl cli::ListArgs {
    /// `strongroom list`.
    pub async fn run(self) -> Outcome {
        list(self.env, self.namespace, self.prefix, self.state, self.json).await
    }
}

impl cli::RmArgs {
    /// `strongroom rm`.
    pub async fn run(self) -> Outcome {
        let store = open().await?;
        let id = id(&store, &self.target, &self.key)?;
        if !self.versions.is_empty() {
            let changed = store.delete_versions(&id, &self.versions).await?;
            return crate::transfer::report_versions(&id, "soft-deleted", &changed, self.json);
        }
        store.delete(&id).await?;
        if self.json {
            print_json(&serde_json::json!({"deleted": id}))?;
        } else {
            println!("deleted {id}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl cli::HistoryArgs {
    /// `strongroom history`.
    pub async fn run(self) -> Outcome {
        history(self.key, self.target, self.json).await
    }
}

impl cli::RollbackArgs {
    /// `strongroom rollback`.
    pub async fn run(self) -> Outcome {
        let store = open().await?;
        let id = id(&store, &self.target, &self.key)?;
        let outcome = store.rollback(&id, self.version).await?;
        if self.json {
            print_json(
                &serde_json::json!({"id": id, "restored": self.version, "version": outcome.version}),
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "rolled back {id} to version {} (now version {})",
            self.version, outcome.version
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl cli::VerifyArgs {
    /// `strongroom verify`.
    pub async fn run(self) -> Outcome {
        verify(self.key, self.target, self.json).await
    }
}

impl cli::AuditArgs {
    /// `strongroom audit [verify|checkpoint]`.
    pub async fn run(self) -> Outcome {
        match self.action {
            Some(cli::AuditCommand::Verify { checkpoint, json }) => {
                verify_audit(checkpoint.as_deref(), json).await
            }
            Some(cli::AuditCommand::Checkpoint) => {
                let checkpoint = open().await?.audit_checkpoint().await?;
                print_json(&checkpoint)?;
                Ok(ExitCode::SUCCESS)
            }
            None => audit(self.key, self.env, self.namespace, self.limit, self.json).await,
        }
    }
}

impl cli::RotateArgs {
    /// `strongroom rotate`.
    pub async fn run(self) -> Outcome {
        if self.new_key {
            crate::keys::add_hsm_key().await?;
        }
        rotate(self.from_version, self.batch_size, self.json).await
    }
}

impl cli::CleanupArgs {
    /// `strongroom cleanup`.
    pub async fn run(self) -> Outcome {
        cleanup(self.retention, self.events_retention, self.json).await
    }
}

fn keygen(base64: bool) -> Outcome {
    let key = Key::generate().map_err(|e| Failure::io(e.to_string()))?;
    let text = if base64 {
        key.to_base64()
    } else {
        key.to_hex()
    };
    println!("{}", text.expose_secret());
    Ok(ExitCode::SUCCESS)
}

/// Opens the configured store, acting as `cli:$USER`.
pub async fn open() -> Result<Store, Failure> {
    let settings = Settings::from_env()?;
    let keys = crate::keys::configured_keys()?;
    let backend =
        strongroom_store::open_backend_with(&settings.database_url, &settings.backend).await?;
    let keys = keys.resolve(backend.as_ref()).await?;
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    let actor = if user.is_empty() {
        "cli".to_owned()
    } else {
        format!("cli:{user}")
    };
    Ok(Store::open(backend, keys, settings.store)
        .await?
        .with_actor(&actor))
}

fn id(store: &Store, target: &Target, key: &str) -> Result<strongroom_store::SecretId, Failure> {
    Ok(store.secret_id(target.namespace.as_deref(), target.env.as_deref(), key)?)
}

/// The value to set: a file, a hidden prompt on a terminal, or all of stdin.
fn read_value(file: Option<&std::path::Path>) -> Result<SecretSlice<u8>, Failure> {
    let value = match file {
        Some(path) => SecretSlice::from(
            std::fs::read(path)
                .map_err(|e| Failure::input(format!("--value-file {}: {e}", path.display())))?,
        ),
        None if std::io::stdin().is_terminal() => {
            let typed = rpassword::prompt_password("value (input hidden): ")
                .map_err(|e| Failure::io(format!("cannot read the value: {e}")))?;
            SecretSlice::from(typed.into_bytes())
        }
        None => read_stdin()?,
    };
    if value.expose_secret().is_empty() {
        return Err(Failure::input(
            "the value is empty; pipe it on stdin or pass --value-file",
        ));
    }
    Ok(value)
}

fn read_stdin() -> Result<SecretSlice<u8>, Failure> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Failure::io(format!("cannot read stdin: {e}")))?;
    Ok(SecretSlice::from(buf))
}

async fn list(
    env: Option<String>,
    namespace: Option<String>,
    prefix: Option<String>,
    state: Option<StateArg>,
    json: bool,
) -> Outcome {
    let store = open().await?;
    let state = state.map(|s| match s {
        StateArg::Active => State::Active,
        StateArg::Expired => State::Expired,
        StateArg::Deleted => State::Deleted,
        StateArg::Destroyed => State::Destroyed,
    });
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(ListQuery {
                namespace: namespace.clone(),
                env: env.clone(),
                prefix: prefix.clone(),
                state,
                limit: Some(1000),
                cursor,
                offset: None,
            })
            .await?;
        items.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    if json {
        print_json(&items)?;
    } else {
        let rows = items
            .iter()
            .map(|i| {
                vec![
                    i.key.clone(),
                    i.env.clone(),
                    i.masked_value.clone(),
                    format!("{:?}", i.state).to_lowercase(),
                    i.version.to_string(),
                    i.updated.to_string(),
                    i.description.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "KEY",
                "ENV",
                "VALUE",
                "STATE",
                "VERSION",
                "UPDATED",
                "DESCRIPTION",
            ],
            rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(from_version: Option<u32>, batch_size: usize, json: bool) -> Outcome {
    let store = open().await?;
    // indicatif draws only when stderr is a terminal.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} values re-wrapped ({per_sec}, eta {eta})",
        )
        .map_err(|e| Failure::io(e.to_string()))?,
    );
    let done = store
        .rotate(
            RotateOptions {
                from_version,
                batch_size,
                max_batches: None,
            },
            |p| {
                bar.set_length(p.total);
                bar.set_position(p.rotated + p.skipped);
            },
        )
        .await;
    bar.finish_and_clear();
    let done = done?;
    if json {
        print_json(&serde_json::json!({
            "target_version": done.target_version,
            "rotated": done.rotated,
            "skipped": done.skipped,
            "total": done.total,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "rotated {} value(s) to key version {}; {} changed concurrently and were left as written",
        done.rotated, done.target_version, done.skipped
    );
    Ok(ExitCode::SUCCESS)
}

async fn audit(
    key: Option<String>,
    env: Option<String>,
    namespace: Option<String>,
    limit: usize,
    json: bool,
) -> Outcome {
    let store = open().await?;
    let page = store
        .audit(AuditQuery {
            key,
            env,
            namespace,
            limit: Some(limit),
            ..AuditQuery::default()
        })
        .await?;
    if json {
        print_json(&page.items)?;
    } else {
        let rows = page
            .items
            .iter()
            .map(|e| {
                let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
                vec![
                    e.time.to_string(),
                    e.actor.clone(),
                    e.action.as_str().to_owned(),
                    format!("{}/{}/{}", e.namespace, e.env, e.key),
                    opt(e.version),
                    opt(e.kek_version),
                ]
            })
            .collect();
        print_table(
            &[
                "TIME",
                "ACTOR",
                "ACTION",
                "SECRET",
                "VERSION",
                "KEY VERSION",
            ],
            rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn history(key: String, target: Target, json: bool) -> Outcome {
    let store = open().await?;
    let versions = store.history(&id(&store, &target, &key)?).await?;
    if json {
        print_json(&versions)?;
    } else {
        let rows = versions
            .iter()
            .map(|v| {
                vec![
                    v.version.to_string(),
                    if v.current { "*".into() } else { String::new() },
                    v.kek_version.to_string(),
                    v.created.to_string(),
                    v.actor.clone(),
                    match (v.destroyed, v.deleted) {
                        (true, _) => "destroyed".into(),
                        (false, Some(_)) => "deleted".into(),
                        (false, None) => "live".into(),
                    },
                ]
            })
            .collect();
        print_table(
            &[
                "VERSION",
                "CURRENT",
                "KEY VERSION",
                "CREATED",
                "ACTOR",
                "STATE",
            ],
            rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)] // one parameter per command-line option
async fn set(args: cli::SetArgs, json: bool) -> Outcome {
    let cli::SetArgs {
        key,
        target,
        description,
        ttl,
        metadata,
        kind,
        value_file,
        cas,
        ..
    } = args;
    let store = open().await?;
    let id = store.secret_id(target.namespace.as_deref(), target.env.as_deref(), &key)?;
    let expiry = match ttl {
        Some(ttl) => {
            Expiry::In(parse_duration(&ttl).map_err(|e| Failure::input(format!("--ttl: {e}")))?)
        }
        None => Expiry::Keep,
    };
    let metadata = metadata
        .map(|m| {
            serde_json::from_str(&m)
                .map_err(|e| Failure::input(format!("--metadata: not valid JSON ({e})")))
        })
        .transpose()?;
    let value = read_value(value_file.as_deref())?;
    let outcome = store
        .set(
            &id,
            SetRequest {
                value,
                description,
                metadata,
                kind,
                expiry,
                expected_version: cas,
            },
        )
        .await?;
    if json {
        print_json(
            &serde_json::json!({"id": id, "created": outcome.created, "version": outcome.version}),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} {id} (version {})",
        if outcome.created {
            "created"
        } else {
            "updated"
        },
        outcome.version
    );
    Ok(ExitCode::SUCCESS)
}

async fn cleanup(retention: String, events_retention: String, json: bool) -> Outcome {
    let retention =
        parse_duration(&retention).map_err(|e| Failure::input(format!("--retention: {e}")))?;
    let events_retention = parse_duration(&events_retention)
        .map_err(|e| Failure::input(format!("--events-retention: {e}")))?;
    let store = open().await?;
    let secrets = store.cleanup_expired(retention).await?;
    let events = store.cleanup_events(events_retention).await?;
    if json {
        print_json(&serde_json::json!({"secrets": secrets, "events": events}))?;
    } else {
        println!("removed {secrets} expired secret(s) and {events} audit event(s)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn get(key: String, target: Target) -> Outcome {
    let store = open().await?;
    // Committing the read records it; only then is the value handed out.
    let secret = store
        .get(&id(&store, &target, &key)?)
        .await?
        .commit()
        .await?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(secret.value.expose_secret())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::io(format!("cannot write to stdout: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

async fn verify(key: String, target: Target, json: bool) -> Outcome {
    let store = open().await?;
    let id = id(&store, &target, &key)?;
    let candidate = read_stdin()?;
    let matched = store.verify(&id, candidate.expose_secret()).await?;
    if json {
        print_json(&serde_json::json!({"id": id, "match": matched}))?;
        return Ok(ExitCode::from(if matched {
            code::OK
        } else {
            code::NO_MATCH
        }));
    }
    if matched {
        println!("match");
        Ok(ExitCode::from(code::OK))
    } else {
        println!("no match");
        Ok(ExitCode::from(code::NO_MATCH))
    }
}

async fn verify_audit(checkpoint: Option<&std::path::Path>, json: bool) -> Outcome {
    let store = open().await?;
    let result = match checkpoint {
        None => store.verify_audit().await?,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            let checkpoint: strongroom_store::Checkpoint =
                serde_json::from_str(&text).map_err(|e| {
                    Failure::input(format!("{}: not a checkpoint: {e}", path.display()))
                })?;
            store.verify_audit_against(&checkpoint).await?
        }
    };
    if json {
        print_json(&serde_json::json!({
            "intact": result.broken_at.is_none(),
            "events": result.events,
            "versions": result.versions,
            "head": result.head.as_ref().map(|(seq, _)| seq),
            "broken_at": result.broken_at.as_ref().map(|(seq, why)| serde_json::json!({"event": seq, "reason": why})),
        }))?;
        let code = if result.broken_at.is_none() {
            code::OK
        } else {
            code::NO_MATCH
        };
        return Ok(ExitCode::from(code));
    }
    match result.broken_at {
        None => {
            println!(
                "audit log intact: {} event(s) verified, {} version(s) tied to their events{}",
                result.events,
                result.versions,
                if checkpoint.is_some() {
                    ", everything up to the checkpoint present"
                } else {
                    ""
                }
            );
            Ok(ExitCode::from(code::OK))
        }
        Some((id, why)) => {
            println!("audit log BROKEN at event {id}: {why}");
            Ok(ExitCode::from(code::NO_MATCH))
        }
    }
}
