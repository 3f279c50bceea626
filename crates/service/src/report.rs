//! The three audit export formats (API.md "Audit"), each written from events as the API returns
//! them:
//! - JSON: `{"tenant_id", "from", "to", "generated_at", "entity_type", "events", "checkpoint"}`,
//!   streamed batch by batch, so a twelve-month export never holds more than the bytes it writes;
//! - CSV: one header row of the event fields, `changes` as JSON text;
//! - PDF: a readable PDF/A-2b report (krilla, with DejaVu Sans Mono embedded), laid out here
//!   line by line because krilla draws glyphs and leaves layout to the caller.
use casegate_domain::audit::{AuditEvent, Checkpoint};
use serde::Serialize;
use std::sync::LazyLock;

/// What a report says about itself.
#[derive(Clone, Debug)]
pub struct ReportMeta {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant display name.
    pub tenant_name: String,
    /// Tenant slug.
    pub tenant_slug: String,
    /// Period start (RFC 3339, inclusive).
    pub from: String,
    /// Period end (RFC 3339, exclusive).
    pub to: String,
    /// Generation time (RFC 3339).
    pub generated_at: String,
    /// The entity-type filter, if any.
    pub entity_type: Option<String>,
    /// Whether events carry `prev_hash` and `hash`.
    pub include_hash_chain: bool,
    /// Who asked for it.
    pub requested_by: String,
    /// The retention period stated in the report, in days.
    pub retention_days: i64,
}

/// The checkpoint an export carries: a signature over its last event, plus the key to check it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportCheckpoint {
    /// The signed statement and its signature.
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// Which key signed.
    pub key_id: String,
    /// Base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
}

/// An event as a JSON object, without `prev_hash`/`hash` when the chain is not wanted.
fn event_value(e: &AuditEvent, include_hash_chain: bool) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if !include_hash_chain && let Some(m) = v.as_object_mut() {
        m.remove("prev_hash");
        m.remove("hash");
    }
    v
}

/// Streams the JSON export.
pub struct JsonExport {
    buf: Vec<u8>,
    include_hash_chain: bool,
    first: bool,
}

impl JsonExport {
    /// Starts the document.
    pub fn begin(meta: &ReportMeta) -> Self {
        #[derive(Serialize)]
        struct Head<'a> {
            tenant_id: &'a str,
            from: &'a str,
            to: &'a str,
            generated_at: &'a str,
            entity_type: Option<&'a str>,
            include_hash_chain: bool,
            retention_days: i64,
        }
        let head = serde_json::to_vec(&Head {
            tenant_id: &meta.tenant_id,
            from: &meta.from,
            to: &meta.to,
            generated_at: &meta.generated_at,
            entity_type: meta.entity_type.as_deref(),
            include_hash_chain: meta.include_hash_chain,
            retention_days: meta.retention_days,
        })
        .unwrap_or_default();
        // Reopen the object to append the events array.
        let mut buf = head[..head.len() - 1].to_vec();
        buf.extend_from_slice(b",\"events\":[");
        Self {
            buf,
            include_hash_chain: meta.include_hash_chain,
            first: true,
        }
    }

    /// Appends one event.
    pub fn event(&mut self, e: &AuditEvent) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        if self.include_hash_chain {
            let _ = serde_json::to_writer(&mut self.buf, e);
        } else {
            let _ = serde_json::to_writer(&mut self.buf, &event_value(e, false));
        }
    }

    /// Closes the document with its checkpoint.
    pub fn finish(mut self, checkpoint: Option<&ExportCheckpoint>) -> Vec<u8> {
        self.buf.extend_from_slice(b"],\"checkpoint\":");
        let _ = serde_json::to_writer(&mut self.buf, &checkpoint);
        self.buf.push(b'}');
        self.buf
    }
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "tenant_id",
    "seq",
    "event_id",
    "occurred_at",
    "actor",
    "actor_id",
    "actor_ip",
    "request_id",
    "action",
    "entity_type",
    "entity_id",
    "changes",
    "prev_hash",
    "hash",
];

/// A spreadsheet would run a cell starting with one of these as a formula (CSV injection):
/// such cells are written with a leading apostrophe (OWASP's advice). The JSON export carries
/// the exact values.
fn spreadsheet_safe(s: &str) -> std::borrow::Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// Streams the CSV export.
pub struct CsvExport {
    w: csv::Writer<Vec<u8>>,
    include_hash_chain: bool,
}

impl CsvExport {
    /// Writes the header row.
    pub fn begin(meta: &ReportMeta) -> Self {
        let mut w = csv::Writer::from_writer(Vec::new());
        let cols = CSV_COLUMNS
            .iter()
            .filter(|c| meta.include_hash_chain || !matches!(**c, "prev_hash" | "hash"));
        let _ = w.write_record(cols);
        Self {
            w,
            include_hash_chain: meta.include_hash_chain,
        }
    }

    /// Appends one event.
    pub fn event(&mut self, e: &AuditEvent) {
        let r = &e.record;
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let mut row = vec![
            r.tenant_id.clone(),
            r.seq.to_string(),
            r.event_id.clone(),
            r.occurred_at.clone(),
            r.actor.clone(),
            opt(&r.actor_id),
            opt(&r.actor_ip),
            opt(&r.request_id),
            r.action.clone(),
            r.entity_type.clone(),
            opt(&r.entity_id),
            r.changes.to_string(),
        ];
        if self.include_hash_chain {
            row.push(r.prev_hash.clone());
            row.push(e.hash.clone());
        }
        let _ = self
            .w
            .write_record(row.iter().map(|c| spreadsheet_safe(c).into_owned()));
    }

    /// The file.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        self.w.into_inner().map_err(|e| e.to_string())
    }
}

static FONT_REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");
static FONT_BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono-Bold.ttf");

/// Advance of every glyph of DejaVu Sans Mono, in em.
const MONO_ADVANCE: f32 = 0.6021;

/// Replaces what the report fonts cannot draw: control characters by spaces, characters without
/// a glyph in both fonts by `?` (PDF/A forbids the `.notdef` glyph).
fn drawable(s: &str) -> String {
    use skrifa::MetadataProvider;
    static MAPS: LazyLock<Option<(skrifa::FontRef<'static>, skrifa::FontRef<'static>)>> =
        LazyLock::new(|| {
            Some((
                skrifa::FontRef::new(FONT_REGULAR).ok()?,
                skrifa::FontRef::new(FONT_BOLD).ok()?,
            ))
        });
    // One character map per font for the whole string, not one per character.
    let maps = MAPS.as_ref().map(|(r, b)| (r.charmap(), b.charmap()));
    s.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if c == ' '
                || maps
                    .as_ref()
                    .is_some_and(|(r, b)| r.map(c).is_some() && b.map(c).is_some())
            {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Cuts `s` to `width` characters, marking the cut with `…`.
fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Splits `s` into lines of at most `width` characters.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(width.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// Splits `s` into lines of at most `width` characters at spaces where it can, cutting words
/// longer than a line.
fn word_wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ') {
        let (wl, cl) = (word.chars().count(), cur.chars().count());
        if cl > 0 && cl + 1 + wl <= width {
            cur.push(' ');
            cur.push_str(word);
            continue;
        }
        if cl > 0 {
            lines.push(std::mem::take(&mut cur));
        }
        let mut parts = wrap(word, width);
        cur = parts.pop().unwrap_or_default();
        lines.extend(parts);
    }
    lines.push(cur);
    lines
}

/// Left-aligns `s` in a column of `width` characters.
fn cell(s: &str, width: usize) -> String {
    let s = clip(s, width);
    let pad = width - s.chars().count();
    format!("{s}{}", " ".repeat(pad))
}

#[derive(Clone, Debug)]
enum Line {
    /// Text at an indent (in characters), regular or bold, at a size.
    Text {
        text: String,
        bold: bool,
        size: f32,
        indent: usize,
        gray: bool,
    },
    /// Vertical space.
    Gap(f32),
    /// A thin horizontal rule.
    Rule,
}

impl Line {
    fn height(&self) -> f32 {
        match self {
            Line::Text { size, .. } => size * 1.3,
            Line::Gap(h) => *h,
            Line::Rule => 4.0,
        }
    }
}

const PAGE_W: f32 = 842.0; // A4 landscape, points
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 32.0;
const BODY: f32 = 7.0;
const HEADER_H: f32 = 28.0;
const FOOTER_H: f32 = 20.0;

/// Characters per line at `size`.
fn columns(size: f32) -> usize {
    ((PAGE_W - 2.0 * MARGIN) / (size * MONO_ADVANCE)) as usize
}

fn text(text: impl Into<String>, bold: bool, size: f32, indent: usize) -> Line {
    Line::Text {
        text: text.into(),
        bold,
        size,
        indent,
        gray: false,
    }
}

/// Lines of "label: value", the value wrapped under itself.
fn field(out: &mut Vec<Line>, label: &str, value: &str) {
    const LABEL: usize = 24;
    let width = columns(BODY + 1.0) - LABEL;
    for (i, part) in word_wrap(&drawable(value), width).into_iter().enumerate() {
        if i == 0 {
            out.push(text(
                format!("{}{part}", cell(label, LABEL)),
                false,
                BODY + 1.0,
                0,
            ));
        } else {
            out.push(text(part, false, BODY + 1.0, LABEL));
        }
    }
}

/// Most lines of `changes` shown per event; the JSON export has them all.
const MAX_CHANGE_LINES: usize = 6;

fn event_lines(out: &mut Vec<Line>, e: &AuditEvent, include_hash_chain: bool) {
    let r = &e.record;
    let width = columns(BODY);
    let entity = match &r.entity_id {
        Some(id) => format!("{} {id}", r.entity_type),
        None => r.entity_type.clone(),
    };
    let head = format!(
        "{} {} {} {} {} {}",
        cell(&format!("#{}", r.seq), 8),
        cell(&r.occurred_at, 27),
        cell(&drawable(&r.actor), 34),
        cell(&drawable(&r.action), 30),
        cell(&drawable(&entity), 48),
        clip(r.actor_ip.as_deref().unwrap_or("-"), 39),
    );
    out.push(text(clip(&head, width), true, BODY, 0));
    let indent = 9;
    let changes = r.changes.to_string();
    if changes != "{}" {
        let lines = wrap(&drawable(&changes), width - indent - 9);
        let shown = lines.len().min(MAX_CHANGE_LINES);
        for (i, part) in lines.iter().take(shown).enumerate() {
            let label = if i == 0 { "changes  " } else { "         " };
            out.push(text(format!("{label}{part}"), false, BODY, indent));
        }
        if lines.len() > shown {
            out.push(text(
                "         … (truncated; the JSON export holds every change)",
                false,
                BODY,
                indent,
            ));
        }
    }
    let mut ids = format!("event {}", r.event_id);
    if let Some(req) = &r.request_id {
        ids.push_str(&format!("   request {}", drawable(req)));
    }
    let mut trailer = vec![ids];
    if include_hash_chain {
        trailer.push(format!("hash {}   prev {}", e.hash, r.prev_hash));
    }
    for t in trailer {
        out.push(Line::Text {
            text: clip(&t, width - indent),
            bold: false,
            size: BODY - 0.5,
            indent,
            gray: true,
        });
    }
    out.push(Line::Rule);
}

fn summary_lines(
    meta: &ReportMeta,
    events: &[AuditEvent],
    checkpoint: Option<&ExportCheckpoint>,
) -> Vec<Line> {
    let mut out = vec![text("Audit trail report", true, 16.0, 0), Line::Gap(6.0)];
    field(
        &mut out,
        "Organisation",
        &format!(
            "{} ({}, {})",
            meta.tenant_name, meta.tenant_slug, meta.tenant_id
        ),
    );
    field(
        &mut out,
        "Period (UTC)",
        &format!("from {} (inclusive) to {} (exclusive)", meta.from, meta.to),
    );
    field(
        &mut out,
        "Events",
        &match meta.entity_type.as_deref() {
            Some(t) => format!("of entity type `{t}` only"),
            None => "all".into(),
        },
    );
    let range = match (events.first(), events.last()) {
        (Some(a), Some(b)) => format!(
            "{} (chain positions {} to {})",
            events.len(),
            a.record.seq,
            b.record.seq
        ),
        _ => "none in this period".into(),
    };
    field(&mut out, "Count", &range);
    field(&mut out, "Requested by", &meta.requested_by);
    field(&mut out, "Generated at", &meta.generated_at);
    field(
        &mut out,
        "Retention",
        &format!(
            "audit events are kept at least {} days ({} years) and never edited",
            meta.retention_days,
            meta.retention_days / 365
        ),
    );
    if let Some(last) = events.last() {
        field(&mut out, "Last event hash", &last.hash);
    }
    match checkpoint {
        Some(c) => {
            let b = &c.checkpoint.body;
            field(
                &mut out,
                "Signed checkpoint",
                &format!(
                    "position {} signed at {} by key {}",
                    b.seq, b.signed_at, c.key_id
                ),
            );
            field(&mut out, "Checkpoint hash", &b.hash);
            field(&mut out, "Signature (Ed25519)", &c.checkpoint.signature);
            field(&mut out, "Public key", &c.public_key);
        }
        None => field(&mut out, "Signed checkpoint", "none (no events)"),
    }
    field(
        &mut out,
        "How to verify",
        "each hash is SHA-256(previous hash bytes || RFC 8785 JSON of the event without `hash`); \
         recompute the chain from the JSON export of the same period, check the checkpoint \
         signature over the RFC 8785 form of {tenant_id, seq, hash, signed_at}, and check this \
         file's detached Ed25519 signature (docs/audit-format.md).",
    );
    out.push(Line::Gap(8.0));
    out.extend(column_header());
    out
}

/// The heading of the event table, repeated at the top of every page it continues on.
fn column_header() -> [Line; 2] {
    let cols = format!(
        "{} {} {} {} {} {}",
        cell("seq", 8),
        cell("occurred at", 27),
        cell("actor", 34),
        cell("action", 30),
        cell("entity", 48),
        "client address"
    );
    [text(cols, true, BODY, 0), Line::Rule]
}

/// Renders the PDF report: a summary, then one block per event, every page headed with the
/// organisation and numbered "page i of n".
pub fn pdf(
    meta: &ReportMeta,
    events: &[AuditEvent],
    checkpoint: Option<&ExportCheckpoint>,
) -> Result<Vec<u8>, String> {
    use krilla::Document;
    use krilla::color::luma;
    use krilla::configure::{Archival, ConfigurationBuilder, Validator};
    use krilla::geom::{PathBuilder, Point};
    use krilla::metadata::{DateTime, Metadata};
    use krilla::num::NormalizedF32;
    use krilla::page::PageSettings;
    use krilla::paint::{Fill, Stroke};
    use krilla::text::{Font, TextDirection};

    // Blocks are never split across pages: the summary line by line, each event whole.
    let mut blocks: Vec<Vec<Line>> = summary_lines(meta, events, checkpoint)
        .into_iter()
        .map(|l| vec![l])
        .collect();
    for e in events {
        let mut block = Vec::new();
        event_lines(&mut block, e, meta.include_hash_chain);
        blocks.push(block);
    }
    if events.is_empty() {
        blocks.push(vec![text(
            "No audit events in this period.",
            false,
            BODY + 1.0,
            0,
        )]);
    }
    // Paginate first, so every page can say how many there are.
    let usable = PAGE_H - 2.0 * MARGIN - HEADER_H - FOOTER_H;
    let header_h: f32 = column_header().iter().map(Line::height).sum();
    let summary_blocks = blocks.len() - events.len().max(1);
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let mut used = 0.0;
    for (i, block) in blocks.into_iter().enumerate() {
        let h: f32 = block.iter().map(Line::height).sum();
        if used + h > usable && !pages.last().is_some_and(Vec::is_empty) {
            let mut page = Vec::new();
            used = 0.0;
            if i >= summary_blocks {
                page.extend(column_header());
                used = header_h;
            }
            pages.push(page);
        }
        used += h;
        if let Some(p) = pages.last_mut() {
            p.extend(block);
        }
    }

    let configuration = ConfigurationBuilder::new()
        .set_validator(Validator::A(Archival::A2_B))
        .finish()
        .map_err(|e| format!("{e:?}"))?;
    let mut doc = Document::new_with(krilla::SerializeSettings {
        configuration,
        ..Default::default()
    });
    let regular = Font::new(FONT_REGULAR.into(), 0).ok_or("report font unreadable")?;
    let bold = Font::new(FONT_BOLD.into(), 0).ok_or("report font unreadable")?;
    let black = Fill::default();
    let gray = Fill {
        paint: luma::Color::new(100).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    };
    let rule_stroke = Stroke {
        paint: luma::Color::new(200).into(),
        width: 0.4,
        ..Default::default()
    };
    let total = pages.len();
    let header = drawable(&clip(
        &format!(
            "casegate · audit trail of {} ({})",
            meta.tenant_name, meta.tenant_slug
        ),
        columns(8.0) - 20,
    ));
    let footer = clip(
        &format!(
            "period {} to {} · generated {} · verify this file with its detached Ed25519 signature",
            meta.from, meta.to, meta.generated_at
        ),
        columns(6.0),
    );
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("page size")?;
    for (i, page_lines) in pages.iter().enumerate() {
        let mut page = doc.start_page_with(settings.clone());
        let mut s = page.surface();
        s.set_fill(Some(black.clone()));
        let baseline = MARGIN + 8.0;
        s.draw_text(
            Point::from_xy(MARGIN, baseline),
            bold.clone(),
            8.0,
            &header,
            false,
            TextDirection::Auto,
        );
        let numbering = format!("page {} of {total}", i + 1);
        let nx = PAGE_W - MARGIN - numbering.chars().count() as f32 * 8.0 * MONO_ADVANCE;
        s.draw_text(
            Point::from_xy(nx, baseline),
            regular.clone(),
            8.0,
            &numbering,
            false,
            TextDirection::Auto,
        );
        let mut y = MARGIN + HEADER_H;
        for l in page_lines {
            y += l.height();
            match l {
                Line::Text {
                    text,
                    bold: is_bold,
                    size,
                    indent,
                    gray: is_gray,
                } => {
                    s.set_fill(Some(if *is_gray {
                        gray.clone()
                    } else {
                        black.clone()
                    }));
                    let x = MARGIN + *indent as f32 * size * MONO_ADVANCE;
                    let font = if *is_bold {
                        bold.clone()
                    } else {
                        regular.clone()
                    };
                    s.draw_text(
                        Point::from_xy(x, y),
                        font,
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Line::Gap(_) => {}
                Line::Rule => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(MARGIN, y - 1.5);
                    pb.line_to(PAGE_W - MARGIN, y - 1.5);
                    if let Some(path) = pb.finish() {
                        s.set_fill(None);
                        s.set_stroke(Some(rule_stroke.clone()));
                        s.draw_path(&path);
                        s.set_stroke(None);
                    }
                }
            }
        }
        s.set_fill(Some(gray.clone()));
        s.draw_text(
            Point::from_xy(MARGIN, PAGE_H - MARGIN),
            regular.clone(),
            6.0,
            &footer,
            false,
            TextDirection::Auto,
        );
        s.finish();
        page.finish();
    }
    let created = time::OffsetDateTime::parse(
        &meta.generated_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    doc.set_metadata(
        Metadata::new()
            .title(format!("Audit trail report: {}", meta.tenant_name))
            .creator("casegate".into())
            .producer("casegate".into())
            .language("en".into())
            .creation_date(
                DateTime::new(created.year() as u16)
                    .month(created.month() as u8)
                    .day(created.day())
                    .hour(created.hour())
                    .minute(created.minute())
                    .second(created.second())
                    .utc_offset_hour(0)
                    .utc_offset_minute(0),
            ),
    );
    doc.finish().map_err(|e| format!("PDF: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_defused() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("alice@example.com"), "alice@example.com");
        assert_eq!(spreadsheet_safe(""), "");
    }

    #[test]
    fn undrawable_text_is_replaced_not_dropped() {
        assert_eq!(drawable("a\u{7}b"), "a b");
        assert_eq!(drawable("Zoë Ωmega"), "Zoë Ωmega");
        // DejaVu Sans Mono has no CJK glyphs.
        assert_eq!(drawable("名前"), "??");
    }

    #[test]
    fn layout_helpers_respect_widths() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(cell("ab", 4), "ab  ");
        assert_eq!(wrap("abcdefg", 3), vec!["abc", "def", "g"]);
        assert_eq!(
            word_wrap("ab cd efghijk l", 5),
            vec!["ab cd", "efghi", "jk l"]
        );
        assert!(columns(BODY) >= 180, "{}", columns(BODY));
    }
}

#[cfg(test)]
mod pdf_tests {
    use super::*;
    use casegate_domain::audit::{AuditRecord, CheckpointBody};
    use serde_json::json;

    fn sample(n: i64) -> Vec<AuditEvent> {
        (1..=n)
            .map(|seq| AuditEvent {
                record: AuditRecord {
                    tenant_id: "t".into(),
                    seq,
                    event_id: format!("00000000-0000-4000-8000-{seq:012}"),
                    occurred_at: "2026-03-02T09:00:00.000000Z".into(),
                    actor: "admin@acme.example".into(),
                    actor_id: None,
                    actor_ip: Some("203.0.113.9".into()),
                    request_id: Some(format!("req-{seq}")),
                    action: "user.created".into(),
                    entity_type: "user".into(),
                    entity_id: Some(format!("u{seq}")),
                    changes: json!({"name": {"before": null, "after": format!("Zoë «{seq}» 名")}, "long": "x".repeat(seq as usize % 3 * 400)}),
                    prev_hash: "0".repeat(64),
                },
                hash: "a".repeat(64),
            })
            .collect()
    }

    fn meta() -> ReportMeta {
        ReportMeta {
            tenant_id: "t".into(),
            tenant_name: "Acme Bank".into(),
            tenant_slug: "acme".into(),
            from: "2026-03-01T00:00:00.000000Z".into(),
            to: "2026-03-03T00:00:00.000000Z".into(),
            generated_at: "2026-03-02T10:00:00.000000Z".into(),
            entity_type: None,
            include_hash_chain: true,
            requested_by: "auditor@acme.example".into(),
            retention_days: 2557,
        }
    }

    #[test]
    fn the_report_paginates_and_is_pdf_a() {
        let events = sample(120);
        let cp = ExportCheckpoint {
            checkpoint: Checkpoint {
                body: CheckpointBody {
                    tenant_id: "t".into(),
                    seq: 120,
                    hash: "a".repeat(64),
                    signed_at: "2026-03-02T10:00:00.000000Z".into(),
                },
                signature: "c2ln".into(),
            },
            key_id: "k".into(),
            public_key: "cGs=".into(),
        };
        let doc = pdf(&meta(), &events, Some(&cp)).unwrap();
        if let Ok(path) = std::env::var("CASEGATE_SAMPLE_PDF") {
            std::fs::write(path, &doc).unwrap();
        }
        let raw = String::from_utf8_lossy(&doc);
        assert!(doc.starts_with(b"%PDF-1.7"));
        assert!(raw.contains("pdfaid:part"));
        let count: usize = raw
            .split("/Count ")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(
            count >= 10,
            "120 events of up to 9 lines span many pages: {count}"
        );
        let empty = pdf(&meta(), &[], None).unwrap();
        assert!(String::from_utf8_lossy(&empty).contains("/Count 1"));
    }
}
