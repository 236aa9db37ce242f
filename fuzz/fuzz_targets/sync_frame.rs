//! A `/sync` frame from one peer, decoded and applied by a real room over a realistic OKR doc
//! (the guard, yrs, the client-id and document rules, undo, the projection, fan-out). The
//! first byte picks the sender: bit 0 set, an editor held to every rule; clear, an open
//! server's anonymous client. Whatever the frame, nothing panics, no allocation passes the
//! ceiling given to libFuzzer, and the room's other peer is never closed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&who, frame)) = data.split_first() else {
        return;
    };
    let fixture = okrhub_fuzz::Fixture::new(&okrhub_fuzz::client(who & 1 == 1));
    let _ = fixture
        .room
        .receive(fixture.sender, bytes::Bytes::copy_from_slice(frame));
    fixture.finish();
});
