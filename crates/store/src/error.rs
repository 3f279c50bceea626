//! Store errors: three cases the service layer can act on.
use casegate_domain::{Code, Error};

/// Result alias of the store layer.
pub type StoreResult<T> = Result<T, StoreError>;

/// What went wrong in the database, already classified by the backend crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (in this tenant).
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the write.
    #[error("constraint violated: {constraint}")]
    Conflict {
        /// The constraint's name as the database reports it (or a description).
        constraint: String,
    },
    /// The database is busy or unreachable; the command may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken database.
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Names a unique violation of the partial index `index` the same on both backends:
    /// PostgreSQL reports the index name, SQLite the indexed columns (`table.column`, of which
    /// `sqlite_column` is the last).
    pub fn name_unique(self, index: &str, sqlite_column: &str) -> Self {
        match self {
            StoreError::Conflict { constraint }
                if constraint == index || constraint.ends_with(sqlite_column) =>
            {
                StoreError::Conflict {
                    constraint: index.into(),
                }
            }
            e => e,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::new(Code::NotFound, "not found"),
            StoreError::Conflict { constraint } => {
                let mut e = Error::new(Code::AlreadyExists, "conflicts with an existing record");
                e.cause = Some(constraint);
                e
            }
            StoreError::Unavailable(cause) => {
                let mut e = Error::new(Code::Unavailable, "the database is unavailable, retry");
                e.cause = Some(cause);
                e
            }
            StoreError::Other(cause) => Error::internal(cause),
        }
    }
}
