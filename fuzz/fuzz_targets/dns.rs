//! The DNS message parser, as the resolver reads a reply (hickory-proto's decoder, our
//! matching of the reply to the question, the records of the asked type, TXT and PTR data
//! sanitized): name compression loops, truncated packets, wrong counts, hostile labels.
//! The reply's ID is taken from the input, so the fuzzer reaches the answer records.
#![no_main]

use ip_inventory_core::dns::{self, Ask, Lookup};
use ip_inventory_core::sanitize::MAX_NAME;
use ip_inventory_fuzz::{assert_clean, assert_error_text};
use libfuzzer_sys::fuzz_target;

/// The two questions ip_inventory asks (Team Cymru DNS mode, reverse DNS).
const QUESTIONS: [(&str, Ask, usize); 2] = [
    ("1.4.8.8.origin.asn.cymru.com.", Ask::Txt, dns::MAX_TXT),
    ("4.4.8.8.in-addr.arpa.", Ask::Ptr, MAX_NAME),
];

fuzz_target!(|data: &[u8]| {
    let id = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    for (name, ask, max) in QUESTIONS {
        match dns::parse_reply(data, id, name, ask) {
            Ok(Some(Lookup::Found(strings))) => {
                assert!(!strings.is_empty() && strings.len() <= dns::MAX_RECORDS);
                for s in &strings {
                    assert_clean(s, max, "record");
                }
            }
            Ok(_) => {}
            Err(e) => assert_error_text(&e.to_string()),
        }
    }
});
