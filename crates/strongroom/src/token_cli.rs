//! `strongroom token …`: API tokens from the operator's side (who holds the key): create
//! with a ttl, a max, a use count; list with accessors, expiry and uses left; revoke by
//! name or accessor (with the tokens made under it); look one up by accessor.

use std::process::ExitCode;

use strongroom_crypto::secrecy::ExposeSecret as _;
use strongroom_store::tokens::{Scope, TokenRequest, Tokens};

use crate::cli::TokenCommand;
use crate::exit::Failure;

impl crate::cli::TokenArgs {
    /// `strongroom token create|list|revoke`.
    pub async fn run(self) -> Result<ExitCode, Failure> {
        token(self.action).await
    }
}

/// `strongroom token ...`: needs the database and the key (token rows are tagged and
/// checked under it; creations and revocations are audited as `cli:USER`).
async fn token(action: TokenCommand) -> Result<ExitCode, Failure> {
    let store = crate::commands::open().await?;
    let tokens = Tokens::new(&store, None)?;
    match action {
        create @ TokenCommand::Create { .. } => return create_token(&tokens, create).await,
        TokenCommand::List { json } => list(&tokens, json).await?,
        TokenCommand::Revoke { name, accessor } => match (name, accessor) {
            (Some(name), _) => {
                tokens.revoke(&name).await?;
                println!("revoked token {name:?} and the tokens made under it");
            }
            (None, Some(accessor)) => {
                tokens.revoke_accessor(&accessor, &operator()).await?;
                println!("revoked the token with accessor {accessor} and the tokens made under it");
            }
            (None, None) => return Err(Failure::input("name a token, or give --accessor")),
        },
        TokenCommand::Lookup { accessor } => {
            let info = tokens
                .lookup_accessor(&accessor, &operator())
                .await?
                .ok_or_else(|| {
                    Failure::from(strongroom_store::StoreError::TokenNotFound {
                        name: accessor.clone(),
                    })
                })?;
            crate::output::print_json(&info)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The operator at the CLI, who holds the key: sees and revokes any token.
fn operator() -> strongroom_store::tokens::Principal {
    strongroom_store::tokens::Principal {
        id: None,
        name: "cli".into(),
        superuser: true,
        scopes: Vec::new(),
    }
}

/// A token's state for `token list`.
fn token_state(t: &strongroom_store::tokens::TokenInfo) -> String {
    let now = strongroom_store::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    );
    match (t.intact, t.revoked) {
        (false, _) => "refused: row altered (see doctor)".into(),
        (true, Some(r)) => format!("revoked {r}"),
        (true, None) if t.expires.is_some_and(|at| at <= now) => "expired".into(),
        (true, None) if t.uses_left == Some(0) => "used up".into(),
        (true, None) => "active".into(),
    }
}

/// `strongroom token create`.
async fn create_token(tokens: &Tokens, action: TokenCommand) -> Result<ExitCode, Failure> {
    let TokenCommand::Create {
        name,
        superuser,
        scope,
        ttl,
        max_ttl,
        uses,
        renewable,
        bound_cidr,
        json,
    } = action
    else {
        return Err(Failure::input("not a token creation"));
    };
    let scopes = scope
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let duration = |flag: &str, text: Option<String>| {
        text.map(|t| {
            strongroom_store::parse_duration(&t)
                .map_err(|e| Failure::input(format!("--{flag}: {e}")))
        })
        .transpose()
    };
    let request = TokenRequest {
        name,
        superuser,
        scopes,
        ttl: duration("ttl", ttl)?,
        max_ttl: duration("max-ttl", max_ttl)?,
        num_uses: uses,
        renewable,
        method: "token".into(),
        bound_cidrs: bound_cidr
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        Failure::input(format!("--bound-cidr: {text:?} is not a CIDR block"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let (info, secret) = tokens.create_with(request, None).await?;
    if json {
        crate::output::print_json(&serde_json::json!({
            "name": info.name,
            "id": info.id,
            "accessor": info.accessor,
            "superuser": info.superuser,
            "scopes": info.scopes,
            "expires": info.expires,
            "token": secret.expose_secret(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "created token {:?} ({}{}); it is shown once:",
        info.name,
        if info.superuser {
            "superuser".to_owned()
        } else {
            info.scopes.join(", ")
        },
        info.expires
            .map(|at| format!(", expires {at}"))
            .unwrap_or_default()
    );
    println!("{}", secret.expose_secret());
    Ok(ExitCode::SUCCESS)
}

/// `strongroom token list`.
async fn list(tokens: &Tokens, json: bool) -> Result<(), Failure> {
    let list = tokens.list().await?;
    if json {
        crate::output::print_json(&list)?;
    } else {
        let rows = list
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.id.clone(),
                    if t.superuser {
                        "superuser".into()
                    } else {
                        t.scopes.join(",")
                    },
                    t.accessor.clone(),
                    t.created.to_string(),
                    t.expires
                        .map_or_else(|| "never".into(), |at| at.to_string()),
                    t.uses_left
                        .map_or_else(|| "unlimited".into(), |n| n.to_string()),
                    token_state(t),
                ]
            })
            .collect();
        crate::output::print_table(
            &[
                "NAME",
                "ID",
                "SCOPE",
                "ACCESSOR",
                "CREATED",
                "EXPIRES",
                "USES LEFT",
                "STATE",
            ],
            rows,
        );
    }
    Ok(())
}
