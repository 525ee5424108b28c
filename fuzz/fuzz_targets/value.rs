//! Value validation (P-V1: hex of an armored encrypted OpenPGP message) and the key of a
//! value (P-V2): any text, and the hex of any bytes (which reaches the armor and packet
//! parsers), must be judged without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use muttr_node::value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = value::from_hex(text);
        let _ = value::validate(text);
        let _ = value::key_of(text);
    }
    let hexed = hex::encode(data);
    if value::validate(&hexed).is_ok() {
        // Whatever passes must be text that contains the armor lines.
        let text = value::from_hex(&hexed).expect("validated values are hex of text");
        assert!(text.contains("-----BEGIN PGP MESSAGE-----"));
    }
});
