//! The dead-letter engine: the model, header conventions and (later) reading,
//! filtering and replaying. It knows dead letters, not terminals: nothing here
//! imports ratatui, crossterm, syntect or arboard.

pub mod conventions;
pub mod encoding;
pub mod error;
pub mod json;
pub mod letter;

pub use error::EngineError;
pub use letter::{
    DeadLetter, FailureContext, Header, Headers, LetterId, LetterState, Reason, ReplayRecord,
    SourceCoords,
};
