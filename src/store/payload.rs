//! The payload of a log record: one transaction's metadata and events.

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::txn::TxnMeta;
use crate::codec::{self, CodecError};

/// The payload format version, the first byte of every payload.
pub const PAYLOAD_VERSION: u8 = 1;

// Format: { version: u8 = 1 | bincode((meta: TxnMeta, events: Vec<E>)) }
// TxnMeta = { actor: String | reason: String | ticket: Option<String> | approved_by: Option<String> }
// Vec<E> = { count: u64 | E * count }: each event's bytes are contiguous, which is
// what lets `decode_spans` decode one event alone.

/// Appends the payload for a transaction to `out`.
pub(crate) fn encode_into<E: Serialize>(
    meta: &TxnMeta,
    events: &[E],
    out: &mut Vec<u8>,
    limit_bytes: u32,
) -> Result<(), CodecError> {
    out.push(PAYLOAD_VERSION);
    codec::encode_into(&(meta, events), out, u64::from(limit_bytes))
}

/// The payload after its version byte, if this code knows the version.
fn body(bytes: &[u8]) -> Result<&[u8], CodecError> {
    match bytes.split_first() {
        Some((&PAYLOAD_VERSION, body)) => Ok(body),
        Some((&version, _)) => Err(CodecError::unsupported_version(version)),
        None => Err(CodecError::unsupported_version(0)),
    }
}

/// Decodes a payload.
pub(crate) fn decode<E: DeserializeOwned>(bytes: &[u8], limit_bytes: u32) -> Result<(TxnMeta, Vec<E>), CodecError> {
    codec::decode(body(bytes)?, u64::from(limit_bytes))
}

/// Events, each with the byte range it occupies in its payload.
pub(crate) type SpannedEvents<E> = Vec<(E, Range<u32>)>;

/// Decodes a payload and says where each event's bytes are in it, so a reader
/// can later decode one event of a large transaction without the others.
pub(crate) fn decode_with_spans<E: DeserializeOwned>(
    bytes: &[u8],
    limit_bytes: u32,
) -> Result<(TxnMeta, SpannedEvents<E>), CodecError> {
    let limit = u64::from(limit_bytes);
    let mut rest = body(bytes)?;
    let meta: TxnMeta = codec::decode_front(&mut rest, limit)?;
    let count: u64 = codec::decode_front(&mut rest, limit)?;
    // Each event takes at least one byte: a count beyond the bytes left is corrupt.
    let mut events = Vec::with_capacity(count.min(rest.len() as u64) as usize);
    for _ in 0..count {
        let start = (bytes.len() - rest.len()) as u32;
        let event: E = codec::decode_front(&mut rest, limit)?;
        events.push((event, start..(bytes.len() - rest.len()) as u32));
    }
    if !rest.is_empty() {
        return Err(CodecError::trailing_bytes(rest.len()));
    }
    Ok((meta, events))
}

/// Decodes a payload's metadata and only the events at `spans` (from
/// [`decode_with_spans`] on the same payload).
pub(crate) fn decode_spans<E: DeserializeOwned>(
    bytes: &[u8],
    spans: &[Range<u32>],
    limit_bytes: u32,
) -> Result<(TxnMeta, Vec<E>), CodecError> {
    let limit = u64::from(limit_bytes);
    let mut rest = body(bytes)?;
    let meta: TxnMeta = codec::decode_front(&mut rest, limit)?;
    let events = spans
        .iter()
        .map(|span| match bytes.get(span.start as usize..span.end as usize) {
            Some(event) => codec::decode(event, limit),
            None => Err(CodecError::span_outside(span.start, span.end, bytes.len())),
        })
        .collect::<Result<Vec<E>, CodecError>>()?;
    Ok((meta, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_locate_each_event_and_decode_alone() {
        let meta = TxnMeta::new("svc:test", "spans");
        let events: Vec<(u32, String)> = (0..5).map(|i| (i, "x".repeat(i as usize))).collect();
        let mut bytes = Vec::new();
        encode_into(&meta, &events, &mut bytes, 1 << 20).unwrap();
        let (back_meta, spanned) = decode_with_spans::<(u32, String)>(&bytes, 1 << 20).unwrap();
        assert_eq!(back_meta, meta);
        assert_eq!(spanned.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(), events);
        let picked: Vec<Range<u32>> = vec![spanned[3].1.clone(), spanned[1].1.clone()];
        let (meta_again, some) = decode_spans::<(u32, String)>(&bytes, &picked, 1 << 20).unwrap();
        assert_eq!(meta_again, meta);
        assert_eq!(some, vec![events[3].clone(), events[1].clone()]);
        // A span outside the payload, or one that cuts an event, is an error, not a panic.
        let outside = std::slice::from_ref(&(0..u32::MAX));
        assert!(decode_spans::<(u32, String)>(&bytes, outside, 1 << 20).is_err());
        let cut = spanned[4].1.start..spanned[4].1.end - 1;
        assert!(decode_spans::<(u32, String)>(&bytes, std::slice::from_ref(&cut), 1 << 20).is_err());
        // Extra bytes after the events are refused, as by `decode`.
        bytes.push(0);
        assert!(decode_with_spans::<(u32, String)>(&bytes, 1 << 20).is_err());
    }
}
