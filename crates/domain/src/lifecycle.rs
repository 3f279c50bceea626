//! The status lifecycle of a case type (API.md "Workflow document": `statuses`,
//! `initial_status`, `reopen_to`, `on_assign`, `on_escalate`) and the decisions taken on it.
//!
//! Until the workflow engine lands, a case follows its type's *fixed lifecycle*: from a status
//! that is not terminal it may move to any other status, entering a terminal status needs a
//! reason, and a terminal status is left only by a reopen. [`Lifecycle::decide`] is the one place
//! that rule lives: the seam where transition rules (priorities, `applies_when`, preconditions,
//! roles, approvals) will take over.
use crate::fields::Problem;
use crate::{Code, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Where a status sits in the life of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Not started.
    Open,
    /// Being worked.
    Active,
    /// Decided; the case is locked until reopened.
    Terminal,
}

/// One status of a lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusDef {
    /// Stable key (`investigating`, `IN_REVIEW`).
    pub key: String,
    /// Display label.
    pub label: String,
    /// Open, active or terminal.
    pub category: Category,
    /// Case fields (or `fields.<key>`) that cannot be edited in this status.
    #[serde(default)]
    pub locked_fields: Vec<String>,
}

/// An automatic move: when a case in `from` is assigned (or escalated) it moves to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoMove {
    /// The status the case must be in (`*`: any status that is not terminal).
    pub from: String,
    /// Where it goes.
    pub to: String,
}

/// A case type's statuses and automatic moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Every status, initial first by convention.
    pub statuses: Vec<StatusDef>,
    /// The status of a new case.
    pub initial_status: String,
    /// Where a reopened case goes (default: the initial status).
    #[serde(default)]
    pub reopen_to: Option<String>,
    /// The move made on assignment.
    #[serde(default)]
    pub on_assign: Option<AutoMove>,
    /// The move made on escalation.
    #[serde(default)]
    pub on_escalate: Option<AutoMove>,
    /// Transition rules: decided by the workflow engine, empty until it lands.
    #[serde(default)]
    pub rules: Vec<serde_json::Value>,
}

/// A move open to a case, as `GET /cases/{id}/transitions` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllowedMove {
    /// Target status.
    pub to: String,
    /// Whether a reason must be given.
    pub requires_reason: bool,
}

/// The editable case attributes a status may lock (`locked_fields`).
pub const LOCKABLE: &[&str] = &[
    "title",
    "priority",
    "score",
    "business_unit",
    "fields",
    "reasons",
    "notes",
    "screening_id",
    "subject_id",
    "detected_at",
    "source",
    "assigned_to",
];

fn valid_status_key(k: &str) -> bool {
    (1..=64).contains(&k.len())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && k.as_bytes()[0].is_ascii_alphabetic()
}

impl Lifecycle {
    /// A lifecycle from `(key, category)` pairs; labels are derived from the keys.
    pub fn of(statuses: &[(&str, Category)], initial: &str) -> Self {
        Self {
            statuses: statuses
                .iter()
                .map(|(k, c)| StatusDef {
                    key: k.to_string(),
                    label: label_of(k),
                    category: *c,
                    locked_fields: Vec::new(),
                })
                .collect(),
            initial_status: initial.into(),
            reopen_to: None,
            on_assign: None,
            on_escalate: None,
            rules: Vec::new(),
        }
    }

    fn with_moves(
        mut self,
        on_assign: Option<(&str, &str)>,
        on_escalate: Option<(&str, &str)>,
        reopen_to: &str,
    ) -> Self {
        let mv = |(from, to): (&str, &str)| AutoMove {
            from: from.into(),
            to: to.into(),
        };
        self.on_assign = on_assign.map(mv);
        self.on_escalate = on_escalate.map(mv);
        self.reopen_to = Some(reopen_to.into());
        self
    }

    /// The status definition of `key`.
    pub fn status(&self, key: &str) -> Option<&StatusDef> {
        self.statuses.iter().find(|s| s.key == key)
    }

    /// Whether `key` is a terminal status.
    pub fn is_terminal(&self, key: &str) -> bool {
        self.status(key)
            .is_some_and(|s| s.category == Category::Terminal)
    }

    /// Every problem of the document (empty when it can be saved), paths under `workflow`.
    pub fn check(&self, custom_fields: &[String]) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut p = |path: String, message: &str| {
            problems.push(Problem {
                path,
                message: message.into(),
            })
        };
        if self.statuses.is_empty() {
            p("workflow.statuses".into(), "at least one status is needed");
        }
        if self.statuses.len() > 50 {
            p("workflow.statuses".into(), "at most 50 statuses");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in self.statuses.iter().enumerate() {
            if !valid_status_key(&s.key) {
                p(
                    format!("workflow.statuses[{i}].key"),
                    "must be 1-64 letters, digits or `_`, starting with a letter",
                );
            } else if !seen.insert(s.key.as_str()) {
                p(
                    format!("workflow.statuses[{i}].key"),
                    "duplicate status key",
                );
            }
            let label = s.label.trim();
            if label.is_empty() || label.chars().count() > 100 {
                p(
                    format!("workflow.statuses[{i}].label"),
                    "must be 1-100 characters",
                );
            }
            for (j, f) in s.locked_fields.iter().enumerate() {
                let known = LOCKABLE.contains(&f.as_str())
                    || f.strip_prefix("fields.")
                        .is_some_and(|k| custom_fields.iter().any(|c| c == k));
                if !known {
                    p(
                        format!("workflow.statuses[{i}].locked_fields[{j}]"),
                        "is not a case field or a custom field of this type",
                    );
                }
            }
        }
        if !self
            .statuses
            .iter()
            .any(|s| s.category == Category::Terminal)
        {
            p(
                "workflow.statuses".into(),
                "at least one status must be terminal, or no case could ever be closed",
            );
        }
        match self.status(&self.initial_status) {
            None => p(
                "workflow.initial_status".into(),
                "is not one of the statuses",
            ),
            Some(s) if s.category == Category::Terminal => {
                p("workflow.initial_status".into(), "must not be terminal")
            }
            Some(_) => {}
        }
        if let Some(r) = &self.reopen_to {
            match self.status(r) {
                None => p("workflow.reopen_to".into(), "is not one of the statuses"),
                Some(s) if s.category == Category::Terminal => {
                    p("workflow.reopen_to".into(), "must not be terminal")
                }
                Some(_) => {}
            }
        }
        for (name, mv) in [
            ("on_assign", &self.on_assign),
            ("on_escalate", &self.on_escalate),
        ] {
            if let Some(mv) = mv {
                if mv.from != "*" && self.status(&mv.from).is_none() {
                    p(
                        format!("workflow.{name}.from"),
                        "is not one of the statuses (or `*`)",
                    );
                }
                if self.status(&mv.to).is_none() {
                    p(format!("workflow.{name}.to"), "is not one of the statuses");
                }
            }
        }
        if !self.rules.is_empty() {
            p(
                "workflow.rules".into(),
                "transition rules are decided by the workflow engine, which this server does not run yet; send an empty list",
            );
        }
        problems
    }

    /// The moves open from `from` under the fixed lifecycle, in status order.
    pub fn allowed_moves(&self, from: &str) -> Vec<AllowedMove> {
        if self.is_terminal(from) {
            return Vec::new();
        }
        self.statuses
            .iter()
            .filter(|s| s.key != from)
            .map(|s| AllowedMove {
                to: s.key.clone(),
                requires_reason: s.category == Category::Terminal,
            })
            .collect()
    }

    /// Decides a move from `from` to `to`: 422 `invalid_transition` (with `details.allowed`)
    /// when the lifecycle does not allow it, 422 `reason_required` when it needs a reason.
    pub fn decide(&self, from: &str, to: &str, reason: Option<&str>) -> Result<AllowedMove> {
        let allowed = self.allowed_moves(from);
        let Some(mv) = allowed.iter().find(|m| m.to == to) else {
            let keys: Vec<&str> = allowed.iter().map(|m| m.to.as_str()).collect();
            let message = if self.is_terminal(from) {
                format!("`{from}` is terminal: reopen the case to change its status")
            } else {
                format!("cannot move from `{from}` to `{to}`")
            };
            return Err(Error::new(Code::InvalidTransition, message)
                .with_param("to")
                .with_details(json!({ "allowed": keys })));
        };
        if mv.requires_reason && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(Error::new(
                Code::ReasonRequired,
                format!("moving to `{to}` needs a reason"),
            )
            .with_param("reason"));
        }
        Ok(mv.clone())
    }

    /// Where a case in `from` goes when reopened; 422 `invalid_transition` unless `from` is
    /// terminal.
    pub fn reopen(&self, from: &str) -> Result<&str> {
        if !self.is_terminal(from) {
            return Err(Error::new(
                Code::InvalidTransition,
                format!("`{from}` is not terminal: only a closed case can be reopened"),
            )
            .with_details(json!({ "allowed": [] })));
        }
        Ok(self.reopen_to.as_deref().unwrap_or(&self.initial_status))
    }

    fn auto(mv: &Option<AutoMove>, from: &str, terminal: bool) -> Option<String> {
        let mv = mv.as_ref()?;
        let applies = (mv.from == from || (mv.from == "*" && !terminal)) && mv.to != from;
        applies.then(|| mv.to.clone())
    }

    /// The status an assignment moves a case in `from` to, if any.
    pub fn after_assign(&self, from: &str) -> Option<String> {
        Self::auto(&self.on_assign, from, self.is_terminal(from))
    }

    /// The status an escalation moves a case in `from` to, if any.
    pub fn after_escalate(&self, from: &str) -> Option<String> {
        Self::auto(&self.on_escalate, from, self.is_terminal(from))
    }

    /// Whether `field` (a [`LOCKABLE`] name or `fields.<key>`) cannot be edited in `status`:
    /// every field is locked in a terminal status.
    pub fn is_locked(&self, status: &str, field: &str) -> bool {
        self.status(status).is_some_and(|s| {
            s.category == Category::Terminal
                || s.locked_fields
                    .iter()
                    .any(|f| f == field || (f == "fields" && field.starts_with("fields.")))
        })
    }

    /// A terminal status to close with (the first one), for alert dispositions.
    pub fn closing_status(&self) -> Option<&str> {
        self.statuses
            .iter()
            .find(|s| s.category == Category::Terminal)
            .map(|s| s.key.as_str())
    }
}

fn label_of(key: &str) -> String {
    let lower = key.replace('_', " ").to_lowercase();
    let mut c = lower.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The built-in case type of alerts.
pub const ALERT: &str = "ALERT";

/// A built-in case type: key, name, lifecycle.
pub struct BuiltinType {
    /// Case type key.
    pub key: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Its lifecycle.
    pub lifecycle: Lifecycle,
}

/// The case types every organisation starts with (docs/cases.md "Case types"), after the
/// published lifecycles DESIGN.md names.
pub fn builtin_types() -> Vec<BuiltinType> {
    use Category::*;
    vec![
        BuiltinType {
            key: ALERT,
            name: "Alert",
            lifecycle: Lifecycle::of(
                &[("open", Open), ("in_review", Active), ("closed", Terminal)],
                "open",
            )
            .with_moves(Some(("open", "in_review")), None, "in_review"),
        },
        BuiltinType {
            key: "SCREENING",
            name: "Screening hit",
            lifecycle: Lifecycle::of(
                &[
                    ("OPEN", Open),
                    ("IN_REVIEW", Active),
                    ("PENDING_APPROVAL", Active),
                    ("ESCALATED", Active),
                    ("CLOSED", Terminal),
                ],
                "OPEN",
            )
            .with_moves(
                Some(("OPEN", "IN_REVIEW")),
                Some(("IN_REVIEW", "ESCALATED")),
                "IN_REVIEW",
            ),
        },
        BuiltinType {
            key: "AML_INV",
            name: "AML investigation",
            lifecycle: Lifecycle::of(
                &[
                    ("open", Open),
                    ("investigating", Active),
                    ("determination", Active),
                    ("filing", Active),
                    ("filed", Terminal),
                    ("no_sar", Terminal),
                    ("closed", Terminal),
                ],
                "open",
            )
            .with_moves(Some(("open", "investigating")), None, "investigating"),
        },
        BuiltinType {
            key: "FRAUD",
            name: "Fraud investigation",
            lifecycle: generic(),
        },
        BuiltinType {
            key: "KYC_REV",
            name: "KYC review",
            lifecycle: Lifecycle::of(
                &[("open", Open), ("in_review", Active), ("closed", Terminal)],
                "open",
            )
            .with_moves(Some(("open", "in_review")), None, "in_review"),
        },
    ]
}

/// The lifecycle a new case type gets when its document names none.
pub fn generic() -> Lifecycle {
    use Category::*;
    Lifecycle::of(
        &[
            ("open", Open),
            ("investigating", Active),
            ("escalated", Active),
            ("closed", Terminal),
        ],
        "open",
    )
    .with_moves(
        Some(("open", "investigating")),
        Some(("investigating", "escalated")),
        "investigating",
    )
}

/// A case type key: 2–32 characters `A-Z`, `0-9`, `_`, starting with a letter.
pub fn check_type_key(param: &str, key: &str) -> Result<()> {
    let ok = (2..=32).contains(&key.len())
        && key.as_bytes()[0].is_ascii_uppercase()
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            param,
            "must be 2-32 characters A-Z, 0-9 or `_`, starting with a letter",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn aml() -> Lifecycle {
        builtin_types()
            .into_iter()
            .find(|t| t.key == "AML_INV")
            .unwrap()
            .lifecycle
    }

    #[test]
    fn builtin_lifecycles_are_valid() {
        for t in builtin_types() {
            assert!(t.lifecycle.check(&[]).is_empty(), "{}", t.key);
            check_type_key("key", t.key).unwrap();
        }
        assert!(generic().check(&[]).is_empty());
        assert_eq!(aml().status("no_sar").unwrap().label, "No sar");
    }

    #[test]
    fn moves_into_terminal_statuses_need_a_reason() {
        let l = aml();
        assert!(l.decide("open", "investigating", None).is_ok());
        let e = l.decide("investigating", "closed", None).unwrap_err();
        assert_eq!(e.code, Code::ReasonRequired);
        assert_eq!(e.param.as_deref(), Some("reason"));
        assert_eq!(
            l.decide("investigating", "closed", Some("  "))
                .unwrap_err()
                .code,
            Code::ReasonRequired
        );
        assert!(l.decide("investigating", "closed", Some("done")).is_ok());
    }

    #[test]
    fn invalid_moves_list_the_allowed_ones() {
        let l = aml();
        let e = l.decide("open", "nowhere", None).unwrap_err();
        assert_eq!(e.code, Code::InvalidTransition);
        assert_eq!(
            e.details.unwrap()["allowed"],
            json!([
                "investigating",
                "determination",
                "filing",
                "filed",
                "no_sar",
                "closed"
            ])
        );
        let e = l.decide("closed", "open", None).unwrap_err();
        assert_eq!(e.details.unwrap()["allowed"], json!([]));
        assert_eq!(
            l.decide("open", "open", None).unwrap_err().code,
            Code::InvalidTransition
        );
    }

    #[test]
    fn reopen_and_automatic_moves() {
        let l = aml();
        assert_eq!(l.reopen("filed").unwrap(), "investigating");
        assert_eq!(l.reopen("open").unwrap_err().code, Code::InvalidTransition);
        assert_eq!(l.after_assign("open").as_deref(), Some("investigating"));
        assert_eq!(l.after_assign("investigating"), None);
        let g = generic();
        assert_eq!(
            g.after_escalate("investigating").as_deref(),
            Some("escalated")
        );
        assert_eq!(g.after_escalate("open"), None);
        let mut star = g.clone();
        star.on_escalate = Some(AutoMove {
            from: "*".into(),
            to: "escalated".into(),
        });
        assert_eq!(star.after_escalate("open").as_deref(), Some("escalated"));
        assert_eq!(star.after_escalate("closed"), None);
        assert_eq!(star.after_escalate("escalated"), None);
    }

    #[test]
    fn terminal_statuses_lock_everything_and_others_what_they_list() {
        let mut l = generic();
        l.statuses[1].locked_fields = vec!["title".into(), "fields".into()];
        assert!(l.is_locked("closed", "notes"));
        assert!(l.is_locked("investigating", "title"));
        assert!(l.is_locked("investigating", "fields.amount"));
        assert!(!l.is_locked("investigating", "notes"));
        assert!(!l.is_locked("open", "title"));
    }

    #[test]
    fn documents_are_checked_as_a_whole() {
        let mut l = generic();
        l.statuses.push(l.statuses[0].clone());
        l.statuses[1].key = "bad key".into();
        l.statuses[2].locked_fields = vec!["fields.nope".into(), "fields.amount".into()];
        l.initial_status = "closed".into();
        l.reopen_to = Some("gone".into());
        l.on_assign = Some(AutoMove {
            from: "x".into(),
            to: "open".into(),
        });
        l.rules = vec![json!({})];
        let paths: Vec<String> = l
            .check(&["amount".into()])
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            [
                "workflow.statuses[1].key",
                "workflow.statuses[2].locked_fields[0]",
                "workflow.statuses[4].key",
                "workflow.initial_status",
                "workflow.reopen_to",
                "workflow.on_assign.from",
                "workflow.on_escalate.from",
                "workflow.rules"
            ]
        );
        let mut none_terminal = generic();
        none_terminal.statuses.pop();
        assert_eq!(none_terminal.check(&[])[0].path, "workflow.statuses");
    }

    #[test]
    fn type_keys() {
        assert!(check_type_key("key", "TRADE_FIN").is_ok());
        for bad in ["A", "trade", "1ABC", "A-B", &"A".repeat(33)] {
            assert!(check_type_key("key", bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Random walks over a lifecycle: a case never reaches an unknown status, never leaves a
        /// terminal status except by reopening, and every listed move is accepted with a reason.
        #[test]
        fn random_walks_respect_the_lifecycle(steps in proptest::collection::vec((0usize..9, any::<bool>(), any::<bool>()), 1..60)) {
            let l = aml();
            let keys: Vec<String> = l.statuses.iter().map(|s| s.key.clone()).chain(["bogus".to_string(), "".to_string()]).collect();
            let mut at = l.initial_status.clone();
            for (pick, with_reason, reopen) in steps {
                let reason = with_reason.then_some("because");
                let was_terminal = l.is_terminal(&at);
                if reopen {
                    match l.reopen(&at) {
                        Ok(to) => { prop_assert!(was_terminal); at = to.to_string(); }
                        Err(e) => { prop_assert!(!was_terminal); prop_assert_eq!(e.code, Code::InvalidTransition); }
                    }
                    continue;
                }
                let to = &keys[pick % keys.len()];
                let listed = l.allowed_moves(&at).iter().any(|m| &m.to == to);
                match l.decide(&at, to, reason) {
                    Ok(mv) => {
                        prop_assert!(listed && !was_terminal);
                        prop_assert!(l.status(to).is_some());
                        prop_assert!(with_reason || !mv.requires_reason);
                        at = to.clone();
                    }
                    Err(e) => prop_assert!(!listed || (e.code == Code::ReasonRequired && !with_reason)),
                }
            }
            prop_assert!(l.status(&at).is_some());
        }
    }
}
