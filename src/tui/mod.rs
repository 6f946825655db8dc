//! The terminal UI. For now: the terminal guard that every screen runs under, so a
//! panic or an error never leaves an on-call engineer's ssh session in raw mode.

pub mod terminal;
