//! Domain events: what the transactional outbox carries and webhooks deliver (API.md
//! "Webhooks"). Each event is written to the outbox in the transaction of the change it
//! announces; the webhook body is `{"id", "type", "created_at", "tenant_id", "data"}`.
/// Every event name a webhook may subscribe to, as API.md lists them.
pub const EVENT_TYPES: &[&str] = &[
    "case.created",
    "case.updated",
    "case.assigned",
    "case.status_changed",
    "case.escalated",
    "case.disposed",
    "case.closed",
    "case.reopened",
    "transition.requested",
    "approval.requested",
    "approval.reminder",
    "approval.escalated",
    "transition.approved",
    "transition.rejected",
    "transition.expired",
    "task.created",
    "sar.created",
    "sar.status_changed",
    "sar.filed",
    AUDIT_EXPORT_READY,
    "ping",
];

/// Fired when an audit export finishes (ready or failed).
pub const AUDIT_EXPORT_READY: &str = "audit.export_ready";

/// Whether `name` is a known event type.
pub fn is_known(name: &str) -> bool {
    EVENT_TYPES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for e in EVENT_TYPES {
            assert!(seen.insert(*e), "{e} listed twice");
            assert!(
                *e == "ping"
                    || e.split_once('.')
                        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
                "{e}"
            );
        }
        assert!(is_known("audit.export_ready"));
        assert!(!is_known("audit.export"));
    }
}
