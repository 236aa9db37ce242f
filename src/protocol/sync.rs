//! The y-sync frames of `/sync`: the y-websocket protocol, thin over `yrs::sync`.
//!
//! A binary frame carries one or more y-sync messages (the JS provider sends one; yrs's
//! `Protocol::start` packs sync step 1 and awareness into one): a var-uint type — 0 sync
//! (with sub-type 0 step 1, 1 step 2, 2 update), 1 awareness, 2 auth, 3 query-awareness —
//! then the message body. Decoding and encoding are `yrs::sync`'s own; this module adds the
//! strictness the server needs (a truncated or unknown message is an error, not silently
//! ignored), and runs the decode guard ([`super::bound`]) over every frame before yrs reads
//! it, so that no count on the wire makes yrs allocate more than the frame could hold.

use bytes::Bytes;
use yrs::encoding::read::Error as ReadError;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::Update;

use super::bound::{self, Limits, Refusal};

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("malformed y-sync message: {0}")]
    Malformed(#[from] ReadError),
    /// The decode guard refused it before yrs read it.
    #[error("{0}")]
    Refused(#[from] Refusal),
}

/// Decodes every message of a binary frame, under the default [`Limits`]. Every message must
/// be complete; the frame ends where no further message starts.
pub fn decode_frame(data: &[u8]) -> Result<Vec<Message>, FrameError> {
    decode_frame_within(data, &Limits::default())
}

/// [`decode_frame`] under `limits`: the guard walks the whole frame first, then yrs decodes it.
pub fn decode_frame_within(data: &[u8], limits: &Limits) -> Result<Vec<Message>, FrameError> {
    if data.is_empty() {
        return Err(FrameError::Empty);
    }
    bound::frame(data, limits)?;
    let mut decoder = DecoderV1::from(data);
    let mut messages = Vec::with_capacity(1);
    messages.push(Message::decode(&mut decoder)?);
    loop {
        match Message::decode(&mut decoder) {
            Ok(m) => messages.push(m),
            Err(ReadError::EndOfBuffer(_)) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(messages)
}

/// Decodes a v1 update, guarded like a frame, into the parts it is to be applied in, each in
/// its own transaction, in order: one part, unless a client has more than
/// [`bound::MAX_RUN`] blocks in it ([`bound::split_v1`] says why).
pub fn decode_update(update: &[u8], limits: &Limits) -> Result<Vec<Update>, FrameError> {
    match bound::split_v1(update, limits)? {
        None => Ok(vec![Update::decode_v1(update)?]),
        Some(parts) => parts
            .iter()
            .map(|p| Update::decode_v1(p).map_err(FrameError::from))
            .collect(),
    }
}

/// Encodes one message as a frame payload.
pub fn encode(message: &Message) -> Bytes {
    Bytes::from(message.encode_v1())
}

/// A sync-update frame carrying `update`.
pub fn update_frame(update: &[u8]) -> Bytes {
    encode(&Message::Sync(SyncMessage::Update(update.to_vec())))
}

/// Whether `update` (v1) is the empty update: no structs, empty delete set. Clients send it as
/// their sync step 2 when they have nothing the server lacks; it is neither stored nor relayed.
pub fn is_empty_update(update: &[u8]) -> bool {
    update == [0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::StateVector;

    #[test]
    fn decodes_one_and_several_messages() {
        let one = encode(&Message::Sync(SyncMessage::SyncStep1(
            StateVector::default(),
        )));
        assert_eq!(decode_frame(&one).unwrap().len(), 1);
        let mut two = one.to_vec();
        two.extend_from_slice(&encode(&Message::AwarenessQuery));
        let msgs = decode_frame(&two).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1], Message::AwarenessQuery);
    }

    #[test]
    fn rejects_empty_truncated_and_unknown_frames() {
        assert!(matches!(decode_frame(&[]), Err(FrameError::Empty)));
        // sync update announcing 10 bytes but carrying 2
        assert!(decode_frame(&[0, 2, 10, 1, 2]).is_err());
        // sync with an unknown sub-type
        assert!(decode_frame(&[0, 9, 0]).is_err());
    }

    #[test]
    fn empty_update_is_recognised() {
        let doc = yrs::Doc::new();
        let sv = yrs::ReadTxn::state_vector(&yrs::Transact::transact(&doc));
        let upd = yrs::ReadTxn::encode_state_as_update_v1(&yrs::Transact::transact(&doc), &sv);
        assert!(is_empty_update(&upd));
    }
}
