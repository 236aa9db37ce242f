//! An awareness update (the body of a y-sync awareness message), checked by the guard and
//! applied by a real room: decoding, the ownership rules (which states this connection may
//! set), the JSON states, presence. The first byte picks the sender as in `sync_frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yrs::encoding::write::Write;

fuzz_target!(|data: &[u8]| {
    let Some((&who, body)) = data.split_first() else {
        return;
    };
    // the guard alone agrees with itself inside a frame
    let alone = okrhub::protocol::bound::awareness(body).is_ok();
    let mut frame = vec![1u8];
    frame.write_buf(body);
    let framed = okrhub::protocol::bound::frame(&frame, &Default::default()).is_ok();
    assert_eq!(
        alone, framed,
        "awareness guard alone and in a frame disagree"
    );
    let fixture = okrhub_fuzz::Fixture::new(&okrhub_fuzz::client(who & 1 == 1));
    let _ = fixture.room.receive(fixture.sender, frame.into());
    fixture.finish();
});
