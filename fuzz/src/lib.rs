//! What the fuzz targets assert of whatever the core makes of hostile bytes, besides "no
//! panic, no hang, no unbounded memory" (which libFuzzer itself checks): every string is
//! clean (no control character, bounded length), every number fits the SQL cast applied to
//! it later, every wait is bounded.

use ip_inventory_core::cymru::{self, Answer};
use ip_inventory_core::sanitize::{self, is_clean, json_is_clean, MAX_NAME};
use serde_json::Value;

/// A string that reached a result: clean and at most `max_bytes`.
pub fn assert_clean(s: &str, max_bytes: usize, what: &str) {
    assert!(is_clean(s, max_bytes), "{what} not clean: {s:?}");
}

/// A failure text as recorded (`fetch::Row` passes it through `sanitize::detail`): the
/// source's own text must already be clean, and short enough to keep its meaning.
pub fn assert_error_text(s: &str) {
    assert!(
        !s.chars().any(sanitize::is_unsafe),
        "error text with a control character: {s:?}"
    );
    assert!(s.len() <= 1024, "error text of {} bytes: {s:?}", s.len());
}

/// A Team Cymru answer, and the JSON stored from it: clean strings, at most
/// `cymru::MAX_ORIGINS` 32-bit ASes, a prefix in the form `::cidr` accepts, a date that is a
/// date.
pub fn assert_cymru_answer(a: &Answer) {
    assert!(
        a.asns.len() <= cymru::MAX_ORIGINS,
        "{} origins",
        a.asns.len()
    );
    if let Some(p) = &a.prefix {
        let canonical = sanitize::prefix(p).map(|n| n.to_string());
        assert_eq!(
            canonical.as_deref(),
            Some(p.as_str()),
            "prefix not canonical"
        );
    }
    if let Some(d) = &a.allocated {
        assert_eq!(sanitize::date(d).as_deref(), Some(d.as_str()));
    }
    if let Some(c) = &a.country {
        assert!(
            c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()),
            "{c:?}"
        );
    }
    for s in [&a.registry, &a.as_name].into_iter().flatten() {
        assert_clean(s, MAX_NAME, "cymru field");
        assert!(!s.is_empty() && s != "NA");
    }
    let json = a.to_json("fuzz");
    assert_json_answer(&json);
    match &json["asn"] {
        Value::Null => assert!(a.asns.is_empty()),
        n => assert!(n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX))),
    }
}

/// A network answer as stored (jsonb): clean strings and keys, at most MAX_NAME bytes, and
/// unchanged by the row's last sanitizing pass.
pub fn assert_json_answer(v: &Value) {
    assert!(json_is_clean(v, MAX_NAME), "answer not clean: {v}");
    assert_eq!(
        &sanitize::json(v.clone()),
        v,
        "answer changed by sanitize::json"
    );
}
