//! The export wing: letters as JSON for `list --json` and exports, redaction of
//! secrets in exported letters, and the export bundle's manifest.

pub mod bundle;
pub mod json;
pub mod redact;
