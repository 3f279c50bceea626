//! REST handlers under `/api/v1`, one module per resource, each exposing `router()`. Handlers
//! are thin: extract, call `casegate_service`, shape the answer.
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::extract::ConnectInfo;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use casegate_domain::Error;
use casegate_domain::principal::{Caller, Origin, Principal};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod bodies;
pub mod cases;
pub mod roles;
pub mod sars;
pub mod tasks;
pub mod users;
pub mod webhooks;

/// Routes that need a credential.
pub fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::router())
        .merge(api_keys::router())
        .merge(audit::router())
        .merge(cases::router())
        .merge(approvals::router())
        .merge(tasks::router())
        .merge(sars::router())
        .merge(webhooks::router())
        .merge(roles::router())
        .merge(auth::protected_router())
}

/// Routes that do not (login).
pub fn public() -> OpenApiRouter<AppState> {
    auth::public_router()
}

/// The authenticated caller with the request's origin, put in the request by the
/// authentication layer.
pub struct Auth(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .ok_or_else(|| ApiError(Error::unauthenticated("authentication required")))?;
        Ok(Auth(Caller {
            principal,
            origin: origin_of(parts),
        }))
    }
}

/// Where the request came from: client address and request id (for the audit trail).
pub fn origin_of(parts: &Parts) -> Origin {
    Origin {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        request_id: Some(crate::error::current_request_id()).filter(|s| !s.is_empty()),
    }
}

/// The request's origin, for handlers without a principal (login).
pub struct ReqOrigin(pub Origin);

impl<S: Send + Sync> FromRequestParts<S> for ReqOrigin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqOrigin(origin_of(parts)))
    }
}

/// A whole-number query parameter.
pub(crate) fn int_param(k: &str, v: &str) -> ApiResult<i64> {
    v.parse::<i64>()
        .map_err(|_| ApiError(Error::validation(k, "must be an integer")))
}

/// A `true|false` query parameter.
pub(crate) fn flag_param(k: &str, v: &str) -> ApiResult<bool> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError(Error::validation(k, "must be true or false"))),
    }
}

/// A 422 naming an unknown query parameter and the known ones.
pub(crate) fn unknown_param(k: &str, known: &[&str]) -> ApiError {
    ApiError(Error::validation(
        k,
        format!(
            "unknown parameter `{k}` (expected one of {})",
            known.join(", ")
        ),
    ))
}

/// `limit` and `offset`, refusing any other parameter but `extra`.
pub(crate) fn paging(
    params: Vec<(String, String)>,
    extra: &[&str],
) -> ApiResult<(casegate_service::Page, Vec<(String, String)>)> {
    let (mut limit, mut offset, mut rest) = (None, None, Vec::new());
    for (k, v) in params {
        match k.as_str() {
            "limit" => limit = Some(int_param("limit", &v)?),
            "offset" => offset = Some(int_param("offset", &v)?),
            other if extra.contains(&other) => rest.push((k, v)),
            _ => {
                let mut known = vec!["limit", "offset"];
                known.extend_from_slice(extra);
                return Err(unknown_param(&k, &known));
            }
        }
    }
    Ok((casegate_service::Page::new(limit, offset)?, rest))
}

/// `limit` and `offset` of list endpoints (API.md "Lists").
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page, 1–200 (default 20).
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    pub offset: Option<i64>,
}

impl PageQuery {
    /// Validates into a service page.
    pub fn page(&self) -> ApiResult<casegate_service::Page> {
        Ok(casegate_service::Page::new(self.limit, self.offset)?)
    }
}
