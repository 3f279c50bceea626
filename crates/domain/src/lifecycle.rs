//! The status lifecycle of a case type (API.md "Workflow document": `statuses`,
//! `initial_status`, `reopen_to`, `on_assign`, `on_escalate`, `rules`) and the decisions taken
//! on it.
//!
//! A workflow without rules follows the *fixed lifecycle*: from a status that is not terminal a
//! case may move to any other status, entering a terminal status needs a reason, and a terminal
//! status is left only by a reopen. A workflow with rules moves only where an allowing rule wins
//! ([`crate::rules::resolve`]), for callers holding its roles, with its reason and preconditions.
//! [`Lifecycle::decide`] is the one place both live.
use crate::expr::{self, Scope};
use crate::fields::Problem;
use crate::rbac::BUILTIN_ROLES;
use crate::rules::{self, ApprovalPolicy, Effect, PostAction, Rule};
use crate::{Code, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use time::OffsetDateTime;

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
    /// Tasks opened when a case enters this status; the case cannot leave it until they are
    /// done (422 `unresolved_mandatory_tasks`).
    #[serde(default)]
    pub mandatory_tasks: Vec<MandatoryTask>,
    /// Entered only by casegate itself (a SAR's `filed`, set on a confirmed submission): a move
    /// asked for by anyone answers 403 `status_reserved`, and a reserved terminal status is
    /// never reopened.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reserved: bool,
}

/// A task a status demands before a case may leave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandatoryTask {
    /// What to do.
    pub title: String,
    /// The role expected to do it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_role: Option<String>,
}

/// Most mandatory tasks one status may demand.
pub const MAX_MANDATORY_TASKS: usize = 20;

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Transition rules; none: the fixed lifecycle.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Who asks for a move, and what the rules' expressions see.
pub struct Asking<'a> {
    /// The caller's roles.
    pub roles: &'a [String],
    /// `case`, `actor` and `now` for expressions.
    pub scope: &'a Scope,
    /// The clock's time (rules' effective dates).
    pub now: OffsetDateTime,
}

/// A move that may go ahead, and what comes with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Target status.
    pub to: String,
    /// The rule that allowed it (none under the fixed lifecycle).
    pub rule_id: Option<String>,
    /// Whether a reason was required.
    pub requires_reason: bool,
    /// Approvals needed before it is applied.
    pub approval: Option<ApprovalPolicy>,
    /// Work to do once it is applied.
    pub post_actions: Vec<PostAction>,
}

/// A move a rule (or the fixed lifecycle) opens to a caller, with what stands in its way.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// Target status.
    pub to: String,
    /// The allowing rule.
    pub rule_id: Option<String>,
    /// Whether it goes through approval.
    pub requires_approval: bool,
    /// Whether a reason is needed.
    pub requires_reason: bool,
    /// `{"code": "role_not_permitted" | "precondition_failed", "message", …}` for each obstacle.
    pub blocked_by: Vec<Value>,
}

/// Whether a rule's `applies_when` holds; an expression that fails to evaluate does not hold.
fn applies(rule: &Rule, scope: &Scope) -> bool {
    rule.applies_when
        .as_deref()
        .is_none_or(|src| expr::holds(src, scope).unwrap_or(false))
}

/// The preconditions of `rule` that do not hold, as `{"expr", "message"}` (plus `error` when
/// the expression could not be evaluated).
fn failures(rule: &Rule, scope: &Scope) -> Vec<Value> {
    rule.preconditions
        .iter()
        .filter_map(|c| match expr::holds(&c.expr, scope) {
            Ok(true) => None,
            Ok(false) => Some(json!({ "expr": c.expr, "message": c.message })),
            Err(e) => Some(json!({ "expr": c.expr, "message": c.message, "error": e })),
        })
        .collect()
}

fn role_ok(rule: &Rule, roles: &[String]) -> bool {
    rule.required_roles.is_empty() || rule.required_roles.iter().any(|r| roles.contains(r))
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
    /// Whether any rule has an expression (`applies_when` or a precondition), that is, whether
    /// deciding a move reads [`Asking::scope`] at all. Building a scope serialises the case and
    /// converts it for CEL; a workflow without expressions need not pay for it on every move.
    pub fn reads_scope(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.applies_when.is_some() || !r.preconditions.is_empty())
    }

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
                    mandatory_tasks: Vec::new(),
                    reserved: false,
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
            if s.mandatory_tasks.len() > MAX_MANDATORY_TASKS {
                p(
                    format!("workflow.statuses[{i}].mandatory_tasks"),
                    "at most 20 mandatory tasks per status",
                );
            }
            if s.category == Category::Terminal && !s.mandatory_tasks.is_empty() {
                p(
                    format!("workflow.statuses[{i}].mandatory_tasks"),
                    "a terminal status cannot demand tasks: only a reopen leaves it",
                );
            }
            for (j, t) in s.mandatory_tasks.iter().enumerate() {
                let title = t.title.trim();
                if title.is_empty() || t.title.chars().count() > 500 {
                    p(
                        format!("workflow.statuses[{i}].mandatory_tasks[{j}].title"),
                        "must be 1-500 characters",
                    );
                }
                if t.assignee_role
                    .as_deref()
                    .is_some_and(|r| !BUILTIN_ROLES.contains(&r))
                {
                    p(
                        format!("workflow.statuses[{i}].mandatory_tasks[{j}].assignee_role"),
                        "is not a role",
                    );
                }
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
            let keys: Vec<&str> = self.statuses.iter().map(|s| s.key.as_str()).collect();
            let fields: Vec<&str> = custom_fields.iter().map(String::as_str).collect();
            for found in rules::check_rules(&self.rules, &keys, BUILTIN_ROLES, &fields) {
                p(found.path, &found.message);
            }
            for (i, r) in self.rules.iter().enumerate() {
                for (path, src) in r.expressions() {
                    if let Err(m) = expr::compile(src) {
                        p(format!("workflow.rules[{i}].{path}"), &m);
                    }
                }
            }
            for i in self.unreachable() {
                p(
                    format!("workflow.statuses[{i}]"),
                    "no rule or automatic move reaches this status from the initial status",
                );
            }
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

    /// Decides a move under the fixed lifecycle: 422 `invalid_transition` (with
    /// `details.allowed`) when it does not allow it, 422 `reason_required` when it needs a reason.
    pub fn fixed_move(&self, from: &str, to: &str, reason: Option<&str>) -> Result<AllowedMove> {
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

    /// The rule deciding `from` → `to` for `a`, if any rule for the move applies.
    fn winner(&self, from: &str, to: &str, a: &Asking) -> Option<&Rule> {
        rules::resolve(&self.rules, from, to, a.now, |r| applies(r, a.scope)).map(|w| w.1)
    }

    /// The statuses an allowing rule wins for, from `from` (before roles, reason and
    /// preconditions), in status order.
    fn rule_targets(&self, from: &str, a: &Asking) -> Vec<&Rule> {
        self.statuses
            .iter()
            .filter(|s| s.key != from && !s.reserved)
            .filter_map(|s| self.winner(from, &s.key, a))
            .filter(|r| r.effect == Effect::Allow)
            .collect()
    }

    /// The moves open from `from` for `a`, each with what blocks it (`GET /cases/{id}/transitions`).
    pub fn offers(&self, from: &str, a: &Asking) -> Vec<Offer> {
        if self.rules.is_empty() {
            return self
                .allowed_moves(from)
                .into_iter()
                .map(|m| Offer {
                    to: m.to,
                    rule_id: None,
                    requires_approval: false,
                    requires_reason: m.requires_reason,
                    blocked_by: Vec::new(),
                })
                .collect();
        }
        self.rule_targets(from, a)
            .into_iter()
            .map(|r| {
                let mut blocked = Vec::new();
                if !role_ok(r, a.roles) {
                    blocked.push(json!({
                        "code": Code::RoleNotPermitted.as_str(),
                        "message": format!("needs one of the roles {}", r.required_roles.join(", ")),
                        "required_roles": r.required_roles,
                    }));
                }
                for mut f in failures(r, a.scope) {
                    f["code"] = json!(Code::PreconditionFailed.as_str());
                    blocked.push(f);
                }
                Offer {
                    to: r.to.clone(),
                    rule_id: Some(r.id.clone()),
                    requires_approval: r.approval.is_some(),
                    requires_reason: r.require_reason,
                    blocked_by: blocked,
                }
            })
            .collect()
    }

    /// Decides a move from `from` to `to` asked by `a`. Under rules: 422 `invalid_transition`
    /// (with `details.allowed`) when no allowing rule wins, 422 `transition_denied` when a deny
    /// rule wins, 403 `role_not_permitted` without one of its roles, 422 `reason_required`, 422
    /// `precondition_failed` (with `details.failures`). Without rules: [`Self::fixed_move`].
    pub fn decide(
        &self,
        from: &str,
        to: &str,
        reason: Option<&str>,
        a: &Asking,
    ) -> Result<Decision> {
        if self.status(to).is_some_and(|s| s.reserved) {
            return Err(Error::new(
                Code::StatusReserved,
                format!(
                    "`{to}` is set only by casegate itself (for a SAR: on a confirmed submission)"
                ),
            )
            .with_param("to"));
        }
        if self.rules.is_empty() {
            let m = self.fixed_move(from, to, reason)?;
            return Ok(Decision {
                to: m.to,
                rule_id: None,
                requires_reason: m.requires_reason,
                approval: None,
                post_actions: Vec::new(),
            });
        }
        let winner = self.status(to).and_then(|_| self.winner(from, to, a));
        let Some(rule) = winner.filter(|r| r.effect == Effect::Allow) else {
            if let Some(deny) = winner {
                return Err(Error::new(
                    Code::TransitionDenied,
                    format!("rule `{}` denies moving from `{from}` to `{to}`", deny.id),
                )
                .with_param("to")
                .with_details(json!({ "rule_id": deny.id })));
            }
            let allowed: Vec<&str> = self
                .rule_targets(from, a)
                .iter()
                .map(|r| r.to.as_str())
                .collect();
            return Err(Error::new(
                Code::InvalidTransition,
                format!("no rule allows moving from `{from}` to `{to}`"),
            )
            .with_param("to")
            .with_details(json!({ "allowed": allowed })));
        };
        if !role_ok(rule, a.roles) {
            return Err(Error::new(
                Code::RoleNotPermitted,
                format!(
                    "moving to `{to}` needs one of the roles {}",
                    rule.required_roles.join(", ")
                ),
            )
            .with_details(json!({ "rule_id": rule.id, "required_roles": rule.required_roles })));
        }
        if rule.require_reason && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(Error::new(
                Code::ReasonRequired,
                format!("moving to `{to}` needs a reason"),
            )
            .with_param("reason"));
        }
        let failed = failures(rule, a.scope);
        if !failed.is_empty() {
            return Err(Error::new(
                Code::PreconditionFailed,
                format!(
                    "moving to `{to}` is blocked by {} precondition(s)",
                    failed.len()
                ),
            )
            .with_details(json!({ "rule_id": rule.id, "failures": failed })));
        }
        Ok(Decision {
            to: to.to_string(),
            rule_id: Some(rule.id.clone()),
            requires_reason: rule.require_reason,
            approval: rule.approval.clone(),
            post_actions: rule.post_actions.clone(),
        })
    }

    /// Statuses no path from the initial status reaches: through allowing rules (any
    /// `applies_when` might hold), automatic moves and reopening.
    fn unreachable(&self) -> Vec<usize> {
        let mut reached = BTreeSet::from([self.initial_status.as_str()]);
        loop {
            let before = reached.len();
            // `*` matches any status (the initial one is always reached).
            let from_any =
                |from: &str, reached: &BTreeSet<&str>| from == "*" || reached.contains(from);
            let mut next: Vec<&str> = Vec::new();
            for r in self.rules.iter().filter(|r| r.effect == Effect::Allow) {
                if from_any(&r.from, &reached) {
                    next.push(&r.to);
                }
            }
            for mv in [&self.on_assign, &self.on_escalate].into_iter().flatten() {
                if from_any(&mv.from, &reached) {
                    next.push(&mv.to);
                }
            }
            if reached.iter().any(|s| self.is_terminal(s)) {
                next.push(self.reopen_to.as_deref().unwrap_or(&self.initial_status));
            }
            reached.extend(next);
            if reached.len() == before {
                break;
            }
        }
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, s)| !reached.contains(s.key.as_str()))
            .map(|(i, _)| i)
            .collect()
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
        if self.status(from).is_some_and(|s| s.reserved) {
            return Err(Error::new(
                Code::InvalidTransition,
                format!("`{from}` was set by casegate itself and is final: it cannot be reopened"),
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
            key: "HV_FRAUD",
            name: "High-value fraud",
            lifecycle: from_document(high_value_fraud()),
        },
        BuiltinType {
            key: "SAR_FILING",
            name: "SAR filing",
            lifecycle: from_document(sar_filing()),
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

fn from_document(doc: Value) -> Lifecycle {
    serde_json::from_value(doc).expect("built-in workflow document")
}

/// `HV_FRAUD`: closing needs the compliance officer, then legal counsel (DESIGN.md "Running it").
/// Compliance has two days (reminded after one, escalated to the MLRO after two); legal has
/// three, after which the request expires.
fn high_value_fraud() -> Value {
    json!({
        "statuses": [
            {"key": "open", "label": "Open", "category": "open"},
            {"key": "investigating", "label": "Investigating", "category": "active"},
            {"key": "pending_closure", "label": "Pending closure", "category": "active"},
            {"key": "closed", "label": "Closed", "category": "terminal"}
        ],
        "initial_status": "open",
        "reopen_to": "investigating",
        "on_assign": {"from": "open", "to": "investigating"},
        "rules": [
            {"id": "start", "from": "open", "to": "investigating"},
            {"id": "submit-closure", "from": "investigating", "to": "pending_closure", "require_reason": true,
             "preconditions": [{"expr": "size(case.reasons) > 0",
                                "message": "Record at least one reason before asking to close"}]},
            {"id": "return", "from": "pending_closure", "to": "investigating", "require_reason": true,
             "required_roles": ["senior_analyst", "supervisor", "compliance_officer", "mlro"]},
            {"id": "close", "from": "pending_closure", "to": "closed", "require_reason": true,
             "approval": {"tiers": [
                {"name": "Compliance", "slots": [{"role": "compliance_officer"}], "quorum": "all",
                 "deadline": "P2D", "reminders": ["PT24H"], "on_timeout": {"action": "escalate", "role": "mlro"}},
                {"name": "Legal", "slots": [{"role": "legal_counsel"}], "quorum": "all",
                 "deadline": "P3D", "reminders": ["P2D"], "on_timeout": {"action": "expire"}}
             ], "separation_of_duties": true}}
        ]
    })
}

/// `SAR_FILING`: the SAR lifecycle (draft → pending review → approved → filed, with returns and
/// withdrawal). Approval needs the MLRO's sign-off; `filed` is reserved to the system (set when a
/// transmitter confirms the submission) and a filed report is never withdrawn or reopened.
fn sar_filing() -> Value {
    json!({
        "statuses": [
            {"key": "draft", "label": "Draft", "category": "open"},
            {"key": "pending_review", "label": "Pending review", "category": "active"},
            {"key": "returned", "label": "Returned", "category": "active"},
            {"key": "approved", "label": "Approved", "category": "active"},
            {"key": "filed", "label": "Filed", "category": "terminal", "reserved": true},
            {"key": "withdrawn", "label": "Withdrawn", "category": "terminal"}
        ],
        "initial_status": "draft",
        "reopen_to": "draft",
        "rules": [
            {"id": "submit", "from": "draft", "to": "pending_review"},
            {"id": "resubmit", "from": "returned", "to": "pending_review"},
            {"id": "return", "from": "pending_review", "to": "returned", "require_reason": true,
             "required_roles": ["compliance_officer", "mlro"]},
            {"id": "approve", "from": "pending_review", "to": "approved",
             "required_roles": ["compliance_officer", "mlro"],
             "approval": {"tiers": [
                {"name": "MLRO sign-off", "slots": [{"role": "mlro"}], "quorum": "all",
                 "deadline": "P5D", "reminders": ["P3D"], "on_timeout": {"action": "escalate", "role": "admin"}}
             ], "separation_of_duties": true}},
            {"id": "file", "from": "approved", "to": "filed"},
            {"id": "withdraw", "from": "*", "to": "withdrawn", "require_reason": true,
             "required_roles": ["compliance_officer", "mlro"]},
            {"id": "filed-stays-filed", "from": "filed", "to": "withdrawn", "priority": 10, "effect": "deny"}
        ]
    })
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
        assert!(l.fixed_move("open", "investigating", None).is_ok());
        let e = l.fixed_move("investigating", "closed", None).unwrap_err();
        assert_eq!(e.code, Code::ReasonRequired);
        assert_eq!(e.param.as_deref(), Some("reason"));
        assert_eq!(
            l.fixed_move("investigating", "closed", Some("  "))
                .unwrap_err()
                .code,
            Code::ReasonRequired
        );
        assert!(
            l.fixed_move("investigating", "closed", Some("done"))
                .is_ok()
        );
    }

    #[test]
    fn invalid_moves_list_the_allowed_ones() {
        let l = aml();
        let e = l.fixed_move("open", "nowhere", None).unwrap_err();
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
        let e = l.fixed_move("closed", "open", None).unwrap_err();
        assert_eq!(e.details.unwrap()["allowed"], json!([]));
        assert_eq!(
            l.fixed_move("open", "open", None).unwrap_err().code,
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
                "workflow.on_escalate.from"
            ]
        );
        let mut none_terminal = generic();
        none_terminal.statuses.pop();
        assert_eq!(none_terminal.check(&[])[0].path, "workflow.statuses");
    }

    /// open → investigating → review → closed, with a deny for critical cases, a role, a
    /// precondition and a reason on the way.
    fn ruled() -> Lifecycle {
        serde_json::from_value(json!({
            "statuses": [
                {"key": "open", "label": "Open", "category": "open"},
                {"key": "investigating", "label": "Investigating", "category": "active"},
                {"key": "review", "label": "Review", "category": "active"},
                {"key": "closed", "label": "Closed", "category": "terminal"}
            ],
            "initial_status": "open",
            "rules": [
                {"id": "start", "from": "open", "to": "investigating"},
                {"id": "submit", "from": "investigating", "to": "review", "required_roles": ["senior_analyst", "mlro"],
                 "preconditions": [{"expr": "size(case.reasons) > 0", "message": "Record at least one reason code"},
                                   {"expr": "case.fields.amount < 1000000", "message": "Amounts of a million go to the board"}]},
                {"id": "close", "from": "review", "to": "closed", "require_reason": true},
                {"id": "fast-close", "from": "*", "to": "closed", "priority": -1},
                {"id": "no-critical-close", "from": "*", "to": "closed", "priority": 10, "effect": "deny",
                 "applies_when": "case.priority == 'critical'"}
            ]
        }))
        .unwrap()
    }

    fn asking<'a>(roles: &'a [String], scope: &'a Scope) -> Asking<'a> {
        Asking {
            roles,
            scope,
            now: time::macros::datetime!(2026-06-01 12:00 UTC),
        }
    }

    fn case_scope(priority: &str, reasons: Value) -> Scope {
        Scope::new(
            &json!({"priority": priority, "reasons": reasons, "fields": {"amount": 5000}}),
            &json!({"id": "u1", "email": "ana@bank.example", "roles": ["analyst"]}),
            time::macros::datetime!(2026-06-01 12:00 UTC),
        )
    }

    fn builtin(key: &str) -> Lifecycle {
        builtin_types()
            .into_iter()
            .find(|t| t.key == key)
            .unwrap()
            .lifecycle
    }

    #[test]
    fn builtin_templates_gate_fraud_closure_and_sar_approval() {
        let hv = builtin("HV_FRAUD");
        let analyst = vec!["analyst".to_string()];
        let no_reasons = case_scope("high", json!([]));
        let e = hv
            .decide(
                "investigating",
                "pending_closure",
                Some("done"),
                &asking(&analyst, &no_reasons),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::PreconditionFailed);
        let reasons = case_scope("high", json!(["mule account"]));
        let a = asking(&analyst, &reasons);
        assert!(
            hv.decide("investigating", "pending_closure", Some("done"), &a)
                .is_ok()
        );
        let d = hv
            .decide("pending_closure", "closed", Some("recovered"), &a)
            .unwrap();
        let tiers: Vec<&str> = d
            .approval
            .as_ref()
            .unwrap()
            .tiers
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(tiers, ["Compliance", "Legal"]);
        assert_eq!(hv.after_assign("open").as_deref(), Some("investigating"));

        let sar = builtin("SAR_FILING");
        let co = vec!["compliance_officer".to_string()];
        let d = sar
            .decide("pending_review", "approved", None, &asking(&co, &reasons))
            .unwrap();
        assert_eq!(
            d.approval.unwrap().tiers[0].slots[0].role.as_deref(),
            Some("mlro")
        );
        let e = sar
            .decide("pending_review", "approved", None, &a)
            .unwrap_err();
        assert_eq!(e.code, Code::RoleNotPermitted);
        let mlro = vec!["mlro".to_string()];
        let e = sar
            .decide(
                "filed",
                "withdrawn",
                Some("mistake"),
                &asking(&mlro, &reasons),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::TransitionDenied);
        // Nobody files by hand, and a filed report stays filed.
        let e = sar
            .decide("approved", "filed", Some("sent"), &asking(&mlro, &reasons))
            .unwrap_err();
        assert_eq!(e.code, Code::StatusReserved);
        assert_eq!(e.code.http_status(), 403);
        assert_eq!(
            sar.reopen("filed").unwrap_err().code,
            Code::InvalidTransition
        );
        assert_eq!(sar.reopen("withdrawn").unwrap(), "draft");
        let offers: Vec<String> = sar
            .offers("approved", &asking(&mlro, &reasons))
            .into_iter()
            .map(|o| o.to)
            .collect();
        assert!(!offers.contains(&"filed".to_string()), "{offers:?}");
        assert!(
            sar.decide(
                "approved",
                "withdrawn",
                Some("no longer suspicious"),
                &asking(&mlro, &reasons)
            )
            .is_ok()
        );
    }

    #[test]
    fn rules_decide_moves_roles_reasons_and_preconditions() {
        let l = ruled();
        assert!(
            l.check(&["amount".into()]).is_empty(),
            "{:?}",
            l.check(&["amount".into()])
        );
        let analyst = vec!["analyst".to_string()];
        let senior = vec!["senior_analyst".to_string()];
        let plain = case_scope("high", json!([]));
        let a = asking(&analyst, &plain);

        let d = l.decide("open", "investigating", None, &a).unwrap();
        assert_eq!(d.rule_id.as_deref(), Some("start"));
        let e = l.decide("open", "review", None, &a).unwrap_err();
        assert_eq!(e.code, Code::InvalidTransition);
        assert_eq!(
            e.details.unwrap()["allowed"],
            json!(["investigating", "closed"])
        );

        let e = l.decide("investigating", "review", None, &a).unwrap_err();
        assert_eq!(e.code, Code::RoleNotPermitted);
        let e = l
            .decide("investigating", "review", None, &asking(&senior, &plain))
            .unwrap_err();
        assert_eq!(e.code, Code::PreconditionFailed);
        assert_eq!(
            e.details.unwrap()["failures"],
            json!([{"expr": "size(case.reasons) > 0", "message": "Record at least one reason code"}])
        );
        let reasoned = case_scope("high", json!(["structuring"]));
        let d = l
            .decide("investigating", "review", None, &asking(&senior, &reasoned))
            .unwrap();
        assert_eq!(d.rule_id.as_deref(), Some("submit"));

        // Exact beats the wildcard at equal priority only; here `close` (0) beats `fast-close` (-1).
        let e = l.decide("review", "closed", None, &a).unwrap_err();
        assert_eq!(e.code, Code::ReasonRequired);
        assert_eq!(
            l.decide("review", "closed", Some("filed"), &a)
                .unwrap()
                .rule_id
                .as_deref(),
            Some("close")
        );
        assert_eq!(
            l.decide("open", "closed", None, &a)
                .unwrap()
                .rule_id
                .as_deref(),
            Some("fast-close")
        );
        // A critical case cannot be closed at all: the deny rule outranks both.
        let critical = case_scope("critical", json!(["x"]));
        let e = l
            .decide(
                "review",
                "closed",
                Some("filed"),
                &asking(&analyst, &critical),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::TransitionDenied);
        assert_eq!(e.details.unwrap()["rule_id"], "no-critical-close");
    }

    #[test]
    fn offers_say_what_blocks_each_move() {
        let l = ruled();
        let analyst = vec!["analyst".to_string()];
        let plain = case_scope("high", json!([]));
        let offers = l.offers("investigating", &asking(&analyst, &plain));
        let to: Vec<&str> = offers.iter().map(|o| o.to.as_str()).collect();
        assert_eq!(to, ["review", "closed"]);
        let codes: Vec<&Value> = offers[0].blocked_by.iter().map(|b| &b["code"]).collect();
        assert_eq!(
            codes,
            [&json!("role_not_permitted"), &json!("precondition_failed")]
        );
        assert!(offers[1].blocked_by.is_empty());
        let critical = case_scope("critical", json!([]));
        let offers = l.offers("investigating", &asking(&analyst, &critical));
        assert_eq!(
            offers.iter().map(|o| o.to.as_str()).collect::<Vec<_>>(),
            ["review"]
        );
    }

    #[test]
    fn only_workflows_with_expressions_read_the_scope() {
        let mut l = ruled();
        assert!(l.reads_scope());
        for r in &mut l.rules {
            r.applies_when = None;
        }
        assert!(l.reads_scope(), "preconditions alone read the scope");
        for r in &mut l.rules {
            r.preconditions.clear();
        }
        assert!(!l.reads_scope());
        let mut fixed = l.clone();
        fixed.rules.clear();
        assert!(!fixed.reads_scope());
        // Without expressions, an empty scope decides every move as the case's own would
        // (the service builds no scope then).
        let empty = Scope::new(
            &Value::Null,
            &Value::Null,
            time::macros::datetime!(2026-06-01 12:00 UTC),
        );
        let full = case_scope("critical", json!(["x"]));
        let statuses: Vec<String> = l.statuses.iter().map(|s| s.key.clone()).collect();
        for roles in [
            vec!["analyst".to_string()],
            vec!["senior_analyst".to_string()],
        ] {
            for from in &statuses {
                for to in &statuses {
                    for reason in [None, Some("why")] {
                        let a = l.decide(from, to, reason, &asking(&roles, &empty));
                        let b = l.decide(from, to, reason, &asking(&roles, &full));
                        assert_eq!(
                            a.map_err(|e| e.code),
                            b.map_err(|e| e.code),
                            "{from} → {to}"
                        );
                    }
                }
                assert_eq!(
                    l.offers(from, &asking(&roles, &empty)),
                    l.offers(from, &asking(&roles, &full))
                );
            }
        }
    }

    #[test]
    fn rule_documents_report_unreachable_statuses_and_bad_expressions() {
        let mut l = ruled();
        l.rules.retain(|r| r.id != "fast-close" && r.id != "close");
        l.rules[0].applies_when = Some("case.priority ==".into());
        l.rules[1].preconditions[0].expr = "size(".into();
        let paths: Vec<String> = l
            .check(&["amount".into()])
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            [
                "workflow.rules[0].applies_when",
                "workflow.rules[1].preconditions[0].expr",
                "workflow.statuses[3]"
            ]
        );
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
                match l.fixed_move(&at, to, reason) {
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
