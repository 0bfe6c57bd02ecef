//! `strongroom cp` and `strongroom mv`: the value moves inside the store, never through
//! this process's output. Also `undelete` and `destroy` of single versions (and the
//! report of `rm --version`).

use std::process::ExitCode;

use strongroom_store::SecretId;

use crate::commands::{open, print_json, Outcome};

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
