//! Fuzzes the `.scn` scenario parser: any UTF-8 input must give a `Scenario` or a
//! `ScenarioError`, never a panic, a hang or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = overseer_conformance::parse(text);
    }
});
