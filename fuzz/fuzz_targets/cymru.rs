//! Team Cymru: the bulk whois reply parser (what `whois_bulk` does with the bytes it read,
//! lossily decoded) and the DNS-mode TXT parsers (origin records, AS records).
#![no_main]

use std::net::IpAddr;

use ip_inventory_core::cymru;
use ip_inventory_fuzz::{assert_clean, assert_cymru_answer, assert_error_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let reply = cymru::parse_bulk_reply(&text);
    for answer in reply.answers.values() {
        assert_cymru_answer(answer);
    }
    assert!(reply.bad_lines.len() <= cymru::KEPT_BAD_LINES);
    assert!(reply.bad_count >= reply.bad_lines.len());
    for line in &reply.bad_lines {
        assert_clean(line, 4 * ip_inventory_core::sanitize::MAX_QUOTE, "bad line");
    }

    // DNS mode: each line as one TXT record of an origin name and of an AS name, and all
    // lines as the records of one origin answer.
    let txts: Vec<String> = text.lines().take(16).map(str::to_owned).collect();
    for txt in &txts {
        match cymru::parse_origin_txt(txt) {
            Ok(a) => assert_cymru_answer(&a),
            Err(e) => assert_error_text(&e),
        }
        match cymru::parse_as_name_txt(txt) {
            Ok((_, name)) => {
                if let Some(n) = name {
                    assert_clean(&n, ip_inventory_core::sanitize::MAX_NAME, "AS name");
                }
            }
            Err(e) => assert_error_text(&e),
        }
    }
    for ip in ["8.8.8.8", "2001:db8::1"] {
        let ip: IpAddr = ip.parse().unwrap();
        match cymru::origin_of(ip, &txts) {
            Ok(Some(a)) => assert_cymru_answer(&a),
            Ok(None) => assert!(txts.is_empty()),
            Err(e) => assert_error_text(&e),
        }
    }
});
