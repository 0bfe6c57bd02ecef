//! `strongroom run --dynamic NAME=database/creds/ROLE -- CMD`: a login of its own for the
//! command, made before it starts (`NAME_USERNAME`, `NAME_PASSWORD`), renewed while it
//! runs (at two thirds of each lease), revoked when it ends — also when it ends on a
//! forwarded SIGINT or SIGTERM. `run` is the key's holder, so the leases are made through
//! the server's handlers in this process ([`crate::operator`]) and no token is involved;
//! should this process be killed (SIGKILL), the leases end on time anyway, by a running
//! server's sweeper.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use strongroom_crypto::secrecy::SecretString;

use crate::exit::Failure;
use crate::operator::Operator;

/// The logins a command was given, and the task that renews them.
pub(crate) struct DynamicLogins {
    operator: Arc<Operator>,
    leases: Vec<String>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

/// One `--dynamic NAME=database/creds/ROLE`: the variable prefix and the path.
fn parse(spec: &str) -> Result<(String, String), Failure> {
    let invalid = || {
        Failure::input(format!(
            "--dynamic {spec:?}: expected NAME=database/creds/ROLE (NAME a variable name)"
        ))
    };
    let (name, path) = spec.split_once('=').ok_or_else(invalid)?;
    let valid_name = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let role = path.strip_prefix("database/creds/").ok_or_else(invalid)?;
    if !valid_name || role.is_empty() || role.contains('/') {
        return Err(invalid());
    }
    Ok((name.to_owned(), path.to_owned()))
}

impl DynamicLogins {
    /// Makes a login for each spec; the variables to set (name, value). Nothing is left
    /// behind when one fails: the leases already made are revoked.
    pub(crate) async fn issue(
        store: strongroom_store::Store,
        specs: &[String],
    ) -> Result<(Self, Vec<(String, SecretString)>), Failure> {
        let parsed = specs
            .iter()
            .map(|s| parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut logins = Self {
            operator: Arc::new(Operator::with_store(store)?),
            leases: Vec::new(),
            renewer: None,
        };
        let mut vars = Vec::new();
        let mut durations = Vec::new();
        for (name, path) in parsed {
            match logins.operator.call(Method::GET, path, None).await {
                Ok(answer) => {
                    let text = |field: &str| {
                        answer["data"][field]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    };
                    logins
                        .leases
                        .push(answer["lease_id"].as_str().unwrap_or_default().to_owned());
                    durations.push(answer["lease_duration"].as_u64().unwrap_or(0));
                    vars.push((
                        format!("{name}_USERNAME"),
                        SecretString::from(text("username")),
                    ));
                    vars.push((
                        format!("{name}_PASSWORD"),
                        SecretString::from(text("password")),
                    ));
                }
                Err(failure) => {
                    logins.revoke_all().await;
                    return Err(failure);
                }
            }
        }
        logins.start_renewing(durations);
        Ok((logins, vars))
    }

    /// Renews every lease at two thirds of its duration, for as long as the command runs
    /// (a renewal past the role's max ttl gets a shorter lease; the command ends first).
    fn start_renewing(&mut self, durations: Vec<u64>) {
        let (operator, leases) = (Arc::clone(&self.operator), self.leases.clone());
        let Some(shortest) = durations.into_iter().filter(|d| *d > 0).min() else {
            return;
        };
        self.renewer = Some(tokio::spawn(async move {
            let mut every = Duration::from_secs(shortest * 2 / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                for lease in &leases {
                    let body = json!({ "lease_id": lease });
                    match operator
                        .call(Method::PUT, "sys/leases/renew".into(), Some(body))
                        .await
                    {
                        Ok(answer) => {
                            let left = answer["lease_duration"].as_u64().unwrap_or(0);
                            every = every
                                .min(Duration::from_secs(left * 2 / 3).max(Duration::from_secs(1)));
                        }
                        Err(failure) => {
                            eprintln!("strongroom: could not renew {lease}: {}", failure.message);
                        }
                    }
                }
            }
        }));
    }

    /// Stops renewing and revokes every lease (their logins are dropped; a database that
    /// can not be reached leaves them to a server's sweeper).
    pub(crate) async fn revoke_all(mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        for lease in std::mem::take(&mut self.leases) {
            let body = json!({ "lease_id": lease });
            if let Err(failure) = self
                .operator
                .call(Method::PUT, "sys/leases/revoke".into(), Some(body))
                .await
            {
                eprintln!("strongroom: could not revoke {lease}: {}", failure.message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_variable_and_a_role() {
        assert_eq!(
            parse("DB=database/creds/app").unwrap(),
            ("DB".to_owned(), "database/creds/app".to_owned())
        );
        for bad in [
            "DB",
            "1DB=database/creds/app",
            "D-B=database/creds/app",
            "DB=secret/data/x",
            "DB=database/creds/",
            "DB=database/creds/a/b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
