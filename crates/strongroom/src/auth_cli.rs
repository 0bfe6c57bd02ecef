//! `strongroom auth …`: auth methods from the operator's side (who holds the key and the
//! database). Each action is one of Vault's `sys/auth` and `auth/{path}/…` requests, run
//! in this process through the server's own handlers ([`strongroom_server::operator_request`]):
//! the same checks, the same sealed settings, the same `auth_config` audit events (actor
//! `cli:USER`), so the command line and the API can never disagree on what a role means.

use std::process::ExitCode;

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::cli::{AuthArgs, AuthCommand, AuthRoleCommand};
use crate::exit::{code, Failure};

impl AuthArgs {
    /// `strongroom auth list|enable|disable|config|role`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let store = crate::commands::open().await?;
        let operator = strongroom_store::tokens::Principal {
            id: None,
            name: store.actor_name().to_owned(),
            superuser: true,
            scopes: Vec::new(),
        };
        let state = strongroom_server::AppState {
            tokens: strongroom_store::tokens::Tokens::new(&store, None)?,
            store: Some(store.into()),
            gateway: None,
            metrics: None,
        };
        let call = |method: Method, path: String, body: Option<Value>| {
            let (state, operator) = (state.clone(), operator.clone());
            async move {
                let (status, answer) =
                    strongroom_server::operator_request(state, operator, method, &path, body).await;
                answered(status, answer)
            }
        };
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

/// A request's answer, or its errors as one failure (never a value sent: Vault's errors
/// name fields, not their contents).
fn answered(status: StatusCode, answer: Value) -> Result<Value, Failure> {
    if status.is_success() {
        return Ok(answer);
    }
    let errors: Vec<&str> = answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let message = if errors.is_empty() {
        match status {
            StatusCode::NOT_FOUND => "not found".to_owned(),
            other => format!("refused ({other})"),
        }
    } else {
        errors.join("; ")
    };
    Err(Failure {
        message,
        code: match status {
            StatusCode::NOT_FOUND => code::NOT_FOUND,
            s if s.is_client_error() => code::INPUT,
            _ => code::IO,
        },
    })
}

/// `FIELD=VALUE` pairs as a JSON object: `[`/`{` starts JSON, `@PATH` reads a file,
/// anything else is a string (lists as Vault's comma-joined strings).
fn fields_of(fields: &[String]) -> Result<Value, Failure> {
    let mut body = Map::new();
    for field in fields {
        let Some((name, value)) = field.split_once('=') else {
            return Err(Failure::input(format!("{field:?}: expected FIELD=VALUE")));
        };
        let value = if let Some(path) = value.strip_prefix('@') {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::io(format!("cannot read {path}: {e}")))?;
            Value::String(text)
        } else if value.starts_with('[') || value.starts_with('{') {
            serde_json::from_str(value)
                .map_err(|_| Failure::input(format!("{name}: the value is not valid JSON")))?
        } else {
            Value::String(value.to_owned())
        };
        body.insert(name.to_owned(), value);
    }
    Ok(Value::Object(body))
}
