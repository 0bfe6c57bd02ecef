//! Request extractors: the caller's token, and JSON/query bodies whose rejections use
//! the API's error shape without echoing any input.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use strongroom_store::tokens::Principal;

use crate::{ApiError, AppState};

/// The authenticated caller (401 when the bearer token is missing or unknown).
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let found = state
            .tokens
            .authenticate_from(token, crate::peer_ip(parts))
            .await;
        if let (Some(metrics), Ok(principal)) = (&state.metrics, &found) {
            metrics.token_lookup(principal.is_some());
        }
        match found {
            Ok(Some(principal)) => Ok(Self(principal)),
            Ok(None) => Err(ApiError::unauthorized()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A JSON body. Malformed or oversized bodies give one clear error that never repeats the
/// body (it may hold a value).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_input",
            "expected Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(_) => {
            ApiError::bad_request("the JSON body does not have the expected fields and types")
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("the body is not valid JSON"),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        ),
        other => ApiError::new(
            other.status(),
            "invalid_input",
            "the request body could not be read",
        ),
    }
}

/// Query parameters, with the API's error shape on rejection.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            // Never repeat the query: a mistyped value might be a secret.
            Err(_) => Err(ApiError::bad_request("invalid query parameters")),
        }
    }
}

/// The prologue of every handler of one secret, once: the caller (401), the secret's key
/// from the path, its namespace and env from the query (400), and the store (503 without
/// a master key). The handler reaches the store only through [`SecretRequest::scoped`],
/// the caller's doors of `authz.rs`.
pub(crate) struct SecretRequest {
    secrets: crate::authz::Secrets,
    caller: Principal,
    key: String,
    namespace: Option<String>,
    env: Option<String>,
}

/// `env` and `namespace` query parameters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TargetQuery {
    /// Environment (default: the server's default env). Reads fall back along its chain.
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    pub(crate) env: Option<String>,
    /// Namespace (default `default`).
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    pub(crate) namespace: Option<String>,
}

impl FromRequestParts<AppState> for SecretRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(caller) = Caller::from_request_parts(parts, state).await?;
        let axum::extract::Path(mut path) = axum::extract::Path::<
            std::collections::HashMap<String, String>,
        >::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::bad_request("invalid path"))?;
        let key = path
            .remove("key")
            .ok_or_else(|| ApiError::bad_request("the path names no secret"))?;
        let ApiQuery(place) = ApiQuery::<TargetQuery>::from_request_parts(parts, state).await?;
        let secrets = crate::routes::secrets_of(state)?.clone();
        Ok(Self {
            secrets,
            caller,
            key,
            namespace: place.namespace,
            env: place.env,
        })
    }
}

impl SecretRequest {
    /// The store as this caller may use it.
    pub(crate) fn scoped(&self) -> crate::authz::Scoped<'_> {
        self.secrets.caller(&self.caller)
    }

    /// The secret named by the path and query (defaults applied, names checked; a name,
    /// not a permission).
    pub(crate) fn id(&self) -> Result<strongroom_store::SecretId, ApiError> {
        self.id_in(None)
    }

    /// The same, in `env` when the body names one (a body's env wins over the query's).
    pub(crate) fn id_in(&self, env: Option<&str>) -> Result<strongroom_store::SecretId, ApiError> {
        Ok(self.secrets.caller(&self.caller).secret_id(
            self.namespace.as_deref(),
            env.or(self.env.as_deref()),
            &self.key,
        )?)
    }
}
