//! Input validators run before any transaction (DESIGN.md principle 7).
use crate::error::{Error, Result};

/// Normalises and checks an email address: trimmed, lowercased, one `@`, a dotted domain,
/// no whitespace, at most 254 characters (RFC 5321 path limit).
pub fn email(param: &str, raw: &str) -> Result<String> {
    let e = raw.trim().to_ascii_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(e)
    } else {
        Err(Error::validation(param, "must be a valid email address"))
    }
}

/// A tenant slug: 2–63 characters, lowercase letters, digits and inner hyphens.
pub fn slug(param: &str, s: &str) -> Result<String> {
    let ok = (2..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::validation(
            param,
            "must be 2-63 lowercase letters, digits or inner hyphens",
        ))
    }
}

/// A required free-text field: trimmed, non-empty, at most `max` characters.
pub fn text(param: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::validation(param, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(Error::validation(
            param,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(t.to_string())
}

/// A password: 12 to 1024 characters (NIST SP 800-63B §5.1.1 minimum and a DoS bound).
pub fn password(param: &str, s: &str) -> Result<()> {
    let n = s.chars().count();
    if n < 12 {
        return Err(Error::validation(param, "must be at least 12 characters"));
    }
    if n > 1024 {
        return Err(Error::validation(param, "must be at most 1024 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("e", " Ana@Bank.Example ").unwrap(),
            "ana@bank.example"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@bank.com",
            "ana@bank",
            "a b@bank.com",
            "a@b@c.com",
            "ana@.com",
        ] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
        assert_eq!(
            email("email", "x").unwrap_err().param.as_deref(),
            Some("email")
        );
    }

    #[test]
    fn slugs() {
        assert!(slug("s", "acme-bank").is_ok());
        for bad in ["a", "-acme", "acme-", "Acme", "acme_bank", &"a".repeat(64)] {
            assert!(slug("s", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts_and_passwords() {
        assert_eq!(text("n", "  Ana  ", 10).unwrap(), "Ana");
        assert!(text("n", "   ", 10).is_err());
        assert!(text("n", "ééééééééééé", 10).is_err());
        assert!(password("p", "short").is_err());
        assert!(password("p", "correct horse battery").is_ok());
    }
}
