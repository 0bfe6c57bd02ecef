//! `strongroom cp` and `strongroom mv`: the value moves inside the store, never through
//! this process's output. Also `undelete` and `destroy` of single versions (and the
//! report of `rm --version`), and a secret's own `settings`.

use std::process::ExitCode;

use strongroom_store::SecretId;

use crate::commands::{open, Outcome};
use crate::output::print_json;

impl crate::cli::TransferArgs {
    /// `strongroom cp` (`moving` false) or `strongroom mv`.
    pub async fn run(self, moving: bool) -> Outcome {
        if self.target.is_none() && self.to_env.is_none() && self.to_namespace.is_none() {
            return Err(crate::exit::Failure::input(
                "give a target: a key, --to-env or --to-namespace",
            ));
        }
        let store = open().await?;
        let from = store.secret_id(self.namespace.as_deref(), self.env.as_deref(), &self.source)?;
        let to = SecretId::new(
            self.to_namespace.as_deref().unwrap_or(&from.namespace),
            self.to_env.as_deref().unwrap_or(&from.env),
            self.target.as_deref().unwrap_or(&from.key),
        );
        let to = store.secret_id(Some(&to.namespace), Some(&to.env), &to.key)?;
        let outcome = if moving {
            store.move_to(&from, &to, self.force).await?
        } else {
            store.copy(&from, &to, self.force).await?
        };
        if self.json {
            print_json(&serde_json::json!({"from": from, "to": to, "version": outcome.version}))?;
        } else {
            let verb = if moving { "moved" } else { "copied" };
            println!("{verb} {from} to {to} (version {})", outcome.version);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `strongroom undelete` or `strongroom destroy`.
#[derive(Debug, Clone, Copy)]
pub enum VersionCommand {
    /// Make soft-deleted versions readable again.
    Undelete,
    /// Erase versions' sealed bytes.
    Destroy,
}

impl crate::cli::VersionArgs {
    /// Runs `command` on the given versions.
    pub async fn run(self, command: VersionCommand) -> Outcome {
        let store = open().await?;
        let id = store.secret_id(
            self.target.namespace.as_deref(),
            self.target.env.as_deref(),
            &self.key,
        )?;
        let (changed, verb) = match command {
            VersionCommand::Undelete => (
                store.undelete_versions(&id, &self.versions).await?,
                "undeleted",
            ),
            VersionCommand::Destroy => (
                store.destroy_versions(&id, &self.versions).await?,
                "destroyed",
            ),
        };
        report_versions(&id, verb, &changed, self.json)
    }
}

/// Prints which versions of `id` changed (`verb`), or that none did.
pub fn report_versions(id: &SecretId, verb: &str, changed: &[u32], json: bool) -> Outcome {
    if json {
        print_json(&serde_json::json!({"id": id, "changed": changed}))?;
    } else if changed.is_empty() {
        println!("{id}: no version changed (already {verb})");
    } else {
        let list: Vec<String> = changed.iter().map(ToString::to_string).collect();
        println!("{verb} {id} version(s) {}", list.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

impl crate::cli::SettingsArgs {
    /// `strongroom settings`: prints the secret's settings, after changing those given.
    pub async fn run(self) -> Outcome {
        let store = open().await?;
        let id = store.secret_id(
            self.target.namespace.as_deref(),
            self.target.env.as_deref(),
            &self.key,
        )?;
        let mut settings = store.settings(&id).await?;
        if self.max_versions.is_some() || self.cas_required.is_some() {
            if let Some(max) = self.max_versions {
                settings.max_versions = (max > 0).then_some(max);
            }
            if let Some(required) = self.cas_required {
                settings.cas_required = required;
            }
            store.set_settings(&id, settings).await?;
        }
        let depth = store.config().history_depth;
        if self.json {
            print_json(&serde_json::json!({
                "id": id,
                "max_versions": settings.max_versions.unwrap_or(depth),
                "cas_required": settings.cas_required,
            }))?;
        } else {
            let kept = match settings.max_versions {
                Some(max) => max.to_string(),
                None => format!("{depth} (the server's)"),
            };
            println!(
                "{id}: keeps {kept} versions; check-and-set required: {}",
                settings.cas_required
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
