//! Newtype identifiers. Each wraps a UUID so that a `UserId` can never be passed where a
//! `TenantId` is expected; all are parsed once at the edge (path parameters, JSON bodies).
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) identifier.
            pub fn new_v4(random: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(random).into_uuid())
            }
            /// The wrapped UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// An organisation. Every stored row carries one and every store call takes one.
    TenantId
);
id_type!(
    /// A user (password login, session or the identity behind an API key).
    UserId
);
id_type!(
    /// An API key record (not the secret itself, which is never stored).
    ApiKeyId
);
id_type!(
    /// A browser session created by password login.
    SessionId
);
id_type!(
    /// A case (alerts are cases of type `ALERT`).
    CaseId
);
id_type!(
    /// A party: a person, organisation, account, device or address a case is about.
    PartyId
);
