//! `strongroom auth …`: auth methods from the operator's side (who holds the key and the
//! database). Each action is one of Vault's `sys/auth` and `auth/{path}/…` requests, run
//! in this process through the server's own handlers ([`strongroom_server::operator_request`]):
//! the same checks, the same sealed settings, the same `auth_config` audit events (actor
//! `cli:USER`), so the command line and the API can never disagree on what a role means.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{AuthArgs, AuthCommand, AuthRoleCommand};
use crate::exit::Failure;
use crate::operator::{fields_of, Operator};

impl AuthArgs {
    /// `strongroom auth list|enable|disable|config|role`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let operator = Operator::open().await?;
        let call =
            |method: Method, path: String, body: Option<Value>| operator.call(method, path, body);
        match self.action {
            AuthCommand::List { json } => {
                let answer = call(Method::GET, "sys/auth".into(), None).await?;
                let methods = answer.get("data").cloned().unwrap_or(Value::Null);
                if json {
                    crate::output::print_json(&methods)?;
                } else {
                    println!("{:<24} {:<12} DESCRIPTION", "PATH", "TYPE");
                    for (path, method) in methods.as_object().into_iter().flatten() {
                        println!(
                            "{:<24} {:<12} {}",
                            path,
                            method["type"].as_str().unwrap_or_default(),
                            method["description"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            AuthCommand::Enable {
                kind,
                path,
                description,
            } => {
                let path = path.unwrap_or_else(|| kind.clone());
                let body = json!({"type": kind, "description": description.unwrap_or_default()});
                call(Method::POST, format!("sys/auth/{path}"), Some(body)).await?;
                println!("enabled {kind} at auth/{path}/");
            }
            AuthCommand::Disable { path } => {
                call(Method::DELETE, format!("sys/auth/{path}"), None).await?;
                println!("disabled auth/{path}/ (its tokens no longer work)");
            }
            AuthCommand::Config { path, fields } if fields.is_empty() => {
                let answer = call(Method::GET, format!("auth/{path}/config"), None).await?;
                crate::output::print_json(&answer["data"])?;
            }
            AuthCommand::Config { path, fields } => {
                let body = fields_of(&fields)?;
                call(Method::POST, format!("auth/{path}/config"), Some(body)).await?;
                println!("configured auth/{path}/");
            }
            AuthCommand::Role { action } => return role(action, call).await,
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `strongroom auth role …`.
async fn role<F, Fut>(action: AuthRoleCommand, call: F) -> Result<ExitCode, Failure>
where
    F: Fn(Method, String, Option<Value>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Failure>>,
{
    match action {
        AuthRoleCommand::Write { path, name, fields } => {
            let body = fields_of(&fields)?;
            call(Method::POST, format!("auth/{path}/role/{name}"), Some(body)).await?;
            println!("wrote role {name} of auth/{path}/");
        }
        AuthRoleCommand::Read { path, name } => {
            let answer = call(Method::GET, format!("auth/{path}/role/{name}"), None).await?;
            crate::output::print_json(&answer["data"])?;
        }
        AuthRoleCommand::List { path } => {
            let answer = call(Method::GET, format!("auth/{path}/role?list=true"), None).await?;
            for name in answer["data"]["keys"].as_array().into_iter().flatten() {
                println!("{}", name.as_str().unwrap_or_default());
            }
        }
        AuthRoleCommand::Delete { path, name } => {
            call(Method::DELETE, format!("auth/{path}/role/{name}"), None).await?;
            println!("deleted role {name} of auth/{path}/");
        }
        AuthRoleCommand::RoleId { path, name } => {
            let answer = call(
                Method::GET,
                format!("auth/{path}/role/{name}/role-id"),
                None,
            )
            .await?;
            println!("{}", answer["data"]["role_id"].as_str().unwrap_or_default());
        }
        AuthRoleCommand::SecretId { path, name, fields } => {
            let body = fields_of(&fields)?;
            let answer = call(
                Method::POST,
                format!("auth/{path}/role/{name}/secret-id"),
                Some(body),
            )
            .await?;
            crate::output::print_json(&answer["data"])?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
