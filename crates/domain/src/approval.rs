//! The approval state machine of a transition request (DESIGN.md "Approval policy" and
//! "Transition request"). Pure: the caller passes the clock's reading and who is acting; the
//! service stores the result and applies the move when [`Request::approve`] says the last tier
//! is done.
//!
//! Semantics, in one place:
//! - Tiers run one after another. Only the current tier takes decisions; an approver of a later
//!   tier is told the tier is not active yet (`not_an_eligible_approver`).
//! - A tier is done when `needed` of its slots approved: `all` = every slot named in the
//!   policy, `any` = one, `N` = N. Slots added by escalation stand in for missing approvers;
//!   they never raise the number needed.
//! - One rejection by an eligible approver rejects the whole request (veto).
//! - Separation of duties (the default): the requester cannot approve or reject, and one person
//!   fills at most one slot of the whole request. Without it, one person still fills at most one
//!   slot per tier (otherwise one person could make a quorum alone).
//! - A named-user slot is filled before a role slot the same person could also fill.
//! - Each tier may have a deadline counted from the moment it became current, reminders before
//!   it, and an action when it passes: `escalate` adds one slot for the named role or user and
//!   restarts the tier's clock (once per tier; a second miss expires), `expire` (the default)
//!   ends the request.
use crate::error::{Code, Error, Result};
use crate::rules::{ApprovalPolicy, OnTimeout, Quorum, parse_duration};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a transition request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Waiting for the current tier.
    Pending,
    /// Every tier approved; the move is being applied (same transaction).
    Approved,
    /// The move was applied.
    Applied,
    /// An approver vetoed it.
    Rejected,
    /// A deadline passed with `expire`.
    Expired,
    /// The requester or an administrator withdrew it.
    Cancelled,
    /// The case changed before the last approval.
    Superseded,
}

impl RequestStatus {
    /// Every status, for filters.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Approved,
        Self::Applied,
        Self::Rejected,
        Self::Expired,
        Self::Cancelled,
        Self::Superseded,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Applied => "applied",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Superseded => "superseded",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// An approver's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Approves.
    Approved,
    /// Vetoes.
    Rejected,
}

/// One approver slot of a request and how it was filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotState {
    /// A role whose holders may fill it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The one user (as the policy names them: id or email) who may fill it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Added by an escalation.
    #[serde(default)]
    pub escalated: bool,
    /// Who filled it (email or label).
    pub decided_by: Option<String>,
    /// Their user id.
    pub decided_by_id: Option<Uuid>,
    /// Their answer.
    pub decision: Option<Verdict>,
    /// When.
    #[serde(
        serialize_with = "crate::clock::serialize_opt_wire_time",
        deserialize_with = "time::serde::rfc3339::option::deserialize"
    )]
    pub decided_at: Option<OffsetDateTime>,
    /// What they said.
    pub comment: Option<String>,
}

impl SlotState {
    fn open(role: Option<String>, user: Option<String>, escalated: bool) -> Self {
        Self {
            role,
            user,
            escalated,
            decided_by: None,
            decided_by_id: None,
            decision: None,
            decided_at: None,
            comment: None,
        }
    }

    fn names(&self, who: &Approver) -> bool {
        self.user.as_deref().is_some_and(|u| {
            u.eq_ignore_ascii_case(&who.id.to_string())
                || who
                    .email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(u))
        })
    }

    /// Whether `who` may fill this slot (decided or not).
    fn fits(&self, who: &Approver) -> bool {
        self.names(who) || self.role.as_ref().is_some_and(|r| who.roles.contains(r))
    }
}

/// One tier of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierState {
    /// Display name.
    pub name: String,
    /// The policy's quorum.
    pub quorum: Quorum,
    /// Approvals needed (from the quorum and the policy's slots).
    pub needed: usize,
    /// The policy's deadline (ISO 8601 duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Reminder offsets from `started_at`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders: Vec<String>,
    /// What a missed deadline does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<OnTimeout>,
    /// When the tier became current (or was escalated).
    #[serde(
        serialize_with = "crate::clock::serialize_opt_wire_time",
        deserialize_with = "time::serde::rfc3339::option::deserialize"
    )]
    pub started_at: Option<OffsetDateTime>,
    /// When it times out.
    #[serde(
        serialize_with = "crate::clock::serialize_opt_wire_time",
        deserialize_with = "time::serde::rfc3339::option::deserialize"
    )]
    pub deadline_at: Option<OffsetDateTime>,
    /// Reminders already sent since `started_at`.
    #[serde(default)]
    pub reminders_sent: usize,
    /// Whether it was escalated (a second miss expires the request).
    #[serde(default)]
    pub escalated: bool,
    /// The slots.
    pub slots: Vec<SlotState>,
}

impl TierState {
    fn approvals(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.decision == Some(Verdict::Approved))
            .count()
    }

    fn start(&mut self, now: OffsetDateTime) {
        self.started_at = Some(now);
        self.reminders_sent = 0;
        self.deadline_at = self
            .deadline
            .as_deref()
            .and_then(parse_duration)
            .map(|d| now + d);
    }

    /// The times of the reminders not yet sent, in order.
    fn reminder_times(&self) -> Vec<OffsetDateTime> {
        let Some(start) = self.started_at else {
            return Vec::new();
        };
        let mut at: Vec<OffsetDateTime> = self
            .reminders
            .iter()
            .filter_map(|r| parse_duration(r))
            .map(|d| start + d)
            .collect();
        at.sort();
        at.into_iter().skip(self.reminders_sent).collect()
    }
}

/// Someone deciding: their id, email and roles.
#[derive(Clone, Debug)]
pub struct Approver {
    /// User id.
    pub id: Uuid,
    /// Email, when they have one.
    pub email: Option<String>,
    /// Label for the record (email or `jwt:<sub>`).
    pub label: String,
    /// Roles held.
    pub roles: Vec<String>,
}

/// What a decision did to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded; the tier still waits for others.
    Recorded,
    /// The tier is done and the next one became current.
    NextTier,
    /// Every tier is done: the move may be applied.
    Approved,
    /// Vetoed.
    Rejected,
}

/// What the passing of time did to the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timed {
    /// Undecided approvers of the current tier should be reminded.
    Reminder {
        /// Tier index.
        tier: usize,
    },
    /// The tier was escalated to this slot.
    Escalated {
        /// Tier index.
        tier: usize,
        /// The added slot's role.
        role: Option<String>,
        /// Or user.
        user: Option<String>,
    },
    /// The request expired.
    Expired {
        /// The tier that missed its deadline.
        tier: usize,
    },
}

/// The approval part of a transition request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Where it is.
    pub status: RequestStatus,
    /// Index of the tier taking decisions.
    pub current_tier: usize,
    /// The tiers.
    pub tiers: Vec<TierState>,
    /// The policy's separation of duties.
    pub separation_of_duties: bool,
    /// Who asked.
    pub requested_by: Uuid,
}

impl Request {
    /// A pending request under `policy`, its first tier current from `now`.
    pub fn open(policy: &ApprovalPolicy, requested_by: Uuid, now: OffsetDateTime) -> Self {
        let tiers = policy
            .tiers
            .iter()
            .map(|t| TierState {
                name: t.name.clone(),
                quorum: t.quorum,
                needed: t.quorum.needed(t.slots.len()).max(1),
                deadline: t.deadline.clone(),
                reminders: t.reminders.clone(),
                on_timeout: t.on_timeout.clone(),
                started_at: None,
                deadline_at: None,
                reminders_sent: 0,
                escalated: false,
                slots: t
                    .slots
                    .iter()
                    .map(|s| SlotState::open(s.role.clone(), s.user.clone(), false))
                    .collect(),
            })
            .collect();
        let mut r = Self {
            status: RequestStatus::Pending,
            current_tier: 0,
            tiers,
            separation_of_duties: policy.separation_of_duties,
            requested_by,
        };
        if let Some(t) = r.tiers.first_mut() {
            t.start(now);
        }
        r
    }

    /// Records `who`'s `verdict` on the current tier.
    ///
    /// Errors: 409 `request_not_pending` unless pending; 403 `self_approval_forbidden` for the
    /// requester under separation of duties; 409 `already_decided` when `who` already filled a
    /// slot of this tier; 403 `duplicate_approver` when they filled one of an earlier tier
    /// under separation of duties; 403 `not_an_eligible_approver` when no open slot of the
    /// current tier fits them (also when only a later tier's would); 403 when the deadline
    /// passed (the timer has not run yet, but the tier is closed).
    pub fn decide(
        &mut self,
        who: &Approver,
        verdict: Verdict,
        comment: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Outcome> {
        let slot = self.slot_for(who, Some(now))?;
        let cur = self.current_tier;
        let s = &mut self.tiers[cur].slots[slot];
        s.decided_by = Some(who.label.clone());
        s.decided_by_id = Some(who.id);
        s.decision = Some(verdict);
        s.decided_at = Some(now);
        s.comment = comment;
        if verdict == Verdict::Rejected {
            self.status = RequestStatus::Rejected;
            return Ok(Outcome::Rejected);
        }
        if self.tiers[cur].approvals() < self.tiers[cur].needed {
            return Ok(Outcome::Recorded);
        }
        if cur + 1 == self.tiers.len() {
            self.status = RequestStatus::Approved;
            return Ok(Outcome::Approved);
        }
        self.current_tier += 1;
        self.tiers[cur + 1].start(now);
        Ok(Outcome::NextTier)
    }

    /// The open slot of the current tier that `who` would fill, or why they cannot decide (the
    /// errors of [`Self::decide`]). With `now`, a tier past its deadline takes no decision.
    fn slot_for(&self, who: &Approver, now: Option<OffsetDateTime>) -> Result<usize> {
        self.check_pending()?;
        if self.separation_of_duties && who.id == self.requested_by {
            return Err(Error::new(
                Code::SelfApprovalForbidden,
                "the requester of a move cannot decide on it (separation of duties)",
            ));
        }
        let cur = self.current_tier;
        let decided_here = |t: &TierState| t.slots.iter().any(|s| s.decided_by_id == Some(who.id));
        if decided_here(&self.tiers[cur]) {
            return Err(Error::new(
                Code::AlreadyDecided,
                "you already decided on this tier of the request",
            ));
        }
        if self.separation_of_duties && self.tiers[..cur].iter().any(decided_here) {
            return Err(Error::new(
                Code::DuplicateApprover,
                "you already filled a slot of this request: one person fills at most one slot",
            ));
        }
        let tier = &self.tiers[cur];
        if tier
            .deadline_at
            .is_some_and(|d| now.is_some_and(|now| d <= now))
        {
            return Err(Error::new(
                Code::NotAnEligibleApprover,
                format!("the deadline of tier `{}` has passed", tier.name),
            ));
        }
        let open = |s: &SlotState| s.decision.is_none();
        let slot = tier
            .slots
            .iter()
            .position(|s| open(s) && s.names(who))
            .or_else(|| tier.slots.iter().position(|s| open(s) && s.fits(who)));
        let Some(slot) = slot else {
            let later = self.tiers[cur + 1..]
                .iter()
                .any(|t| t.slots.iter().any(|s| s.fits(who)));
            let message = if later {
                format!(
                    "your approval belongs to a later tier; tier `{}` must decide first",
                    tier.name
                )
            } else {
                format!("no open slot of tier `{}` is yours to fill", tier.name)
            };
            return Err(Error::new(Code::NotAnEligibleApprover, message));
        };
        Ok(slot)
    }

    fn check_pending(&self) -> Result<()> {
        if self.status != RequestStatus::Pending {
            return Err(Error::new(
                Code::RequestNotPending,
                format!("the request is {}, not pending", self.status.as_str()),
            ));
        }
        Ok(())
    }

    /// Ends a pending request as `status` (cancelled, superseded) or marks it applied.
    pub fn end(&mut self, status: RequestStatus) -> Result<()> {
        let ok = match status {
            RequestStatus::Applied => self.status == RequestStatus::Approved,
            RequestStatus::Cancelled | RequestStatus::Superseded => {
                self.status == RequestStatus::Pending
            }
            _ => false,
        };
        if !ok {
            return Err(Error::new(
                Code::RequestNotPending,
                format!(
                    "the request is {}: it cannot become {}",
                    self.status.as_str(),
                    status.as_str()
                ),
            ));
        }
        self.status = status;
        Ok(())
    }

    /// What is due at `now`: at most one thing per call (a reminder, an escalation or the
    /// expiry), so each is recorded on its own. Call again until `None`.
    pub fn tick(&mut self, now: OffsetDateTime) -> Option<Timed> {
        if self.status != RequestStatus::Pending {
            return None;
        }
        let cur = self.current_tier;
        let tier = &mut self.tiers[cur];
        if tier.deadline_at.is_some_and(|d| d <= now) {
            return Some(match tier.on_timeout.clone() {
                Some(OnTimeout::Escalate { role, user }) if !tier.escalated => {
                    tier.escalated = true;
                    tier.slots
                        .push(SlotState::open(role.clone(), user.clone(), true));
                    tier.start(now);
                    // Reminders are for the original approvers' window only.
                    tier.reminders_sent = tier.reminders.len();
                    Timed::Escalated {
                        tier: cur,
                        role,
                        user,
                    }
                }
                _ => {
                    self.status = RequestStatus::Expired;
                    Timed::Expired { tier: cur }
                }
            });
        }
        let due = tier
            .reminder_times()
            .into_iter()
            .take_while(|t| *t <= now)
            .count();
        if due > 0 {
            // Several reminders missed while the timer was down make one reminder.
            tier.reminders_sent += due;
            return Some(Timed::Reminder { tier: cur });
        }
        None
    }

    /// When [`Self::tick`] next has something to do (none when not pending).
    pub fn next_due(&self) -> Option<OffsetDateTime> {
        if self.status != RequestStatus::Pending {
            return None;
        }
        let tier = &self.tiers[self.current_tier];
        let reminder = tier.reminder_times().into_iter().next();
        match (reminder, tier.deadline_at) {
            (Some(r), Some(d)) => Some(r.min(d)),
            (r, d) => r.or(d),
        }
    }

    /// The decisions so far, as the status history records them: `[{"approver", "approver_id",
    /// "tier", "decision", "decided_at", "comment"}]`.
    pub fn decisions(&self) -> serde_json::Value {
        let mut out = Vec::new();
        for t in &self.tiers {
            for s in &t.slots {
                if let (Some(d), Some(at)) = (s.decision, s.decided_at) {
                    out.push(serde_json::json!({
                        "approver": s.decided_by,
                        "approver_id": s.decided_by_id,
                        "tier": t.name,
                        "decision": d,
                        "decided_at": crate::clock::wire_time(at),
                        "comment": s.comment,
                    }));
                }
            }
        }
        serde_json::Value::Array(out)
    }

    /// Whether `who` could decide on the current tier now (the approver's inbox).
    /// Deadlines are the timer's business: the inbox shows what is still open.
    pub fn awaits(&self, who: &Approver) -> bool {
        self.slot_for(who, None).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Slot, Tier};
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-01 09:00 UTC);

    fn role(r: &str) -> Slot {
        Slot {
            role: Some(r.into()),
            user: None,
        }
    }

    fn tier(name: &str, slots: Vec<Slot>, quorum: Quorum) -> Tier {
        Tier {
            name: name.into(),
            slots,
            quorum,
            deadline: None,
            reminders: Vec::new(),
            on_timeout: None,
        }
    }

    fn person(n: u128, roles: &[&str]) -> Approver {
        Approver {
            id: Uuid::from_u128(n),
            email: Some(format!("p{n}@bank.example")),
            label: format!("p{n}@bank.example"),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn fraud_policy() -> ApprovalPolicy {
        ApprovalPolicy {
            tiers: vec![
                tier("Compliance", vec![role("compliance_officer")], Quorum::All),
                tier("Legal", vec![role("legal_counsel")], Quorum::All),
            ],
            separation_of_duties: true,
        }
    }

    fn code(r: Result<Outcome>) -> Code {
        r.unwrap_err().code
    }

    #[test]
    fn compliance_then_legal_approves_the_move() {
        let requester = person(1, &["analyst", "compliance_officer"]);
        let co = person(2, &["compliance_officer"]);
        let legal = person(3, &["legal_counsel"]);
        let mut r = Request::open(&fraud_policy(), requester.id, T0);
        let yes = Verdict::Approved;
        // Legal is not asked yet; the requester may not approve even with the role.
        assert_eq!(
            code(r.decide(&legal, yes, None, T0)),
            Code::NotAnEligibleApprover
        );
        assert_eq!(
            code(r.decide(&requester, yes, None, T0)),
            Code::SelfApprovalForbidden
        );
        assert_eq!(r.decide(&co, yes, None, T0).unwrap(), Outcome::NextTier);
        assert_eq!(r.current_tier, 1);
        // The compliance officer cannot also fill the legal slot, nor decide twice.
        let co_and_legal = person(2, &["compliance_officer", "legal_counsel"]);
        assert_eq!(
            code(r.decide(&co_and_legal, yes, None, T0)),
            Code::DuplicateApprover
        );
        assert_eq!(
            r.decide(&legal, yes, Some("ok".into()), T0).unwrap(),
            Outcome::Approved
        );
        assert_eq!(r.status, RequestStatus::Approved);
        assert_eq!(
            code(r.decide(&legal, yes, None, T0)),
            Code::RequestNotPending
        );
        let d = r.decisions();
        assert_eq!(d.as_array().unwrap().len(), 2);
        assert_eq!(d[1]["tier"], "Legal");
        assert_eq!(d[1]["comment"], "ok");
        r.end(RequestStatus::Applied).unwrap();
        assert_eq!(r.status, RequestStatus::Applied);
    }

    #[test]
    fn one_rejection_vetoes_the_whole_request() {
        let policy = ApprovalPolicy {
            tiers: vec![tier(
                "Board",
                vec![role("admin"), role("admin"), role("admin")],
                Quorum::Count(2),
            )],
            separation_of_duties: true,
        };
        let mut r = Request::open(&policy, Uuid::from_u128(9), T0);
        let a = person(1, &["admin"]);
        assert_eq!(
            r.decide(&a, Verdict::Approved, None, T0).unwrap(),
            Outcome::Recorded
        );
        assert_eq!(
            code(r.decide(&a, Verdict::Approved, None, T0)),
            Code::AlreadyDecided
        );
        let b = person(2, &["admin"]);
        assert_eq!(
            r.decide(&b, Verdict::Rejected, None, T0).unwrap(),
            Outcome::Rejected
        );
        assert_eq!(r.status, RequestStatus::Rejected);
        assert_eq!(r.next_due(), None);
        assert!(r.end(RequestStatus::Cancelled).is_err());
    }

    #[test]
    fn a_named_user_slot_is_filled_before_a_role_slot() {
        let policy = ApprovalPolicy {
            tiers: vec![tier(
                "Sign-off",
                vec![
                    role("compliance_officer"),
                    Slot {
                        role: None,
                        user: Some("P2@bank.example".into()),
                    },
                ],
                Quorum::All,
            )],
            separation_of_duties: true,
        };
        let mut r = Request::open(&policy, Uuid::from_u128(9), T0);
        let named = person(2, &["compliance_officer"]);
        r.decide(&named, Verdict::Approved, None, T0).unwrap();
        assert!(
            r.tiers[0].slots[1].decision.is_some(),
            "the named slot took it"
        );
        assert!(r.awaits(&person(3, &["compliance_officer"])));
        assert!(!r.awaits(&person(4, &["analyst"])));
    }

    #[test]
    fn reminders_then_escalation_then_expiry() {
        let mut policy = fraud_policy();
        policy.tiers[0].deadline = Some("P2D".into());
        policy.tiers[0].reminders = vec!["PT24H".into(), "PT36H".into()];
        policy.tiers[0].on_timeout = Some(OnTimeout::Escalate {
            role: Some("mlro".into()),
            user: None,
        });
        let mut r = Request::open(&policy, Uuid::from_u128(9), T0);
        assert_eq!(r.next_due(), Some(T0 + Duration::hours(24)));
        assert_eq!(r.tick(T0 + Duration::hours(23)), None);
        // The timer was down for both reminders: one reminder, then nothing until the deadline.
        assert_eq!(
            r.tick(T0 + Duration::hours(40)),
            Some(Timed::Reminder { tier: 0 })
        );
        assert_eq!(r.tick(T0 + Duration::hours(40)), None);
        assert_eq!(r.next_due(), Some(T0 + Duration::days(2)));
        // Past the deadline nobody can approve, even before the timer runs.
        let co = person(2, &["compliance_officer"]);
        let late = T0 + Duration::days(2);
        assert_eq!(
            code(r.decide(&co, Verdict::Approved, None, late)),
            Code::NotAnEligibleApprover
        );
        let esc = r.tick(late).unwrap();
        assert!(matches!(esc, Timed::Escalated { tier: 0, .. }));
        assert_eq!(r.next_due(), Some(late + Duration::days(2)));
        // The MLRO now stands in; one approval still completes the tier.
        let mlro = person(5, &["mlro"]);
        assert!(r.awaits(&mlro));
        assert_eq!(r.tiers[0].needed, 1);
        // A second miss expires the request.
        assert_eq!(
            r.tick(late + Duration::days(2)),
            Some(Timed::Expired { tier: 0 })
        );
        assert_eq!(r.status, RequestStatus::Expired);
        assert_eq!(r.tick(late + Duration::days(9)), None);
        assert_eq!(
            code(r.decide(&mlro, Verdict::Approved, None, late)),
            Code::RequestNotPending
        );
    }

    #[test]
    fn without_separation_of_duties_the_requester_may_approve_once_per_tier() {
        let mut policy = fraud_policy();
        policy.separation_of_duties = false;
        policy.tiers[1] = tier("Second", vec![role("compliance_officer")], Quorum::Any);
        let me = person(1, &["compliance_officer"]);
        let mut r = Request::open(&policy, me.id, T0);
        assert_eq!(
            r.decide(&me, Verdict::Approved, None, T0).unwrap(),
            Outcome::NextTier
        );
        assert_eq!(
            r.decide(&me, Verdict::Approved, None, T0).unwrap(),
            Outcome::Approved
        );
    }

    #[test]
    fn the_stored_form_reads_back() {
        let mut policy = fraud_policy();
        policy.tiers[0].deadline = Some("PT12H".into());
        let mut r = Request::open(&policy, Uuid::from_u128(9), T0);
        r.decide(
            &person(2, &["compliance_officer"]),
            Verdict::Approved,
            None,
            T0,
        )
        .unwrap();
        let back: Request = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[derive(Clone, Debug)]
    enum Step {
        Decide { who: u8, reject: bool },
        Wait { hours: u8 },
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..6, prop::bool::weighted(0.15)).prop_map(|(who, reject)| Step::Decide { who, reject }),
            1 => (0u8..30).prop_map(|hours| Step::Wait { hours }),
        ]
    }

    fn arb_policy() -> impl Strategy<Value = ApprovalPolicy> {
        let slot = prop_oneof![
            (0usize..3).prop_map(|i| role(["a", "b", "c"][i])),
            (0u128..6).prop_map(|n| Slot {
                role: None,
                user: Some(format!("p{n}@bank.example")),
            }),
        ];
        let t = (
            prop::collection::vec(slot, 1..4),
            0u32..4,
            prop::option::of(2u8..48),
            0u8..3,
            any::<bool>(),
        )
            .prop_map(|(slots, q, deadline, escalate, remind)| {
                let quorum = match q {
                    0 => Quorum::All,
                    1 => Quorum::Any,
                    n => Quorum::Count(n.min(slots.len() as u32)),
                };
                Tier {
                    name: "t".into(),
                    quorum,
                    deadline: deadline.map(|h| format!("PT{h}H")),
                    reminders: match deadline {
                        Some(h) if remind => vec![format!("PT{}H", h / 2)],
                        _ => Vec::new(),
                    },
                    on_timeout: deadline.map(|_| match escalate {
                        0 => OnTimeout::Expire,
                        1 => OnTimeout::Escalate {
                            role: Some("c".into()),
                            user: None,
                        },
                        _ => OnTimeout::Escalate {
                            role: None,
                            user: Some("p5@bank.example".into()),
                        },
                    }),
                    slots,
                }
            });
        (prop::collection::vec(t, 1..4), any::<bool>()).prop_map(|(tiers, sod)| ApprovalPolicy {
            tiers,
            separation_of_duties: sod,
        })
    }

    proptest! {
        /// Whatever happens, in any order: a request leaves `pending` at most once; `approved`
        /// means every tier has its quorum of distinct approvers (never the requester under
        /// separation of duties, never one person twice in a request); any rejection means
        /// `rejected`; the current tier never goes back; nothing is due once decided.
        #[test]
        fn the_approval_machine_keeps_its_promises(
            policy in arb_policy(),
            steps in prop::collection::vec(arb_step(), 0..40),
        ) {
            // Person n holds role a, b or c by n % 3; person 0 is the requester.
            let people: Vec<Approver> = (0..6u128)
                .map(|n| person(n, &[["a", "b", "c"][(n % 3) as usize]]))
                .collect();
            let mut r = Request::open(&policy, people[0].id, T0);
            let mut now = T0;
            let mut left_pending = false;
            for step in steps {
                let tier_before = r.current_tier;
                let was = r.status;
                match step {
                    Step::Decide { who, reject } => {
                        let v = if reject { Verdict::Rejected } else { Verdict::Approved };
                        let deadline = r.tiers[r.current_tier].deadline_at;
                        let res = r.decide(&people[who as usize], v, None, now);
                        if res.is_err() {
                            prop_assert_eq!(r.status, was);
                        } else {
                            prop_assert!(deadline.is_none_or(|d| now < d), "decided after the deadline");
                        }
                    }
                    Step::Wait { hours } => {
                        now += Duration::hours(hours.into());
                        while r.tick(now).is_some() {}
                    }
                }
                prop_assert!(r.current_tier >= tier_before);
                if was != RequestStatus::Pending {
                    prop_assert_eq!(r.status, was, "a decided request never changes");
                }
                if r.status != RequestStatus::Pending {
                    left_pending = true;
                    prop_assert_eq!(r.next_due(), None);
                } else {
                    prop_assert!(!left_pending);
                }
            }
            let decided: Vec<&SlotState> = r.tiers.iter().flat_map(|t| &t.slots).filter(|s| s.decision.is_some()).collect();
            let rejected = decided.iter().any(|s| s.decision == Some(Verdict::Rejected));
            prop_assert_eq!(rejected, r.status == RequestStatus::Rejected);
            if policy.separation_of_duties {
                prop_assert!(decided.iter().all(|s| s.decided_by_id != Some(people[0].id)));
                let mut ids: Vec<_> = decided.iter().map(|s| s.decided_by_id).collect();
                ids.sort();
                ids.dedup();
                prop_assert_eq!(ids.len(), decided.len(), "one person, one slot");
            }
            for t in &r.tiers {
                let mut ids: Vec<_> = t.slots.iter().filter_map(|s| s.decided_by_id).collect();
                let n = ids.len();
                ids.sort();
                ids.dedup();
                prop_assert_eq!(ids.len(), n, "one person, one slot per tier");
            }
            if r.status == RequestStatus::Approved {
                prop_assert!(r.tiers.iter().all(|t| t.approvals() >= t.needed));
            }
            if r.status == RequestStatus::Pending {
                let cur = &r.tiers[r.current_tier];
                prop_assert!(cur.approvals() < cur.needed);
                prop_assert!(r.tiers[r.current_tier + 1..].iter().all(|t| t.approvals() == 0));
            }
        }
    }
}
