//! Network answers and file records are data, never control.
//!
//! Whatever a server or a file says ends up in `text` and `jsonb` values, in failure texts and
//! in logs. PostgreSQL cannot store a NUL in either (`\u0000` fails the whole statement with
//! SQLSTATE 22P05), so one NUL in one answer used to fail every refresh of a source. Every
//! string that reaches an answer, a failure text or a returned field goes through here:
//!
//! - **Control characters are replaced by U+FFFD** (the replacement character), not dropped,
//!   so a reader sees that something was there: the C0 controls (NUL included), DEL and the C1
//!   controls (Unicode category Cc), the line and paragraph separators U+2028/U+2029, and the
//!   bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069),
//!   which make a terminal or a log viewer show other text than what is stored
//!   (CVE-2021-42574). Whitespace around a value is trimmed.
//! - **Invalid UTF-8 is decoded lossily** (each bad sequence becomes U+FFFD).
//! - **Lengths are bounded**, cut on a character boundary; a trailing `…` marks a cut value.
//! - **Numbers and dates are checked for their field**: a prefix is re-written in the
//!   canonical form `::cidr` accepts (or refused), a date must be a real calendar date
//!   between 1900 and 2100 (or it is omitted).
//!
//! The checks a source makes of its own answer (an ASN beyond 32 bits, a prefix that does not
//! hold the address) live with the source and fail that address only; this module is what
//! they all share, and `fetch::Row` applies [`json`] and [`detail`] to every row as the last
//! guard.

use serde_json::{Map, Value};

/// Longest string kept in a network answer, in bytes: a DNS name's own limit. AS names, PTR
/// names and GreyNoise's texts are far shorter.
pub const MAX_NAME: usize = 255;
/// Longest string returned from a MaxMind DB record, in bytes. Real records hold names of a
/// few dozen bytes.
pub const MAX_TEXT: usize = 4096;
/// Longest failure text recorded with a row (`ip_inventory_failures.error`), in characters.
pub const MAX_DETAIL: usize = 200;
/// Longest excerpt of a server's bytes quoted in a failure text, in characters.
pub const MAX_QUOTE: usize = 64;
/// Deepest nesting and most members of an array or object kept in a network answer: the
/// answers are flat objects with at most a short list.
pub const MAX_DEPTH: usize = 4;
pub const MAX_ITEMS: usize = 32;

/// What an unsafe character becomes.
pub const REPLACEMENT: char = '\u{FFFD}';
/// Marks a value that was cut to its length limit.
pub const CUT_MARK: char = '…';

/// A character that must never be stored or shown as is.
#[inline]
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// True when `s` holds no unsafe character and is at most `max_bytes` long: what every
/// function here returns, and what the fuzzers assert.
#[inline]
pub fn is_clean(s: &str, max_bytes: usize) -> bool {
    s.len() <= max_bytes
        && (s.bytes().all(|b| (0x20..0x7f).contains(&b)) || !s.chars().any(is_unsafe))
}

/// `s` with unsafe characters replaced, trimmed, at most `max_bytes` long and `max_chars`
/// characters (the cut mark included).
fn bounded(s: &str, max_bytes: usize, max_chars: usize) -> String {
    let s = s.trim();
    let mut out = String::with_capacity(s.len().min(max_bytes));
    let mut chars = 0usize;
    for c in s.chars() {
        let c = if is_unsafe(c) { REPLACEMENT } else { c };
        if out.len() + c.len_utf8() > max_bytes || chars + 1 > max_chars {
            let mark = CUT_MARK.len_utf8();
            if max_bytes >= mark && max_chars >= 1 {
                while out.len() + mark > max_bytes || chars + 1 > max_chars {
                    if out.pop().is_none() {
                        break;
                    }
                    chars -= 1;
                }
                out.push(CUT_MARK);
            }
            return out;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// A string from an answer: unsafe characters replaced, trimmed, at most `max_bytes`.
pub fn text(s: &str, max_bytes: usize) -> String {
    bounded(s, max_bytes, usize::MAX)
}

/// Bytes from an answer as [`text`], invalid UTF-8 decoded lossily.
pub fn text_bytes(b: &[u8], max_bytes: usize) -> String {
    text(&String::from_utf8_lossy(b), max_bytes)
}

/// A failure text: at most [`MAX_DETAIL`] characters.
pub fn detail(s: &str) -> String {
    bounded(s, MAX_DETAIL * 4, MAX_DETAIL)
}

/// An excerpt of a server's bytes to quote in a failure text: at most [`MAX_QUOTE`]
/// characters.
pub fn quote(s: &str) -> String {
    bounded(s, MAX_QUOTE * 4, MAX_QUOTE)
}

/// A network answer as stored: every string and key as [`text`] with [`MAX_NAME`], nesting
/// beyond [`MAX_DEPTH`] as null, arrays and objects cut to [`MAX_ITEMS`] members.
pub fn json(v: Value) -> Value {
    json_at(v, 0)
}

fn json_at(v: Value, depth: usize) -> Value {
    match v {
        Value::String(s) if is_clean(&s, MAX_NAME) => Value::String(s),
        Value::String(s) => Value::String(text(&s, MAX_NAME)),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Value::Null,
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .take(MAX_ITEMS)
                .map(|v| json_at(v, depth + 1))
                .collect(),
        ),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .take(MAX_ITEMS)
                .map(|(k, v)| {
                    let k = if is_clean(&k, MAX_NAME) {
                        k
                    } else {
                        text(&k, MAX_NAME)
                    };
                    (k, json_at(v, depth + 1))
                })
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

/// True when every string and key of `v` is clean with `max_bytes` (what the fuzzers
/// assert of answers and records).
pub fn json_is_clean(v: &Value, max_bytes: usize) -> bool {
    match v {
        Value::String(s) => is_clean(s, max_bytes),
        Value::Array(items) => items.iter().all(|v| json_is_clean(v, max_bytes)),
        Value::Object(members) => members
            .iter()
            .all(|(k, v)| is_clean(k, max_bytes) && json_is_clean(v, max_bytes)),
        _ => true,
    }
}

/// A prefix in the form PostgreSQL's `cidr` accepts: the network address with the host bits
/// cleared (`8.8.8.1/24` is a valid `inet` but not a `cidr`; the cast fails the statement).
/// `None` when it is not a prefix.
pub fn prefix(s: &str) -> Option<ipnetwork::IpNetwork> {
    let net: ipnetwork::IpNetwork = s.trim().parse().ok()?;
    ipnetwork::IpNetwork::new(net.network(), net.prefix()).ok()
}

/// Earliest and latest year of a date kept from an answer.
pub const MIN_YEAR: u32 = 1900;
pub const MAX_YEAR: u32 = 2100;

/// A date from an answer: `YYYY-MM-DD` (a real calendar day from [`MIN_YEAR`] to
/// [`MAX_YEAR`]), optionally followed by a time (`T`/space, then digits, `:`, `.`, `+`, `-`,
/// `Z`; 40 bytes at most in all). `None` otherwise: the field is omitted.
pub fn date(s: &str) -> Option<String> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b.len() > 40 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=days).contains(&day) {
        return None;
    }
    let time = &b[10..];
    let time_ok = time.is_empty()
        || (matches!(time[0], b'T' | b' ')
            && time[1..]
                .iter()
                .all(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b'+' | b'-' | b'Z')));
    time_ok.then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn controls_are_replaced_and_the_rest_kept() {
        assert_eq!(text("evil\u{0}name", MAX_NAME), "evil\u{FFFD}name");
        assert_eq!(
            text("a\u{1b}[31mred\u{7f}", MAX_NAME),
            "a\u{FFFD}[31mred\u{FFFD}"
        );
        assert_eq!(text("c1\u{85}\u{9b}", MAX_NAME), "c1\u{FFFD}\u{FFFD}");
        assert_eq!(
            text("abc\u{202E}fdp.exe\u{2066}\u{2028}", MAX_NAME),
            "abc\u{FFFD}fdp.exe\u{FFFD}",
            "U+2028 is whitespace: trimmed at the end"
        );
        assert_eq!(text("  GOOGLE, US\r\n", MAX_NAME), "GOOGLE, US");
        assert_eq!(text("Zürich ☯", MAX_NAME), "Zürich ☯");
        assert!(is_clean("Zürich ☯", MAX_NAME));
        assert!(!is_clean("a\u{0}", MAX_NAME));
        assert!(!is_clean("a\u{202e}", MAX_NAME));
        assert!(!is_clean("abc", 2));
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        assert_eq!(
            text_bytes(b"AS\xff\xfeNAME\x00", MAX_NAME),
            "AS\u{FFFD}\u{FFFD}NAME\u{FFFD}"
        );
        assert!(is_clean(&text_bytes(b"\xc3", MAX_NAME), MAX_NAME));
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary_with_a_mark() {
        let long = "é".repeat(300); // 600 bytes
        let t = text(&long, MAX_NAME);
        assert!(t.len() <= MAX_NAME, "{}", t.len());
        assert!(t.ends_with(CUT_MARK));
        assert!(is_clean(&t, MAX_NAME));
        assert_eq!(text("abcdef", 4), "a…");
        assert_eq!(text("abcd", 4), "abcd");
        assert_eq!(text("abcdef", 2), "ab", "no room for the mark");
        let d = detail(&"x".repeat(1000));
        assert_eq!(d.chars().count(), MAX_DETAIL);
        assert_eq!(quote(&"\u{0}".repeat(1000)).chars().count(), MAX_QUOTE);
        assert!(detail(&"☯".repeat(500)).chars().count() <= MAX_DETAIL);
    }

    #[test]
    fn json_answers_are_cleaned_deeply_and_bounded() {
        let v = json!({
            "name": "evil\u{0}name",
            "bad\u{0}key": ["x\u{1}", {"deep": {"deeper": {"deepest": [1]}}}],
            "n": 5, "b": true, "z": null,
            "long": "y".repeat(1000),
        });
        assert!(!json_is_clean(&v, MAX_NAME));
        let c = json(v);
        assert!(json_is_clean(&c, MAX_NAME), "{c}");
        assert_eq!(c["name"], "evil\u{FFFD}name");
        assert_eq!(c["bad\u{FFFD}key"][0], "x\u{FFFD}");
        assert_eq!(c["bad\u{FFFD}key"][1]["deep"]["deeper"], Value::Null);
        assert_eq!((c["n"].clone(), c["b"].clone()), (json!(5), json!(true)));
        let many = json(Value::Array((0..100).map(Value::from).collect()));
        assert_eq!(many.as_array().unwrap().len(), MAX_ITEMS);
    }

    #[test]
    fn prefixes_become_what_cidr_accepts() {
        assert_eq!(prefix("8.8.8.0/24").unwrap().to_string(), "8.8.8.0/24");
        assert_eq!(prefix(" 8.8.8.1/24 ").unwrap().to_string(), "8.8.8.0/24");
        assert_eq!(
            prefix("2606:4700::1111/32").unwrap().to_string(),
            "2606:4700::/32"
        );
        for bad in [
            "",
            "NA",
            "8.8.8.0/33",
            "not/a/prefix",
            "8.8.8/24",
            "1.2.3.4/-1",
            "\u{0}",
        ] {
            assert_eq!(prefix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_must_be_real_and_plausible() {
        assert_eq!(date("2023-12-28").as_deref(), Some("2023-12-28"));
        assert_eq!(date("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(
            date("2024-05-01T10:00:00Z").as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        for bad in [
            "99999-01-01",
            "1800-01-01",
            "2101-01-01",
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-04-31",
            "2023-1-1",
            "+202-01-01",
            "2023-12-28\u{0}",
            "2023-12-28<script>",
            "NA",
            "",
        ] {
            assert_eq!(date(bad), None, "{bad:?}");
        }
    }
}
