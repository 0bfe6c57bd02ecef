//! The key's holder acting through the server's own Vault handlers, in this process and
//! with no token ([`strongroom_server::operator_request`]): `strongroom auth`, `db` and
//! `lease` run the same checks, write the same sealed settings and audit the same events
//! (actor `cli:USER`) as the API does.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::exit::{code, Failure};

/// The operator at the command line: the store opened with the key, as a superuser.
pub(crate) struct Operator {
    state: strongroom_server::AppState,
    principal: strongroom_store::tokens::Principal,
}

impl Operator {
    /// Opens the configured database with the key.
    pub(crate) async fn open() -> Result<Self, Failure> {
        Self::with_store(crate::commands::open().await?)
    }

    /// The operator of a store already opened with the key.
    pub(crate) fn with_store(store: strongroom_store::Store) -> Result<Self, Failure> {
        let principal = strongroom_store::tokens::Principal {
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
        Ok(Self { state, principal })
    }

    /// One `/v1/PATH` request: its JSON answer, or its errors as one failure.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let (status, answer) = strongroom_server::operator_request(
            self.state.clone(),
            self.principal.clone(),
            method,
            &path,
            body,
        )
        .await;
        answered(status, answer)
    }
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
pub(crate) fn fields_of(fields: &[String]) -> Result<Value, Failure> {
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
