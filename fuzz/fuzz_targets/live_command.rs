//! A `/live` text message, read as the live endpoint reads it (`okrhub::live::parse_command`),
//! and a command that parses applied to a realistic OKR doc as the command service does
//! (`okr::apply`, then the set read back and encoded). Nothing panics; every refusal is an
//! answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yrs::Transact;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match okrhub::live::parse_command(text) {
        Err(refusal) => {
            let _ = serde_json::to_string(&refusal).expect("the refusal encodes");
        }
        Ok(command) => {
            let doc = okrhub_fuzz::seed_doc();
            let mut txn = doc.transact_mut();
            let result = okrhub::okr::apply(&mut txn, &command.command, "ana", okrhub_fuzz::NOW);
            drop(txn);
            if let Err(e) = result {
                let _ = e.to_string();
            }
            let set = okrhub::okr::read(&doc.transact(), okrhub_fuzz::NOW);
            let _ = serde_json::to_vec(&set).expect("the set encodes");
        }
    }
});
