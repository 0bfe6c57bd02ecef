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
        let found = state.tokens.authenticate(token).await;
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
