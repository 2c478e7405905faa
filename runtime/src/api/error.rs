//! Every failure of a request, as a status and a `{"error": "…"}` body: the one place errors
//! become responses. Nothing here has a side effect.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::wire::ErrorBody;

use crate::core::auth::Refusal;
use crate::core::coordinator::CoreError;
use crate::engine::EngineError;

/// A request that failed: what the caller is told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The error text.
    pub message: String,
    /// For 405: the methods the path takes (the `Allow` header).
    pub allow: Option<String>,
}

impl ApiError {
    /// A failure with this status and text.
    #[must_use]
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }

    /// 400 with this text.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 `task not found`.
    #[must_use]
    pub fn task_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "task not found")
    }

    /// 403 `forbidden`.
    #[must_use]
    pub fn forbidden() -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden")
    }

    /// 401 `unauthorized`.
    #[must_use]
    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized")
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut error = ApiError::new(status, refusal.to_string());
        if let Refusal::MethodNotAllowed(allow) = refusal {
            error.allow = Some(allow);
        }
        error
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let status = match &error {
            EngineError::Core(CoreError::TaskNotFound(_)) => {
                return ApiError::task_not_found();
            }
            EngineError::Core(CoreError::InvalidPrompt(_) | CoreError::AlreadyClosing(_))
            | EngineError::Invalid(_) => StatusCode::BAD_REQUEST,
            EngineError::Core(
                CoreError::QueueFull
                | CoreError::QueueBytesFull
                | CoreError::TooManyTasks
                | CoreError::TooManyWaiters(_),
            )
            | EngineError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            EngineError::Core(
                CoreError::NotMergeable(_)
                | CoreError::NotRespawnable(_)
                | CoreError::Closing(_)
                | CoreError::BeingMerged(_),
            )
            | EngineError::Conflict(_) => StatusCode::CONFLICT,
            EngineError::Missing(_) => StatusCode::NOT_FOUND,
            EngineError::Forbidden => return ApiError::forbidden(),
            EngineError::Unavailable => {
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "coordinator not available");
            }
            EngineError::Core(CoreError::CoordinatorNotFound(_)) | EngineError::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(
            self.status,
            &ErrorBody {
                error: self.message.into(),
            },
        );
        if let Some(allow) = self.allow.and_then(|allow| allow.parse().ok()) {
            response
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
        response
    }
}

/// A JSON response: `value` written once into the body's buffer (no intermediate `Value`).
pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    // Writing into a Vec fails only when a map has a key that is not a string: none here.
    let body = serde_json::to_vec(value).unwrap_or_default();
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
