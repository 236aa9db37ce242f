//! Arbitrary update bytes against a realistic OKR doc: guarded and decoded as the server does,
//! applied, then the OKR set read (`okr::read`) and the incremental projection checked against
//! that full read. Whatever the update does to the doc, reading it never panics and the two
//! derivations agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = okrhub::protocol::bound::Limits::default();
    let Ok(parts) = okrhub::protocol::decode_update(data, &limits) else {
        return;
    };
    okrhub_fuzz::read_and_project(&okrhub_fuzz::seed_doc(), parts);
});
