//! The frames the server writes: a data frame is a small header computed at write time in
//! front of a payload shared by every recipient; control frames (close, and the pongs and
//! close replies tungstenite produces, the keep-alive ping) are pre-built bytes.
//!
//! The header encoding itself is tungstenite's ([`FrameHeader::format`]): a server frame is
//! final, unmasked, one opcode and a length.

use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::CloseFrame;

/// The kind of data frame a connection sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// y-sync messages (`/sync`).
    Binary,
    /// JSON (`/live`).
    Text,
}

/// Longest header of an unmasked frame: 2 bytes + an 8-byte length.
pub const MAX_HEADER: usize = 10;

/// A data frame's header, inline.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    bytes: [u8; MAX_HEADER],
    len: u8,
}

impl Header {
    /// The header of one final, unmasked data frame of `payload_len` bytes.
    pub fn data(opcode: Opcode, payload_len: usize) -> Header {
        let header = FrameHeader {
            opcode: OpCode::Data(match opcode {
                Opcode::Binary => Data::Binary,
                Opcode::Text => Data::Text,
            }),
            ..FrameHeader::default()
        };
        let mut bytes = [0u8; MAX_HEADER];
        let len = header.len(payload_len as u64);
        // Writing into a slice long enough for any unmasked header cannot fail.
        let _ = header.format(payload_len as u64, &mut &mut bytes[..]);
        Header {
            bytes,
            len: len as u8,
        }
    }

    /// No header: for pre-built frames.
    pub const NONE: Header = Header {
        bytes: [0; MAX_HEADER],
        len: 0,
    };

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// The server's keep-alive ping: final, unmasked, no payload (RFC 6455 §5.5.2). A client
/// answers it with a pong.
pub const PING: [u8; 2] = [0x89, 0x00];

/// A close frame with `code` and `reason`, the reason cut to the 123 bytes a control frame
/// allows (at a character boundary).
pub fn close(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: code.into(),
        reason: reason[..end].to_owned().into(),
    }
}

/// [`close`] as bytes to write (the server writes its close frames through tungstenite; tests
/// build them here).
#[cfg(test)]
pub fn close_bytes(code: u16, reason: &str) -> bytes::Bytes {
    let frame = tungstenite::protocol::frame::Frame::close(Some(close(code, reason)));
    let mut out = Vec::with_capacity(frame.len());
    // Formatting into a Vec cannot fail.
    let _ = frame.format(&mut out);
    bytes::Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tungstenite::protocol::frame::coding::Control;

    fn parse(bytes: &[u8]) -> (FrameHeader, u64) {
        FrameHeader::parse(&mut Cursor::new(bytes))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn data_headers_for_every_length_class() {
        for (len, header_len) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let h = Header::data(Opcode::Binary, len);
            assert_eq!(h.as_slice().len(), header_len, "len {len}");
            let (parsed, parsed_len) = parse(h.as_slice());
            assert_eq!(parsed_len, len as u64);
            assert!(parsed.is_final && parsed.mask.is_none());
            assert_eq!(parsed.opcode, OpCode::Data(Data::Binary));
        }
        let (text, _) = parse(Header::data(Opcode::Text, 3).as_slice());
        assert_eq!(text.opcode, OpCode::Data(Data::Text));
    }

    #[test]
    fn the_ping_is_an_empty_final_ping_frame() {
        let (header, len) = parse(&PING);
        assert_eq!((header.opcode, len), (OpCode::Control(Control::Ping), 0));
        assert!(header.is_final && header.mask.is_none());
    }

    #[test]
    fn close_frames_carry_code_and_a_reason_cut_at_a_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let bytes = close_bytes(1013, &long);
        let (header, len) = parse(&bytes);
        assert!(len <= 125);
        let payload = &bytes[bytes.len() - len as usize..];
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1013);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert!(header.is_final);
    }
}
