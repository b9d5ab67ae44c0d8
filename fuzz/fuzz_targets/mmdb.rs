//! MaxMind DB files: open (the quick validation), look up a few addresses, decode the City,
//! ASN and JSON records through the core's public API, and the full verification.
//!
//! The input is written to a file (Database::open maps a path); seeds are MaxMind's small
//! test databases. Every string returned must be clean: typed fields are refused when they
//! are not, JSON records are sanitized.
#![no_main]

use std::cell::RefCell;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use ip_inventory_core::mmdb::{CityCache, CityFields, Database, DbKind};
use ip_inventory_core::sanitize::{json_is_clean, MAX_TEXT};
use ip_inventory_fuzz::{assert_clean, assert_error_text};
use libfuzzer_sys::fuzz_target;

/// Addresses the test databases answer, and a few they do not.
const ADDRESSES: [&str; 8] = [
    "81.2.69.160",
    "2.125.160.216",
    "1.128.0.1",
    "216.160.83.56",
    "2001:218::1",
    "::ffff:1.1.1.1",
    "0.0.0.0",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
];

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("ipi-fuzz-mmdb-{}.mmdb", std::process::id()))
    })
}

thread_local! {
    /// One record cache for all inputs, as a backend keeps one across database reloads (it
    /// must forget the entries of the previous database); also saves allocating 1.25 MiB per
    /// input.
    static CACHE: RefCell<CityCache> = RefCell::new(CityCache::default());
}

fn assert_city(f: &CityFields<'_>) {
    for s in f.strings().into_iter().flatten() {
        assert_clean(s, MAX_TEXT, "city field");
    }
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    // The previous Database (and its mapping) is gone: rewriting the file is safe.
    if std::fs::write(path, data).is_err() {
        return;
    }
    let db = match Database::open(path, DbKind::Any) {
        Ok(db) => db,
        Err(e) => {
            assert_error_text(&e.reason());
            return;
        }
    };
    CACHE.with(|cache| look_up_all(&db, &mut cache.borrow_mut()));
    if let Err(e) = db.verify() {
        assert_error_text(&e.reason());
    }
});

fn look_up_all(db: &Database, cache: &mut CityCache) {
    for ip in ADDRESSES {
        let ip: IpAddr = ip.parse().unwrap();
        let hit = match db.lookup(ip) {
            Ok(Some(hit)) => hit,
            Ok(None) => continue,
            Err(e) => {
                assert_error_text(&e.reason());
                continue;
            }
        };
        let _ = hit.network();
        if let Ok(f) = db.city_fields(&hit, "en") {
            assert_city(&f);
            let cached = db.city_fields_cached(&hit, "en", cache).unwrap();
            assert_eq!(cached, f);
            let again = db.city_fields_cached(&hit, "en", cache).unwrap();
            assert_eq!(again, f);
        }
        if let Ok(f) = db.city_fields(&hit, "de") {
            assert_city(&f);
        }
        if let Ok(f) = db.asn_fields(&hit) {
            if let Some(o) = f.organization {
                assert_clean(o, MAX_TEXT, "organization");
            }
        }
        if let Ok(Some(c)) = db.country_code(&hit) {
            assert_clean(c, MAX_TEXT, "country code");
        }
        let _ = db.asn_number(&hit);
        match db.record_json(&hit) {
            Ok(Some(v)) => assert!(json_is_clean(&v, MAX_TEXT), "record not clean: {v}"),
            Ok(None) => {}
            Err(e) => assert_error_text(&e.reason()),
        }
    }
}
