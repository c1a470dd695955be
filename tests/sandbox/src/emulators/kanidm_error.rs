//! Kanidm's `OperationError` as the emulator returns it: HTTP status, JSON body and `{:?}` text.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// The subset of `kanidm_proto::internal::OperationError` the emulated server produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KanidmError {
    NotAuthenticated,
    SessionExpired,
    AccessDenied,
    NoMatchingEntries,
    /// `Plugin(AttrUnique("duplicate value detected"))`: a name already taken.
    DuplicateValue,
    InvalidAttribute(String),
    EmptyRequest,
    InvalidSessionState,
}

impl KanidmError {
    /// `server/core/src/https/errors.rs`: everything unmapped, duplicates included, is a 500.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotAuthenticated | Self::SessionExpired => StatusCode::UNAUTHORIZED,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::NoMatchingEntries => StatusCode::NOT_FOUND,
            Self::InvalidAttribute(_) | Self::EmptyRequest => StatusCode::BAD_REQUEST,
            Self::DuplicateValue | Self::InvalidSessionState => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body: the error serialised with serde's lowercase names.
    pub fn body(&self) -> Value {
        match self {
            Self::NotAuthenticated => json!("notauthenticated"),
            Self::SessionExpired => json!("sessionexpired"),
            Self::AccessDenied => json!("accessdenied"),
            Self::NoMatchingEntries => json!("nomatchingentries"),
            Self::DuplicateValue => json!({"plugin": {"attrunique": "duplicate value detected"}}),
            Self::InvalidAttribute(detail) => json!({"invalidattribute": detail}),
            Self::EmptyRequest => json!("emptyrequest"),
            Self::InvalidSessionState => json!("invalidsessionstate"),
        }
    }

    /// What the CLI prints with `{:?}`.
    pub fn debug_text(&self) -> String {
        match self {
            Self::NotAuthenticated => "NotAuthenticated".into(),
            Self::SessionExpired => "SessionExpired".into(),
            Self::AccessDenied => "AccessDenied".into(),
            Self::NoMatchingEntries => "NoMatchingEntries".into(),
            Self::DuplicateValue => "Plugin(AttrUnique(\"duplicate value detected\"))".into(),
            Self::InvalidAttribute(detail) => format!("InvalidAttribute({detail:?})"),
            Self::EmptyRequest => "EmptyRequest".into(),
            Self::InvalidSessionState => "InvalidSessionState".into(),
        }
    }
}
