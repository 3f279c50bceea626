//! Who is calling. The service layer resolves a credential into a [`Principal`]; every
//! use case then asks it for the permission it needs.
use crate::error::{Error, Result};
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};
use crate::rbac::{Permission, PermissionSet};

/// How the principal authenticated; its rate-limit bucket is one per credential (the API's
/// `rate_limit::Bucket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: Bearer cg_…` or `X-API-Key`.
    ApiKey(ApiKeyId),
    /// An RS256 JWT from the configured identity provider; holds the `sub` claim.
    Jwt(String),
    /// A password-login session cookie (unsafe methods need the CSRF token).
    Session(SessionId),
    /// casegate itself, running a workflow's post-actions (no credential; never from a request).
    System,
}

/// An authenticated caller acting within exactly one tenant.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The tenant every operation of this principal is confined to.
    pub tenant_id: TenantId,
    /// The tenant's slug, accepted in `X-Tenant-ID` like the id.
    pub tenant_slug: String,
    /// The user the principal acts as (for JWT users, a stable id derived from `iss` and `sub`).
    pub user_id: UserId,
    /// The user's email, when known.
    pub email: Option<String>,
    /// Role names as granted.
    pub roles: Vec<String>,
    /// The union of the roles' permissions.
    pub permissions: PermissionSet,
    /// The credential used.
    pub method: AuthMethod,
}

impl Principal {
    /// Fails with 403 `forbidden` unless the principal holds `p`.
    pub fn require(&self, p: Permission) -> Result<()> {
        if self.permissions.contains(p) {
            Ok(())
        } else {
            Err(Error::forbidden(p.as_str()))
        }
    }

    /// Whether an `X-Tenant-ID` header value names this principal's tenant (by id or slug).
    pub fn is_tenant(&self, header: &str) -> bool {
        match header.parse::<TenantId>() {
            Ok(id) => id == self.tenant_id,
            Err(_) => header == self.tenant_slug,
        }
    }
}

/// Where a request came from; recorded with every audit event it causes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client address (kept as an address: it is written out only where it is recorded).
    pub ip: Option<std::net::IpAddr>,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
}

/// A principal acting in one request: who, and from where. Dereferences to the [`Principal`].
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who (shared with the credential cache).
    pub principal: std::sync::Arc<Principal>,
    /// From where.
    pub origin: Origin,
}

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl Principal {
    /// casegate itself acting in `tenant` (post-actions): every permission, no roles, no user.
    pub fn system(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            tenant_slug: String::new(),
            user_id: UserId(uuid::Uuid::nil()),
            email: None,
            roles: Vec::new(),
            permissions: crate::rbac::PermissionSet::all(),
            method: AuthMethod::System,
        }
    }

    /// Whether this is casegate itself rather than a person or a key.
    pub fn is_system(&self) -> bool {
        self.method == AuthMethod::System
    }

    /// How the audit trail names this principal: the email, else `jwt:<sub>`, or `system`.
    pub fn audit_label(&self) -> String {
        if self.is_system() {
            return "system".into();
        }
        match (&self.email, &self.method) {
            (Some(e), _) => e.clone(),
            (None, AuthMethod::Jwt(sub)) => format!("jwt:{sub}"),
            (None, _) => self.user_id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;
    use crate::rbac::permissions_of;

    #[test]
    fn require_checks_the_role_permissions() {
        let p = Principal {
            tenant_id: TenantId::new_v4([1; 16]),
            tenant_slug: "acme".into(),
            user_id: UserId::new_v4([2; 16]),
            email: None,
            roles: vec!["auditor".into()],
            permissions: permissions_of(&["auditor"]),
            method: AuthMethod::Jwt("u1".into()),
        };
        assert!(p.require(Permission::AuditExport).is_ok());
        let e = p.require(Permission::AdminUsers).unwrap_err();
        assert_eq!(e.code, Code::Forbidden);
        assert!(e.message.contains("admin.users"));
    }
}
