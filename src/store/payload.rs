//! The payload of a log record: one transaction's metadata and events.

use std::ops::Range;

use super::machine::StateMachine;
use super::txn::TxnMeta;
use crate::codec::{self, CodecError, OldBytes};

// Format: { schema: u8 | bincode((meta: TxnMeta, events: Vec<E>)) }
// schema = the StateMachine::SCHEMA_VERSION the events were written with.
// TxnMeta = { actor: String | reason: String | ticket: Option<String> | approved_by: Option<String> }
// Vec<E> = { count: u64 | E * count }: each event's bytes are contiguous, which is
// what lets `decode_spans` decode one event alone. TxnMeta and the count are
// the store's and do not change with the schema; only the events do.

/// Appends the payload for a transaction to `out`.
pub(crate) fn encode_into<S: StateMachine>(
    meta: &TxnMeta,
    events: &[S::Event],
    out: &mut Vec<u8>,
    limit_bytes: u32,
) -> Result<(), CodecError> {
    out.push(S::SCHEMA_VERSION);
    codec::encode_into(&(meta, events), out, u64::from(limit_bytes))
}

/// The schema version a payload was written with.
pub(crate) fn schema_of(bytes: &[u8]) -> Option<u8> {
    bytes.first().copied()
}

/// The payload's schema version and the bytes after it, if this build can
/// read that version.
fn body<S: StateMachine>(bytes: &[u8]) -> Result<(u8, &[u8]), CodecError> {
    match bytes.split_first() {
        Some((&0, _)) | None => Err(CodecError::unsupported_version(0)),
        Some((&version, _)) if version > S::SCHEMA_VERSION => {
            Err(CodecError::newer_schema(version.into(), S::SCHEMA_VERSION))
        }
        Some((&version, body)) => Ok((version, body)),
    }
}

/// Upcasts one old event from the front of `rest`.
fn upcast_front<S: StateMachine>(version: u8, rest: &mut &[u8], limit: u64) -> Result<Vec<S::Event>, CodecError> {
    let mut old = OldBytes::new(rest, limit);
    let events = S::upcast_event(version, &mut old)?;
    *rest = old.rest();
    Ok(events)
}

/// Decodes a payload, upcasting events of an older schema version.
pub(crate) fn decode<S: StateMachine>(bytes: &[u8], limit_bytes: u32) -> Result<(TxnMeta, Vec<S::Event>), CodecError> {
    let limit = u64::from(limit_bytes);
    let (version, body) = body::<S>(bytes)?;
    if version == S::SCHEMA_VERSION {
        return codec::decode(body, limit);
    }
    // An older schema is read event by event either way; drop the spans.
    let (meta, spanned) = decode_with_spans::<S>(bytes, limit_bytes)?;
    Ok((meta, spanned.into_iter().map(|(event, _)| event).collect()))
}

/// Events, each with the byte range of the event as written in its payload:
/// the events an old event upcasts to share its range.
pub(crate) type SpannedEvents<E> = Vec<(E, Range<u32>)>;

/// Decodes a payload and says where each event's bytes are in it, so a reader
/// can later decode one event of a large transaction without the others.
pub(crate) fn decode_with_spans<S: StateMachine>(
    bytes: &[u8],
    limit_bytes: u32,
) -> Result<(TxnMeta, SpannedEvents<S::Event>), CodecError> {
    let limit = u64::from(limit_bytes);
    let (version, mut rest) = body::<S>(bytes)?;
    let meta: TxnMeta = codec::decode_front(&mut rest, limit)?;
    let count: u64 = codec::decode_front(&mut rest, limit)?;
    // Each event takes at least one byte: a count beyond the bytes left is corrupt.
    let mut events = Vec::with_capacity(count.min(rest.len() as u64) as usize);
    for _ in 0..count {
        let start = (bytes.len() - rest.len()) as u32;
        if version == S::SCHEMA_VERSION {
            let event: S::Event = codec::decode_front(&mut rest, limit)?;
            events.push((event, start..(bytes.len() - rest.len()) as u32));
        } else {
            let upcast = upcast_front::<S>(version, &mut rest, limit)?;
            let end = (bytes.len() - rest.len()) as u32;
            events.extend(upcast.into_iter().map(|event| (event, start..end)));
        }
    }
    if !rest.is_empty() {
        return Err(CodecError::trailing_bytes(rest.len()));
    }
    Ok((meta, events))
}

/// Decodes a payload's metadata and only the events at `spans` (from
/// [`decode_with_spans`] on the same payload): one event per span for the
/// current schema; for an older one, every event the old event at the span
/// upcasts to (the caller picks the ones it wants).
pub(crate) fn decode_spans<S: StateMachine>(
    bytes: &[u8],
    spans: &[Range<u32>],
    limit_bytes: u32,
) -> Result<(TxnMeta, Vec<S::Event>), CodecError> {
    let limit = u64::from(limit_bytes);
    let (version, mut rest) = body::<S>(bytes)?;
    let meta: TxnMeta = codec::decode_front(&mut rest, limit)?;
    let mut events = Vec::with_capacity(spans.len());
    for span in spans {
        let Some(event) = bytes.get(span.start as usize..span.end as usize) else {
            return Err(CodecError::span_outside(span.start, span.end, bytes.len()));
        };
        if version == S::SCHEMA_VERSION {
            events.push(codec::decode(event, limit)?);
            continue;
        }
        let mut rest = event;
        events.extend(upcast_front::<S>(version, &mut rest, limit)?);
        if !rest.is_empty() {
            return Err(CodecError::trailing_bytes(rest.len()));
        }
    }
    Ok((meta, events))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// Schema 2: events are pairs. Schema 1 (see `Old`) wrote a bare number,
    /// which upcasts to two events.
    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Pairs;

    impl StateMachine for Pairs {
        type Event = (u32, String);
        const SCHEMA_VERSION: u8 = 2;

        fn apply(&mut self, _: &(u32, String)) {}

        fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<(u32, String)>, CodecError> {
            match version {
                1 => {
                    let n: u32 = old.decode()?;
                    Ok(vec![(n, "a".into()), (n, "b".into())])
                }
                _ => Err(CodecError::no_upcaster(version.into(), 2)),
            }
        }
    }

    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Old;

    impl StateMachine for Old {
        type Event = u32;
        fn apply(&mut self, _: &u32) {}
    }

    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Newer;

    impl StateMachine for Newer {
        type Event = (u32, String);
        const SCHEMA_VERSION: u8 = 3;
        fn apply(&mut self, _: &(u32, String)) {}
    }

    #[test]
    fn spans_locate_each_event_and_decode_alone() {
        let meta = TxnMeta::new("svc:test", "spans");
        let events: Vec<(u32, String)> = (0..5).map(|i| (i, "x".repeat(i as usize))).collect();
        let mut bytes = Vec::new();
        encode_into::<Pairs>(&meta, &events, &mut bytes, 1 << 20).unwrap();
        assert_eq!(schema_of(&bytes), Some(2));
        let (back_meta, spanned) = decode_with_spans::<Pairs>(&bytes, 1 << 20).unwrap();
        assert_eq!(back_meta, meta);
        assert_eq!(spanned.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(), events);
        let picked = vec![spanned[3].1.clone(), spanned[1].1.clone()];
        let (meta_again, some) = decode_spans::<Pairs>(&bytes, &picked, 1 << 20).unwrap();
        assert_eq!(meta_again, meta);
        assert_eq!(some, vec![events[3].clone(), events[1].clone()]);
        // A span outside the payload, or one that cuts an event, is an error, not a panic.
        assert!(decode_spans::<Pairs>(&bytes, std::slice::from_ref(&(0..u32::MAX)), 1 << 20).is_err());
        let cut = spanned[4].1.start..spanned[4].1.end - 1;
        assert!(decode_spans::<Pairs>(&bytes, &[cut], 1 << 20).is_err());
        // Extra bytes after the events are refused, as by `decode`.
        bytes.push(0);
        assert!(decode_with_spans::<Pairs>(&bytes, 1 << 20).is_err());
    }

    #[test]
    fn old_events_are_upcast_on_every_path_and_share_their_old_event_s_span() {
        let meta = TxnMeta::new("svc:test", "old");
        let mut bytes = Vec::new();
        encode_into::<Old>(&meta, &[7, 9], &mut bytes, 1 << 20).unwrap();
        assert_eq!(schema_of(&bytes), Some(1));
        let expected: Vec<(u32, String)> = vec![(7, "a".into()), (7, "b".into()), (9, "a".into()), (9, "b".into())];
        assert_eq!(decode::<Pairs>(&bytes, 1 << 20).unwrap(), (meta.clone(), expected.clone()));
        let (_, spanned) = decode_with_spans::<Pairs>(&bytes, 1 << 20).unwrap();
        assert_eq!(spanned.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(), expected);
        assert_eq!(spanned[0].1, spanned[1].1, "both events come from one old event");
        assert_ne!(spanned[1].1, spanned[2].1);
        let picked = vec![spanned[3].1.clone(), spanned[0].1.clone()];
        let (_, some) = decode_spans::<Pairs>(&bytes, &picked, 1 << 20).unwrap();
        assert_eq!(some, vec![expected[2].clone(), expected[3].clone(), expected[0].clone(), expected[1].clone()]);
        let longer = spanned[0].1.start..spanned[0].1.end + 1;
        assert!(decode_spans::<Pairs>(&bytes, &[longer], 1 << 20).is_err(), "an old event fills its span");
    }

    #[test]
    fn a_newer_schema_is_refused_by_name_and_a_zero_schema_as_unsupported() {
        let mut bytes = Vec::new();
        encode_into::<Newer>(&TxnMeta::new("a", "b"), &[(1, "x".into())], &mut bytes, 1 << 20).unwrap();
        let err = decode::<Pairs>(&bytes, 1 << 20).unwrap_err();
        assert_eq!(err.newer_schema_version(), Some((3, 2)));
        assert_eq!(err.to_string(), "written by a newer version: schema 3, this build reads up to 2");
        assert!(decode_with_spans::<Pairs>(&bytes, 1 << 20).unwrap_err().newer_schema_version().is_some());
        assert!(decode_spans::<Pairs>(&bytes, &[], 1 << 20).unwrap_err().newer_schema_version().is_some());
        bytes[0] = 0;
        assert!(decode::<Pairs>(&bytes, 1 << 20).unwrap_err().newer_schema_version().is_none());
        assert!(decode::<Pairs>(&[], 1 << 20).is_err());
        // An older version with no upcaster is an error that says so.
        let mut old = Vec::new();
        encode_into::<Old>(&TxnMeta::new("a", "b"), &[1], &mut old, 1 << 20).unwrap();
        let err = decode::<Newer>(&old, 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "written with schema 1, and nothing upcasts it to this build's schema 3");
    }
}
