//! The fixed permission catalogue and the built-in roles (DESIGN.md "Domain model").
//! A role is a bundle of permissions; a principal's permissions are the union of its roles'.
use serde::Serialize;
use std::fmt;

macro_rules! permissions {
    ($($variant:ident = $name:literal,)*) => {
        /// One permission of the fixed catalogue.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum Permission { $(#[serde(rename = $name)] $variant,)* }

        impl Permission {
            /// The whole catalogue, in declaration order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];
            /// The wire name, e.g. `case.view`.
            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }
            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(Permission::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    CaseView = "case.view",
    CaseCreate = "case.create",
    CaseEdit = "case.edit",
    CaseAssign = "case.assign",
    CaseTransition = "case.transition",
    CaseEscalate = "case.escalate",
    CaseDispose = "case.dispose",
    CaseOverride = "case.override",
    ApprovalDecide = "approval.decide",
    WorkflowAdmin = "workflow.admin",
    AuditView = "audit.view",
    AuditExport = "audit.export",
    SarView = "sar.view",
    SarEdit = "sar.edit",
    SarReview = "sar.review",
    PolicyEdit = "policy.edit",
    PolicySimulate = "policy.simulate",
    GraphView = "graph.view",
    GraphExecute = "graph.execute",
    WebhookAdmin = "webhook.admin",
    AdminUsers = "admin.users",
    AdminKeys = "admin.keys",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions as a bit mask over [`Permission::ALL`]: checks on the request path are
/// a single AND.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u64);

impl PermissionSet {
    /// The empty set.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    fn bit(p: Permission) -> u64 {
        1u64 << (p as u32)
    }
    /// Every permission of the catalogue.
    pub fn all() -> Self {
        Self::from_iter(Permission::ALL.iter().copied())
    }
    /// Whether `p` is in the set.
    pub fn contains(self, p: Permission) -> bool {
        self.0 & Self::bit(p) != 0
    }
    /// Adds `p`.
    pub fn insert(&mut self, p: Permission) {
        self.0 |= Self::bit(p);
    }
    /// The union of two sets.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
    /// The permissions in catalogue order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut s = Self::EMPTY;
        for p in iter {
            s.insert(p);
        }
        s
    }
}

/// The built-in roles, in the order of DESIGN.md.
pub const BUILTIN_ROLES: &[&str] = &[
    "analyst",
    "senior_analyst",
    "supervisor",
    "compliance_officer",
    "legal_counsel",
    "mlro",
    "auditor",
    "admin",
];

/// The permissions of a built-in role, or `None` for a name that is not built in.
pub fn builtin_role(name: &str) -> Option<PermissionSet> {
    use Permission::*;
    let analyst = [
        CaseView,
        CaseCreate,
        CaseEdit,
        CaseAssign,
        CaseTransition,
        CaseEscalate,
        CaseDispose,
        SarView,
        SarEdit,
        GraphView,
    ];
    let senior = [CaseOverride, ApprovalDecide, GraphExecute, PolicySimulate];
    let compliance = [
        CaseView,
        CaseTransition,
        ApprovalDecide,
        SarView,
        SarReview,
        AuditView,
        AuditExport,
        PolicySimulate,
    ];
    let set = |ps: &[Permission]| ps.iter().copied().collect::<PermissionSet>();
    Some(match name {
        "analyst" => set(&analyst),
        "senior_analyst" => set(&analyst).union(set(&senior)),
        "supervisor" => set(&analyst).union(set(&senior)).union(set(&[AuditView])),
        "compliance_officer" => set(&compliance),
        "legal_counsel" => set(&[CaseView, ApprovalDecide, SarView, AuditView]),
        "mlro" => set(&compliance).union(set(&[SarEdit, CaseOverride, PolicyEdit])),
        "auditor" => set(&[CaseView, SarView, AuditView, AuditExport, GraphView]),
        "admin" => PermissionSet::all(),
        _ => return None,
    })
}

/// The union of the permissions of `roles`; names that are not built-in roles add nothing.
pub fn permissions_of<S: AsRef<str>>(roles: &[S]) -> PermissionSet {
    roles
        .iter()
        .filter_map(|r| builtin_role(r.as_ref()))
        .fold(PermissionSet::EMPTY, PermissionSet::union)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn catalogue_fits_the_mask_and_round_trips() {
        assert!(Permission::ALL.len() <= 64);
        assert_eq!(Permission::ALL.len(), 22);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
        assert_eq!(Permission::parse("case.delete"), None);
    }

    #[test]
    fn builtin_roles_match_design_table() {
        let analyst = builtin_role("analyst").unwrap();
        assert!(analyst.contains(CaseDispose) && !analyst.contains(ApprovalDecide));
        let senior = builtin_role("senior_analyst").unwrap();
        assert!(senior.contains(ApprovalDecide) && senior.contains(CaseCreate));
        assert!(!senior.contains(AuditView));
        assert!(builtin_role("supervisor").unwrap().contains(AuditView));
        let co = builtin_role("compliance_officer").unwrap();
        assert!(co.contains(SarReview) && !co.contains(CaseCreate));
        let mlro = builtin_role("mlro").unwrap();
        assert!(
            mlro.contains(PolicyEdit) && mlro.contains(SarReview) && !mlro.contains(AdminUsers)
        );
        let auditor = builtin_role("auditor").unwrap();
        assert_eq!(auditor.iter().count(), 5);
        assert!(!auditor.contains(CaseEdit));
        assert_eq!(builtin_role("admin").unwrap(), PermissionSet::all());
        assert!(builtin_role("root").is_none());
    }

    #[test]
    fn permissions_are_the_union_of_roles() {
        let p = permissions_of(&["legal_counsel", "auditor"]);
        assert!(p.contains(ApprovalDecide) && p.contains(AuditExport) && p.contains(GraphView));
        assert!(!p.contains(CaseEdit));
        assert_eq!(permissions_of::<&str>(&[]), PermissionSet::EMPTY);
    }
}
