//! FinCEN's acknowledgement of a SAR batch (`EFilingBatchXML` with `EFilingSubmissionXML` /
//! `EFilingActivityXML` children): per filed activity the BSA ID FinCEN assigned and the errors
//! and warnings it found. No schema is published for it (regulatory/fincen/SOURCE.md), so the
//! reader takes the elements it knows and ignores the rest.
use crate::{Error, Result};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};

/// Largest acknowledgement accepted (a batch of many activities stays well below this).
pub const MAX_ACK_BYTES: usize = 2 * 1024 * 1024;

/// One error or warning FinCEN reported on an activity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckError {
    /// Where (`EFilingBatchXML/Activity[1]/Party[25]/…`).
    pub context: String,
    /// The element at fault.
    pub element: String,
    /// `WARN`, `ERROR` or `FATAL`.
    pub level: String,
    /// FinCEN's text.
    pub text: String,
    /// FinCEN's error code (`C21`…).
    pub code: String,
}

/// What FinCEN said about one activity (one SAR) of the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityAck {
    /// The activity's `SeqNum` in the acknowledgement.
    pub seq_num: Option<i64>,
    /// The BSA ID FinCEN assigned (14 digits).
    pub bsa_id: Option<String>,
    /// Errors and warnings, in document order.
    pub errors: Vec<AckError>,
}

impl ActivityAck {
    /// Whether FinCEN accepted the activity: it has a BSA ID and no error worse than a warning.
    pub fn accepted(&self) -> bool {
        self.bsa_id.is_some() && self.errors.iter().all(|e| e.level == "WARN")
    }
}

/// A parsed acknowledgement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The batch status code (`A` accepted, `R` rejected…).
    pub batch_status: Option<String>,
    /// The activities, in document order.
    pub activities: Vec<ActivityAck>,
}

impl Acknowledgement {
    /// The activity acknowledging a report: the one with `seq_num` if given, else the only one.
    pub fn activity(&self, seq_num: Option<i64>) -> Result<&ActivityAck> {
        let nums = || {
            self.activities
                .iter()
                .filter_map(|a| a.seq_num.map(|n| n.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match seq_num {
            Some(n) => self
                .activities
                .iter()
                .find(|a| a.seq_num == Some(n))
                .ok_or_else(|| {
                    Error::validation(
                        "activity_seq",
                        format!(
                            "the acknowledgement has no activity with SeqNum {n} (it has: {})",
                            nums()
                        ),
                    )
                }),
            None if self.activities.len() == 1 => Ok(&self.activities[0]),
            None if self.activities.is_empty() => Err(Error::validation(
                "body",
                "the acknowledgement holds no EFilingActivityXML",
            )),
            None => Err(Error::validation(
                "activity_seq",
                format!(
                    "the acknowledgement covers {} activities (SeqNum {}); say which is this report's with `activity_seq`",
                    self.activities.len(),
                    nums()
                ),
            )),
        }
    }
}

/// Reads an acknowledgement document. Anything that is not well-formed XML with an
/// `EFilingBatchXML` root is a `validation_failed` on `body`.
pub fn parse(xml: &[u8]) -> Result<Acknowledgement> {
    if xml.len() > MAX_ACK_BYTES {
        return Err(Error::validation(
            "body",
            format!("an acknowledgement is at most {MAX_ACK_BYTES} bytes"),
        ));
    }
    let bad = |m: String| Error::validation("body", m);
    let mut r = Reader::from_reader(xml);
    let mut ack = Acknowledgement::default();
    let mut path: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    let mut text = String::new();
    loop {
        buf.clear();
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| bad(format!("not well-formed XML: {e}")))?;
        match ev {
            Event::Start(s) => {
                text.clear();
                let name = open(&mut ack, &s, path.is_empty())?;
                path.push(name);
            }
            Event::Empty(s) => {
                // An empty error element (`<EFilingActivityErrorXML/>`) reports nothing.
                if open(&mut ack, &s, path.is_empty())? == "EFilingActivityErrorXML"
                    && let Some(a) = ack.activities.last_mut()
                {
                    a.errors.pop();
                }
            }
            Event::End(_) => {
                let leaf = path.pop();
                let text = std::mem::take(&mut text);
                if let (Some(leaf), Some(a)) = (leaf, ack.activities.last_mut()) {
                    set(a, &leaf, text.trim());
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(g) => {
                // quick-xml hands `&amp;` and `&#38;` over separately from the text around them.
                let name = g.to_string();
                match g.resolve_char_ref() {
                    Ok(Some(c)) => text.push(c),
                    _ => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(v) => text.push_str(v),
                        None => return Err(bad(format!("unknown entity &{name};"))),
                    },
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if ack.batch_status.is_none() {
        return Err(bad("the body holds no XML document".into()));
    }
    Ok(ack)
}

/// Files the text of element `leaf` under the activity being read.
fn set(a: &mut ActivityAck, leaf: &str, text: &str) {
    if leaf == "BSAID" {
        a.bsa_id = Some(text.to_string());
        return;
    }
    let Some(e) = a.errors.last_mut() else {
        return;
    };
    let slot = match leaf {
        "ErrorContextText" => &mut e.context,
        "ErrorElementNameText" => &mut e.element,
        "ErrorLevelText" => &mut e.level,
        "ErrorText" => &mut e.text,
        "ErrorTypeCode" => &mut e.code,
        _ => return,
    };
    *slot = text.to_string();
}

/// Takes what an opening tag says; answers its local name. The root must be `EFilingBatchXML`.
fn open(ack: &mut Acknowledgement, s: &BytesStart<'_>, root: bool) -> Result<String> {
    let name = local(s.name().as_ref());
    if root {
        if name != "EFilingBatchXML" {
            return Err(Error::validation(
                "body",
                format!("expected an EFilingBatchXML acknowledgement, found <{name}>"),
            ));
        }
        // Present (possibly empty) once the root is read.
        ack.batch_status = Some(attr(s, "StatusCode").unwrap_or_default());
    }
    match name.as_str() {
        "EFilingActivityXML" => ack.activities.push(ActivityAck {
            seq_num: attr(s, "SeqNum").and_then(|v| v.parse().ok()),
            ..ActivityAck::default()
        }),
        "EFilingActivityErrorXML" => {
            if let Some(a) = ack.activities.last_mut() {
                a.errors.push(AckError::default());
            }
        }
        _ => {}
    }
    Ok(name)
}

fn local(name: &str) -> String {
    name.rsplit_once(':').map_or(name, |(_, l)| l).to_string()
}

fn attr(s: &BytesStart<'_>, key: &str) -> Option<String> {
    s.attributes()
        .flatten()
        .find_map(|a| (local(a.key.as_ref()) == key).then(|| a.value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<EFilingBatchXML StatusCode="A" SeqNum="1">
  <EFilingSubmissionXML SeqNum="2" StatusCode="A">
    <EFilingActivityXML SeqNum="3">
      <BSAID>31000055053784</BSAID>
      <EFilingActivityErrorXML SeqNum="4">
        <ErrorContextText>EFilingBatchXML/Activity[1]/Party[25]</ErrorContextText>
        <ErrorElementNameText>PartyIdentificationNumberText</ErrorElementNameText>
        <ErrorLevelText>WARN</ErrorLevelText>
        <ErrorText>The value recorded for the EIN &amp; SSN/ITIN is an invalid number string.</ErrorText>
        <ErrorTypeCode>C21</ErrorTypeCode>
      </EFilingActivityErrorXML>
    </EFilingActivityXML>
    <EFilingActivityXML SeqNum="6">
      <BSAID>31000055053785</BSAID>
      <EFilingActivityErrorXML SeqNum="7"/>
    </EFilingActivityXML>
  </EFilingSubmissionXML>
</EFilingBatchXML>"#;

    #[test]
    fn reads_bsa_ids_and_warnings_per_activity() {
        let a = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(a.batch_status.as_deref(), Some("A"));
        assert_eq!(a.activities.len(), 2);
        let first = a.activity(Some(3)).unwrap();
        assert_eq!(first.bsa_id.as_deref(), Some("31000055053784"));
        assert_eq!(first.errors.len(), 1);
        assert_eq!(first.errors[0].code, "C21");
        assert_eq!(first.errors[0].level, "WARN");
        assert!(
            first.errors[0].text.contains("EIN & SSN"),
            "{:?}",
            first.errors[0]
        );
        assert!(first.accepted());
        let second = a.activity(Some(6)).unwrap();
        assert!(second.errors.is_empty(), "{:?}", second.errors);
        let e = a.activity(None).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("activity_seq"));
        assert!(e.message.contains("3, 6"), "{}", e.message);
        assert!(a.activity(Some(99)).is_err());
    }

    #[test]
    fn errors_make_an_activity_not_accepted_and_junk_is_refused() {
        let x = SAMPLE.replace("<ErrorLevelText>WARN", "<ErrorLevelText>ERROR");
        let a = parse(x.as_bytes()).unwrap();
        assert!(!a.activity(Some(3)).unwrap().accepted());
        for junk in [
            "",
            "not xml",
            "<other/>",
            "<EFilingBatchXML><a></b></EFilingBatchXML>",
        ] {
            assert_eq!(
                parse(junk.as_bytes()).unwrap_err().param.as_deref(),
                Some("body"),
                "{junk}"
            );
        }
    }
}
