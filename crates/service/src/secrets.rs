//! Secrets at rest: values casegate must read back in the clear to use them (today the
//! webhook signing secrets, which HMAC needs as issued, so they cannot be stored hashed as API
//! keys are) are stored sealed with AES-256-GCM under a key kept outside the database
//! (`<data dir>/secrets.key`, or `CASEGATE_SECRETS_KEY_FILE`): a copy of the database alone does
//! not reveal them.
//!
//! The stored form is `enc:v1:` + base64(12-byte random nonce ‖ ciphertext ‖ tag). The row the
//! secret belongs to is bound in as associated data, so a sealed value moved to another row
//! does not open. A value without the prefix was stored before sealing existed and is read as
//! it is; it is sealed the next time it is written (rotation).
use crate::{Error, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use std::path::Path;

const PREFIX: &str = "enc:v1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// 32 secret bytes, never printed.
#[derive(Clone)]
pub struct SecretKey(pub [u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl Default for SecretKey {
    /// A random key: secrets sealed with it do not survive the process (tests).
    fn default() -> Self {
        Self(rand::random())
    }
}

impl SecretKey {
    /// Loads a key file (base64 of 32 bytes), creating it with mode 0600 when absent. `what`
    /// names the key in errors. Two processes starting at once on one data directory end up
    /// with the same key: the new key is written whole to a private file and then linked into
    /// place, which fails if another process got there first (its key is read instead).
    pub fn load_or_create(path: &Path, what: &str) -> std::io::Result<Self> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let read = || -> std::io::Result<Self> {
            let raw = B64
                .decode(std::fs::read_to_string(path)?.trim())
                .map_err(|e| invalid(format!("{what} is not base64: {e}")))?;
            let bytes: [u8; 32] = raw
                .try_into()
                .map_err(|_| invalid(format!("{what} must be 32 bytes")))?;
            Ok(Self(bytes))
        };
        if path.exists() {
            return read();
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let key = Self::default();
        let tmp = path.with_extension(format!(
            "new.{}.{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        std::io::Write::write_all(&mut f, B64.encode(key.0).as_bytes())?;
        // On disk before it is in place: a key lost to a power cut would strand every secret
        // sealed under it.
        f.sync_all()?;
        drop(f);
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(),
            // A filesystem without hard links: create the file in place (no race protection).
            Err(_) => {
                let mut f = opts.open(path)?;
                std::io::Write::write_all(&mut f, B64.encode(key.0).as_bytes())?;
                f.sync_all()?;
                Ok(key)
            }
        }
    }
}

/// Seals and opens secrets with one key.
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    /// A box over `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self {
            cipher: Aes256Gcm::new(&key.0.into()),
        }
    }

    /// The stored form of `plain`, bound to `context` (the owning row, e.g. `webhook:<tenant>:<id>`).
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: context.as_bytes(),
        };
        // AES-GCM encryption fails only for messages over 64 GiB.
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Whether `stored` is sealed (not a value stored before sealing existed).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// The secret of a stored form made by [`SecretBox::seal`] with the same `context` (or a
    /// value stored before sealing, as it is). 500 when it does not open: the key file is not
    /// the one it was sealed with, or the row was tampered with.
    pub fn open(&self, stored: &str, context: &str) -> Result<String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let fail = || {
            Error::internal(
                "a stored secret does not open with this server's secrets key (a different key \
                 file, or the row was altered)",
            )
        };
        let raw = B64.decode(b64).map_err(|_| fail())?;
        if raw.len() < 12 + 16 {
            return Err(fail());
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| fail())?;
        let payload = Payload {
            msg: ct,
            aad: context.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let key = SecretKey::default();
        let b = SecretBox::new(&key);
        let s = b.seal("whsec_abc", "webhook:t:1");
        assert!(s.starts_with("enc:v1:") && !s.contains("whsec_abc"));
        assert_ne!(
            s,
            b.seal("whsec_abc", "webhook:t:1"),
            "a fresh nonce each time"
        );
        assert_eq!(b.open(&s, "webhook:t:1").unwrap(), "whsec_abc");
        assert!(b.open(&s, "webhook:t:2").is_err(), "moved to another row");
        let other = SecretBox::new(&SecretKey::default());
        assert!(other.open(&s, "webhook:t:1").is_err(), "another key");
        let mut flipped = s.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(
            b.open(&String::from_utf8(flipped).unwrap(), "webhook:t:1")
                .is_err()
        );
        assert_eq!(
            b.open("whsec_legacy", "webhook:t:1").unwrap(),
            "whsec_legacy"
        );
        assert!(!format!("{key:?}").contains(&B64.encode(key.0)));
    }

    #[test]
    fn key_files_are_created_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("casegate-secrets-{}", rand::random::<u64>()));
        let path = dir.join("secrets.key");
        // Racing first starts agree on one key.
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || SecretKey::load_or_create(&p, "secrets key").unwrap().0)
            })
            .collect();
        let keys: Vec<[u8; 32]> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(keys.iter().all(|k| *k == keys[0]));
        let again = SecretKey::load_or_create(&path, "secrets key").unwrap();
        assert_eq!(again.0, keys[0]);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary files left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "c2hvcnQ=").unwrap();
        assert!(SecretKey::load_or_create(&path, "secrets key").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
