//! The one error type of the service and domain layers. Each [`Code`] is a stable snake_case
//! string (the `error.code` of API.md) with a fixed HTTP status and error `type`; transports map
//! it without knowing the individual cases.
use serde_json::Value;
use std::fmt;

/// Result alias of the domain and service layers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! codes {
    ($($variant:ident = $code:literal, $status:literal, $kind:literal;)*) => {
        /// Stable error codes. Adding one is a contract change: document it in API.md terms.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            /// Every code, for documentation and exhaustiveness tests.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            /// The wire string, e.g. `tenant_mismatch`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }
            /// The HTTP status that carries this code.
            pub fn http_status(self) -> u16 {
                match self { $(Code::$variant => $status,)* }
            }
            /// The error `type` field: the broad family of the error.
            pub fn kind(self) -> &'static str {
                match self { $(Code::$variant => $kind,)* }
            }
        }
    };
}

codes! {
    MalformedRequest = "malformed_request", 400, "invalid_request_error";
    Unauthenticated = "unauthenticated", 401, "authentication_error";
    Forbidden = "forbidden", 403, "permission_error";
    TenantMismatch = "tenant_mismatch", 403, "permission_error";
    CsrfFailed = "csrf_failed", 403, "permission_error";
    SelfApprovalForbidden = "self_approval_forbidden", 403, "permission_error";
    NotAnEligibleApprover = "not_an_eligible_approver", 403, "permission_error";
    DuplicateApprover = "duplicate_approver", 403, "permission_error";
    RoleNotPermitted = "role_not_permitted", 403, "permission_error";
    StatusReserved = "status_reserved", 403, "permission_error";
    NotFound = "not_found", 404, "not_found_error";
    MethodNotAllowed = "method_not_allowed", 405, "invalid_request_error";
    AlreadyExists = "already_exists", 409, "conflict_error";
    ExportNotReady = "export_not_ready", 409, "conflict_error";
    VersionConflict = "version_conflict", 409, "conflict_error";
    AlreadyDecided = "already_decided", 409, "conflict_error";
    RequestPending = "request_pending", 409, "conflict_error";
    RequestNotPending = "request_not_pending", 409, "conflict_error";
    AlreadyCompleted = "already_completed", 409, "conflict_error";
    PayloadTooLarge = "payload_too_large", 413, "invalid_request_error";
    QueryTooComplex = "query_too_complex", 400, "invalid_request_error";
    ValidationFailed = "validation_failed", 422, "validation_error";
    InvalidTransition = "invalid_transition", 422, "validation_error";
    ReasonRequired = "reason_required", 422, "validation_error";
    FieldRestricted = "field_restricted", 422, "validation_error";
    InvalidWorkflow = "invalid_workflow", 422, "validation_error";
    TransitionDenied = "transition_denied", 422, "validation_error";
    PreconditionFailed = "precondition_failed", 422, "validation_error";
    UnresolvedMandatoryTasks = "unresolved_mandatory_tasks", 422, "validation_error";
    SarLocked = "sar_locked", 422, "validation_error";
    DocumentInvalid = "document_invalid", 422, "validation_error";
    RateLimited = "rate_limited", 429, "rate_limit_error";
    Internal = "internal", 500, "api_error";
    Unavailable = "unavailable", 503, "api_error";
    Timeout = "timeout", 503, "api_error";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a client can act on: a code, a human message, optionally the offending parameter
/// and structured details. Internal errors carry their cause for the log, never for the client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// The stable code.
    pub code: Code,
    /// A human-readable explanation, safe to show to the caller.
    pub message: String,
    /// The request field or parameter at fault, when there is one.
    pub param: Option<String>,
    /// Structured details (`details.allowed`, `details.problems`, …).
    pub details: Option<Value>,
    /// For 5xx errors: the underlying cause, logged by the transport and never sent.
    pub cause: Option<String>,
}

impl Error {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            details: None,
            cause: None,
        }
    }
    /// Names the offending parameter.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
    /// Attaches structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    /// 422 `validation_failed` naming `param`.
    pub fn validation(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Code::ValidationFailed, message).with_param(param)
    }
    /// 404 `not_found`. The message is the same whether the object is missing or belongs to
    /// another tenant, so that foreign ids reveal nothing (DESIGN.md principle 2).
    pub fn not_found(entity: &str) -> Self {
        Self::new(Code::NotFound, format!("{entity} not found"))
    }
    /// 403 `forbidden` for a missing permission.
    pub fn forbidden(permission: &str) -> Self {
        Self::new(
            Code::Forbidden,
            format!("this operation requires the `{permission}` permission"),
        )
        .with_details(serde_json::json!({ "required_permission": permission }))
    }
    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }
    /// 500 `internal`, keeping the cause for the log only.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut e = Self::new(Code::Internal, "internal error");
        e.cause = Some(cause.to_string());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_with_error_statuses() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_')
            );
            assert!((400..600).contains(&c.http_status()));
        }
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_message() {
        let e = Error::internal("connection refused to 10.0.0.5");
        assert_eq!(e.message, "internal error");
        assert_eq!(e.cause.as_deref(), Some("connection refused to 10.0.0.5"));
    }
}
