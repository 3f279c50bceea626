//! The one place service errors become HTTP responses (API.md error shape), and the extractors
//! that turn malformed input into that shape instead of axum's plain-text rejections.
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use casegate_domain::{Code, Error};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use utoipa::ToSchema;

tokio::task_local! {
    /// The id of the request being served, set by the observing middleware so that error
    /// bodies can carry it without threading it through every handler.
    pub static REQUEST_ID: HeaderValue;
}

/// The current request id, or an empty string outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Result alias of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// A service error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<casegate_store::StoreError> for ApiError {
    fn from(e: casegate_store::StoreError) -> Self {
        Self(e.into())
    }
}

/// The error envelope of API.md.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error object.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The broad family (`validation_error`, `authentication_error`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The stable code (`tenant_mismatch`, `validation_failed`, …).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, if any.
    pub param: Option<String>,
    /// Equals the `X-Request-Id` response header.
    pub request_id: String,
    /// Structured details (`allowed`, `problems`, `failures`, …).
    pub details: Value,
}

impl ErrorDetail {
    /// What the client is told about `e` (REST body, GraphQL extensions). A 5xx error's cause
    /// goes to the log here and nowhere else; the client gets the generic message.
    pub fn of(e: Error) -> Self {
        let request_id = current_request_id();
        if e.code.http_status() >= 500 {
            tracing::error!(request_id = %request_id, code = e.code.as_str(), cause = e.cause.as_deref().unwrap_or(""), "request failed");
        }
        Self {
            kind: e.code.kind().to_string(),
            code: e.code.as_str().to_string(),
            message: e.message,
            param: e.param,
            request_id,
            details: e.details.unwrap_or_else(|| json!({})),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code;
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail::of(self.0),
        };
        let mut resp = (status, Json(body)).into_response();
        if code == Code::PayloadTooLarge {
            // The rest of the body is not read: the connection cannot carry another request.
            resp.headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
        }
        if code == Code::Unauthenticated {
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"casegate\""),
            );
        }
        resp
    }
}

/// Splits serde's "path: message" into the parameter and a message.
fn param_of(text: &str) -> (Option<String>, String) {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to deserialize query string: "))
        .unwrap_or(text);
    if let Some(rest) = text.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return (Some(field.to_string()), format!("`{field}` is required"));
    }
    if let Some((path, msg)) = text.split_once(": ")
        && !path.contains(' ')
        && !path.is_empty()
    {
        return (Some(path.to_string()), msg.to_string());
    }
    if let Some(rest) = text.split("unknown field `").nth(1) {
        let field = rest.split('`').next().unwrap_or_default();
        return (Some(field.to_string()), format!("unknown field `{field}`"));
    }
    (None, text.to_string())
}

/// A JSON response body. axum's `Json` serialises through a `BytesMut` writer, which pays a
/// bounds-checked `put_slice` and the generic `write_all` loop for each of the hundreds of small
/// writes serde makes (a quarter of the instructions of `GET /me` in a callgrind profile,
/// docs/benchmarks.md); a `Vec` takes them as plain appends. A value that cannot be serialised
/// is a 500 in the API.md shape.
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(512);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                buf,
            )
                .into_response(),
            Err(e) => ApiError(Error::internal(e)).into_response(),
        }
    }
}

/// `Json<T>` with API.md errors: bad syntax 400, wrong shape 422 naming the field, too large 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(r) => Err(ApiError(json_rejection(r))),
        }
    }
}

/// A JSON body that may be left out entirely (no `Content-Type`, no bytes): then `T::default()`.
/// A body that is present is read exactly as [`ApiJson`] reads it.
pub struct OptJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let h = req.headers();
        let empty = !h.contains_key(axum::http::header::CONTENT_TYPE)
            && h.get(axum::http::header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
        if empty {
            return Ok(Self(T::default()));
        }
        ApiJson::from_request(req, state)
            .await
            .map(|ApiJson(v)| Self(v))
    }
}

/// Maps a JSON extraction failure to the API.md error (400 syntax, 422 shape, 413 size).
pub fn json_rejection(r: JsonRejection) -> Error {
    match r {
        JsonRejection::JsonDataError(e) => {
            let (param, msg) = param_of(&e.body_text());
            let mut err = Error::new(Code::ValidationFailed, msg);
            err.param = param;
            err
        }
        JsonRejection::JsonSyntaxError(_) => {
            Error::new(Code::MalformedRequest, "the body is not valid JSON")
        }
        JsonRejection::MissingJsonContentType(_) => Error::new(
            Code::MalformedRequest,
            "expected a JSON body with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            too_large()
        }
        other => Error::new(Code::MalformedRequest, other.body_text()),
    }
}

/// 413 `payload_too_large`.
pub fn too_large() -> Error {
    Error::new(
        Code::PayloadTooLarge,
        "the request body is larger than this server accepts",
    )
}

/// `Query<T>` with API.md errors (422 naming the parameter).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Self(q.0)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let (param, msg) = param_of(&e.body_text());
                let mut err = Error::new(Code::ValidationFailed, msg);
                err.param = param;
                Err(ApiError(err))
            }
            Err(other) => Err(ApiError(Error::new(
                Code::MalformedRequest,
                other.body_text(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_field() {
        assert_eq!(param_of("Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2").0.as_deref(), Some("email"));
        assert_eq!(param_of("Failed to deserialize the JSON body into the target type: roles[0]: invalid type: integer `1`, expected a string at line 1 column 12").0.as_deref(), Some("roles[0]"));
        assert_eq!(param_of("Failed to deserialize the JSON body into the target type: unknown field `rolez`, expected one of").0.as_deref(), Some("rolez"));
        assert_eq!(
            param_of("limit: invalid digit found in string")
                .0
                .as_deref(),
            Some("limit")
        );
    }
}
