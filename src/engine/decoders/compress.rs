//! Compressed payloads, recognised by their magic bytes — gzip (`1f 8b`), zstd
//! (`28 b5 2f fd`), lz4 frames (`04 22 4d 18`) and snappy framed streams (`ff 06 00 00
//! sNaPpY`) — decompressed (at most [`MAX_OUT`] bytes) and decoded again: by the other
//! decoders, else as JSON or text. An edit is compressed again with the same codec.

use std::io::Read;

use super::{Attempt, DecodeError, Decoder, Registry, Structured};

/// Decompressed payloads larger than this are refused (a bomb is not expanded).
pub const MAX_OUT: u64 = 64 << 20;

/// The compressed-payload decoder.
pub struct Compressed;

/// The compression `bytes` start with, by name.
pub fn kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if bytes.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        Some("lz4")
    } else if bytes.starts_with(b"\xff\x06\x00\x00sNaPpY") {
        Some("snappy")
    } else {
        None
    }
}

/// The decompressed bytes (None: not compressed; an error: compressed but broken).
pub fn decompress(bytes: &[u8]) -> Option<Result<Vec<u8>, DecodeError>> {
    let name = kind(bytes)?;
    let mut out = Vec::new();
    let read = match name {
        "gzip" => flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_OUT + 1)
            .read_to_end(&mut out),
        "zstd" => zstd::stream::read::Decoder::new(bytes)
            .and_then(|d| d.take(MAX_OUT + 1).read_to_end(&mut out)),
        "lz4" => lz4_flex::frame::FrameDecoder::new(bytes)
            .take(MAX_OUT + 1)
            .read_to_end(&mut out),
        _ => snap::read::FrameDecoder::new(bytes)
            .take(MAX_OUT + 1)
            .read_to_end(&mut out),
    };
    Some(match read {
        Ok(_) if out.len() as u64 > MAX_OUT => Err(DecodeError::malformed(format!(
            "{name} payload expands past {} MiB: not expanded",
            MAX_OUT >> 20
        ))),
        Ok(_) => Ok(out),
        Err(e) => Err(DecodeError::malformed(format!(
            "{name} payload does not decompress: {e}"
        ))),
    })
}

/// `bytes` compressed again with `name` (a [`kind`]), for an edited payload.
pub fn compress(name: &str, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    use std::io::Write;
    let fail = |e: std::io::Error| DecodeError::mismatch(format!("{name} compression failed: {e}"));
    match name {
        "gzip" => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            w.write_all(bytes).map_err(fail)?;
            w.finish().map_err(fail)
        }
        "zstd" => zstd::encode_all(bytes, 0).map_err(fail),
        "lz4" => {
            let mut w = lz4_flex::frame::FrameEncoder::new(Vec::new());
            w.write_all(bytes).map_err(fail)?;
            w.finish()
                .map_err(|e| DecodeError::mismatch(format!("{name} compression failed: {e}")))
        }
        "snappy" => {
            let mut w = snap::write::FrameEncoder::new(Vec::new());
            w.write_all(bytes).map_err(fail)?;
            w.into_inner().map_err(|e| {
                DecodeError::mismatch(format!("{name} compression failed: {}", e.error()))
            })
        }
        other => Err(DecodeError::mismatch(format!(
            "unknown compression '{other}'"
        ))),
    }
}

impl Decoder for Compressed {
    fn decode(&self, bytes: &[u8], reg: &Registry, topic: Option<&str>) -> Attempt {
        let name = match kind(bytes) {
            Some(n) => n,
            None => return Attempt::NotMine,
        };
        let inner = match decompress(bytes) {
            Some(Ok(b)) => b,
            Some(Err(why)) => return Attempt::Failed(why),
            None => return Attempt::NotMine,
        };
        match reg.decode(&inner, topic) {
            Attempt::Decoded(mut s) => {
                s.format = format!("{name}, then {}", s.format);
                Attempt::Decoded(s)
            }
            Attempt::Failed(why) => Attempt::Failed(why.context(|m| format!("{name}, then {m}"))),
            Attempt::NotMine => match std::str::from_utf8(&inner) {
                Ok(text) => Attempt::Decoded(match serde_json::from_str(text) {
                    Ok(value) => Structured {
                        format: format!("{name}, then JSON"),
                        schema_id: None,
                        subject: None,
                        value,
                    },
                    Err(_) => Structured {
                        format: format!("{name}, then text"),
                        schema_id: None,
                        subject: None,
                        value: serde_json::Value::String(text.to_string()),
                    },
                }),
                Err(_) => Attempt::Failed(DecodeError::malformed(format!(
                    "{name} of {} bytes that are neither a known format nor text",
                    inner.len()
                ))),
            },
        }
    }
}
