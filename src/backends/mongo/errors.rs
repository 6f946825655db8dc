//! The driver's errors, read: what kind of failure each is (for the engine's typed
//! errors and the ledger's), one short line for it, and duplicate keys.

use mongodb::error::{ErrorKind, WriteFailure};

use crate::engine::model::error::FailureKind;
use crate::engine::model::text::clip;

/// Longest line [`short`] gives, in characters.
const MAX_LINE: usize = 300;

/// What kind of failure a driver error is: unreachable (no server selected, I/O),
/// refused (unauthorized, code 13; authentication), bad data (a document too large or
/// invalid), or other.
pub fn kind(e: &mongodb::error::Error) -> FailureKind {
    match &*e.kind {
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) => FailureKind::Unreachable,
        ErrorKind::Authentication { .. } => FailureKind::Refused,
        ErrorKind::Command(c) if c.code == 13 => FailureKind::Refused,
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 13 => FailureKind::Refused,
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 10334 || w.code == 2 => {
            FailureKind::BadData
        }
        ErrorKind::BsonSerialization(_) | ErrorKind::InvalidArgument { .. } => FailureKind::BadData,
        _ => FailureKind::Other,
    }
}

/// One line for a driver error: the server's code and message, not its raw reply.
pub fn short(e: &mongodb::error::Error) -> String {
    let line = match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => format!("error {}: {}", w.code, w.message),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
            format!("write concern error {}: {}", w.code, w.message)
        }
        ErrorKind::Command(c) => format!("{} ({}): {}", c.code_name, c.code, c.message),
        other => other.to_string(),
    };
    clip(line.lines().next().unwrap_or_default(), MAX_LINE).into_owned()
}

/// True for a duplicate-key error (11000).
pub fn is_duplicate(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_on_a_character() {
        let e = mongodb::error::Error::custom(format!("{}\nsecond line", "é".repeat(400)));
        let line = short(&e);
        assert!(line.starts_with("Custom user error: éé"), "{line}");
        assert!(line.ends_with('…') && !line.contains('\n'), "{line}");
        assert_eq!(line.chars().count(), MAX_LINE);
    }
}
