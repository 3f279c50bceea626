//! Writes deferred to a transaction's next statement, so a command's writes reach PostgreSQL
//! in one round trip.
//!
//! A command writes its history row, its case, its outbox events and its audit event one after
//! another, and each statement was a round trip: the server's send, PostgreSQL's wake-up, parse
//! of the message, executor start, reply and the server's wake-up, on two cores shared by both.
//! A write whose outcome is known in advance (a row inserted; a row the transaction already
//! holds, updated) is instead handed to [`defer`] with the number of rows it must touch. Inside
//! a PostgreSQL transaction it waits there: the transaction's next statement first runs every
//! waiting step as one statement, each a `WITH` item, and checks their row counts; the audit
//! append ([`crate::audit::append`]) takes them into its own statement instead. Elsewhere (a
//! pooled connection; SQLite, whose statements cost no round trip) a step runs at once.
//!
//! What a command sees is unchanged: every other statement on the transaction runs after the
//! steps before it (reads see them), and a step that touches other than its rows fails the
//! statement that runs it, with its own error, which rolls the command back. The steps of one
//! statement share its snapshot: none reads what another writes, which is why only plain
//! inserts, updates of held rows and checks over other tables are deferred.
//!
//! No crate joins statements this way (sqlx pipelines nothing across awaited queries), so the
//! statement is built here: each step's `$n` placeholders are renumbered after the steps
//! before it.
use crate::{Conn, Row, StoreError, StoreResult, Val};
use std::fmt::Write as _;

/// One deferred statement and the row count it must produce.
#[derive(Clone, Debug)]
pub struct Step {
    sql: String,
    args: Vec<Val>,
    /// An `INSERT`/`UPDATE` (joined with `RETURNING 1`), or a `SELECT`.
    query: bool,
    rows: u64,
    /// Names the step in its error when the count differs.
    what: &'static str,
}

impl Step {
    /// An `INSERT` or `UPDATE` (without `RETURNING`) that must touch exactly `rows` rows.
    pub fn write(sql: impl Into<String>, args: Vec<Val>, rows: u64, what: &'static str) -> Self {
        Self {
            sql: sql.into(),
            args,
            query: false,
            rows,
            what,
        }
    }

    /// A `SELECT` that must return exactly one row: a condition the command needs to hold.
    pub fn check(sql: impl Into<String>, args: Vec<Val>, what: &'static str) -> Self {
        Self {
            sql: sql.into(),
            args,
            query: true,
            rows: 1,
            what,
        }
    }

    /// `Conflict` naming the step: it touched other than its rows.
    fn unmet(&self) -> StoreError {
        StoreError::Conflict {
            constraint: self.what.into(),
        }
    }

    /// Runs the step alone, now.
    async fn run(self, c: &mut dyn Conn) -> StoreResult<()> {
        let n = if self.query {
            c.fetch_all(&self.sql, &self.args).await?.len() as u64
        } else {
            c.execute(&self.sql, &self.args).await?
        };
        if n == self.rows {
            Ok(())
        } else {
            Err(self.unmet())
        }
    }
}

/// Runs `step` before `c`'s next statement (in a PostgreSQL transaction), or now.
pub async fn defer(c: &mut dyn Conn, step: Step) -> StoreResult<()> {
    match c.deferred() {
        Some(waiting) => {
            waiting.push(step);
            Ok(())
        }
        None => step.run(c).await,
    }
}

/// What a joined statement runs after the steps: `ctes` (more `WITH` items, numbered from `$1`
/// over `args`), then `SELECT <step counts>, {cols} {from}`.
#[derive(Clone, Copy)]
pub struct Tail<'a> {
    /// `WITH` items, comma-separated, placeholders `$1…` over `args`.
    pub ctes: &'a str,
    /// Their arguments.
    pub args: &'a [Val],
    /// Result columns after the steps' counts.
    pub cols: &'a str,
    /// The `FROM` clause of the final `SELECT`.
    pub from: &'a str,
}

/// PostgreSQL: `steps` (and `tail`) as one statement, which answers one row with each step's
/// row count as `n0`, `n1`, … (for [`check`]) and the tail's columns.
pub fn joined(steps: &[Step], tail: Option<Tail<'_>>) -> (String, Vec<Val>) {
    debug_assert!(!steps.is_empty() || tail.is_some(), "nothing to join");
    let mut sql = String::from("WITH ");
    let mut args = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let _ = write!(sql, "s{i} AS (");
        renumber(&s.sql, args.len(), &mut sql);
        sql.push_str(if s.query { "), " } else { " RETURNING 1), " });
        args.extend_from_slice(&s.args);
    }
    if let Some(t) = &tail {
        renumber(t.ctes, args.len(), &mut sql);
        args.extend_from_slice(t.args);
    } else {
        sql.truncate(sql.len() - 2);
    }
    sql.push_str(" SELECT ");
    let mut cols: Vec<String> = (0..steps.len())
        .map(|i| format!("(SELECT count(*) FROM s{i}) AS n{i}"))
        .collect();
    if let Some(t) = &tail {
        cols.push(t.cols.to_string());
    }
    sql.push_str(&cols.join(", "));
    if let Some(t) = tail {
        sql.push(' ');
        sql.push_str(t.from);
    }
    (sql, args)
}

/// The error of the first of `steps` whose count in `row` (from [`joined`]) differs.
pub fn check(steps: &[Step], row: &Row) -> StoreResult<()> {
    for (i, s) in steps.iter().enumerate() {
        if row.int(&format!("n{i}"))? != s.rows as i64 {
            return Err(s.unmet());
        }
    }
    Ok(())
}

/// Appends `sql` to `out` with each placeholder `$n` outside quotes written `$(n + offset)`.
/// (Steps use no dollar quoting.)
fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut quote = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                let _ = write!(out, "${}", n + offset);
            }
            None => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renumbered(sql: &str, offset: usize) -> String {
        let mut out = String::new();
        renumber(sql, offset, &mut out);
        out
    }

    #[test]
    fn placeholders_move_past_the_steps_before_and_quoted_text_does_not() {
        assert_eq!(renumbered("a = $1 AND b = $12", 3), "a = $4 AND b = $15");
        assert_eq!(
            renumbered("x = '$1' AND \"$2\" = $2 AND y = 'it''s $3'", 10),
            "x = '$1' AND \"$2\" = $12 AND y = 'it''s $3'"
        );
        assert_eq!(renumbered("cost $ and é $9", 1), "cost $ and é $10");
    }

    #[test]
    fn steps_join_in_order_with_their_counts_and_the_tail_after_them() {
        let steps = [
            Step::write(
                "INSERT INTO t VALUES ($1, $2)",
                vec![1i64.into(), 2i64.into()],
                1,
                "t",
            ),
            Step::check("SELECT 1 WHERE $1 > 0", vec![3i64.into()], "positive"),
        ];
        let (sql, args) = joined(&steps, None);
        assert_eq!(
            sql,
            "WITH s0 AS (INSERT INTO t VALUES ($1, $2) RETURNING 1), s1 AS (SELECT 1 WHERE $3 > 0) \
             SELECT (SELECT count(*) FROM s0) AS n0, (SELECT count(*) FROM s1) AS n1"
        );
        assert_eq!(args, vec![1i64.into(), 2i64.into(), 3i64.into()]);
        let tail = Tail {
            ctes: "h AS (SELECT $1 AS v)",
            args: &[4i64.into()],
            cols: "h.v",
            from: "FROM h",
        };
        let (sql, args) = joined(&steps[..1], Some(tail));
        assert_eq!(
            sql,
            "WITH s0 AS (INSERT INTO t VALUES ($1, $2) RETURNING 1), h AS (SELECT $3 AS v) \
             SELECT (SELECT count(*) FROM s0) AS n0, h.v FROM h"
        );
        assert_eq!(args.len(), 3);
    }

    #[test]
    fn the_first_step_off_its_count_names_the_failure() {
        let steps = [
            Step::write("UPDATE a SET x = 1", vec![], 1, "a row"),
            Step::check("SELECT 1", vec![], "a condition"),
        ];
        let row = |n0, n1| Row {
            columns: vec!["n0".to_string(), "n1".to_string()].into(),
            values: vec![Val::Int(Some(n0)), Val::Int(Some(n1))],
        };
        assert!(check(&steps, &row(1, 1)).is_ok());
        let named = |r| match check(&steps, &r) {
            Err(StoreError::Conflict { constraint }) => constraint,
            other => panic!("{other:?}"),
        };
        assert_eq!(named(row(0, 1)), "a row");
        assert_eq!(named(row(1, 0)), "a condition");
        assert_eq!(named(row(2, 0)), "a row");
    }
}
