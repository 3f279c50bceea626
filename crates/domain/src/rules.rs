//! Transition rules of a workflow (DESIGN.md "Transition rule", API.md "Workflow document"):
//! their shape, the checks a workflow document must pass, and conflict resolution.
//!
//! Resolution is a pure function over the rules, the move and a predicate that says whether a
//! rule's `applies_when` holds, so it can be property-tested without an expression engine: among
//! the active rules for (from, to) that apply, the highest `priority` wins; ties go to an exact
//! `from` over `*`, then to the older rule (created first, then listed first). A winning `deny`
//! blocks the move; with no winner the move is invalid.
use crate::fields::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use time::{Duration, OffsetDateTime};

/// Whether a winning rule lets the move happen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The move may happen (subject to roles, reason, preconditions, approval).
    #[default]
    Allow,
    /// The move is refused (422 `transition_denied`).
    Deny,
}

/// A condition that must hold for the move, with the message shown when it does not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precondition {
    /// CEL over `case`, `actor` and `now`; must be true.
    pub expr: String,
    /// Shown to the user when it is false.
    pub message: String,
}

/// One approver slot: anyone holding a role, or one named user (id or email).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// A role whose holders may fill the slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The one user who may fill it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// How many slots of a tier must approve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// Every slot.
    All,
    /// One slot.
    Any,
    /// This many slots.
    Count(u32),
}

impl Serialize for Quorum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => s.serialize_str("all"),
            Self::Any => s.serialize_str("any"),
            Self::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "all" => Ok(Self::All),
            Value::String(s) if s == "any" => Ok(Self::Any),
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Self::Count)
                .ok_or_else(|| serde::de::Error::custom("quorum must be a positive whole number")),
            _ => Err(serde::de::Error::custom(
                "quorum must be \"all\", \"any\" or a number",
            )),
        }
    }
}

impl Quorum {
    /// Approvals needed out of `slots`.
    pub fn needed(self, slots: usize) -> usize {
        match self {
            Self::All => slots,
            Self::Any => 1.min(slots),
            Self::Count(n) => n as usize,
        }
    }
}

/// What happens when a tier's deadline passes undecided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum OnTimeout {
    /// A new slot for this role or user is added to the tier, with a fresh deadline.
    Escalate {
        /// The role escalated to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// Or the user escalated to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// The request expires; the case stays where it is.
    Expire,
}

/// One sequential step of an approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Display name (`Compliance`).
    pub name: String,
    /// Parallel approver slots.
    pub slots: Vec<Slot>,
    /// How many slots must approve.
    pub quorum: Quorum,
    /// ISO 8601 duration from the tier's start (`P2D`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// ISO 8601 durations from the tier's start at which undecided approvers are reminded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders: Vec<String>,
    /// What a missed deadline does (default: expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<OnTimeout>,
}

fn yes() -> bool {
    true
}

/// Who must approve a move before it is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// Sequential tiers.
    pub tiers: Vec<Tier>,
    /// The requester cannot approve, and one person fills at most one slot (default true).
    #[serde(default = "yes")]
    pub separation_of_duties: bool,
}

/// Work done after an applied move commits (from the outbox, at least once, idempotently).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PostAction {
    /// Opens a task on the case.
    CreateTask {
        /// Task title.
        title: String,
        /// The role expected to do it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee_role: Option<String>,
        /// ISO 8601 duration to the task's due date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in: Option<String>,
    },
    /// Assigns the case (user id or email).
    Assign {
        /// The assignee.
        to: String,
    },
    /// Sets a custom field.
    SetField {
        /// Custom field key.
        field: String,
        /// Its new value (checked against the field's type).
        value: Value,
    },
    /// Notifies roles and users.
    Notify {
        /// Roles to notify.
        #[serde(default)]
        roles: Vec<String>,
        /// Users to notify.
        #[serde(default)]
        users: Vec<String>,
        /// The message.
        message: String,
    },
    /// Emits an event of this name to the outbox (webhooks).
    EmitEvent {
        /// Event name.
        event: String,
    },
}

/// One transition rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id: kept when the client sends one, assigned otherwise.
    #[serde(default)]
    pub id: String,
    /// A status key, or `*` for any status.
    pub from: String,
    /// The target status.
    pub to: String,
    /// Higher wins.
    #[serde(default)]
    pub priority: i32,
    /// Allow or deny.
    #[serde(default)]
    pub effect: Effect,
    /// CEL: the rule is considered only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_when: Option<String>,
    /// CEL conditions that must all hold (422 `precondition_failed` lists the ones that fail).
    #[serde(default)]
    pub preconditions: Vec<Precondition>,
    /// The caller must hold one of these roles (403 `role_not_permitted`); empty: anyone with
    /// `case.transition`.
    #[serde(default)]
    pub required_roles: Vec<String>,
    /// A reason must be given.
    #[serde(default)]
    pub require_reason: bool,
    /// Approvals needed before the move is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPolicy>,
    /// Work done after the move is applied.
    #[serde(default)]
    pub post_actions: Vec<PostAction>,
    /// Active from (inclusive).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub effective_from: Option<OffsetDateTime>,
    /// Active until (exclusive).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub effective_until: Option<OffsetDateTime>,
    /// When the rule first appeared in the workflow (set by the server; breaks priority ties).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<OffsetDateTime>,
}

impl Rule {
    /// Whether the rule is in force at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.effective_from.is_none_or(|f| f <= now) && self.effective_until.is_none_or(|u| now < u)
    }

    /// Whether the rule is about the move `from` → `to`.
    pub fn matches(&self, from: &str, to: &str) -> bool {
        self.to == to && (self.from == from || self.from == "*")
    }

    /// Every expression of the rule with its document path (below the rule's own path).
    pub fn expressions(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if let Some(e) = &self.applies_when {
            out.push(("applies_when".to_string(), e.as_str()));
        }
        for (i, p) in self.preconditions.iter().enumerate() {
            out.push((format!("preconditions[{i}].expr"), p.expr.as_str()));
        }
        out
    }
}

/// The rule that decides the move `from` → `to` at `now`, with its position, or `None` when no
/// active rule for the move applies. `applies` says whether a rule's `applies_when` holds (a
/// rule without one always applies); it is asked only about active rules for this move.
pub fn resolve<'a>(
    rules: &'a [Rule],
    from: &str,
    to: &str,
    now: OffsetDateTime,
    mut applies: impl FnMut(&Rule) -> bool,
) -> Option<(usize, &'a Rule)> {
    rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.matches(from, to) && r.is_active(now))
        .filter(|(_, r)| r.applies_when.is_none() || applies(r))
        .min_by(|(i, a), (j, b)| {
            // Smallest = winner: highest priority, then exact `from`, then older, then earlier.
            b.priority
                .cmp(&a.priority)
                .then_with(|| (a.from == "*").cmp(&(b.from == "*")))
                .then_with(|| older_first(a.created_at, b.created_at))
                .then_with(|| i.cmp(j))
        })
}

fn older_first(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => std::cmp::Ordering::Equal,
    }
}

/// Parses an ISO 8601 duration of weeks, days, hours, minutes and seconds (`P2D`, `PT24H`,
/// `P1DT12H`, `PT90M`). Years and months are refused: their length depends on the calendar, and
/// a deadline must mean the same span whenever it starts. Written here because the crates that
/// parse ISO 8601 durations accept those calendar units and would need this check anyway.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    let mut total: i64 = 0;
    let mut add = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut num = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let at = units[next_unit..].iter().position(|(u, _)| *u == c)? + next_unit;
            let n: i64 = num.parse().ok()?;
            total = total.checked_add(n.checked_mul(units[at].1)?)?;
            num.clear();
            next_unit = at + 1;
        }
        num.is_empty().then_some(())
    };
    add(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(t) = time {
        add(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    Some(Duration::seconds(total))
}

/// Structural problems of `rules` (paths `workflow.rules[i]…`): ids, statuses, priorities,
/// effective dates, approval policies that can never be satisfied, post-actions. `statuses` are
/// the workflow's status keys, `roles` the roles approvers and required roles may name, `fields`
/// the case type's custom-field keys. Expressions are checked by the caller, which owns the
/// expression engine.
pub fn check_rules(
    rules: &[Rule],
    statuses: &[&str],
    roles: &[&str],
    fields: &[&str],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut p = |path: String, message: &str| {
        problems.push(Problem {
            path,
            message: message.into(),
        })
    };
    if rules.len() > 500 {
        p("workflow.rules".into(), "at most 500 rules");
    }
    let mut ids = BTreeSet::new();
    for (i, r) in rules.iter().enumerate() {
        let at = |field: &str| format!("workflow.rules[{i}].{field}");
        if !r.id.is_empty() {
            let well_formed = r.id.len() <= 64
                && r.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !well_formed {
                p(at("id"), "must be 1-64 letters, digits, `_` or `-`");
            } else if !ids.insert(r.id.as_str()) {
                p(at("id"), "duplicate rule id");
            }
        }
        if r.from != "*" && !statuses.contains(&r.from.as_str()) {
            p(at("from"), "is not one of the statuses (or `*`)");
        }
        if !statuses.contains(&r.to.as_str()) {
            p(at("to"), "is not one of the statuses");
        }
        if r.from == r.to {
            p(at("to"), "a rule cannot move a case to the status it is in");
        }
        if !(-1_000_000..=1_000_000).contains(&r.priority) {
            p(at("priority"), "must be between -1000000 and 1000000");
        }
        if let (Some(f), Some(u)) = (r.effective_from, r.effective_until)
            && f >= u
        {
            p(at("effective_until"), "must be after effective_from");
        }
        for (j, c) in r.preconditions.iter().enumerate() {
            if c.message.trim().is_empty() || c.message.chars().count() > 500 {
                p(
                    at(&format!("preconditions[{j}].message")),
                    "must be 1-500 characters",
                );
            }
        }
        for (j, role) in r.required_roles.iter().enumerate() {
            if !roles.contains(&role.as_str()) {
                p(at(&format!("required_roles[{j}]")), "is not a role");
            }
        }
        if r.effect == Effect::Deny && (r.approval.is_some() || !r.post_actions.is_empty()) {
            p(
                at("effect"),
                "a deny rule cannot carry an approval or post-actions: it never applies a move",
            );
        }
        if let Some(a) = &r.approval {
            check_policy(a, &at("approval"), roles, &mut p);
        }
        for (j, a) in r.post_actions.iter().enumerate() {
            let path = at(&format!("post_actions[{j}]"));
            match a {
                PostAction::CreateTask {
                    title,
                    assignee_role,
                    due_in,
                } => {
                    if title.trim().is_empty() || title.chars().count() > 500 {
                        p(format!("{path}.title"), "must be 1-500 characters");
                    }
                    if assignee_role
                        .as_deref()
                        .is_some_and(|r| !roles.contains(&r))
                    {
                        p(format!("{path}.assignee_role"), "is not a role");
                    }
                    if due_in
                        .as_deref()
                        .is_some_and(|d| parse_duration(d).is_none_or(|d| d <= Duration::ZERO))
                    {
                        p(
                            format!("{path}.due_in"),
                            "must be an ISO 8601 duration such as P3D or PT4H",
                        );
                    }
                }
                PostAction::Assign { to } => {
                    if to.trim().is_empty() {
                        p(format!("{path}.to"), "must name a user");
                    }
                }
                PostAction::SetField { field, .. } => {
                    if !fields.contains(&field.as_str()) {
                        p(
                            format!("{path}.field"),
                            "is not a custom field of this type",
                        );
                    }
                }
                PostAction::Notify {
                    roles: to_roles,
                    users,
                    message,
                } => {
                    if to_roles.is_empty() && users.is_empty() {
                        p(path.clone(), "names nobody to notify");
                    }
                    for (k, role) in to_roles.iter().enumerate() {
                        if !roles.contains(&role.as_str()) {
                            p(format!("{path}.roles[{k}]"), "is not a role");
                        }
                    }
                    if message.trim().is_empty() || message.chars().count() > 2000 {
                        p(format!("{path}.message"), "must be 1-2000 characters");
                    }
                }
                PostAction::EmitEvent { event } => {
                    let ok = (1..=64).contains(&event.len())
                        && event.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'
                        });
                    if !ok {
                        p(
                            format!("{path}.event"),
                            "must be 1-64 lowercase letters, digits, `.` or `_`",
                        );
                    } else if crate::events::EVENT_TYPES.contains(&event.as_str()) {
                        p(
                            format!("{path}.event"),
                            "is a casegate event; a rule cannot emit it on casegate's behalf",
                        );
                    }
                }
            }
        }
    }
    problems
}

fn check_policy(a: &ApprovalPolicy, path: &str, roles: &[&str], p: &mut impl FnMut(String, &str)) {
    if a.tiers.is_empty() {
        p(
            format!("{path}.tiers"),
            "an approval needs at least one tier",
        );
    }
    if a.tiers.len() > 10 {
        p(format!("{path}.tiers"), "at most 10 tiers");
    }
    for (t, tier) in a.tiers.iter().enumerate() {
        let at = format!("{path}.tiers[{t}]");
        if tier.name.trim().is_empty() || tier.name.chars().count() > 100 {
            p(format!("{at}.name"), "must be 1-100 characters");
        }
        if tier.slots.is_empty() {
            p(
                format!("{at}.slots"),
                "a tier needs at least one approver slot",
            );
        }
        if tier.slots.len() > 20 {
            p(format!("{at}.slots"), "at most 20 slots");
        }
        let mut named = BTreeSet::new();
        for (s, slot) in tier.slots.iter().enumerate() {
            match (&slot.role, &slot.user) {
                (Some(r), None) => {
                    if !roles.contains(&r.as_str()) {
                        p(format!("{at}.slots[{s}].role"), "is not a role");
                    }
                }
                (None, Some(u)) => {
                    if a.separation_of_duties && !named.insert(u.to_lowercase()) {
                        p(
                            format!("{at}.slots[{s}].user"),
                            "one person fills at most one slot: this user is named twice",
                        );
                    }
                }
                _ => p(
                    format!("{at}.slots[{s}]"),
                    "a slot names either a `role` or a `user`",
                ),
            }
        }
        match tier.quorum {
            Quorum::Count(0) => p(format!("{at}.quorum"), "must be at least 1"),
            Quorum::Count(n) if n as usize > tier.slots.len() => p(
                format!("{at}.quorum"),
                "needs more approvals than the tier has slots: it could never be met",
            ),
            _ => {}
        }
        let deadline = match tier.deadline.as_deref().map(parse_duration) {
            Some(d) if d.is_none_or(|d| d <= Duration::ZERO) => {
                p(
                    format!("{at}.deadline"),
                    "must be an ISO 8601 duration such as P2D or PT12H",
                );
                None
            }
            other => other.flatten(),
        };
        for (r, reminder) in tier.reminders.iter().enumerate() {
            match parse_duration(reminder) {
                None => p(
                    format!("{at}.reminders[{r}]"),
                    "must be an ISO 8601 duration such as PT24H",
                ),
                Some(d) if deadline.is_some_and(|dl| d >= dl) => p(
                    format!("{at}.reminders[{r}]"),
                    "comes at or after the deadline: it would never be sent",
                ),
                Some(_) if deadline.is_none() => {
                    p(format!("{at}.reminders[{r}]"), "reminders need a deadline")
                }
                Some(_) => {}
            }
        }
        match &tier.on_timeout {
            Some(_) if deadline.is_none() => p(
                format!("{at}.on_timeout"),
                "a tier without a deadline never times out",
            ),
            Some(OnTimeout::Escalate { role, user }) => match (role, user) {
                (Some(r), None) if !roles.contains(&r.as_str()) => {
                    p(format!("{at}.on_timeout.role"), "is not a role")
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => p(
                    format!("{at}.on_timeout"),
                    "escalation names either a `role` or a `user`",
                ),
            },
            _ => {}
        }
    }
}

/// Gives every rule without an id a fresh one (`rule-<n>`, unused in the document) and sets
/// `created_at`: a rule kept from `previous` (same id) keeps its time, a new one gets `now`.
pub fn settle_ids(rules: &mut [Rule], previous: &[Rule], now: OffsetDateTime) {
    let mut used: BTreeSet<String> = rules.iter().map(|r| r.id.clone()).collect();
    let mut n = 0;
    for r in rules.iter_mut() {
        if r.id.is_empty() {
            loop {
                n += 1;
                let id = format!("rule-{n}");
                if used.insert(id.clone()) {
                    r.id = id;
                    break;
                }
            }
        }
        r.created_at = previous
            .iter()
            .find(|old| old.id == r.id)
            .and_then(|old| old.created_at)
            .or(Some(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn rule(id: &str, from: &str, to: &str, priority: i32, effect: Effect) -> Rule {
        Rule {
            id: id.into(),
            from: from.into(),
            to: to.into(),
            priority,
            effect,
            applies_when: None,
            preconditions: vec![],
            required_roles: vec![],
            require_reason: false,
            approval: None,
            post_actions: vec![],
            effective_from: None,
            effective_until: None,
            created_at: None,
        }
    }

    #[test]
    fn durations_are_weeks_days_and_clock_time() {
        for (s, secs) in [
            ("P2D", 172_800),
            ("PT24H", 86_400),
            ("P1DT12H", 129_600),
            ("PT90M", 5_400),
            ("P1W", 604_800),
            ("PT1H30M15S", 5_415),
            ("P0D", 0),
        ] {
            assert_eq!(parse_duration(s), Some(Duration::seconds(secs)), "{s}");
        }
        for s in [
            "",
            "P",
            "PT",
            "2D",
            "P1Y",
            "P1M",
            "PT1D",
            "P1H",
            "P1DT",
            "PD",
            "P1D2",
            "PT1M1H",
            "P-1D",
            "P99999999999999999999D",
        ] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
    }

    #[test]
    fn the_highest_priority_wins_then_exact_from_then_the_older_rule() {
        let mut a = rule("a", "*", "closed", 10, Effect::Allow);
        let b = rule("b", "review", "closed", 10, Effect::Deny);
        let c = rule("c", "review", "closed", 5, Effect::Allow);
        let rules = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(
            resolve(&rules, "review", "closed", NOW, |_| true).map(|w| w.1.id.as_str()),
            Some("b")
        );
        // From another status only the wildcard matches.
        assert_eq!(
            resolve(&rules, "open", "closed", NOW, |_| true).map(|w| w.1.id.as_str()),
            Some("a")
        );
        // Equal priority and exactness: the older rule, then the one listed first.
        let mut d = rule("d", "*", "closed", 10, Effect::Deny);
        a.created_at = Some(NOW);
        d.created_at = Some(NOW - Duration::days(1));
        let rules = vec![a.clone(), d.clone()];
        assert_eq!(
            resolve(&rules, "open", "closed", NOW, |_| true).map(|w| w.1.id.as_str()),
            Some("d")
        );
        d.created_at = a.created_at;
        let rules = vec![a, d];
        assert_eq!(
            resolve(&rules, "open", "closed", NOW, |_| true).map(|w| w.0),
            Some(0)
        );
    }

    #[test]
    fn inactive_and_inapplicable_rules_are_skipped() {
        let mut hi = rule("hi", "open", "closed", 100, Effect::Deny);
        hi.applies_when = Some("case.priority == 'critical'".into());
        let mut later = rule("later", "open", "closed", 50, Effect::Deny);
        later.effective_from = Some(NOW + Duration::days(1));
        let mut expired = rule("expired", "open", "closed", 40, Effect::Deny);
        expired.effective_until = Some(NOW);
        let base = rule("base", "open", "closed", 0, Effect::Allow);
        let rules = vec![hi, later, expired, base];
        let w = resolve(&rules, "open", "closed", NOW, |_| false);
        assert_eq!(w.map(|w| w.1.id.as_str()), Some("base"));
        let w = resolve(&rules, "open", "closed", NOW, |_| true);
        assert_eq!(w.map(|w| w.1.id.as_str()), Some("hi"));
        let w = resolve(&rules, "open", "closed", NOW + Duration::days(2), |r| {
            r.id != "hi"
        });
        assert_eq!(w.map(|w| w.1.id.as_str()), Some("later"));
        assert!(resolve(&rules, "closed", "open", NOW, |_| true).is_none());
    }

    #[test]
    fn impossible_policies_and_bad_references_are_all_reported() {
        let rules: Vec<Rule> = serde_json::from_value(json!([
            {"id": "r1", "from": "open", "to": "nowhere"},
            {"id": "r1", "from": "limbo", "to": "open", "required_roles": ["wizard"]},
            {"from": "open", "to": "closed", "approval": {"tiers": [
                {"name": "Compliance", "slots": [{"role": "compliance_officer"}], "quorum": 2},
                {"name": "Legal", "slots": [{"user": "a@x.example"}, {"user": "A@x.example"}], "quorum": "all",
                 "deadline": "P1D", "reminders": ["P2D"], "on_timeout": {"action": "escalate"}},
                {"name": "Empty", "slots": [], "quorum": "any", "on_timeout": {"action": "expire"}}
            ]}},
            {"from": "open", "to": "closed", "effect": "deny", "post_actions": [{"type": "emit_event", "event": "x"}]},
            {"from": "closed", "to": "open", "post_actions": [
                {"type": "set_field", "field": "nope", "value": 1},
                {"type": "notify", "message": "hi"},
                {"type": "create_task", "title": "Call", "due_in": "soon"}
            ]}
        ]))
        .unwrap();
        let problems = check_rules(
            &rules,
            &["open", "closed"],
            &["analyst", "compliance_officer", "mlro"],
            &["amount"],
        );
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "workflow.rules[0].to",
            "workflow.rules[1].id",
            "workflow.rules[1].from",
            "workflow.rules[1].required_roles[0]",
            "workflow.rules[2].approval.tiers[0].quorum",
            "workflow.rules[2].approval.tiers[1].slots[1].user",
            "workflow.rules[2].approval.tiers[1].reminders[0]",
            "workflow.rules[2].approval.tiers[1].on_timeout",
            "workflow.rules[2].approval.tiers[2].slots",
            "workflow.rules[2].approval.tiers[2].on_timeout",
            "workflow.rules[3].effect",
            "workflow.rules[4].post_actions[0].field",
            "workflow.rules[4].post_actions[1]",
            "workflow.rules[4].post_actions[2].due_in",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:#?}"
            );
        }
        assert_eq!(paths.len(), 14, "{paths:#?}");
    }

    #[test]
    fn ids_are_kept_or_assigned_and_rules_keep_their_age() {
        let earlier = NOW - Duration::days(30);
        let mut old = rule("keep", "open", "closed", 0, Effect::Allow);
        old.created_at = Some(earlier);
        let mut rules = vec![
            rule("", "open", "closed", 0, Effect::Allow),
            rule("keep", "open", "closed", 1, Effect::Allow),
            rule("rule-1", "open", "closed", 2, Effect::Allow),
        ];
        settle_ids(&mut rules, &[old], NOW);
        assert_eq!(rules[0].id, "rule-2");
        assert_eq!(rules[1].created_at, Some(earlier));
        assert_eq!(rules[0].created_at, Some(NOW));
        assert_eq!(rules[2].created_at, Some(NOW));
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            prop_oneof![Just("*"), Just("a"), Just("b")],
            prop_oneof![Just("b"), Just("c")],
            -3i32..3,
            any::<bool>(),
            any::<bool>(),
            0i64..3,
        )
            .prop_map(|(from, to, priority, deny, conditional, age)| {
                let mut r = rule(
                    "",
                    from,
                    to,
                    priority,
                    if deny { Effect::Deny } else { Effect::Allow },
                );
                r.applies_when = conditional.then(|| "x".to_string());
                r.created_at = Some(NOW - Duration::days(age));
                r
            })
    }

    proptest! {
        /// The winner matches the move and applies, and no other such rule beats it: none has a
        /// higher priority, none of equal priority is exact where the winner is `*`, none of
        /// equal standing is older. With no winner, no rule for the move applies.
        #[test]
        fn the_winner_is_never_outranked(
            rules in proptest::collection::vec(arb_rule(), 0..12),
            holds in proptest::collection::vec(any::<bool>(), 12),
            from in prop_oneof![Just("a"), Just("b")],
            to in prop_oneof![Just("b"), Just("c")],
        ) {
            let mut rules = rules;
            for (i, r) in rules.iter_mut().enumerate() {
                r.id = format!("r{i}");
            }
            let applies = |r: &Rule| holds[r.id[1..].parse::<usize>().unwrap()];
            let eligible: Vec<(usize, &Rule)> = rules.iter().enumerate()
                .filter(|(_, r)| r.matches(from, to) && (r.applies_when.is_none() || applies(r)))
                .collect();
            match resolve(&rules, from, to, NOW, applies) {
                None => prop_assert!(eligible.is_empty()),
                Some((wi, w)) => {
                    prop_assert!(eligible.iter().any(|(i, _)| *i == wi));
                    for (i, r) in &eligible {
                        let rank = |r: &Rule, i: usize| (
                            -r.priority,
                            r.from == "*",
                            r.created_at,
                            i,
                        );
                        prop_assert!(rank(w, wi) <= rank(r, *i));
                    }
                }
            }
        }

        /// Resolution does not depend on the order rules are listed in, except as the very
        /// last tie-break between rules of identical standing.
        #[test]
        fn order_only_breaks_exact_ties(
            rules in proptest::collection::vec(arb_rule(), 0..10),
        ) {
            let mut rules = rules;
            for (i, r) in rules.iter_mut().enumerate() {
                r.id = format!("r{i}");
            }
            let mut reversed = rules.clone();
            reversed.reverse();
            // The winner's standing is the same either way; which of two rules of identical
            // standing wins is the one thing the order decides.
            let key = |w: Option<(usize, &Rule)>| w.map(|(_, r)| (r.priority, r.from == "*", r.created_at));
            prop_assert_eq!(
                key(resolve(&rules, "a", "b", NOW, |_| true)),
                key(resolve(&reversed, "a", "b", NOW, |_| true))
            );
        }
    }
}
