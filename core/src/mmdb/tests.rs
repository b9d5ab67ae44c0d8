//! Tests against MaxMind's official test databases (pg_tests/fixtures/maxmind). Expected
//! answers come from the JSON the databases were built from, never from our own reader.

use super::*;
use serde_json::Value;
use std::net::IpAddr;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pg_tests/fixtures/maxmind")
        .join(rel)
}

fn open(rel: &str, kind: DbKind) -> Database {
    Database::open(&fixture(rel), kind).unwrap_or_else(|e| panic!("{e}"))
}

/// The source JSON: a list of `{"network": record}`. IPv4 networks written in
/// IPv4-compatible form (`::81.2.69.160/123`) are turned into IPv4 networks, which is how the
/// database stores them (the IPv4 subtree is `::/96`).
fn source(rel: &str) -> Vec<(IpNetwork, Value)> {
    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    let list: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&text).unwrap();
    list.into_iter()
        .flat_map(|m| m.into_iter())
        .map(|(net, rec)| {
            let net = match net.parse::<IpNetwork>().unwrap() {
                IpNetwork::V6(v6) if v6.prefix() >= 96 && u128::from(v6.network()) >> 32 == 0 => {
                    let v4 = std::net::Ipv4Addr::from(u128::from(v6.network()) as u32);
                    IpNetwork::new(IpAddr::V4(v4), v6.prefix() - 96).unwrap()
                }
                other => other,
            };
            (net, rec)
        })
        .collect()
}

/// The database may merge neighbouring networks with equal records, so a matched network
/// can be wider than the listed one; then every listed network inside it (that is the most
/// specific for its own addresses) must carry the same record.
fn assert_matched_network(ip: IpAddr, got: IpNetwork, source: &[(IpNetwork, Value)]) {
    assert!(
        got.contains(ip),
        "{ip}: matched network {got} holds the address"
    );
    let (want_net, want) = expected_for(ip, source);
    if want_net.contains(got.network()) && got.prefix() >= want_net.prefix() {
        return;
    }
    let inside = source
        .iter()
        .filter(|(n, _)| got.contains(n.network()) && n.prefix() >= got.prefix());
    for (net, _) in inside {
        let (_, owner) = expected_for(net.network(), source);
        assert_eq!(owner, want, "{ip}: {got} spans {net} whose record differs");
    }
}

/// The record a lookup of `ip` must return: that of the most specific listed network.
fn expected_for(ip: IpAddr, source: &[(IpNetwork, Value)]) -> &(IpNetwork, Value) {
    source
        .iter()
        .filter(|(net, _)| net.contains(ip))
        .max_by_key(|(net, _)| net.prefix())
        .expect("the probed address comes from a listed network")
}

fn last_addr(net: &IpNetwork) -> IpAddr {
    net.broadcast()
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

fn check_city_database(db_file: &str, json_file: &str) -> usize {
    let db = open(db_file, DbKind::City);
    let source = source(json_file);
    let mut cache = CityCache::default();
    let mut checked = 0;
    for (net, _) in &source {
        for ip in [net.network(), last_addr(net)] {
            let (_, want) = expected_for(ip, &source);
            let hit = db.lookup(ip).unwrap().expect("address fits the database");
            assert!(hit.has_data(), "{ip} has a record in {json_file}");
            assert_matched_network(ip, hit.network().unwrap(), &source);
            let f = db.city_fields(&hit, "en").unwrap();
            let first_sub = want.get("subdivisions").and_then(|s| s.get(0));
            assert_eq!(
                f.country_code,
                str_at(want, &["country", "iso_code"]),
                "{ip} country"
            );
            assert_eq!(
                f.country_name,
                str_at(want, &["country", "names", "en"]),
                "{ip}"
            );
            assert_eq!(
                f.continent_code,
                str_at(want, &["continent", "code"]),
                "{ip}"
            );
            assert_eq!(
                f.registered_country_code,
                str_at(want, &["registered_country", "iso_code"]),
                "{ip}"
            );
            assert_eq!(
                f.subdivision_code,
                first_sub.and_then(|s| str_at(s, &["iso_code"])),
                "{ip}"
            );
            assert_eq!(
                f.subdivision_name,
                first_sub.and_then(|s| str_at(s, &["names", "en"])),
                "{ip}"
            );
            assert_eq!(f.city, str_at(want, &["city", "names", "en"]), "{ip} city");
            assert_eq!(f.postal_code, str_at(want, &["postal", "code"]), "{ip}");
            let loc = want.get("location");
            let num = |k: &str| loc.and_then(|l| l.get(k)).and_then(Value::as_f64);
            assert_eq!(f.latitude, num("latitude"), "{ip}");
            assert_eq!(f.longitude, num("longitude"), "{ip}");
            assert_eq!(
                f.accuracy_radius.map(f64::from),
                num("accuracy_radius"),
                "{ip}"
            );
            assert_eq!(
                f.time_zone,
                loc.and_then(|l| str_at(l, &["time_zone"])),
                "{ip}"
            );
            let flag = |k: &str| {
                want.get("traits")
                    .and_then(|t| t.get(k))
                    .and_then(Value::as_bool)
            };
            assert_eq!(f.is_anonymous_proxy, flag("is_anonymous_proxy"), "{ip}");
            assert_eq!(
                f.is_satellite_provider,
                flag("is_satellite_provider"),
                "{ip}"
            );
            assert_eq!(f.is_anycast, flag("is_anycast"), "{ip}");
            // The hot path agrees with the full decode.
            assert_eq!(db.country_code(&hit).unwrap(), f.country_code, "{ip}");
            // So does the cache, whether it decodes (first time) or remembers (second).
            for _ in 0..2 {
                let cached = db.city_fields_cached(&hit, "en", &mut cache).unwrap();
                assert_eq!(cached, f, "{ip} cached");
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn geolite2_city_answers_match_source_data() {
    let n = check_city_database(
        "test-data/GeoLite2-City-Test.mmdb",
        "source-data/GeoLite2-City-Test.json",
    );
    assert!(n >= 480, "checked {n} addresses");
}

#[test]
fn geoip2_city_answers_match_source_data() {
    let n = check_city_database(
        "test-data/GeoIP2-City-Test.mmdb",
        "source-data/GeoIP2-City-Test.json",
    );
    assert!(n >= 500, "checked {n} addresses");
}

#[test]
fn the_city_cache_forgets_on_another_database_or_language() {
    let geoip2 = open("test-data/GeoIP2-City-Test.mmdb", DbKind::City);
    let geolite2 = open("test-data/GeoLite2-City-Test.mmdb", DbKind::City);
    let ip: IpAddr = "81.2.69.160".parse().unwrap();
    let mut cache = CityCache::default();
    let hit = geoip2.lookup(ip).unwrap().unwrap();
    let offset = hit.record_offset().unwrap();
    let first = geoip2.city_fields_cached(&hit, "en", &mut cache).unwrap();
    let again = geoip2.city_fields_cached(&hit, "en", &mut cache).unwrap();
    assert_eq!(first, again);
    assert_eq!(cache.counts(), (1, 1), "the second lookup is a hit");
    assert_eq!(cache.take_new_counts(), (1, 1));
    assert_eq!(cache.take_new_counts(), (0, 0), "taken once");
    geoip2.city_fields_cached(&hit, "en", &mut cache).unwrap();
    assert_eq!(cache.take_new_counts(), (1, 0));

    // Keyed by offset, an entry would answer for whatever record another file keeps at
    // that offset: asked through another database, the cache starts over.
    assert!(cache.get(&geolite2, "en", offset).is_none());
    cache.put(&geoip2, "en", offset, first);
    assert!(cache.get(&geoip2, "en", offset).is_some());

    // Another language: names are decoded again, in that language.
    let german = geoip2.city_fields_cached(&hit, "de", &mut cache).unwrap();
    assert_eq!(german, geoip2.city_fields(&hit, "de").unwrap());
    assert_ne!(german.country_name, first.country_name);
    let german_again = geoip2.city_fields_cached(&hit, "de", &mut cache).unwrap();
    assert_eq!(german_again, german);
}

#[test]
fn asn_answers_match_source_data() {
    let db = open("test-data/GeoLite2-ASN-Test.mmdb", DbKind::Asn);
    let source = source("source-data/GeoLite2-ASN-Test.json");
    let mut checked = 0;
    for (net, _) in &source {
        for ip in [net.network(), last_addr(net)] {
            let (_, want) = expected_for(ip, &source);
            let hit = db.lookup(ip).unwrap().unwrap();
            assert_matched_network(ip, hit.network().unwrap(), &source);
            let f = db.asn_fields(&hit).unwrap();
            let want_number = want.get("autonomous_system_number").and_then(Value::as_u64);
            assert_eq!(f.number.map(u64::from), want_number, "{ip}");
            assert_eq!(
                f.organization,
                str_at(want, &["autonomous_system_organization"]),
                "{ip}"
            );
            assert_eq!(
                db.asn_number(&hit).unwrap().number.map(u64::from),
                want_number,
                "{ip}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 1400, "checked {checked}");
}

#[test]
fn names_follow_the_language_and_fall_back_to_english() {
    let db = open("test-data/GeoIP2-City-Test.mmdb", DbKind::City);
    let source = source("source-data/GeoIP2-City-Test.json");
    let ip: IpAddr = "81.2.69.160".parse().unwrap();
    let (_, want) = expected_for(ip, &source);
    let hit = db.lookup(ip).unwrap().unwrap();
    for lang in ["de", "ja", "zh-CN", "pt-BR"] {
        let f = db.city_fields(&hit, lang).unwrap();
        let want_country = str_at(want, &["country", "names", lang]);
        assert!(want_country.is_some());
        assert_eq!(f.country_name, want_country, "{lang}");
        // Cities often have an English name only: then English is returned.
        let want_city =
            str_at(want, &["city", "names", lang]).or(str_at(want, &["city", "names", "en"]));
        assert_eq!(f.city, want_city, "{lang}");
    }
    let unknown = db.city_fields(&hit, "xx").unwrap();
    assert_eq!(
        unknown.country_name,
        str_at(want, &["country", "names", "en"])
    );
}

#[test]
fn ipv4_mapped_ipv6_is_looked_up_as_ipv4() {
    let db = open("test-data/GeoIP2-City-Test.mmdb", DbKind::City);
    let v4 = db.lookup("81.2.69.160".parse().unwrap()).unwrap().unwrap();
    let mapped = db
        .lookup("::ffff:81.2.69.160".parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        db.city_fields(&v4, "en").unwrap(),
        db.city_fields(&mapped, "en").unwrap()
    );
    assert_eq!(mapped.network(), v4.network());
    assert_eq!(
        db.city_fields(&mapped, "en").unwrap().country_code,
        Some("GB")
    );
}

#[test]
fn addresses_outside_the_database_have_no_data() {
    let db = open("test-data/GeoLite2-City-Test.mmdb", DbKind::City);
    let hit = db.lookup("10.0.0.1".parse().unwrap()).unwrap().unwrap();
    assert!(!hit.has_data());
    assert_eq!(hit.record_offset(), None);
    assert_eq!(db.city_fields(&hit, "en").unwrap(), CityFields::default());
    assert_eq!(db.country_code(&hit).unwrap(), None);
    assert_eq!(db.record_json(&hit).unwrap(), None);
    // IPv6 in an IPv4-only database cannot be there at all.
    let v4_only = open("test-data/MaxMind-DB-test-ipv4-24.mmdb", DbKind::Any);
    assert_eq!(v4_only.metadata().ip_version, 4);
    assert!(v4_only
        .lookup("2001:db8::1".parse().unwrap())
        .unwrap()
        .is_none());
    assert!(v4_only
        .lookup("1.1.1.1".parse().unwrap())
        .unwrap()
        .unwrap()
        .has_data());
}

#[test]
fn slots_reject_databases_of_the_wrong_type() {
    let err =
        Database::open(&fixture("test-data/GeoLite2-ASN-Test.mmdb"), DbKind::City).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::WrongType {
            found: "GeoLite2-ASN".into(),
            expected: DbKind::City.expected()
        }
    );
    assert!(err.to_string().contains("GeoLite2-ASN-Test.mmdb"), "{err}");
    assert!(err.to_string().contains("expected a City"), "{err}");
    let err =
        Database::open(&fixture("test-data/GeoLite2-City-Test.mmdb"), DbKind::Asn).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::WrongType { .. }));
    let err = Database::open(
        &fixture("test-data/GeoIP2-Anonymous-IP-Test.mmdb"),
        DbKind::City,
    )
    .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::WrongType { .. }));
    // What the slots do accept.
    open("test-data/GeoLite2-Country-Test.mmdb", DbKind::City);
    open("test-data/GeoIP2-Enterprise-Test.mmdb", DbKind::City);
    open("test-data/GeoIP2-ISP-Test.mmdb", DbKind::Asn);
    for (file, kinds) in [
        ("GeoIP2-Anonymous-IP-Test.mmdb", &[DbKind::Anonymous][..]),
        ("GeoIP-Anonymous-Plus-Test.mmdb", &[DbKind::Anonymous]),
        ("GeoIP2-ISP-Test.mmdb", &[DbKind::Isp]),
        (
            "GeoIP2-Connection-Type-Test.mmdb",
            &[DbKind::ConnectionType],
        ),
        (
            "GeoIP2-Enterprise-Test.mmdb",
            &[DbKind::Anonymous, DbKind::Isp, DbKind::ConnectionType],
        ),
        (
            "GeoIP2-Precision-Enterprise-Test.mmdb",
            &[DbKind::Anonymous, DbKind::Isp, DbKind::ConnectionType],
        ),
    ] {
        for kind in kinds {
            open(&format!("test-data/{file}"), *kind);
        }
    }
    for (file, kind) in [
        ("GeoLite2-City-Test.mmdb", DbKind::Anonymous),
        ("GeoLite2-ASN-Test.mmdb", DbKind::Isp),
        ("GeoIP2-ISP-Test.mmdb", DbKind::ConnectionType),
        ("GeoIP2-Connection-Type-Test.mmdb", DbKind::Anonymous),
    ] {
        let err = Database::open(&fixture(&format!("test-data/{file}")), kind).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::WrongType { .. }), "{file}");
    }
}

/// Every listed network's first and last address, with the record it must carry.
fn probes(source: &[(IpNetwork, Value)]) -> Vec<(IpAddr, &Value)> {
    source
        .iter()
        .flat_map(|(net, _)| [net.network(), last_addr(net)])
        .map(|ip| (ip, &expected_for(ip, source).1))
        .collect()
}

#[test]
fn anonymous_isp_and_connection_type_answers_match_source_data() {
    let flag = |v: &Value, k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let db = open("test-data/GeoIP2-Anonymous-IP-Test.mmdb", DbKind::Anonymous);
    let src = source("source-data/GeoIP2-Anonymous-IP-Test.json");
    for (ip, want) in probes(&src) {
        let hit = db.lookup(ip).unwrap().unwrap();
        let f = db.anonymous_flags(&hit).unwrap().expect("listed");
        assert_eq!(f.is_anonymous, flag(want, "is_anonymous"), "{ip}");
        assert_eq!(f.is_anonymous_vpn, flag(want, "is_anonymous_vpn"), "{ip}");
        assert_eq!(
            f.is_hosting_provider,
            flag(want, "is_hosting_provider"),
            "{ip}"
        );
        assert_eq!(f.is_public_proxy, flag(want, "is_public_proxy"), "{ip}");
        assert_eq!(
            f.is_residential_proxy,
            flag(want, "is_residential_proxy"),
            "{ip}"
        );
        assert_eq!(f.is_tor_exit_node, flag(want, "is_tor_exit_node"), "{ip}");
    }
    let hit = db.lookup("8.8.8.8".parse().unwrap()).unwrap().unwrap();
    // The test database answers unlisted ranges with an empty record: no anonymizer data.
    assert_eq!(db.record_json(&hit).unwrap(), Some(serde_json::json!({})));
    assert_eq!(db.anonymous_flags(&hit).unwrap(), None);

    let db = open("test-data/GeoIP2-ISP-Test.mmdb", DbKind::Isp);
    let src = source("source-data/GeoIP2-ISP-Test.json");
    let probes_isp = probes(&src);
    assert!(probes_isp.len() > 2000);
    for (ip, want) in probes_isp {
        let hit = db.lookup(ip).unwrap().unwrap();
        let f = db.isp_fields(&hit).unwrap().expect("listed");
        assert_eq!(f.isp, str_at(want, &["isp"]), "{ip}");
        assert_eq!(f.organization, str_at(want, &["organization"]), "{ip}");
        assert_eq!(
            f.autonomous_system_number.map(u64::from),
            want.get("autonomous_system_number").and_then(Value::as_u64),
            "{ip}"
        );
        assert_eq!(
            f.autonomous_system_organization,
            str_at(want, &["autonomous_system_organization"]),
            "{ip}"
        );
        assert_eq!(
            f.mobile_country_code,
            str_at(want, &["mobile_country_code"]),
            "{ip}"
        );
        assert_eq!(
            f.mobile_network_code,
            str_at(want, &["mobile_network_code"]),
            "{ip}"
        );
    }

    let db = open(
        "test-data/GeoIP2-Connection-Type-Test.mmdb",
        DbKind::ConnectionType,
    );
    let src = source("source-data/GeoIP2-Connection-Type-Test.json");
    for (ip, want) in probes(&src) {
        let hit = db.lookup(ip).unwrap().unwrap();
        assert_eq!(
            db.connection_type(&hit).unwrap(),
            str_at(want, &["connection_type"]),
            "{ip}"
        );
    }

    // Enterprise: the same answers from the record's traits.
    let db = open("test-data/GeoIP2-Enterprise-Test.mmdb", DbKind::Isp);
    let src = source("source-data/GeoIP2-Enterprise-Test.json");
    for (ip, want) in probes(&src) {
        let hit = db.lookup(ip).unwrap().unwrap();
        let f = db.isp_fields(&hit).unwrap();
        assert_eq!(
            f.and_then(|f| f.isp),
            str_at(want, &["traits", "isp"]),
            "{ip}"
        );
        assert_eq!(
            f.and_then(|f| f.autonomous_system_organization),
            str_at(want, &["traits", "autonomous_system_organization"]),
            "{ip}"
        );
        assert_eq!(
            db.connection_type(&hit).unwrap(),
            str_at(want, &["traits", "connection_type"]),
            "{ip}"
        );
        // No anonymizer flags in the Enterprise test data: none answered.
        assert!(want
            .get("traits")
            .and_then(|t| t.get("is_anonymous"))
            .is_none());
        assert_eq!(db.anonymous_flags(&hit).unwrap(), None, "{ip}");
    }
}

#[test]
fn unusable_files_give_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let kind_of = |p: &Path| Database::open(p, DbKind::Any).unwrap_err().kind;

    assert_eq!(
        kind_of(&dir.path().join("missing.mmdb")),
        ErrorKind::NotFound
    );
    assert_eq!(kind_of(dir.path()), ErrorKind::NotAFile);
    let empty = dir.path().join("empty.mmdb");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(kind_of(&empty), ErrorKind::Empty);
    let text = dir.path().join("text.mmdb");
    std::fs::write(
        &text,
        "network,geoname_id\n1.0.0.0/24,2077456\n".repeat(100),
    )
    .unwrap();
    assert_eq!(kind_of(&text), ErrorKind::NotMmdb);
    let err = Database::open(&text, DbKind::Any).unwrap_err();
    assert!(err
        .to_string()
        .starts_with(&format!("\"{}\": not a MaxMind DB file", text.display())));
}

/// Every corrupt or hostile file is refused by open or by full verification, and reading
/// whatever opens never panics.
#[test]
fn corrupt_and_hostile_files_are_refused() {
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in [
        "bad-data/libmaxminddb",
        "bad-data/maxminddb-golang",
        "bad-data/maxminddb-python",
    ] {
        files.extend(
            std::fs::read_dir(fixture(sub))
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
    }
    for entry in std::fs::read_dir(fixture("test-data")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if ["Broken", "Invalid", "broken", "dos", "limit", "budget"]
            .iter()
            .any(|k| name.contains(k))
        {
            files.push(p);
        }
    }
    assert!(files.len() >= 35, "{} files", files.len());
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    for path in &files {
        let outcome = Database::open(path, DbKind::Any).and_then(|db| {
            walk_everything(&db);
            db.verify()
        });
        let err = outcome.expect_err(&format!("{} must be refused", path.display()));
        assert_eq!(err.path, *path);
        // The store verifies what it copies with this verifier, or, for files without a
        // description (MaxMind's verifier insists on one), with a walk of every node and
        // record: either way none of these files is ever served.
        let stored = store.verified(path, store::Wait::Yes, &|| false);
        let name = path.file_name().unwrap().to_str().unwrap();
        if SOUND_WITHOUT_DESCRIPTION.contains(&name) {
            let copy = match stored {
                Ok(store::Found::Verified(v)) => v.copy,
                other => panic!("{name}: {other:?}"),
            };
            walk_everything(&Database::open(&copy, DbKind::Any).unwrap());
            continue;
        }
        let err = stored.expect_err(&format!("{} must be refused by the store", path.display()));
        assert_eq!(err.path, *path);
    }
}

/// Files MaxMind's verifier refuses only for their empty description (values at the decoder
/// limits, metadata ending in an empty map or array, a tree with unreachable nodes that
/// point back to the root): every record decodes, so the store serves them.
const SOUND_WITHOUT_DESCRIPTION: [&str; 6] = [
    "libmaxminddb-empty-array-last-in-metadata.mmdb",
    "libmaxminddb-empty-map-last-in-metadata.mmdb",
    "libmaxminddb-corrupt-search-tree.mmdb",
    "MaxMind-DB-test-decoder-value-limit-pointer-heavy.mmdb",
    "MaxMind-DB-test-decoder-value-limit.mmdb",
    "MaxMind-DB-test-decoder-payload-limit.mmdb",
];

/// Reads every network and record; errors are fine, panics and hangs are not.
fn walk_everything(db: &Database) {
    if let Ok(networks) = db.reader.networks(WithinOptions::default()) {
        for item in networks.take(100_000) {
            match item {
                Ok(result) => {
                    let _ = db.record_json(&Hit::from_result(
                        db,
                        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                        result,
                    ));
                }
                Err(_) => break,
            }
        }
    }
    for ip in ["1.1.1.1", "::1:ffff:ffff", "2001:db8::", "255.255.255.255"] {
        if let Ok(Some(hit)) = db.lookup(ip.parse().unwrap()) {
            let _ = db.city_fields(&hit, "en");
            let _ = db.asn_fields(&hit);
            let _ = db.record_json(&hit);
            let _ = hit.network();
        }
    }
}

#[test]
fn truncated_files_never_panic() {
    let bytes = std::fs::read(fixture("test-data/GeoIP2-City-Test.mmdb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.mmdb");
    // Deterministic spread of cut points, including ones inside the metadata at the end.
    let mut cuts: Vec<usize> = (1..64).map(|i| bytes.len() * i / 64).collect();
    cuts.extend((1..200).map(|i| bytes.len() - i));
    let mut refused = 0;
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match Database::open(&path, DbKind::City) {
            Err(_) => refused += 1,
            Ok(db) => {
                walk_everything(&db);
                if db.verify().is_err() {
                    refused += 1;
                }
            }
        }
    }
    // Cutting off the metadata always makes the file unusable; cutting inside it too.
    assert!(refused >= 250, "{refused} refused");
}

#[test]
fn random_bytes_are_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.mmdb");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes: Vec<u8> = (0..100_000).map(|_| xorshift(&mut state) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(
        Database::open(&path, DbKind::Any).unwrap_err().kind,
        ErrorKind::NotMmdb
    );
}

#[test]
fn error_kinds_count_as_their_counter() {
    assert_eq!(ErrorKind::NotFound.counted_as(), DbErrorKind::Unreadable);
    assert_eq!(ErrorKind::NotAFile.counted_as(), DbErrorKind::Unreadable);
    assert_eq!(ErrorKind::NotMmdb.counted_as(), DbErrorKind::Invalid);
    assert_eq!(
        ErrorKind::Corrupt("x".into()).counted_as(),
        DbErrorKind::Corrupt
    );
}

#[test]
fn any_record_converts_to_json() {
    let db = open("test-data/MaxMind-DB-test-decoder.mmdb", DbKind::Any);
    let hit = db.lookup("1.1.1.1".parse().unwrap()).unwrap().unwrap();
    let rec = db.record_json(&hit).unwrap().unwrap();
    assert_eq!(rec["array"], serde_json::json!([1, 2, 3]));
    assert_eq!(rec["boolean"], Value::Bool(true));
    assert_eq!(rec["bytes"], "0000002a");
    assert_eq!(rec["double"], 42.123456);
    assert_eq!(rec["float"], 1.1);
    assert_eq!(rec["int32"], -268_435_456);
    assert_eq!(rec["map"]["mapX"]["arrayX"], serde_json::json!([7, 8, 9]));
    assert_eq!(rec["map"]["mapX"]["utf8_stringX"], "hello");
    // 2^120 does not fit a JSON number exactly: kept as its decimal string.
    assert_eq!(rec["uint128"], (1u128 << 120).to_string());
    assert_eq!(rec["uint16"], 100);
    assert_eq!(rec["uint32"], 268_435_456);
    assert_eq!(rec["uint64"], 1_152_921_504_606_846_976u64);
    assert_eq!(rec["utf8_string"], "unicode! ☯ - ♫");
}

#[test]
fn full_verification_accepts_the_good_test_databases() {
    for f in [
        "GeoLite2-City-Test",
        "GeoIP2-City-Test",
        "GeoLite2-ASN-Test",
        "GeoIP2-ISP-Test",
    ] {
        open(&format!("test-data/{f}.mmdb"), DbKind::Any)
            .verify()
            .unwrap();
    }
}

/// Hostile nesting (the format allows 512 levels) must end in an error within a small stack,
/// for every decoder we use, even when such a record sits where the open-time probe does not
/// look. A Postgres backend that overflows its stack takes the whole cluster into recovery.
/// Measured: a release build finishes within 128 KiB, a debug build within 1 MiB; backends
/// run on the 8 MiB main-thread stack.
#[test]
fn deeply_nested_records_fail_within_a_small_stack() {
    let files = [
        "libmaxminddb-deep-nesting.mmdb",
        "libmaxminddb-deep-array-nesting.mmdb",
    ];
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let mut errors = 0;
            for f in files {
                let bytes = std::fs::read(fixture(&format!("bad-data/libmaxminddb/{f}"))).unwrap();
                // Bypass Database::open (which refuses these files) to reach the records.
                let reader = Reader::from_source(bytes).unwrap();
                for item in reader.networks(WithinOptions::default()).unwrap() {
                    let result = item.unwrap();
                    errors += usize::from(result.decode::<json::JsonRecord>().is_err());
                    errors += usize::from(result.decode::<record::CityRecord>().is_err());
                    errors += usize::from(result.decode::<record::AsnRecord>().is_err());
                }
            }
            errors
        })
        .unwrap();
    let errors = handle.join().expect("no stack overflow");
    assert!(
        errors >= 2,
        "the JSON conversion refuses both files ({errors} errors)"
    );
}

/// `path` with every `from` replaced by `to` (same length), copied into `dir`.
fn patched(dir: &Path, rel: &str, edits: &[(&[u8], &[u8])]) -> PathBuf {
    let mut bytes = std::fs::read(fixture(rel)).unwrap();
    for (from, to) in edits {
        assert_eq!(from.len(), to.len());
        let mut found = 0;
        let mut i = 0;
        while let Some(at) = bytes[i..].windows(from.len()).position(|w| w == *from) {
            bytes[i + at..i + at + to.len()].copy_from_slice(to);
            i += at + to.len();
            found += 1;
        }
        assert!(found > 0, "{from:?} in {rel}");
    }
    let path = dir.join(Path::new(rel).file_name().unwrap());
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A file's strings are hostile input too: a NUL in a record made `mmdb_lookup` fail (jsonb
/// cannot hold it) and reached `text` results. Every string is answered sanitized: the JSON
/// records, and the typed City and ASN fields (each control character becomes U+FFFD), the
/// same on every lookup and through the record cache. Refusing them instead failed real
/// files: GeoLite2 ASN of 2018 holds AS names with C1 controls (mis-encoded dashes).
#[test]
fn control_characters_in_records_are_sanitized() {
    let dir = tempfile::tempdir().unwrap();
    let city = patched(
        dir.path(),
        "test-data/GeoIP2-City-Test.mmdb",
        // 0x42: a string of two bytes.
        &[(b"London", b"Lo\0don"), (b"\x42GB", b"\x42G\x1b")],
    );
    let db = Database::open(&city, DbKind::City).unwrap();
    let hit = db.lookup("81.2.69.160".parse().unwrap()).unwrap().unwrap();
    let rec = db.record_json(&hit).unwrap().unwrap();
    assert_eq!(rec["city"]["names"]["en"], "Lo\u{FFFD}don");
    assert_eq!(rec["country"]["iso_code"], "G\u{FFFD}");
    assert!(crate::sanitize::json_is_clean(
        &rec,
        crate::sanitize::MAX_TEXT
    ));
    let fields = db.city_fields(&hit, "en").unwrap();
    assert_eq!(fields.city, Some("Lo\u{FFFD}don"));
    assert_eq!(fields.country_code, Some("G\u{FFFD}"));
    let kept = db.sanitized.lock().unwrap().len();
    assert!(kept > 0);
    let mut cache = CityCache::default();
    for _ in 0..3 {
        let cached = db.city_fields_cached(&hit, "en", &mut cache).unwrap();
        assert_eq!(cached.city, Some("Lo\u{FFFD}don"));
    }
    assert_eq!(db.country_code(&hit).unwrap(), Some("G\u{FFFD}"));
    // One sanitized copy per string of the file, however often it is read.
    assert_eq!(db.sanitized.lock().unwrap().len(), kept);
    // Records without the patched strings answer as before, borrowed from the file.
    let other = db.lookup("2001:218::1".parse().unwrap()).unwrap().unwrap();
    assert!(db.city_fields(&other, "en").is_ok());

    let asn = patched(
        dir.path(),
        "test-data/GeoLite2-ASN-Test.mmdb",
        &[(b"Telstra Pty Ltd", b"Telstra\0Pty\x7fLtd")],
    );
    let db = Database::open(&asn, DbKind::Asn).unwrap();
    let hit = db.lookup("1.128.0.1".parse().unwrap()).unwrap().unwrap();
    assert_eq!(
        db.asn_fields(&hit).unwrap().organization,
        Some("Telstra\u{FFFD}Pty\u{FFFD}Ltd")
    );
    assert_eq!(db.asn_number(&hit).unwrap().number, Some(1221));
    assert_eq!(
        db.record_json(&hit).unwrap().unwrap()["autonomous_system_organization"],
        "Telstra\u{FFFD}Pty\u{FFFD}Ltd"
    );
}

// ---- Other vendors' databases ------------------------------------------------------------
// pg_tests/fixtures/vendors: small files in DB-IP Lite's and IPinfo Lite's layouts, written by
// make_vendor_dbs.py from the JSON beside them (the expected answers here).

fn vendor(rel: &str) -> String {
    format!("../vendors/{rel}")
}

#[test]
fn vendor_database_types_go_to_their_slots() {
    // The database_type strings the vendors' files carry.
    let city = [
        "DBIP-City-Lite",
        "DBIP-Country-Lite",
        "DBIP-Location (compat=City)",
        "DBIP-Country",
        "DBIP-ISP (compat=Enterprise)",
        "ipinfo lite.mmdb",
    ];
    let asn = [
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        "DBIP-ISP (compat=Enterprise)",
        "ipinfo lite.mmdb",
    ];
    for t in city {
        assert!(DbKind::City.accepts(t), "{t}");
    }
    for t in asn {
        assert!(DbKind::Asn.accepts(t), "{t}");
    }
    assert!(!DbKind::Asn.accepts("DBIP-City-Lite"));
    assert!(!DbKind::City.accepts("DBIP-ASN-Lite (compat=GeoLite2-ASN)"));
    // Other IPinfo files are flat with other field names: no typed slot takes them.
    for t in [
        "ipinfo country_asn.mmdb",
        "ipinfo country.mmdb",
        "ipinfo asn.mmdb",
    ] {
        assert_eq!(Layout::of(t), Layout::IpinfoOther, "{t}");
        for kind in [
            DbKind::City,
            DbKind::Asn,
            DbKind::Anonymous,
            DbKind::Isp,
            DbKind::ConnectionType,
        ] {
            assert!(!kind.accepts(t), "{kind:?} {t}");
        }
        assert!(DbKind::Any.accepts(t));
    }
    for kind in [DbKind::Anonymous, DbKind::Isp, DbKind::ConnectionType] {
        assert!(!kind.accepts("ipinfo lite.mmdb"), "{kind:?}");
    }
    assert_eq!(Layout::of("ipinfo lite.mmdb"), Layout::IpinfoLite);
    assert_eq!(Layout::of("DBIP-City-Lite"), Layout::MaxMind);
    assert_eq!(Layout::of("GeoLite2-City"), Layout::MaxMind);
}

#[test]
fn ipinfo_as_numbers_parse_strictly() {
    use super::record::parse_as_number;
    assert_eq!(parse_as_number("AS174"), Some(174));
    assert_eq!(parse_as_number("AS0"), Some(0));
    assert_eq!(parse_as_number("AS4294967295"), Some(u32::MAX));
    for bad in [
        "AS4294967296",
        "AS99999999999",
        "AS",
        "174",
        "as174",
        "AS 174",
        "AS+174",
        "AS-1",
        "AS174 ",
        "ASxyz",
        "AS１７４",
        "",
    ] {
        assert_eq!(parse_as_number(bad), None, "{bad:?}");
    }
}

#[test]
fn vendor_test_databases_pass_full_verification() {
    for (file, kind) in [
        ("dbip-city-lite-test.mmdb", DbKind::City),
        ("dbip-country-lite-test.mmdb", DbKind::City),
        ("dbip-asn-lite-test.mmdb", DbKind::Asn),
        ("ipinfo-lite-test.mmdb", DbKind::City),
        ("ipinfo-lite-test.mmdb", DbKind::Asn),
    ] {
        let db = open(&vendor(file), kind);
        db.verify().unwrap_or_else(|e| panic!("{e}"));
        db.verify_records().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn dbip_lite_city_and_country_answer_their_source() {
    for stem in ["dbip-city-lite-test", "dbip-country-lite-test"] {
        let db = open(&vendor(&format!("{stem}.mmdb")), DbKind::City);
        assert_eq!(db.layout(), Layout::MaxMind);
        let source = source(&vendor(&format!("{stem}.json")));
        for (net, want) in &source {
            for ip in [net.network(), last_addr(net)] {
                let hit = db.lookup(ip).unwrap().unwrap();
                assert_eq!(hit.network().unwrap(), *net, "{ip}");
                for lang in ["en", "de"] {
                    let f = db.city_fields(&hit, lang).unwrap();
                    let name = |path: &[&str]| {
                        let mut de = path.to_vec();
                        *de.last_mut().unwrap() = lang;
                        str_at(want, &de).or(str_at(want, path))
                    };
                    assert_eq!(
                        f.country_code,
                        str_at(want, &["country", "iso_code"]),
                        "{ip}"
                    );
                    assert_eq!(
                        f.country_name,
                        name(&["country", "names", "en"]),
                        "{ip} {lang}"
                    );
                    assert_eq!(
                        f.continent_code,
                        str_at(want, &["continent", "code"]),
                        "{ip}"
                    );
                    assert_eq!(f.city, name(&["city", "names", "en"]), "{ip} {lang}");
                    let sub = want.get("subdivisions").and_then(|s| s.get(0));
                    let sub_name = sub
                        .and_then(|s| str_at(s, &["names", lang]).or(str_at(s, &["names", "en"])));
                    assert_eq!(f.subdivision_name, sub_name, "{ip} {lang}");
                    assert_eq!(f.subdivision_code, None, "{ip}");
                    assert_eq!(f.registered_country_code, None, "{ip}");
                    assert_eq!(f.postal_code, None, "{ip}");
                    assert_eq!(f.time_zone, None, "{ip}");
                    assert_eq!(f.accuracy_radius, None, "{ip}");
                    let loc = |k: &str| {
                        want.get("location")
                            .and_then(|l| l.get(k))
                            .and_then(Value::as_f64)
                    };
                    assert_eq!(f.latitude, loc("latitude"), "{ip}");
                    assert_eq!(f.longitude, loc("longitude"), "{ip}");
                }
                assert_eq!(
                    db.country_code(&hit).unwrap(),
                    str_at(want, &["country", "iso_code"])
                );
            }
        }
    }
}

#[test]
fn dbip_lite_asn_answers_its_source() {
    let db = open(&vendor("dbip-asn-lite-test.mmdb"), DbKind::Asn);
    for (net, want) in &source(&vendor("dbip-asn-lite-test.json")) {
        for ip in [net.network(), last_addr(net)] {
            let hit = db.lookup(ip).unwrap().unwrap();
            let number = want["autonomous_system_number"].as_u64().map(|n| n as u32);
            let f = db.asn_fields(&hit).unwrap();
            assert_eq!(f.number, number, "{ip}");
            assert_eq!(
                f.organization,
                str_at(want, &["autonomous_system_organization"])
            );
            assert!(!f.malformed);
            assert_eq!(
                db.asn_number(&hit).unwrap(),
                AsnNumber {
                    number,
                    malformed: false
                }
            );
        }
    }
}

#[test]
fn ipinfo_lite_answers_its_source_in_both_slots() {
    let city = open(&vendor("ipinfo-lite-test.mmdb"), DbKind::City);
    let asn = open(&vendor("ipinfo-lite-test.mmdb"), DbKind::Asn);
    assert_eq!(city.layout(), Layout::IpinfoLite);
    let source = source(&vendor("ipinfo-lite-test.json"));
    let mut malformed = 0;
    for (net, want) in &source {
        for ip in [net.network(), last_addr(net)] {
            let hit = city.lookup(ip).unwrap().unwrap();
            assert_eq!(hit.network().unwrap(), *net, "{ip}");
            // Whatever the language asked for: IPinfo's names are English.
            let f = city.city_fields(&hit, "de").unwrap();
            assert_eq!(f.country_code, str_at(want, &["country_code"]), "{ip}");
            assert_eq!(f.country_name, str_at(want, &["country"]), "{ip}");
            assert_eq!(f.continent_code, str_at(want, &["continent_code"]), "{ip}");
            assert_eq!(f.city, None);
            assert_eq!(f.registered_country_code, None);
            assert_eq!(f.latitude, None);
            assert_eq!(
                city.country_code(&hit).unwrap(),
                str_at(want, &["country_code"])
            );

            let hit = asn.lookup(ip).unwrap().unwrap();
            let text = str_at(want, &["asn"]);
            let number = text
                .and_then(|t| t.strip_prefix("AS"))
                .and_then(|d| d.parse::<u32>().ok());
            let f = asn.asn_fields(&hit).unwrap();
            assert_eq!(f.number, number, "{ip}");
            assert_eq!(f.malformed, text.is_some() && number.is_none(), "{ip}");
            let want_org = str_at(want, &["as_name"]).map(|s| s.replace('\u{7}', "\u{FFFD}"));
            assert_eq!(f.organization.map(str::to_owned), want_org, "{ip}");
            let n = asn.asn_number(&hit).unwrap();
            assert_eq!((n.number, n.malformed), (f.number, f.malformed), "{ip}");
            malformed += usize::from(n.malformed);
        }
    }
    // ASxyz, AS4294967296 and 174, at both ends of their networks.
    assert_eq!(malformed, 6);
    // The hostile name is answered sanitized, by the typed decoder and as JSON.
    let hit = asn.lookup("45.0.0.1".parse().unwrap()).unwrap().unwrap();
    assert_eq!(
        asn.asn_fields(&hit).unwrap().organization,
        Some("Bad\u{FFFD}Name")
    );
    assert_eq!(
        asn.record_json(&hit).unwrap().unwrap()["as_name"],
        "Bad\u{FFFD}Name"
    );
    // An address outside every network: no data.
    let hit = asn.lookup("9.9.9.9".parse().unwrap()).unwrap().unwrap();
    assert!(!hit.has_data());
    assert_eq!(asn.asn_fields(&hit).unwrap(), AsnFields::default());
    assert_eq!(city.city_fields(&hit, "en").unwrap(), CityFields::default());
}

#[test]
fn ipinfo_lite_is_refused_by_the_other_slots() {
    for kind in [DbKind::Anonymous, DbKind::Isp, DbKind::ConnectionType] {
        let err = Database::open(&fixture(&vendor("ipinfo-lite-test.mmdb")), kind).unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::WrongType { .. }),
            "{kind:?}: {err}"
        );
    }
    let err =
        Database::open(&fixture(&vendor("dbip-city-lite-test.mmdb")), DbKind::Asn).unwrap_err();
    assert_eq!(err.reason(), "database type is \"DBIP-City-Lite\", expected an ASN or ISP database (MaxMind, DB-IP) or IPinfo Lite");
}

/// A database opened without our checks (the corrupt files fail them), as the crate reads it.
fn unchecked(path: &Path) -> Option<Database> {
    let file = File::open(path).ok()?;
    // SAFETY: a test fixture nobody rewrites while the test runs.
    let mmap = unsafe { Mmap::map(&file) }.ok()?;
    let map = Mapped(Arc::new(mmap));
    let reader = Reader::from_source(map.clone()).ok()?;
    let layout = Layout::of(&reader.metadata().database_type);
    Some(Database {
        reader,
        map,
        instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
        path: path.to_path_buf(),
        size: 0,
        layout,
        sanitized: Mutex::new(HashMap::new()),
        tree: OnceLock::new(),
        records: cache::RecordCaches::default(),
        decoded: None,
    })
}

/// Every `.mmdb` file under `dir`, recursively.
fn mmdb_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            mmdb_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "mmdb") {
            out.push(p);
        }
    }
}

/// The addresses the walk is checked on: first, middle and last of every IPv4 /16 (and, in
/// IPv6 databases, of every IPv6 /16, plus the 6to4, Teredo and IPv4-mapped forms of IPv4
/// addresses), and both ends of every network the crate's iteration yields.
fn walk_probes(db: &Database, networks: usize) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    let v6 = db.metadata().ip_version == 6;
    for hi in 0u32..1 << 16 {
        for lo in [0u32, 0x8000, 0xffff] {
            let v4 = hi << 16 | lo;
            ips.push(IpAddr::V4(v4.into()));
            if v6 {
                let h = u128::from(hi) << 112;
                ips.push(IpAddr::V6(
                    (h | u128::from(lo) << 96 | u128::from(lo)).into(),
                ));
                if lo == 0x8000 {
                    ips.push(IpAddr::V6(
                        (0x2002u128 << 112 | u128::from(v4) << 80).into(),
                    ));
                    ips.push(IpAddr::V6(
                        (0x2001_0000u128 << 96 | u128::from(v4) << 64).into(),
                    ));
                    ips.push(IpAddr::V6((0xffffu128 << 32 | u128::from(v4)).into()));
                }
            }
        }
    }
    if let Ok(nets) = db
        .reader
        .networks(WithinOptions::default().include_networks_without_data())
    {
        for item in nets.take(networks) {
            let Ok(r) = item else { break };
            if let Ok(net) = r.network() {
                ips.push(net.network());
                ips.push(net.broadcast());
            }
        }
    }
    ips
}

/// Checks our walk against the crate on every probe address of `db`; returns how many
/// addresses the walk answered itself.
fn check_walk(db: &Database, networks: usize) -> usize {
    let mut walked = 0;
    for ip in walk_probes(db, networks) {
        let ip = crate::classify::canonical(ip);
        if ip.is_ipv6() && db.metadata().ip_version == 4 {
            assert!(db.lookup(ip).unwrap().is_none());
            continue;
        }
        let theirs = db.reader.lookup(ip);
        if let Some(w) = db.walk(ip) {
            walked += 1;
            let r = theirs.as_ref().unwrap_or_else(|e| {
                panic!(
                    "{}: {ip}: walk answered, crate failed: {e}",
                    db.path.display()
                )
            });
            assert_eq!(w.offset, r.offset(), "{}: {ip}: offset", db.path.display());
            assert_eq!(
                network_of(ip, w.prefix),
                r.network().ok(),
                "{}: {ip}: network",
                db.path.display()
            );
        }
        // What callers see is the crate's answer, found by whichever walk.
        match (db.lookup(ip), theirs) {
            (Ok(Some(hit)), Ok(r)) => {
                assert_eq!(hit.record_offset(), r.offset(), "{ip}");
                assert_eq!(hit.network(), r.network().ok(), "{ip}");
            }
            (Err(a), Err(b)) => assert_eq!(a, DbError::from_mmdb(&db.path, b), "{ip}"),
            (a, b) => panic!(
                "{}: {ip}: {:?} vs {:?}",
                db.path.display(),
                a.map(|h| h.map(|h| h.record_offset())),
                b.map(|r| r.offset())
            ),
        }
    }
    walked
}

#[test]
fn own_walk_agrees_with_the_crate_on_every_test_database() {
    let mut files = Vec::new();
    mmdb_files(&fixture("test-data"), &mut files);
    assert!(files.len() > 40, "test databases missing");
    let mut walked_dbs = 0;
    for path in &files {
        let Some(db) = unchecked(path) else { continue };
        let walked = check_walk(&db, 200_000);
        let name = path.file_name().unwrap().to_string_lossy();
        // Every well-formed IPv4 and mixed database is walked by us (IPv6 trees without an
        // IPv4 subtree are left to the crate for IPv4).
        if name.starts_with("MaxMind-DB-test-ipv4")
            || name.starts_with("MaxMind-DB-test-mixed")
            || name.starts_with("GeoIP2-City-Test.")
        {
            assert!(walked > 3 << 16, "{name}: walked only {walked}");
            walked_dbs += 1;
        }
    }
    assert!(walked_dbs >= 7);
}

/// MaxMind's corrupt test databases, and the test databases that are broken on purpose.
fn corrupt_databases() -> Vec<PathBuf> {
    let mut files = Vec::new();
    mmdb_files(&fixture("bad-data"), &mut files);
    for rel in [
        "test-data/MaxMind-DB-test-broken-pointers-24.mmdb",
        "test-data/MaxMind-DB-test-broken-search-tree-24.mmdb",
        "test-data/GeoIP2-City-Test-Invalid-Node-Count.mmdb",
    ] {
        files.push(fixture(rel));
    }
    assert!(files.len() > 20, "corrupt databases missing");
    files
}

#[test]
fn own_walk_agrees_with_the_crate_on_every_corrupt_database() {
    let files = corrupt_databases();
    for path in &files {
        if let Some(db) = unchecked(path) {
            check_walk(&db, 200_000);
        }
    }
}

#[test]
fn walk_falls_back_on_pointers_the_crate_refuses() {
    // The root's two records rewritten to point past the data section, then into the
    // separator: the crate refuses every lookup, and so must we (the walk declines, the
    // crate's error is raised).
    let bytes = std::fs::read(fixture("test-data/MaxMind-DB-test-ipv4-24.mmdb")).unwrap();
    let nodes = unchecked(&fixture("test-data/MaxMind-DB-test-ipv4-24.mmdb"))
        .unwrap()
        .metadata()
        .node_count;
    for record in [0x00FF_FFFFu32, nodes + 5] {
        let mut b = bytes.clone();
        let r = record.to_be_bytes();
        b[0..3].copy_from_slice(&r[1..4]);
        b[3..6].copy_from_slice(&r[1..4]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.mmdb");
        std::fs::write(&path, &b).unwrap();
        let db = unchecked(&path).unwrap();
        let mut errors = 0;
        for ip in walk_probes(&db, 200_000) {
            if let Err(e) = db.reader.lookup(ip) {
                errors += 1;
                assert!(db.walk(ip).is_none(), "{ip}");
                assert_eq!(db.lookup(ip).err(), Some(DbError::from_mmdb(&db.path, e)));
            }
        }
        assert!(errors >= 3 << 16, "{record}: {errors}");
    }
}

/// The IPv4 country map of `db` in `dir`, or `None` when its records cannot be pre-decoded.
fn country_map(db: &Database, dir: &Path) -> Option<decoded::DecodedCity> {
    let bytes = decoded::DecodedCity::build(db, "en", &[1; 32], &testdata::never).ok()??;
    let file = dir.join("map.decoded");
    let _ = std::fs::remove_file(&file);
    std::fs::write(&file, &bytes).unwrap();
    Some(decoded::DecodedCity::open(&file, &[1; 32], "en").expect("just written"))
}

/// Checks that `ip_country`'s map answers what a lookup and its country code answer, on the
/// walk's probes; how many of the IPv4 probes it answered, and how many there were.
fn check_country_map(db: &Database, d: &decoded::DecodedCity) -> (usize, usize) {
    let (mut answered, mut probes) = (0, 0);
    for ip in walk_probes(db, 200_000) {
        let IpAddr::V4(v4) = crate::classify::canonical(ip) else {
            continue;
        };
        probes += 1;
        let Some((code, found)) = d.country_v4(u32::from(v4)) else {
            continue;
        };
        answered += 1;
        let name = db.path.display();
        let hit = db
            .lookup(ip)
            .unwrap_or_else(|e| panic!("{name}: {ip}: the map answered, the lookup failed: {e}"))
            .expect("an IPv4 address");
        assert_eq!(hit.has_data(), found, "{name}: {ip}: found");
        assert_eq!(db.country_code(&hit).unwrap(), code, "{name}: {ip}: code");
    }
    (answered, probes)
}

#[test]
fn the_ipv4_country_map_agrees_with_the_lookup_on_every_test_database() {
    let mut files = Vec::new();
    mmdb_files(&fixture("test-data"), &mut files);
    mmdb_files(&fixture("../vendors"), &mut files);
    let dir = tempfile::tempdir().unwrap();
    let mut mapped = 0;
    for path in &files {
        let Some(db) = unchecked(path) else { continue };
        let Some(d) = country_map(&db, dir.path()) else {
            continue;
        };
        let (answered, probes) = check_country_map(&db, &d);
        let name = path.file_name().unwrap().to_string_lossy();
        // Every well-formed database with an IPv4 tree answers every IPv4 address from the
        // map (IPv6 trees without an IPv4 subtree have no map).
        if name.starts_with("MaxMind-DB-test-ipv4")
            || name.starts_with("MaxMind-DB-test-mixed")
            || name.starts_with("GeoIP2-City-Test.")
            || name.starts_with("GeoLite2-City-Test.")
            || name.starts_with("dbip-city")
        {
            assert_eq!(answered, probes, "{name}");
            assert!(probes > 3 << 16, "{name}");
            mapped += 1;
        }
    }
    assert!(mapped >= 9, "{mapped}");
}

#[test]
fn the_ipv4_country_map_agrees_or_declines_on_every_corrupt_database() {
    let files = corrupt_databases();
    let dir = tempfile::tempdir().unwrap();
    for path in &files {
        if let Some(db) = unchecked(path) {
            if let Some(d) = country_map(&db, dir.path()) {
                check_country_map(&db, &d);
            }
        }
    }
}

#[test]
fn full_verification_names_tree_records_into_the_separator_or_past_the_data() {
    // Every value a tree record can take past the node count: the empty marker, the 15
    // separator values, the data section, past it. Each bad one is named, none panics (the
    // separator check once subtracted below zero).
    let src = fixture("test-data/MaxMind-DB-test-ipv4-24.mmdb");
    let bytes = std::fs::read(&src).unwrap();
    let nodes = unchecked(&src).unwrap().metadata().node_count;
    let cases = (nodes + 1..nodes + 16)
        .map(|r| (r, Some("points into the separator")))
        .chain([
            (0x00FF_FFFF, Some("points outside the data section")),
            (nodes, None),
            (nodes + 16, None),
        ]);
    for (record, expect) in cases {
        let mut b = bytes.clone();
        let r = record.to_be_bytes();
        b[3..6].copy_from_slice(&r[1..4]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.mmdb");
        std::fs::write(&path, &b).unwrap();
        let db = unchecked(&path).unwrap();
        let got = db.verify_tree_nodes();
        match expect {
            Some(text) => {
                let e = got.expect_err("a bad record passed").to_string();
                assert!(e.contains(text) && e.contains("node 0"), "{record}: {e}");
            }
            None => assert!(got.is_ok(), "{record}: {got:?}"),
        }
    }
}

#[test]
fn record_caches_answer_what_decoding_answers() {
    let city = open("test-data/GeoIP2-City-Test.mmdb", DbKind::City);
    let asn = open("test-data/GeoLite2-ASN-Test.mmdb", DbKind::Asn);
    for _round in 0..2 {
        for ip in walk_probes(&city, 200_000) {
            let Some(hit) = city.lookup(ip).unwrap() else {
                continue;
            };
            let fresh = city.country_code_decoded(&hit).unwrap();
            assert_eq!(city.country_code(&hit).unwrap(), fresh, "{ip}");
        }
        for ip in walk_probes(&asn, 200_000) {
            let Some(hit) = asn.lookup(ip).unwrap() else {
                continue;
            };
            let fresh = asn.asn_fields_decoded(&hit).unwrap();
            assert_eq!(asn.asn_fields(&hit).unwrap(), fresh, "{ip}");
            let n = asn.asn_number(&hit).unwrap();
            assert_eq!(
                (n.number, n.malformed),
                (fresh.number, fresh.malformed),
                "{ip}"
            );
        }
    }
}

#[test]
fn city_cache_from_the_walk_never_answers_for_another_database_or_language() {
    let a = open("test-data/GeoIP2-City-Test.mmdb", DbKind::City);
    let b = open("test-data/GeoLite2-City-Test.mmdb", DbKind::City);
    let mut cache = CityCache::default();
    let ip: IpAddr = "81.2.69.160".parse().unwrap();
    let expect = |db: &Database, lang: &str| {
        let hit = db.lookup(ip).unwrap().unwrap();
        db.city_fields(&hit, lang).unwrap().city.map(str::to_owned)
    };
    for (db, lang) in [
        (&a, "en"),
        (&a, "de"),
        (&b, "en"),
        (&a, "en"),
        (&b, "ja"),
        (&a, "zh-CN"),
    ] {
        let hit = db.lookup(ip).unwrap().unwrap();
        // A walked hit: the crate's result is made only on a miss.
        let f = db.city_fields_cached(&hit, lang, &mut cache).unwrap();
        assert_eq!(f.city.map(str::to_owned), expect(db, lang), "{lang}");
        let again = db.lookup(ip).unwrap().unwrap();
        let f = db.city_fields_cached(&again, lang, &mut cache).unwrap();
        assert!(
            again.result.get().is_none(),
            "a cache hit made a crate lookup"
        );
        assert_eq!(f.city.map(str::to_owned), expect(db, lang), "{lang}");
    }
    // The country and ASN caches belong to their database: the same offset in another file
    // is another record.
    let hit_a = a.lookup(ip).unwrap().unwrap();
    let hit_b = b.lookup(ip).unwrap().unwrap();
    assert_eq!(a.country_code(&hit_a).unwrap(), Some("GB"));
    assert_eq!(
        b.country_code(&hit_b).unwrap(),
        b.country_code_decoded(&hit_b).unwrap()
    );
}

/// Our walk against the crate on full-size files, every /16 and every network's ends:
/// `IPI_FULL_MMDB=/path/City.mmdb:/path/ASN.mmdb cargo test --release -p ip_inventory_core
/// own_walk_full -- --ignored`.
#[test]
#[ignore]
fn own_walk_full_size_databases() {
    let paths = std::env::var("IPI_FULL_MMDB").expect("IPI_FULL_MMDB");
    for p in paths.split(':') {
        let db = unchecked(Path::new(p)).expect("opens");
        let walked = check_walk(&db, usize::MAX);
        eprintln!("{p}: {walked} addresses walked and agreed");
        assert!(walked > 3 << 16);
    }
}

/// Not a test: prints how often the country cache answers `ip_country` over uniformly random
/// IPv4 addresses of a full-size City file (`IPI_FULL_MMDB=/path/City.mmdb`).
#[test]
#[ignore]
fn own_walk_country_cache_rate() {
    let path = std::env::var("IPI_FULL_MMDB").expect("IPI_FULL_MMDB");
    let db = unchecked(Path::new(path.split(':').next().unwrap())).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let (mut crate_calls, mut n) = (0, 0);
    let t = std::time::Instant::now();
    for _ in 0..1_000_000 {
        let ip = xorshift_v4(&mut x);
        let hit = db.lookup(ip).unwrap().unwrap();
        let _ = db.country_code(&hit).unwrap();
        n += 1;
        if hit.result.get().is_some() {
            crate_calls += 1;
        }
    }
    let ours = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..1_000_000 {
        let ip = xorshift_v4(&mut x);
        let r = db.reader.lookup(ip).unwrap();
        let _ = r.decode_path::<&str>(&[PathElement::Key("country"), PathElement::Key("iso_code")]);
    }
    eprintln!(
        "{n} lookups, {crate_calls} needed the crate; ours {ours:?}, crate only {:?}",
        t.elapsed()
    );
}

/// The next number of an xorshift64 sequence (deterministic test data).
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The next pseudo-random IPv4 address of an xorshift64 sequence.
fn xorshift_v4(x: &mut u64) -> IpAddr {
    IpAddr::V4((xorshift(x) as u32).into())
}

/// Paths our record reader ([`data`]) is asked for, and some it must decline (a bool, an
/// array, a map at the end).
const READER_PATHS: &[&[PathElement<'static>]] = {
    use PathElement::Key;
    &[
        &[Key("country"), Key("iso_code")],
        &[Key("country_code")],
        &[Key("registered_country"), Key("iso_code")],
        &[Key("city"), Key("names"), Key("en")],
        &[Key("location"), Key("time_zone")],
        &[Key("continent"), Key("code")],
        &[Key("autonomous_system_organization")],
        &[Key("traits"), Key("is_anycast")],
        &[Key("subdivisions"), Key("0")],
        &[Key("country")],
    ]
};

/// What our record reader answers at `offset` against the crate's `decode_path` on `result`
/// (a lookup that found the same record): when ours answers, the crate answers the same;
/// returns how many paths ours answered.
fn check_reader<S: AsRef<[u8]>>(
    data: &[u8],
    offset: usize,
    result: &maxminddb::LookupResult<'_, S>,
    what: &str,
) -> usize {
    let mut answered = 0;
    for path in READER_PATHS {
        let Some(ours) = data::string_at(data, offset, path) else {
            continue;
        };
        answered += 1;
        match result.decode_path::<&str>(path) {
            Ok(theirs) => assert_eq!(ours, theirs, "{what}: {path:?} at {offset}"),
            Err(e) => panic!("{what}: {path:?} at {offset}: ours {ours:?}, crate failed: {e}"),
        }
    }
    answered
}

/// One address per record of `db` (the first network that names it) with its offset.
fn one_address_per_record(db: &Database) -> Vec<(IpAddr, usize)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let Ok(nets) = db.reader.networks(WithinOptions::default()) else {
        return out;
    };
    for item in nets.take(200_000) {
        let Ok(r) = item else { break };
        if let (Some(offset), Ok(net)) = (r.offset(), r.network()) {
            if seen.insert(offset) {
                out.push((net.network(), offset));
            }
        }
    }
    out
}

/// The data section of `db` as our reader sees it (the tree built by a first lookup).
fn reader_data(db: &Database) -> Option<&[u8]> {
    let _ = db.lookup(IpAddr::V4(0x0101_0101.into()));
    db.tree.get()?.as_ref()?.data(db.map.as_ref())
}

#[test]
fn own_record_reader_agrees_with_the_crate_on_every_test_and_corrupt_database() {
    let mut files = Vec::new();
    mmdb_files(&fixture("test-data"), &mut files);
    mmdb_files(&fixture("bad-data"), &mut files);
    assert!(files.len() > 60, "test databases missing");
    let (mut answered, mut country_codes) = (0, 0);
    for path in &files {
        let Some(db) = unchecked(path) else { continue };
        let Some(data) = reader_data(&db) else {
            continue;
        };
        for (ip, offset) in one_address_per_record(&db) {
            let Ok(r) = db.reader.lookup(ip) else {
                continue;
            };
            assert_eq!(r.offset(), Some(offset));
            answered += check_reader(data, offset, &r, &path.display().to_string());
            if let Some(Some(_)) = data::string_at(data, offset, READER_PATHS[0]) {
                country_codes += 1;
            }
        }
    }
    // The City, Country and Enterprise test databases: hundreds of records with a country.
    assert!(country_codes > 300, "{country_codes}");
    assert!(answered > 1000, "{answered}");
}

#[test]
fn own_record_reader_declines_what_the_crate_refuses_in_damaged_records() {
    // Bytes of the City test database's data section overwritten (at and after its records'
    // starts, and anywhere), 2000 files: wherever our reader still answers, the crate (reading the same
    // damaged file) answers the same, and nothing panics.
    let src = fixture("test-data/GeoIP2-City-Test.mmdb");
    let bytes = std::fs::read(&src).unwrap();
    let db = unchecked(&src).unwrap();
    // Where the data section starts in the file, as the walk bounds it.
    let start = reader_data(&db).unwrap().as_ptr() as usize - db.map.as_ref().as_ptr() as usize;
    let records = one_address_per_record(&db);
    assert!(records.len() > 50, "{}", records.len());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || xorshift(&mut x);
    let dir = tempfile::tempdir().unwrap();
    let (mut answered, mut refused) = (0, 0);
    for round in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 3 {
            // At a record's start or after it, or anywhere in the data section (the keys
            // and strings records point to).
            let at = if next() % 2 == 0 {
                let (_, offset) = records[next() as usize % records.len()];
                start + offset + (next() % 48) as usize
            } else {
                start + (next() as usize % (b.len() - start))
            };
            if at < b.len() {
                b[at] = next() as u8;
            }
        }
        let path = dir.path().join(format!("damaged-{round}.mmdb"));
        std::fs::write(&path, &b).unwrap();
        let Some(damaged) = unchecked(&path) else {
            continue;
        };
        let Some(data) = reader_data(&damaged) else {
            continue;
        };
        for &(ip, offset) in &records {
            let Ok(r) = damaged.reader.lookup(ip) else {
                continue;
            };
            answered += check_reader(data, offset, &r, &format!("round {round}"));
            for p in READER_PATHS {
                if r.decode_path::<&str>(p).is_err() {
                    refused += 1;
                }
            }
        }
    }
    // The damage reached the crate (it refused some paths) and left most records readable.
    assert!(refused > 10_000, "{refused}");
    assert!(answered > 500_000, "{answered}");
}

/// Our record reader against the crate on every record of full-size files:
/// `IPI_FULL_MMDB=/path/City.mmdb:/path/ASN.mmdb cargo test --release -p ip_inventory_core
/// own_record_reader_full -- --ignored`.
#[test]
#[ignore]
fn own_record_reader_full_size_databases() {
    let paths = std::env::var("IPI_FULL_MMDB").expect("IPI_FULL_MMDB");
    for p in paths.split(':') {
        let db = unchecked(Path::new(p)).expect("opens");
        let data = reader_data(&db).expect("our walk reads this tree");
        let (mut records, mut answered) = (0, 0);
        let mut seen = std::collections::HashSet::new();
        for item in db.reader.networks(WithinOptions::default()).unwrap() {
            let r = item.unwrap();
            let offset = r.offset().unwrap();
            if seen.insert(offset) {
                records += 1;
                answered += check_reader(data, offset, &r, p);
            }
        }
        eprintln!("{p}: {records} records, {answered} paths answered by our reader and agreed");
        assert!(answered >= records);
    }
}
