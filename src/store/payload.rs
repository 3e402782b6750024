//! The payload of a log record: one transaction's metadata and events.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::txn::TxnMeta;
use crate::codec::{self, CodecError};

/// The payload format version, the first byte of every payload.
pub const PAYLOAD_VERSION: u8 = 1;

// Format: { version: u8 = 1 | bincode((meta: TxnMeta, events: Vec<E>)) }
// TxnMeta = { actor: String | reason: String | ticket: Option<String> | approved_by: Option<String> }

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

/// Decodes a payload.
pub(crate) fn decode<E: DeserializeOwned>(bytes: &[u8], limit_bytes: u32) -> Result<(TxnMeta, Vec<E>), CodecError> {
    match bytes.split_first() {
        Some((&PAYLOAD_VERSION, body)) => codec::decode(body, u64::from(limit_bytes)),
        Some((&version, _)) => Err(CodecError::unsupported_version(version)),
        None => Err(CodecError::unsupported_version(0)),
    }
}
