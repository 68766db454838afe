//! API errors: JSON `{"error": {"code", "message", "field"?}}` with the right status, and the
//! JSON body extractor whose refusals name the offending field.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::patients::{FieldError, PatientError};
use crate::sites::SiteError;
use crate::storage::StorageError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Box<ErrorDetail>,
    pub retry_after: Option<u64>,
}

/// The `error` object of an error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `unauthenticated`, `forbidden`, `invalid`, `not-found`,
    /// `conflict`, `precondition-required`, `locked`, `too-large`, `internal`, …
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// The first field at fault, as a JSON path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// For a duplicate: the existing record's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
}

/// The envelope, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Box::new(ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
                fields: vec![],
                existing: None,
            }),
            retry_after: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: POST /api/v1/auth/login, then send the token as \
             `Authorization: Bearer <token>`",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        // The detail goes to the operator's log, not to the client. Errors here never carry
        // patient data (they come from storage and i/o).
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete this request; nothing was changed unless a later \
             read shows it",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res =
            (self.status, Json(serde_json::json!({ "error": self.body }))).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&s.to_string()).expect("digits"),
            );
        }
        res
    }
}

impl From<PatientError> for ApiError {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::Invalid(fields) => {
                let first = fields.first().cloned();
                let mut err = ApiError::invalid(match &first {
                    Some(f) => format!("{}: {}", f.field, f.message),
                    None => "the patient record is not valid".into(),
                });
                err.body.field = first.map(|f| f.field);
                err.body.fields = fields;
                err
            }
            PatientError::NotFound(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no patient with id {id}"),
            ),
            PatientError::Conflict { message, existing } => {
                let mut err = ApiError::new(StatusCode::CONFLICT, "conflict", message);
                err.body.existing = existing;
                err
            }
            e @ PatientError::Stale { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            PatientError::Denied(m) => ApiError::forbidden(m),
            PatientError::BadQuery(m) => ApiError::invalid(m),
            PatientError::Storage(e) => e.into(),
            PatientError::Audit(e) => ApiError::internal(e),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "someone else changed this at the same moment; reload and try again",
            ),
            e => ApiError::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "user name or password is wrong",
            ),
            AuthError::Locked(s) => {
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "locked",
                    format!("too many failed sign-ins; try again in {s} seconds"),
                );
                err.retry_after = Some(s);
                err
            }
            AuthError::Invalid(m) => ApiError::invalid(m),
            AuthError::Exists(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            AuthError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not-found", m),
            AuthError::Storage(e) => e.into(),
        }
    }
}

impl From<SiteError> for ApiError {
    fn from(e: SiteError) -> Self {
        match e {
            SiteError::Invalid(m) => ApiError::invalid(m).field("id"),
            SiteError::InvalidName(m) => ApiError::invalid(m).field("name"),
            e @ SiteError::Exists(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            SiteError::Storage(e) => e.into(),
        }
    }
}

impl From<crate::access::Refusal> for ApiError {
    fn from(r: crate::access::Refusal) -> Self {
        match r {
            crate::access::Refusal::Denied(m) => ApiError::forbidden(m),
            crate::access::Refusal::Audit(e) => e.into(),
        }
    }
}

impl From<crate::audit::AuditError> for ApiError {
    fn from(e: crate::audit::AuditError) -> Self {
        match e {
            crate::audit::AuditError::Storage(e) => e.into(),
            e @ crate::audit::AuditError::BadCursor => {
                ApiError::invalid(e.to_string()).field("cursor")
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(e)
    }
}

/// A JSON request body. A malformed body is refused with 400 naming the field; an oversized
/// one with 413.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !(ct.starts_with("application/json") || ct.starts_with("application/fhir+json")) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "send the body as application/json",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::invalid(format!("could not read the request body: {r}"))
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut *de) {
            Ok(v) => match de.end() {
                Ok(()) => Ok(JsonBody(v)),
                // `{"a":1} trailing` would otherwise be taken as `{"a":1}`.
                Err(e) => Err(ApiError::invalid(format!(
                    "the JSON body is not valid: there is more after the JSON value ({e}); \
                     send exactly one JSON value"
                ))),
            },
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let mut err = ApiError::invalid(format!("the JSON body is not valid: {inner}"));
                if path != "." {
                    err.body.field = Some(path.clone());
                    err.body.fields = vec![FieldError {
                        field: path,
                        message: inner.to_string(),
                    }];
                }
                Err(err)
            }
        }
    }
}
