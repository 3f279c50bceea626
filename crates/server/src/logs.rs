//! Process logs: one JSON object per line on stderr (or human-readable text), written by a
//! dedicated thread so that a request never waits on a write system call.
//!
//! Both halves are cut to the access log's cost, one line per request:
//! - [`JsonLines`] writes an event in one pass into a `String`, copying whole the strings that
//!   need no escaping. tracing-subscriber's own JSON formatter writes through an adaptor that
//!   re-checks UTF-8 on each of the ~85 small writes of a line and formats every `%`/`?` field
//!   into a temporary `String`; it was 22 % of the instructions of an authenticated `GET /me`
//!   (callgrind, docs/benchmarks.md). `%`/`?` fields (the access line has only its message) are
//!   still formatted once before they are escaped. The line shape is the same: `timestamp`,
//!   `level`, the event's fields in order (`message` first), `target`.
//! - [`Paced`] is the writer thread's sink. The thread flushes whenever its queue runs empty, and
//!   a queue that keeps running empty means every request wakes the thread: a futex call, the
//!   channel's spinning and a context switch per line, on the cores serving requests. After each
//!   flush the sink pauses briefly, so under load lines gather and go out in one write while no
//!   request has anyone to wake; a line waits at most about the pause.
use std::fmt;
use std::io::{self, Write};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How long the writer thread rests after each flush.
const PAUSE: Duration = Duration::from_millis(2);

/// Installs the global subscriber (`CASEGATE_LOG` filter, default `info,sqlx=warn`) writing
/// `format` (`json` or `text`) to stderr. Dropping the guard flushes what is queued.
pub fn init(format: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CASEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let sink = Paced::new(io::BufWriter::with_capacity(64 * 1024, io::stderr()), PAUSE);
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(sink);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if format == "text" {
        builder.init();
    } else {
        builder.event_format(JsonLines).init();
    }
    guard
}

/// A writer whose `flush` rests for `pause` after flushing (see the module notes).
pub struct Paced<W> {
    inner: W,
    pause: Duration,
}

impl<W: Write> Paced<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, pause: Duration) -> Self {
        Self { inner, pause }
    }
}

impl<W: Write> Write for Paced<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()?;
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        Ok(())
    }
}

/// One JSON object per event: `{"timestamp", "level", <fields>, "target"}`.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        w.write_str(&json_line(event))
    }
}

/// The line of `event`, newline included.
///
/// Written straight into a `String` rather than through `serde_json`'s map serializer, which
/// escapes every key and value byte by byte behind several calls per fragment: formatting an
/// access-log line took 6,100 instructions that way and 4,900 this way, or 6,900 and 5,500 with
/// tracing's dispatch around it (callgrind, docs/benchmarks.md).
/// Keys and values that need no escaping (the common case: ids, routes, method names) are
/// copied whole; anything else is escaped by `serde_json`.
fn json_line(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut line = Line(String::with_capacity(384));
    line.0.push_str("{\"timestamp\":");
    line.string(&casegate_domain::clock::wire_time(
        time::OffsetDateTime::now_utc(),
    ));
    line.key("level");
    line.string(meta.level().as_str());
    event.record(&mut line);
    line.key("target");
    line.string(meta.target());
    line.0.push_str("}\n");
    line.0
}

/// The bytes a JSON string cannot hold as they are: controls, `"` and `\`.
const ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A JSON object being written, opened and holding at least one member.
struct Line(String);

impl Line {
    /// Writes `,"<name>":`.
    fn key(&mut self, name: &str) {
        self.0.push(',');
        self.string(name);
        self.0.push(':');
    }

    /// Writes `s` as a JSON string.
    fn string(&mut self, s: &str) {
        let plain = !s.bytes().any(|b| ESCAPED[usize::from(b)]);
        if plain {
            self.0.push('"');
            self.0.push_str(s);
            self.0.push('"');
        } else {
            // Infallible for a `str`.
            self.0
                .push_str(&serde_json::to_string(s).unwrap_or_default());
        }
    }

    /// Writes an integer.
    fn int(&mut self, v: impl itoa::Integer) {
        self.0.push_str(itoa::Buffer::new().format(v));
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field.name());
        self.string(value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        self.int(value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        self.int(value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        // Shortest round-trip digits, as serde_json writes them; JSON has no NaN or infinity.
        if value.is_finite() {
            self.0.push_str(zmij::Buffer::new().format_finite(value));
        } else {
            self.0.push_str("null");
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        self.0.push_str(if value { "true" } else { "false" });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field.name());
        self.string(&format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(emit: impl FnOnce()) -> Vec<String> {
        let out = Captured::default();
        let w = out.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(sub, emit);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn each_event_is_one_json_line_with_its_fields_in_order() {
        let id = uuid::Uuid::nil();
        let lines = lines_of(|| {
            tracing::info!(
                request_id = "req_\"1\"",
                status = 200u64,
                delta = -3i64,
                duration_ms = 1.5f64,
                ratio = f64::NAN,
                cached = true,
                tenant_id = %id,
                route = ?"/api/v1/me",
                "served \"{}\"\nline two é",
                7
            );
            tracing::warn!(bell = "a\u{7}b", "second");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let at = |key: &str| {
            lines[0]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} in {}", lines[0]))
        };
        let order = [
            "timestamp",
            "level",
            "message",
            "request_id",
            "status",
            "delta",
            "duration_ms",
            "ratio",
            "cached",
            "tenant_id",
            "route",
            "target",
        ];
        assert!(
            order.windows(2).all(|w| at(w[0]) < at(w[1])),
            "keys in order {order:?}: {}",
            lines[0]
        );
        assert_eq!(v.as_object().unwrap().len(), order.len());
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "served \"7\"\nline two é");
        assert_eq!(v["request_id"], "req_\"1\"");
        assert_eq!(v["status"], 200);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["ratio"], Value::Null, "JSON has no NaN");
        assert_eq!(v["cached"], true);
        assert_eq!(v["tenant_id"], id.to_string());
        assert_eq!(
            v["route"], "\"/api/v1/me\"",
            "`?` fields are shown with Debug"
        );
        assert_eq!(v["target"], module_path!());
        let at = v["timestamp"].as_str().unwrap();
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["message"], "second");
        assert_eq!(second["bell"], "a\u{7}b", "control characters escaped");
    }

    #[test]
    fn the_paced_sink_passes_writes_and_flushes_through() {
        let out = Captured::default();
        let mut p = Paced::new(io::BufWriter::new(out.clone()), Duration::ZERO);
        p.write_all(b"one\n").unwrap();
        assert!(out.0.lock().unwrap().is_empty(), "buffered until flushed");
        p.flush().unwrap();
        assert_eq!(out.0.lock().unwrap().as_slice(), b"one\n");
    }
}
