//! Argon2id password hashing (RFC 9106, default parameters m=19 MiB, t=2, p=1 as recommended
//! by OWASP). Hashing is CPU-bound, so it runs on the blocking pool, not the async workers.
use crate::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes a password to a PHC string (`$argon2id$v=19$…`).
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("argon2: {e}")))
    })
    .await
    .map_err(Error::internal)?
}

/// Whether `password` matches the PHC string `phc`. Malformed hashes never match.
pub async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// A valid hash of a random password, verified against when the user does not exist so that
/// failed logins take the same time whether or not the email is known.
pub(crate) static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    Argon2::default()
        .hash_password(crate::random_token(32).as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$"));
        assert!(verify("correct horse battery".into(), h.clone()).await);
        assert!(!verify("correct horse battery!".into(), h.clone()).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
        assert_ne!(
            h,
            hash("correct horse battery".into()).await.unwrap(),
            "salted"
        );
    }
}
