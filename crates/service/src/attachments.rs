//! Checks on case attachments before anything is stored: a file name that is safe to show and
//! to offer for download, an `https` link for files kept elsewhere, and for uploads an allowed
//! media type whose content really is of that type (a "PDF" that is an executable is refused).
use crate::{Error, Result};

/// Media types accepted for uploads, with the check their content must pass.
const ALLOWED: &[(&str, Sniff)] = &[
    ("application/pdf", Sniff::Prefix(&[b"%PDF-"])),
    ("image/png", Sniff::Prefix(&[b"\x89PNG\r\n\x1a\n"])),
    ("image/jpeg", Sniff::Prefix(&[b"\xff\xd8\xff"])),
    ("image/gif", Sniff::Prefix(&[b"GIF87a", b"GIF89a"])),
    ("text/plain", Sniff::Text),
    ("text/csv", Sniff::Text),
    ("application/json", Sniff::Json),
    ("application/xml", Sniff::Xml),
    ("text/xml", Sniff::Xml),
    ("message/rfc822", Sniff::Text),
    ("application/zip", Sniff::Prefix(ZIP)),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Sniff::Prefix(ZIP),
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Sniff::Prefix(ZIP),
    ),
];

const ZIP: &[&[u8]] = &[b"PK\x03\x04", b"PK\x05\x06"];

/// How a file's bytes are recognised.
#[derive(Clone, Copy)]
enum Sniff {
    /// Starts with one of these signatures.
    Prefix(&'static [&'static [u8]]),
    /// UTF-8 text without NUL bytes.
    Text,
    /// A JSON document.
    Json,
    /// UTF-8 text whose first non-blank character opens a tag.
    Xml,
}

impl Sniff {
    fn matches(self, b: &[u8]) -> bool {
        match self {
            Sniff::Prefix(sigs) => sigs.iter().any(|s| b.starts_with(s)),
            Sniff::Text => std::str::from_utf8(b).is_ok_and(|s| !s.contains('\0')),
            Sniff::Json => serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok(),
            Sniff::Xml => std::str::from_utf8(b).is_ok_and(|s| {
                s.trim_start_matches('\u{feff}')
                    .trim_start()
                    .starts_with('<')
                    && !s.contains('\0')
            }),
        }
    }
}

/// The media type without parameters, lowercased (`Text/CSV; charset=utf-8` → `text/csv`).
fn essence(t: &str) -> String {
    t.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A syntactically valid media type (`type/subtype`), normalised.
pub fn media_type_syntax(param: &str, t: &str) -> Result<String> {
    let e = essence(t);
    let ok = e.len() <= 255
        && e.split_once('/').is_some_and(|(a, b)| {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
            };
            token(a) && token(b)
        });
    if ok {
        Ok(e)
    } else {
        Err(Error::validation(
            param,
            "must be a media type such as application/pdf",
        ))
    }
}

/// Checks an upload: an allowed media type and content that matches it. Returns the
/// normalised media type.
pub fn check_upload(declared: &str, bytes: &[u8]) -> Result<String> {
    let e = essence(declared);
    let Some((_, sniff)) = ALLOWED.iter().find(|(t, _)| *t == e) else {
        let names: Vec<&str> = ALLOWED.iter().map(|(t, _)| *t).collect();
        return Err(
            Error::validation("file", format!("`{e}` files are not accepted"))
                .with_details(serde_json::json!({ "allowed_types": names })),
        );
    };
    if bytes.is_empty() {
        return Err(Error::validation("file", "the file is empty"));
    }
    if !sniff.matches(bytes) {
        return Err(Error::validation(
            "file",
            format!("the file's content is not {e}"),
        ));
    }
    Ok(e)
}

/// A file name to keep: 1–255 characters, no path separators or control characters.
pub fn file_name(name: &str) -> Result<String> {
    let n = name.trim();
    let ok = !n.is_empty()
        && n.chars().count() <= 255
        && !n.chars().any(|c| {
            // Control characters, path separators, and the bidirectional and zero-width
            // formatting characters that make `invoice<U+202E>fdp.exe` read as a PDF.
            c.is_control()
                || c == '/'
                || c == '\\'
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        })
        && n != "."
        && n != "..";
    if ok {
        Ok(n.to_string())
    } else {
        Err(Error::validation(
            "name",
            "must be 1-255 characters without path separators or control characters",
        ))
    }
}

/// An external location: an absolute `https` URL of at most 2,000 characters, without
/// credentials.
pub fn external_url(url: &str) -> Result<String> {
    let bad = || Error::validation("url", "must be an https URL of at most 2000 characters");
    if url.len() > 2000 {
        return Err(bad());
    }
    let u = reqwest::Url::parse(url.trim()).map_err(|_| bad())?;
    if u.scheme() != "https" || u.host_str().is_none() {
        return Err(bad());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Error::validation("url", "must not carry credentials"));
    }
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_must_be_what_they_claim() {
        assert_eq!(
            check_upload("application/pdf", b"%PDF-1.7\n...").unwrap(),
            "application/pdf"
        );
        assert_eq!(
            check_upload("Text/CSV; charset=utf-8", b"a,b\n1,2\n").unwrap(),
            "text/csv"
        );
        assert!(check_upload("image/png", b"%PDF-1.7").is_err());
        assert!(check_upload("application/pdf", b"MZ\x90\x00").is_err());
        assert!(check_upload("application/x-msdownload", b"MZ").is_err());
        assert!(check_upload("text/plain", b"a\0b").is_err());
        assert!(check_upload("application/json", b"{\"a\": 1}").is_ok());
        assert!(check_upload("application/json", b"{a: 1}").is_err());
        assert!(
            check_upload(
                "application/xml",
                b"\xef\xbb\xbf <?xml version=\"1.0\"?><a/>"
            )
            .is_ok()
        );
        assert!(check_upload("application/pdf", b"").is_err());
        let e = check_upload("application/x-msdownload", b"MZ").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("file"));
    }

    #[test]
    fn names_and_links() {
        assert_eq!(file_name(" report.pdf ").unwrap(), "report.pdf");
        for bad in [
            "",
            "../etc/passwd",
            "a\\b",
            "a\nb",
            "..",
            "invoice\u{202e}fdp.exe",
        ] {
            assert!(file_name(bad).is_err(), "{bad:?}");
        }
        assert!(external_url("https://files.example.com/a.pdf").is_ok());
        for bad in [
            "http://files.example.com/a",
            "ftp://x/y",
            "https://u:p@x.example/a",
            "not a url",
        ] {
            assert!(external_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            media_type_syntax("type", "Application/PDF").unwrap(),
            "application/pdf"
        );
        assert!(media_type_syntax("type", "pdf").is_err());
    }
}
