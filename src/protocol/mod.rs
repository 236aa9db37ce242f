//! Wire formats, and nothing else: no state, no sockets.
//!
//! | file | owns |
//! |---|---|
//! | [`sync`] | y-sync frames of `/sync` (thin over `yrs::sync`) |
//! | [`bound`] | the decode guard: frames and updates walked as yrs reads them, refused when a count cannot fit |
//! | [`live`] | the JSON messages of `/live` and REST, their error bodies and the JSON Schemas generated from them |
//! | [`review`] | the REST bodies of templates and filling a room from one (issue 15) |
//! | [`close`] | why the server closes a WebSocket: [`CloseReason`] and its [`CloseKind`] |
//! | [`transfer`] | the import and export formats: JSON, CSV, and the commands an import becomes |
//!
//! Every layer above the OKR domain may use these types — the room core closes a slow
//! consumer with a [`CloseReason`], the services answer with an [`live::ErrorBody`] — so they
//! live below all of them.

pub mod bound;
pub mod close;
pub mod live;
pub mod review;
pub mod sync;
pub mod transfer;

pub use close::{CloseKind, CloseReason};
pub use sync::{
    decode_frame, decode_frame_within, decode_update, encode, is_empty_update, update_frame,
    FrameError,
};
