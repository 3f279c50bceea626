//! Validating a filing document against the regulator's XML schema (XSD 1.0) with libxml2's
//! `xmllint`.
//!
//! Why a subprocess: no maintained pure-Rust crate validates XSD, and the `libxml` crate needs
//! libxml2's headers and libclang (bindgen) at build time, which would make the README's two
//! commands fail on a fresh machine. `xmllint` (Debian/Ubuntu `libxml2-utils`, macOS: built in)
//! is libxml2's own validator, the one FinCEN's and the FIUs' samples were checked with
//! (regulatory/*/SOURCE.md). Without it, or without a configured schema, the answer says the
//! schema check was skipped and why; the business rules are checked either way.
//!
//! The document goes in on stdin, `--nonet` keeps libxml2 off the network whatever the
//! document's `schemaLocation` says, and a run is bounded by [`TIMEOUT`].
use casegate_domain::sar::content::Problem;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Longest a validation may take (the goAML schema, 7,000 lines, loads in well under a second).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Validations running at once: each is a process compiling a schema, so a burst of document
/// requests queues here instead of taking every core.
pub const MAX_CONCURRENT: usize = 2;

static RUNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT);

/// Most schema errors reported for one document (the rest are counted).
pub const MAX_ERRORS: usize = 200;

/// The result of a schema check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "schema", rename_all = "snake_case")]
pub enum SchemaCheck {
    /// The document is valid against the schema.
    Passed {
        /// The schema file used.
        schema_file: String,
    },
    /// The schema found errors (each a [`Problem`] with source `schema`).
    Failed {
        /// The schema file used.
        schema_file: String,
        /// What is wrong.
        errors: Vec<Problem>,
    },
    /// No check was made.
    Skipped {
        /// Why (no schema configured, no validator installed, …).
        reason: String,
    },
}

impl SchemaCheck {
    /// The schema errors, if any.
    pub fn errors(&self) -> &[Problem] {
        match self {
            SchemaCheck::Failed { errors, .. } => errors,
            _ => &[],
        }
    }

    /// `passed`, `failed` or `skipped`.
    pub fn outcome(&self) -> &'static str {
        match self {
            SchemaCheck::Passed { .. } => "passed",
            SchemaCheck::Failed { .. } => "failed",
            SchemaCheck::Skipped { .. } => "skipped",
        }
    }
}

/// How to validate: the `xmllint` program to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// The program (`xmllint`, found on `PATH`, or a full path).
    pub program: PathBuf,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            program: PathBuf::from("xmllint"),
        }
    }
}

impl Validator {
    /// Checks `doc` against `schema` (none configured: skipped).
    pub async fn check(&self, schema: Option<&Path>, doc: &str) -> SchemaCheck {
        let Some(schema) = schema else {
            return SchemaCheck::Skipped {
                reason: "no schema file is configured for this format (see `casegate serve --help`: --fincen-xsd, --goaml-xsd)".into(),
            };
        };
        // Answers name the schema's file, not where the server keeps it.
        let schema_file = schema.file_name().map_or_else(
            || schema.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if !schema.is_file() {
            tracing::warn!(schema = %schema.display(), "the configured filing schema is not a readable file");
            return SchemaCheck::Skipped {
                reason: format!("the configured schema {schema_file} is not a readable file"),
            };
        }
        let run = async {
            let _permit = RUNS.acquire().await.map_err(std::io::Error::other)?;
            self.run(schema, doc).await
        };
        match tokio::time::timeout(TIMEOUT, run).await {
            Err(_) => SchemaCheck::Skipped {
                reason: format!("the schema check took longer than {} s", TIMEOUT.as_secs()),
            },
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => SchemaCheck::Skipped {
                reason: format!(
                    "the schema validator `{}` is not installed (Debian/Ubuntu: apt-get install libxml2-utils)",
                    self.program.display()
                ),
            },
            Ok(Err(e)) => SchemaCheck::Skipped {
                reason: format!("the schema validator could not run: {e}"),
            },
            Ok(Ok((code, stderr))) => match code {
                Some(0) => SchemaCheck::Passed { schema_file },
                // 3: the document is invalid; 4: invalid and libxml2 stopped early; 1: not
                // well-formed (our generators never write that, but it is the document's fault).
                Some(1) | Some(3) | Some(4) => SchemaCheck::Failed {
                    schema_file,
                    errors: parse_errors(&stderr),
                },
                // 5: the schema itself did not compile: the operator's file is at fault.
                other => {
                    tracing::warn!(schema = %schema_file, code = ?other, "the configured filing schema could not be used");
                    SchemaCheck::Skipped {
                        reason: format!(
                            "the configured schema {schema_file} could not be used (xmllint exit {other:?}): {}",
                            first_line(&stderr)
                        ),
                    }
                }
            },
        }
    }

    async fn run(&self, schema: &Path, doc: &str) -> std::io::Result<(Option<i32>, String)> {
        let mut child = tokio::process::Command::new(&self.program)
            .arg("--noout")
            .arg("--nonet")
            .arg("--schema")
            .arg(schema)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let bytes = doc.as_bytes().to_vec();
        // Written from a task so a validator that stops reading cannot wedge us.
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
            drop(stdin);
        });
        let out = child.wait_with_output().await?;
        let _ = writer.await;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Turns xmllint's report (`-:12: element X: Schemas validity error : Element '{ns}Y': …`)
/// into problems: the location is the line, the message names the element and what is wrong,
/// without the namespace noise.
fn parse_errors(stderr: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut more = 0usize;
    for line in stderr.lines() {
        // Only lines about the document (read from stdin, `-`) are problems: the schema's own
        // warnings (FinCEN's "xmlns: URI www.fincen.gov/base is not absolute", with its context
        // and caret lines) and the closing verdict are not.
        let line = line.trim();
        if !line.starts_with("-:") {
            continue;
        }
        if out.len() == MAX_ERRORS {
            more += 1;
            continue;
        }
        let (location, rest) = match line.strip_prefix("-:").and_then(|r| r.split_once(':')) {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => {
                (format!("line {n}"), rest.trim())
            }
            _ => (String::new(), line),
        };
        let message = match rest.split_once("validity error : ") {
            Some((_, m)) => m,
            None => rest.split_once("parser error : ").map_or(rest, |(_, m)| m),
        };
        out.push(Problem {
            source: "schema".into(),
            rule: "xsd".into(),
            location,
            message: strip_namespaces(message.trim()),
        });
    }
    if more > 0 {
        out.push(Problem {
            source: "schema".into(),
            rule: "xsd".into(),
            location: String::new(),
            message: format!("… and {more} more schema errors"),
        });
    }
    out
}

/// `Element '{www.fincen.gov/base}Party'` → `Element 'Party'`.
fn strip_namespaces(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    let mut rest = m;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmllint_reports_become_located_problems_without_namespaces() {
        let err = "/x/EFL_SARXBatchSchema.xsd:29: namespace warning : xmlns: URI www.fincen.gov/base is not absolute\n<xsd:schema xmlns=\"www.fincen.gov/base\"\n         ^\n-:14: element RawZIPCode: Schemas validity error : Element '{www.fincen.gov/base}RawZIPCode': [facet 'maxLength'] The value '1234567890' has a length of '10'; this exceeds the allowed maximum length of '9'.\n- fails to validate\n";
        let p = parse_errors(err);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].location, "line 14");
        assert_eq!(p[0].source, "schema");
        assert!(
            p[0].message
                .starts_with("Element 'RawZIPCode': [facet 'maxLength']"),
            "{}",
            p[0].message
        );
        let many: String = (0..MAX_ERRORS + 3)
            .map(|i| format!("-:{i}: element A: Schemas validity error : Element 'A': bad\n"))
            .collect();
        let p = parse_errors(&many);
        assert_eq!(p.len(), MAX_ERRORS + 1);
        assert!(p.last().unwrap().message.contains("3 more"));
    }

    #[tokio::test]
    async fn without_a_schema_or_a_validator_the_check_is_skipped_and_says_why() {
        let v = Validator::default();
        let c = v.check(None, "<a/>").await;
        assert_eq!(c.outcome(), "skipped");
        let missing = Validator {
            program: PathBuf::from("/nonexistent/xmllint"),
        };
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        match missing.check(Some(&here), "<a/>").await {
            SchemaCheck::Skipped { reason } => {
                assert!(reason.contains("not installed"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        match v.check(Some(Path::new("/nonexistent.xsd")), "<a/>").await {
            SchemaCheck::Skipped { reason } => {
                assert!(reason.contains("not a readable file"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
