//! Workflow expressions: CEL (the `cel` crate) over `case`, `actor` and `now` (API.md
//! "Workflow document").
//!
//! Two guards sit around the interpreter. Its parser and evaluator recurse once per nesting
//! level, and a stack overflow aborts the process, so every compile and evaluation runs on a
//! freshly grown stack (`stacker::grow`) far larger than any expression within the length limit
//! can use. And compiled programs are kept by source text, so a rule is parsed once per process,
//! not once per request.
use cel::objects::{Key, Map};
use cel::{Context, Program, Value as Cel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use time::OffsetDateTime;

/// Longest expression accepted, in characters.
pub const MAX_LEN: usize = 2_000;
/// Stack given to the interpreter: nesting within `MAX_LEN` stays far below it.
const STACK: usize = 64 * 1024 * 1024;
/// Compiled programs kept; the memo starts over when it is full.
const MEMO: usize = 4_096;

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));
type Memo = Mutex<HashMap<String, Arc<Program>>>;
static PROGRAMS: LazyLock<Memo> = LazyLock::new(Default::default);

/// The top-level names an expression may use.
pub const VARIABLES: &[&str] = &["case", "actor", "now"];

/// Compiles `source`; the error is a message fit for `invalid_workflow`.
pub fn compile(source: &str) -> Result<Arc<Program>, String> {
    if source.trim().is_empty() {
        return Err("is empty".into());
    }
    if source.chars().count() > MAX_LEN {
        return Err(format!("is longer than {MAX_LEN} characters"));
    }
    if let Some(p) = PROGRAMS.lock().ok().and_then(|m| m.get(source).cloned()) {
        return Ok(p);
    }
    let program = stacker::grow(STACK, || Program::compile(source)).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("does not compile")
            .to_string();
        first.replace("ERROR: <input>:", "does not compile at ")
    })?;
    let program = Arc::new(program);
    if let Ok(mut m) = PROGRAMS.lock() {
        if m.len() >= MEMO {
            m.clear();
        }
        m.insert(source.to_string(), program.clone());
    }
    Ok(program)
}

/// What expressions see: the case (wire form, custom fields under `case.fields`), the actor
/// (`id`, `email`, `roles`) and the time.
pub struct Scope {
    case: Cel,
    actor: Cel,
    now: Cel,
}

impl Scope {
    /// A scope from JSON documents and the clock's time.
    pub fn new(case: &Value, actor: &Value, now: OffsetDateTime) -> Self {
        let nanos = now.unix_timestamp_nanos();
        let at = chrono::DateTime::from_timestamp(
            (nanos.div_euclid(1_000_000_000)) as i64,
            nanos.rem_euclid(1_000_000_000) as u32,
        )
        .unwrap_or_default()
        .fixed_offset();
        Self {
            case: to_cel(case),
            actor: to_cel(actor),
            now: Cel::Timestamp(at),
        }
    }
}

/// JSON to CEL. Whole numbers become `int` and others `double`, so `case.score > 50` and
/// `case.fields.amount >= 10000.0` compare as a user expects (CEL compares int with double).
fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => Cel::Map(Map {
            map: Arc::new(
                o.iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                    .collect(),
            ),
        }),
    }
}

/// Evaluates `program` in `scope`: `Ok(true|false)` for a boolean result, otherwise a message
/// (an error while evaluating, such as a missing key, or a result that is not a boolean).
pub fn eval_bool(program: &Program, scope: &Scope) -> Result<bool, String> {
    stacker::grow(STACK, || {
        let mut ctx = Context::with_env(ENV.clone());
        ctx.add_variable_from_value("case", scope.case.clone());
        ctx.add_variable_from_value("actor", scope.actor.clone());
        ctx.add_variable_from_value("now", scope.now.clone());
        match program.execute(&ctx) {
            Ok(Cel::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("gives {:?}, not true or false", other.type_of())),
            Err(e) => Err(e.to_string()),
        }
    })
}

/// Compiles (or recalls) `source` and evaluates it in `scope` as [`eval_bool`] does.
pub fn holds(source: &str, scope: &Scope) -> Result<bool, String> {
    eval_bool(&*compile(source)?, scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn scope() -> Scope {
        Scope::new(
            &json!({"priority": "high", "score": 72.5, "title": "Wire fraud",
                    "fields": {"amount": 250000, "pep": true}, "reasons": ["tm"]}),
            &json!({"id": "u1", "email": "ana@bank.example", "roles": ["analyst"]}),
            datetime!(2026-06-01 12:00 UTC),
        )
    }

    fn eval(src: &str) -> Result<bool, String> {
        holds(src, &scope())
    }

    #[test]
    fn case_actor_and_now_are_visible() {
        for src in [
            "case.priority == 'high'",
            "case.score > 50",
            "case.score > 50.0",
            "case.fields.amount >= 100000",
            "case.fields.amount >= 100000.0",
            "case.fields.pep",
            "'analyst' in actor.roles",
            "size(case.reasons) == 1",
            "has(case.fields.amount) && !has(case.fields.missing)",
            "now > timestamp('2026-01-01T00:00:00Z')",
            "now - timestamp('2026-05-31T12:00:00Z') == duration('24h')",
            "case.title.matches('(?i)fraud')",
        ] {
            assert_eq!(eval(src), Ok(true), "{src}");
        }
        assert_eq!(eval("case.priority == 'low'"), Ok(false));
    }

    #[test]
    fn errors_are_messages_not_panics() {
        assert!(
            compile("case.priority ==")
                .unwrap_err()
                .starts_with("does not compile")
        );
        assert!(compile("").is_err());
        assert!(compile(&"a".repeat(MAX_LEN + 1)).is_err());
        assert!(eval("case.fields.missing > 1").is_err());
        assert!(
            eval("case.priority")
                .unwrap_err()
                .contains("not true or false")
        );
        assert!(eval("nobody == 1").is_err());
    }

    #[test]
    fn deep_nesting_neither_overflows_nor_hangs() {
        let depth = 400;
        let nested = format!("{}true{}", "(".repeat(depth), ")".repeat(depth));
        // Either it compiles and evaluates, or it is refused; it never takes the process down.
        if let Ok(p) = compile(&nested) {
            assert_eq!(eval_bool(&p, &scope()), Ok(true));
        }
        let chain = vec!["true"; 249].join(" && ");
        assert!(chain.len() <= MAX_LEN);
        assert_eq!(eval(&chain), Ok(true));
    }
}
