//! The API's errors and their JSON shape: `{"error": "...", "problems": [{"path", "msg"}]}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One problem of a request body, at a JSON path (`$` is the body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub msg: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is wrong: every problem with its JSON path.
    #[error("{msg}")]
    Invalid { msg: String, problems: Vec<Problem> },
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "missing or unknown bearer token: send Authorization: Bearer TOKEN (zonesd token create)"
    )]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A zone tool refused (the zone's state does not allow it, a name is taken, ...).
    #[error("{0}")]
    Conflict(String),
    #[error("request body over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Internal(String),
}

/// A JSON response body (axum's own `Json` needs its `json` feature, which changes serde_json
/// for every binary of the package).
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}

/// The error text of a response, for the audit log.
#[derive(Debug, Clone)]
pub struct ErrorNote(pub String);

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A body problem at one path.
    pub fn at(path: &str, msg: impl Into<String>) -> ApiError {
        let msg = msg.into();
        ApiError::Invalid {
            msg: format!("{path}: {msg}"),
            problems: vec![Problem {
                path: path.into(),
                msg,
            }],
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = self.to_string();
        let problems = match &self {
            ApiError::Invalid { problems, .. } => problems.clone(),
            _ => Vec::new(),
        };
        let body = serde_json::json!({ "error": text, "problems": problems });
        let mut resp = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp.extensions_mut().insert(ErrorNote(text));
        resp
    }
}
