//! The payload of a log record: one transaction's metadata and events.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;
use super::txn::{Origin, TxnMeta};
use crate::codec::{self, CodecError, OldBytes};

// Three layouts (docs/FORMAT.md, "Log segment"):
//   1: { schema: u8 (1..=255) | bincode((meta: Meta, events: Vec<E>)) }
//   2: { 0u8 | layout: u8 = 2 | schema: u8 | bincode((meta: Meta, reverts: Vec<u64>, events: Vec<E>)) }
//   3: { 0u8 | layout: u8 = 3 | schema: u8
//      | bincode((meta: Meta, reverts: Vec<u64>, origin: Origin, events: Vec<E>)) }
// Origin = { term: u64 | node: u64 | index: u64 | part: u32
//          | request: Option<{ client: u64 | serial: u64 }> }
// schema = the StateMachine::SCHEMA_VERSION the events were written with.
// Meta = { actor: String | reason: String | ticket: Option<String> | approved_by: Option<String> }
// A transaction with no revert mark and no origin is written in layout 1, so
// every record that layout 1 can hold keeps the bytes it always had (and one
// layout 2 can hold, layout 2's); a first byte of 0 is refused by builds that
// know only layout 1, a higher layout by builds that know fewer.
// Vec<E> = { count: u64 | E * count }: each event's bytes are contiguous, which is
// what lets `decode_pieces` decode one event alone. Meta, the revert mark and
// the count are the store's and do not change with the schema; only the events do.

/// The newest payload layout this build writes and reads.
const LAYOUT: u8 = 3;

/// The layout of a record with a revert mark and no origin.
const LAYOUT_MARKED: u8 = 2;

/// `TxnMeta` as layout 1 holds it: everything but the revert mark.
#[derive(Serialize)]
struct MetaOut<'a> {
    actor: &'a str,
    reason: &'a str,
    ticket: &'a Option<String>,
    approved_by: &'a Option<String>,
}

#[derive(Deserialize)]
struct MetaIn {
    actor: String,
    reason: String,
    ticket: Option<String>,
    approved_by: Option<String>,
}

impl MetaIn {
    fn with(self, reverts: Vec<u64>, origin: Option<Origin>) -> TxnMeta {
        let MetaIn { actor, reason, ticket, approved_by } = self;
        TxnMeta { actor, reason, ticket, approved_by, reverts, origin }
    }
}

/// Appends the payload for a transaction to `out`.
pub(crate) fn encode_into<S: StateMachine>(
    meta: &TxnMeta,
    events: &[S::Event],
    out: &mut Vec<u8>,
    limit_bytes: u32,
) -> Result<(), CodecError> {
    let fields =
        MetaOut { actor: &meta.actor, reason: &meta.reason, ticket: &meta.ticket, approved_by: &meta.approved_by };
    let limit = u64::from(limit_bytes);
    match meta.origin {
        None if meta.reverts.is_empty() => {
            out.push(S::SCHEMA_VERSION);
            codec::encode_into(&(fields, events), out, limit)
        }
        None => {
            out.extend_from_slice(&[0, LAYOUT_MARKED, S::SCHEMA_VERSION]);
            codec::encode_into(&(fields, &meta.reverts, events), out, limit)
        }
        Some(origin) => {
            out.extend_from_slice(&[0, LAYOUT, S::SCHEMA_VERSION]);
            codec::encode_into(&(fields, &meta.reverts, origin, events), out, limit)
        }
    }
}

/// The schema version a payload was written with.
pub(crate) fn schema_of(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [0, LAYOUT_MARKED | LAYOUT, schema, ..] => Some(*schema),
        [0, ..] | [] => None,
        [schema, ..] => Some(*schema),
    }
}

/// A payload's parts before its metadata.
struct Header<'a> {
    schema: u8,
    /// What follows the metadata: 1 nothing, 2 a revert mark, 3 a revert
    /// mark and an origin.
    layout: u8,
    body: &'a [u8],
}

/// The payload's layout and schema version, if this build can read them.
fn header<S: StateMachine>(bytes: &[u8]) -> Result<Header<'_>, CodecError> {
    let (schema, layout, body) = match bytes {
        [0, layout @ (LAYOUT_MARKED | LAYOUT), schema, body @ ..] => (*schema, *layout, body),
        [0, layout, ..] if *layout > LAYOUT => return Err(CodecError::unsupported_layout(*layout, LAYOUT)),
        [0, ..] | [] => return Err(CodecError::unsupported_version(0)),
        [schema, body @ ..] => (*schema, 1, body),
    };
    match schema {
        0 => Err(CodecError::unsupported_version(0)),
        schema if schema > S::SCHEMA_VERSION => Err(CodecError::newer_schema(schema.into(), S::SCHEMA_VERSION)),
        schema => Ok(Header { schema, layout, body }),
    }
}

/// Decodes the metadata (and the revert mark and origin, if the layout has
/// them) from the front of `rest`.
fn meta_front(layout: u8, rest: &mut &[u8], limit: u64) -> Result<TxnMeta, CodecError> {
    let meta: MetaIn = codec::decode_front(rest, limit)?;
    let reverts = if layout >= LAYOUT_MARKED { codec::decode_front(rest, limit)? } else { Vec::new() };
    let origin = if layout >= LAYOUT { Some(codec::decode_front(rest, limit)?) } else { None };
    Ok(meta.with(reverts, origin))
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
    let Header { schema, layout, body } = header::<S>(bytes)?;
    if schema == S::SCHEMA_VERSION {
        return match layout {
            LAYOUT => {
                let (meta, reverts, origin, events): (MetaIn, Vec<u64>, Origin, Vec<S::Event>) =
                    codec::decode(body, limit)?;
                Ok((meta.with(reverts, Some(origin)), events))
            }
            LAYOUT_MARKED => {
                let (meta, reverts, events): (MetaIn, Vec<u64>, Vec<S::Event>) = codec::decode(body, limit)?;
                Ok((meta.with(reverts, None), events))
            }
            _ => {
                let (meta, events): (MetaIn, Vec<S::Event>) = codec::decode(body, limit)?;
                Ok((meta.with(Vec::new(), None), events))
            }
        };
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
    let (meta, _, events) = decode_spanned::<S>(bytes, limit_bytes)?;
    Ok((meta, events))
}

/// What [`decode_with_spans`] gives, with the length of the payload's head:
/// the bytes before the event count (layout, schema, metadata, revert mark and
/// origin), which [`decode_pieces`] takes in place of the whole payload.
pub(crate) fn decode_spanned<S: StateMachine>(
    bytes: &[u8],
    limit_bytes: u32,
) -> Result<(TxnMeta, u32, SpannedEvents<S::Event>), CodecError> {
    let limit = u64::from(limit_bytes);
    let Header { schema: version, layout, body: mut rest } = header::<S>(bytes)?;
    let meta = meta_front(layout, &mut rest, limit)?;
    let head = (bytes.len() - rest.len()) as u32;
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
    Ok((meta, head, events))
}

/// Decodes a payload's metadata from its `head` (the payload's first bytes,
/// as long as [`decode_spanned`] said) and each of `events`, the bytes of one
/// event at a span it gave: one event per piece for the current schema; for
/// an older one, every event the old event upcasts to (the caller picks the
/// ones it wants). The rest of the payload is not needed. Events of the
/// current schema go through `decode` (given a piece and the limit), which
/// must decode as [`codec::decode`] does; a caller that knows the pieces
/// are one resource's events in order may share values between them.
pub(crate) fn decode_pieces<S: StateMachine>(
    head: &[u8],
    events: &[&[u8]],
    limit_bytes: u32,
    decode: &mut impl FnMut(&[u8], u64) -> Result<S::Event, CodecError>,
) -> Result<(TxnMeta, Vec<S::Event>), CodecError> {
    let limit = u64::from(limit_bytes);
    let Header { schema: version, layout, body: mut rest } = header::<S>(head)?;
    let meta = meta_front(layout, &mut rest, limit)?;
    if !rest.is_empty() {
        return Err(CodecError::trailing_bytes(rest.len()));
    }
    let mut out = Vec::with_capacity(events.len());
    for &event in events {
        if version == S::SCHEMA_VERSION {
            out.push(decode(event, limit)?);
            continue;
        }
        let mut rest = event;
        out.extend(upcast_front::<S>(version, &mut rest, limit)?);
        if !rest.is_empty() {
            return Err(CodecError::trailing_bytes(rest.len()));
        }
    }
    Ok((meta, out))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// The metadata and the events at `spans` of a whole payload, through
    /// [`decode_pieces`] as an index reads them.
    fn decode_spans<S: StateMachine>(
        bytes: &[u8],
        spans: &[Range<u32>],
        limit: u32,
    ) -> Result<(TxnMeta, Vec<S::Event>), CodecError> {
        let head = match decode_spanned::<S>(bytes, limit) {
            Ok((_, head, _)) => head as usize,
            Err(err) if err.newer_schema_version().is_some() => return Err(err),
            Err(_) => bytes.len(),
        };
        let mut pieces = Vec::new();
        for span in spans {
            let Some(piece) = bytes.get(span.start as usize..span.end as usize) else {
                return Err(CodecError::span_outside(span.start, span.end, bytes.len()));
            };
            pieces.push(piece);
        }
        decode_pieces::<S>(&bytes[..head], &pieces, limit, &mut |piece, limit| codec::decode(piece, limit))
    }

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

    #[test]
    fn a_revert_mark_is_layout_2_on_every_path_and_an_unmarked_record_keeps_layout_1() {
        let plain = TxnMeta::new("svc:test", "plain");
        let marked = TxnMeta::new("svc:test", "plain").with_reverts([9, 3, 3]);
        assert_eq!(marked.reverts, vec![3, 9]);
        let events: Vec<(u32, String)> = (0..3).map(|i| (i, "y".repeat(i as usize))).collect();
        let (mut one, mut two) = (Vec::new(), Vec::new());
        encode_into::<Pairs>(&plain, &events, &mut one, 1 << 20).unwrap();
        encode_into::<Pairs>(&marked, &events, &mut two, 1 << 20).unwrap();
        assert_eq!(one[0], 2, "layout 1 starts with the schema");
        assert_eq!(&two[..3], &[0, 2, 2], "layout 2 starts with 0, the layout, the schema");
        assert_eq!(schema_of(&two), Some(2));
        // The layout-2 body is layout 1's metadata, the mark, then the same events.
        let mark_bytes = 8 + 2 * 8;
        assert_eq!(two.len(), one.len() + 2 + mark_bytes);
        assert_eq!(decode::<Pairs>(&two, 1 << 20).unwrap(), (marked.clone(), events.clone()));
        assert_eq!(decode::<Pairs>(&one, 1 << 20).unwrap(), (plain, events.clone()));
        let (meta, spanned) = decode_with_spans::<Pairs>(&two, 1 << 20).unwrap();
        assert_eq!(meta, marked);
        assert_eq!(
            &two[spanned[0].1.start as usize..][..4],
            &0u32.to_le_bytes(),
            "spans count from the payload's first byte"
        );
        let (meta, some) = decode_spans::<Pairs>(&two, &[spanned[2].1.clone()], 1 << 20).unwrap();
        assert_eq!((meta, some), (marked.clone(), vec![events[2].clone()]));
        // An old schema's record with a mark is upcast like any other.
        let mut old = Vec::new();
        encode_into::<Old>(&marked, &[5], &mut old, 1 << 20).unwrap();
        assert_eq!(&old[..3], &[0, 2, 1]);
        let (meta, upcast) = decode::<Pairs>(&old, 1 << 20).unwrap();
        assert_eq!((meta, upcast), (marked, vec![(5, "a".into()), (5, "b".into())]));
        // A newer layout is refused by name; a cut header is an error, not a panic.
        let mut newer = two.clone();
        newer[1] = 4;
        let err = decode::<Pairs>(&newer, 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "payload layout 4 is newer than this build reads (up to 3)");
        for cut in 0..4 {
            assert!(decode::<Pairs>(&two[..cut], 1 << 20).is_err());
            assert!(decode_with_spans::<Pairs>(&two[..cut], 1 << 20).is_err());
        }
    }

    #[test]
    fn an_origin_is_layout_3_on_every_path_with_or_without_a_revert_mark() {
        let origin = Origin { term: 7, node: 2, index: 41, part: 3, request: None };
        let request = Some(crate::store::RequestId { client: 9, serial: 12 });
        let events: Vec<(u32, String)> = (0..3).map(|i| (i, "z".repeat(i as usize))).collect();
        for meta in [
            TxnMeta::new("svc:test", "replicated").with_origin(origin),
            TxnMeta::new("svc:test", "replicated").with_reverts([4]).with_origin(origin),
            TxnMeta::new("svc:test", "replicated").with_origin(Origin { request, ..origin }),
        ] {
            let (mut plain, mut three) = (Vec::new(), Vec::new());
            let without = TxnMeta { origin: None, ..meta.clone() };
            encode_into::<Pairs>(&without, &events, &mut plain, 1 << 20).unwrap();
            encode_into::<Pairs>(&meta, &events, &mut three, 1 << 20).unwrap();
            assert_eq!(&three[..3], &[0, 3, 2], "layout 3 starts with 0, the layout, the schema");
            assert_eq!(schema_of(&three), Some(2));
            // Layout 3's body is layout 2's metadata and mark, the origin (three
            // u64s, a u32 and an optional pair of u64s), then the same events.
            let mark_bytes = 8 + 8 * meta.reverts.len();
            let plain_extra = if meta.reverts.is_empty() { 0 } else { 2 + mark_bytes };
            let origin_bytes = if meta.origin.unwrap().request.is_some() { 28 + 17 } else { 28 + 1 };
            assert_eq!(three.len(), plain.len() - plain_extra + 2 + mark_bytes + origin_bytes);
            assert_eq!(decode::<Pairs>(&three, 1 << 20).unwrap(), (meta.clone(), events.clone()));
            let (back, spanned) = decode_with_spans::<Pairs>(&three, 1 << 20).unwrap();
            assert_eq!(back, meta);
            let (back, some) = decode_spans::<Pairs>(&three, &[spanned[1].1.clone()], 1 << 20).unwrap();
            assert_eq!((back, some), (meta.clone(), vec![events[1].clone()]));
            let mut old = Vec::new();
            encode_into::<Old>(&meta, &[5], &mut old, 1 << 20).unwrap();
            assert_eq!(&old[..3], &[0, 3, 1]);
            assert_eq!(decode::<Pairs>(&old, 1 << 20).unwrap().0, meta);
            for cut in 0..three.len().min(40) {
                assert!(decode::<Pairs>(&three[..cut], 1 << 20).is_err());
            }
        }
    }
}
