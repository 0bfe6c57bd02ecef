//! `strongroom cp` and `strongroom mv`: the value moves inside the store, never through
//! this process's output.

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
