//! `strongroom db …` and `strongroom lease …`: dynamic PostgreSQL logins and their leases
//! from the operator's side, through the server's own handlers in this process
//! ([`crate::operator`]). A lease made here is ended on time by any running server's
//! sweeper (the leases live in the database).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{DbArgs, DbCommand, LeaseArgs, LeaseCommand};
use crate::exit::Failure;
use crate::operator::{fields_of, Operator};

impl DbArgs {
    /// `strongroom db config|role|creds`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let operator = Operator::open().await?;
        let (kind, name, fields) = match self.action {
            DbCommand::Creds { role } => {
                let answer = operator
                    .call(Method::GET, format!("database/creds/{role}"), None)
                    .await?;
                crate::output::print_json(&json!({
                    "lease_id": answer["lease_id"],
                    "lease_duration": answer["lease_duration"],
                    "username": answer["data"]["username"],
                    "password": answer["data"]["password"],
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            DbCommand::Config { name, fields } => ("config", name, fields),
            DbCommand::Role { name, fields } => ("roles", name, fields),
        };
        let path = format!("database/{kind}/{name}");
        if fields.is_empty() {
            let answer = operator.call(Method::GET, path, None).await?;
            crate::output::print_json(&answer["data"])?;
        } else {
            operator
                .call(Method::POST, path, Some(fields_of(&fields)?))
                .await?;
            println!("wrote database/{kind}/{name}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl LeaseArgs {
    /// `strongroom lease list|renew|revoke`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        let operator = Operator::open().await?;
        match self.action {
            LeaseCommand::List { prefix } => {
                for id in lease_ids(&operator, &prefix).await? {
                    println!("{id}");
                }
            }
            LeaseCommand::Renew {
                lease_id,
                increment,
            } => {
                let mut body = json!({ "lease_id": lease_id });
                if let Some(increment) = increment {
                    body["increment"] = Value::String(increment);
                }
                let answer = operator
                    .call(Method::PUT, "sys/leases/renew".into(), Some(body))
                    .await?;
                println!(
                    "renewed {lease_id}: {} s left",
                    answer["lease_duration"].as_i64().unwrap_or_default()
                );
            }
            LeaseCommand::Revoke {
                lease_id: Some(lease_id),
                ..
            } => {
                let body = json!({ "lease_id": lease_id });
                operator
                    .call(Method::PUT, "sys/leases/revoke".into(), Some(body))
                    .await?;
                println!("revoked {lease_id}");
            }
            LeaseCommand::Revoke {
                prefix: Some(prefix),
                ..
            } => {
                operator
                    .call(
                        Method::PUT,
                        format!("sys/leases/revoke-prefix/{prefix}"),
                        None,
                    )
                    .await?;
                println!("revoked every lease under {prefix}");
            }
            LeaseCommand::Revoke { .. } => {
                return Err(Failure::input("name a lease, or give --prefix"));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Every live lease id under `prefix`, walking Vault's one-segment listings.
async fn lease_ids(operator: &Operator, prefix: &str) -> Result<Vec<String>, Failure> {
    let mut pending = vec![format!("{}/", prefix.trim_end_matches('/'))];
    let mut ids = Vec::new();
    while let Some(path) = pending.pop() {
        let keys = match operator
            .call(
                Method::GET,
                format!("sys/leases/lookup/{path}?list=true"),
                None,
            )
            .await
        {
            Ok(answer) => answer["data"]["keys"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            Err(e) if e.code == crate::exit::code::NOT_FOUND => Vec::new(),
            Err(e) => return Err(e),
        };
        for key in keys.iter().filter_map(Value::as_str) {
            if key.ends_with('/') {
                pending.push(format!("{path}{key}"));
            } else {
                ids.push(format!("{path}{key}"));
            }
        }
    }
    ids.sort();
    Ok(ids)
}
