//! GreyNoise: what `Client::lookup` does with an HTTP answer (`interpret(ip, status,
//! Retry-After, body, now)`), and the pause a 429 records.
//!
//! Input: byte 0 picks the status, bytes 1..9 the clock (seconds since 1970, anywhere in
//! SystemTime's range), then the Retry-After value up to the first newline, then the body.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, UNIX_EPOCH};

use ip_inventory_core::greynoise::{self, Reply, KEPT_FIELDS, MAX_RETRY_AFTER};
use ip_inventory_fuzz::{assert_error_text, assert_json_answer};
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 8] = [200, 404, 429, 401, 403, 500, 503, 302];
const IP: Ipv4Addr = Ipv4Addr::new(71, 6, 135, 131);

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let status = STATUSES[usize::from(data[0]) % STATUSES.len()];
    let secs = i64::from_le_bytes(data[1..9].try_into().unwrap());
    let offset = Duration::from_secs(secs.unsigned_abs());
    let now = if secs >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    let Some(now) = now else { return };
    let rest = &data[9..];
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    // ureq hands over only a visible-ASCII header value (HeaderValue::to_str).
    let header = std::str::from_utf8(header)
        .ok()
        .filter(|h| h.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));

    if let Some(h) = header {
        if let Some(wait) = greynoise::parse_retry_after(h, now) {
            assert!(wait <= MAX_RETRY_AFTER, "Retry-After {h:?} gave {wait:?}");
        }
    }
    match greynoise::interpret(IP, status, header, body, now) {
        Reply::Observed(v) | Reply::NotObserved(v) => {
            assert_json_answer(&v);
            let fields = v.as_object().expect("an object");
            assert!(fields.keys().all(|k| KEPT_FIELDS.contains(&k.as_str())));
            assert!(v["noise"].is_boolean());
        }
        Reply::RateLimited(wait) => {
            assert!(wait <= MAX_RETRY_AFTER);
            // The pause it records is bounded too, whatever the clock says.
            let paused_until = AtomicI64::new(0);
            greynoise::pause(&paused_until, now, wait);
            if let Some(left) = greynoise::paused_for(&paused_until, now) {
                assert!(left <= MAX_RETRY_AFTER);
            }
        }
        Reply::Unauthorized(s) => assert!(s == 401 || s == 403),
        Reply::Failed(e) => assert_error_text(&e.to_string()),
    }
});
