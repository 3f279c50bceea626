//! Credential formats. API keys look like `cg_<env>_<random>` (API.md "Limits"): `env` names
//! the deployment (`live`, `test`, `demo`…) and `random` is at least 32 base62 characters. Only
//! the SHA-256 of a key or session token is ever stored.
use sha2::{Digest, Sha256};

/// Minimum length of the random part of an API key.
pub const API_KEY_MIN_RANDOM: usize = 32;
/// Length of the random part this server generates (about 238 bits of entropy).
pub const API_KEY_RANDOM_LEN: usize = 40;
/// Characters of the random part kept in the displayable prefix.
const PREFIX_RANDOM_CHARS: usize = 6;

/// Whether `s` is a well-formed API key. Malformed keys are rejected before any lookup.
pub fn is_api_key(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("cg_") else {
        return false;
    };
    let Some((env, random)) = rest.split_once('_') else {
        return false;
    };
    valid_env(env)
        && random.len() >= API_KEY_MIN_RANDOM
        && random.len() <= 128
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `env` can be the environment part of a key: 1–16 lowercase letters or digits.
pub fn valid_env(env: &str) -> bool {
    (1..=16).contains(&env.len())
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Assembles a key from its environment and random part.
pub fn format_api_key(env: &str, random: &str) -> String {
    format!("cg_{env}_{random}")
}

/// The non-secret prefix shown in listings so a user can tell keys apart (`cg_live_AbC123`).
pub fn api_key_prefix(key: &str) -> String {
    let cut = key
        .rfind('_')
        .map(|i| (i + 1 + PREFIX_RANDOM_CHARS).min(key.len()))
        .unwrap_or(key.len());
    key[..cut].to_string()
}

/// SHA-256 of a secret, lowercase hex: what the database stores instead of the secret.
pub fn hash_secret(secret: &str) -> String {
    crate::audit::hex(&Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "cg_live_abcdefghijABCDEFGHIJ0123456789xy";

    #[test]
    fn key_format() {
        assert!(is_api_key(GOOD));
        assert!(is_api_key(&format_api_key("demo", &"a".repeat(40))));
        assert!(!is_api_key("cg_live_short"));
        assert!(!is_api_key("cg__abcdefghijABCDEFGHIJ0123456789xy"));
        assert!(!is_api_key("cg_LIVE_abcdefghijABCDEFGHIJ0123456789xy"));
        assert!(!is_api_key("cg_live_abcdefghijABCDEFGHIJ0123456789x-"));
        assert!(!is_api_key("sk_live_abcdefghijABCDEFGHIJ0123456789xy"));
        assert!(!is_api_key("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
    }

    #[test]
    fn prefix_shows_env_and_a_few_chars_only() {
        assert_eq!(api_key_prefix(GOOD), "cg_live_abcdef");
    }

    #[test]
    fn hash_is_sha256_hex() {
        // Known answer: SHA-256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
