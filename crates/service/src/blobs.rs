//! A content-addressed file store under the data directory: each file is named by the hex
//! SHA-256 of its bytes (`<root>/<first two hex digits>/<hash>`), written once through a
//! temporary file and an atomic rename, and never modified. Audit exports live here, and case
//! attachments will. Several server processes sharing one PostgreSQL must share this directory.
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The store rooted at one directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// Whether `s` is 64 lowercase hex digits (so it can name a file without escaping the root).
fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl BlobStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The store of one tenant's files (`<root>/tenants/<tenant id>`), so that identical files
    /// of two organisations are never shared and a tenant's files can be removed together.
    pub fn for_tenant(&self, tenant: casegate_domain::ids::TenantId) -> Self {
        Self {
            root: self.root.join("tenants").join(tenant.to_string()),
        }
    }

    /// Where the blob named `hash` lives; `None` for a name that is not a SHA-256.
    pub fn path(&self, hash: &str) -> Option<PathBuf> {
        is_hash(hash).then(|| self.root.join(&hash[..2]).join(hash))
    }

    /// Stores `bytes` and returns their hex SHA-256. Storing the same bytes twice is harmless.
    /// Runs on the blocking pool: hashing and `fsync` of a large file must not stall the runtime.
    pub async fn put(&self, bytes: std::sync::Arc<Vec<u8>>) -> std::io::Result<String> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || write_blob(&root, &bytes))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Opens the blob named `hash` for reading.
    pub async fn open(&self, hash: &str) -> std::io::Result<tokio::fs::File> {
        let path = self.path(hash).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a blob name")
        })?;
        tokio::fs::File::open(path).await
    }
}

fn write_blob(root: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let hash = casegate_domain::audit::hex(&Sha256::digest(bytes));
    let dir = root.join(&hash[..2]);
    let path = dir.join(&hash);
    if path.exists() {
        return Ok(hash);
    }
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{hash}.{}.tmp", crate::random_token(8)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn blobs_are_named_by_their_hash_and_written_once() {
        let dir =
            std::env::temp_dir().join(format!("casegate-blob-test-{}", crate::random_token(8)));
        let store = BlobStore::new(&dir);
        let h = store.put(Arc::new(b"abc".to_vec())).await.unwrap();
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(store.put(Arc::new(b"abc".to_vec())).await.unwrap(), h);
        let mut f = store.open(&h).await.unwrap();
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut f, &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"abc");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("ba"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        // Names that are not hashes cannot reach outside the root.
        assert!(store.path("../../etc/passwd").is_none());
        assert!(store.open(&"A".repeat(64)).await.is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
