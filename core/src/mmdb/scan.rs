//! Reading a database beyond one whole record: one path of a record (`mmdb_lookup(ip, db,
//! path)`), and every network of the search tree under a prefix (`mmdb_networks`).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use maxminddb::{PathElement, Reader, Within, WithinOptions};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{json, Database, DbError, ErrorKind, Hit, Mapped};

/// Longest path accepted: records nest at most [`json::MAX_DEPTH`] levels.
pub const MAX_PATH: usize = json::MAX_DEPTH as usize;

/// Why a path cannot be used (before any lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub String);

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a path: at most [`MAX_PATH`] elements.
pub fn check_path(path: &[String]) -> Result<(), BadPath> {
    if path.len() > MAX_PATH {
        return Err(BadPath(format!(
            "a path has at most {MAX_PATH} elements, this one has {}",
            path.len()
        )));
    }
    Ok(())
}

/// An element that libmaxminddb reads as an array index when the value it meets is an
/// array: an optional minus sign and decimal digits (`"0"`, `"-1"`: the last element).
fn as_index(element: &str) -> Option<PathElement<'static>> {
    let (negative, digits) = match element.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, element),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    Some(match (negative, n) {
        (false, n) => PathElement::Index(n),
        // "-0" is the first element for strtol, as for libmaxminddb.
        (true, 0) => PathElement::Index(0),
        (true, n) => PathElement::IndexFromEnd(n - 1),
    })
}

/// Whether a value is a map, an array, or something else; decodes only its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Array,
    Other,
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<M: MapAccess<'de>>(self, _: M) -> Result<Kind, M::Error> {
                Ok(Kind::Map)
            }
            fn visit_seq<S: SeqAccess<'de>>(self, _: S) -> Result<Kind, S::Error> {
                Ok(Kind::Array)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_f32<E>(self, _: f32) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_unit<E>(self) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_none<E>(self) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
                IgnoredAny::deserialize(d).map(|_| Kind::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl Database {
    /// The value at `path` in the record of a hit, decoding nothing else of the record
    /// (MaxMind's data path, `MMDB_aget_value`): each element is a map key, or, where the
    /// value met is an array, an index (negative from the end). `None` when the database has
    /// no record for the address or the record has nothing at the path (a missing key, an
    /// index beyond the array, a path through a value that is neither map nor array).
    pub fn record_path_json(
        &self,
        hit: &Hit<'_>,
        path: &[String],
    ) -> Result<Option<Value>, DbError> {
        check_path(path).map_err(|e| DbError::new(&self.path, ErrorKind::Corrupt(e.0)))?;
        if !hit.has_data() {
            return Ok(None);
        }
        let err = |e| DbError::from_mmdb(&self.path, e);
        let result = hit.result()?;
        let mut steps: Vec<PathElement<'_>> = Vec::with_capacity(path.len());
        for element in path {
            let kind = if steps.is_empty() {
                result.decode::<Kind>().map_err(err)?
            } else {
                result.decode_path::<Kind>(&steps).map_err(err)?
            };
            match (kind, as_index(element)) {
                (Some(Kind::Map), _) => steps.push(PathElement::Key(element)),
                (Some(Kind::Array), Some(index)) => steps.push(index),
                // Nothing there, a scalar, or a non-numeric element for an array: the path
                // does not match the data.
                _ => return Ok(None),
            }
        }
        if steps.is_empty() {
            return self.record_json(hit);
        }
        result
            .decode_path::<json::JsonRecord>(&steps)
            .map(|r| r.map(|r| r.0))
            .map_err(err)
    }

    /// Every network of the search tree under `within` (the whole tree when `None`) that has
    /// a record, in address order, with its record. The scan owns its own reader over the
    /// same mapping, so it outlives a reload of this `Database`; it holds a stack of at most
    /// 128 nodes and one record at a time.
    ///
    /// IPv4 networks of an IPv6 database are yielded once, as IPv4 networks: the aliases
    /// MaxMind's writers put at `::ffff:0:0/96`, `2002::/16` and `2001::/32` are skipped,
    /// unless `within` lies inside `2002::/16` or `2001::/32` (then the networks are those
    /// libmaxminddb reaches through the alias, in IPv6 form). An IPv6 `within` in an
    /// IPv4-only database yields nothing; an IPv4-mapped `within` is its IPv4 network.
    pub fn scan(&self, within: Option<IpNetwork>) -> Result<NetworkScan, DbError> {
        let err = |e| DbError::from_mmdb(&self.path, e);
        let v6_db = self.metadata().ip_version == 6;
        let within = match within {
            Some(net) => canonical_network(net),
            None if v6_db => IpNetwork::V6("::/0".parse().expect("valid")),
            None => IpNetwork::V4("0.0.0.0/0".parse().expect("valid")),
        };
        let reader = Box::new(Reader::from_source(self.map.clone()).map_err(err)?);
        let mut options = WithinOptions::default();
        if through_alias(within) {
            options = options.include_aliased_networks();
        }
        let iter = if within.is_ipv6() && !v6_db {
            None
        } else {
            // SAFETY: `iter` borrows `*reader`, a heap allocation `NetworkScan` owns and never
            // moves, mutates or drops before `iter`: fields drop in declaration order and
            // `iter` is declared first. The lifetime is only widened to store both together.
            let r: &'static Reader<Mapped> = unsafe { &*(reader.as_ref() as *const _) };
            Some(r.within(within, options).map_err(err)?)
        };
        Ok(NetworkScan {
            iter,
            _reader: reader,
            path: self.path.clone(),
            db: self.instance,
        })
    }
}

/// `::ffff:a.b.c.d/n` (n ≥ 96) as the IPv4 network it is; anything else unchanged.
fn canonical_network(net: IpNetwork) -> IpNetwork {
    match net {
        IpNetwork::V6(v6) if v6.prefix() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => IpNetwork::new(IpAddr::V4(v4), v6.prefix() - 96).unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// Whether `net` lies inside the 6to4 or Teredo prefix (where MaxMind aliases the IPv4 tree).
fn through_alias(net: IpNetwork) -> bool {
    let IpNetwork::V6(v6) = net else {
        return false;
    };
    let bits = u128::from(v6.network());
    (v6.prefix() >= 16 && bits >> 112 == 0x2002) || (v6.prefix() >= 32 && bits >> 96 == 0x2001_0000)
}

/// The networks of a database under a prefix, one at a time (see [`Database::scan`]).
pub struct NetworkScan {
    // Declared before `_reader`, which it borrows: dropped first.
    iter: Option<Within<'static, Mapped>>,
    _reader: Box<Reader<Mapped>>,
    path: PathBuf,
    db: u64,
}

impl NetworkScan {
    /// Which opened [`Database`] (its instance number) this scan reads.
    pub fn database_instance(&self) -> u64 {
        self.db
    }
}

impl Iterator for NetworkScan {
    type Item = Result<(IpNetwork, Value), DbError>;

    fn next(&mut self) -> Option<Self::Item> {
        let iter = self.iter.as_mut()?;
        let item = iter.next()?;
        let result = (|| {
            let result = item?;
            let network = result.network()?;
            let data = result
                .decode::<json::JsonRecord>()?
                .map_or(Value::Null, |r| r.0);
            Ok((network, data))
        })();
        if result.is_err() {
            // A broken tree or record ends the scan: nothing after it can be trusted.
            self.iter = None;
        }
        Some(result.map_err(|e| DbError::from_mmdb(&self.path, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::DbKind;
    use super::*;
    use std::path::Path;

    fn open(name: &str) -> Database {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../pg_tests/fixtures/maxmind/test-data")
            .join(name);
        Database::open(&p, DbKind::Any).unwrap()
    }

    fn path(elements: &[&str]) -> Vec<String> {
        elements.iter().map(|s| (*s).to_owned()).collect()
    }

    fn at(db: &Database, ip: &str, elements: &[&str]) -> Option<Value> {
        let hit = db.lookup(ip.parse().unwrap()).unwrap().unwrap();
        db.record_path_json(&hit, &path(elements)).unwrap()
    }

    #[test]
    fn a_path_decodes_one_value_of_the_record() {
        let db = open("GeoIP2-City-Test.mmdb");
        // Values from source-data/GeoIP2-City-Test.json, network 2.125.160.216/29.
        let ip = "2.125.160.216";
        assert_eq!(at(&db, ip, &["country", "iso_code"]), Some("GB".into()));
        assert_eq!(
            at(&db, ip, &["subdivisions", "0", "iso_code"]),
            Some("ENG".into())
        );
        assert_eq!(
            at(&db, ip, &["subdivisions", "-1", "iso_code"]),
            Some("WBK".into())
        );
        assert_eq!(
            at(&db, ip, &["subdivisions", "-2", "iso_code"]),
            Some("ENG".into())
        );
        assert_eq!(
            at(&db, ip, &["location", "accuracy_radius"]),
            Some(100.into())
        );
        // A map as a whole.
        assert_eq!(
            at(&db, ip, &["country", "names"]).unwrap()["en"],
            "United Kingdom"
        );
        // The empty path is the whole record.
        assert_eq!(at(&db, ip, &[]).unwrap()["city"]["names"]["en"], "Boxford");
    }

    #[test]
    fn a_path_that_does_not_match_the_data_is_nothing() {
        let db = open("GeoIP2-City-Test.mmdb");
        let ip = "2.125.160.216";
        assert_eq!(at(&db, ip, &["no_such_key"]), None);
        assert_eq!(
            at(&db, ip, &["subdivisions", "2"]),
            None,
            "beyond the array"
        );
        assert_eq!(at(&db, ip, &["subdivisions", "-3"]), None);
        assert_eq!(
            at(&db, ip, &["subdivisions", "first"]),
            None,
            "not an index"
        );
        assert_eq!(at(&db, ip, &["country", "0"]), None, "a key a map lacks");
        assert_eq!(
            at(&db, ip, &["country", "iso_code", "x"]),
            None,
            "through a string"
        );
        // No record at all.
        let hit = db.lookup("10.0.0.1".parse().unwrap()).unwrap().unwrap();
        assert_eq!(
            db.record_path_json(&hit, &path(&["country"])).unwrap(),
            None
        );
    }

    #[test]
    fn numeric_elements_are_keys_in_maps_and_indexes_in_arrays() {
        // MaxMind-DB-test-decoder: a map with an "array" of [1, 2, 3] and a nested "map".
        let db = open("MaxMind-DB-test-decoder.mmdb");
        assert_eq!(at(&db, "1.1.1.0", &["array", "0"]), Some(1.into()));
        assert_eq!(at(&db, "1.1.1.0", &["array", "-1"]), Some(3.into()));
        assert_eq!(at(&db, "1.1.1.0", &["array", "-0"]), Some(1.into()));
        assert_eq!(
            at(&db, "1.1.1.0", &["map", "mapX", "arrayX", "1"]),
            Some(8.into())
        );
        assert_eq!(at(&db, "1.1.1.0", &["0"]), None, "a map has no key \"0\"");
    }

    #[test]
    fn overlong_paths_are_refused() {
        let long: Vec<String> = (0..=MAX_PATH).map(|_| "a".to_owned()).collect();
        assert!(check_path(&long).is_err());
        assert!(check_path(&long[1..]).is_ok());
    }

    fn scan(db: &Database, within: Option<&str>) -> Vec<(String, Value)> {
        db.scan(within.map(|w| w.parse().unwrap()))
            .unwrap()
            .map(|r| r.map(|(n, v)| (n.to_string(), v)).unwrap())
            .collect()
    }

    #[test]
    fn a_scan_yields_every_network_once_in_order() {
        let db = open("GeoIP2-City-Test.mmdb");
        let all = scan(&db, None);
        let ipv4: Vec<_> = all.iter().filter(|(n, _)| !n.contains(':')).collect();
        let ipv6: Vec<_> = all.iter().filter(|(n, _)| n.contains(':')).collect();
        assert!(!ipv4.is_empty() && !ipv6.is_empty());
        // IPv4 networks come once, in IPv4 form: none through the 6to4/Teredo/mapped aliases.
        assert!(ipv6.iter().all(|(n, _)| !n.starts_with("2002:")
            && !n.starts_with("2001:0:")
            && !n.starts_with("::")));
        // Every network answers a lookup of its first address with its own record.
        for (net, data) in &all {
            let net: IpNetwork = net.parse().unwrap();
            let hit = db.lookup(net.network()).unwrap().unwrap();
            assert_eq!(hit.network(), Some(net));
            assert_eq!(db.record_json(&hit).unwrap().as_ref(), Some(data));
        }
    }

    #[test]
    fn a_scan_under_a_prefix() {
        let db = open("GeoIP2-City-Test.mmdb");
        let got = scan(&db, Some("81.2.69.0/24"));
        let nets: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        // source-data/GeoIP2-City-Test.json: the networks under 81.2.69.0/24.
        assert_eq!(
            nets,
            [
                "81.2.69.142/31",
                "81.2.69.144/28",
                "81.2.69.160/27",
                "81.2.69.192/28"
            ]
        );
        assert_eq!(got[2].1["city"]["names"]["en"], "London");
        // An IPv4-mapped prefix is its IPv4 network.
        assert_eq!(scan(&db, Some("::ffff:81.2.69.0/120")), got);
        // Inside a network: the network holding it.
        assert_eq!(scan(&db, Some("81.2.69.160/30"))[0].0, "81.2.69.160/27");
        // Nothing there.
        assert!(scan(&db, Some("10.0.0.0/8")).is_empty());
        // An IPv6 prefix in an IPv4-only database.
        let v4 = open("MaxMind-DB-test-ipv4-24.mmdb");
        assert!(scan(&v4, Some("2001:db8::/32")).is_empty());
        assert!(!scan(&v4, None).is_empty());
    }

    #[test]
    fn a_scan_through_6to4_and_teredo_reaches_the_ipv4_tree() {
        let db = open("GeoIP2-City-Test.mmdb");
        // 2002:5102:4500::/40 is 81.2.69.0/24 seen through 6to4.
        let got = scan(&db, Some("2002:5102:4500::/40"));
        let nets: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            nets,
            [
                "2002:5102:458e::/47",
                "2002:5102:4590::/44",
                "2002:5102:45a0::/43",
                "2002:5102:45c0::/44"
            ]
        );
        let v4 = scan(&db, Some("81.2.69.0/24"));
        assert_eq!(got[2].1, v4[2].1);
        let teredo = scan(&db, Some("2001:0:5102:4500::/56"));
        assert_eq!(teredo.len(), 4);
        assert_eq!(teredo[2].0, "2001:0:5102:45a0::/59");
    }

    /// 6to4 (`2002:AABB:CCDD::`) and Teredo (`2001:0:AABB:CCDD::`) addresses answer with the
    /// record of the IPv4 address they embed, as libmaxminddb's tree walk does through the
    /// aliases, for every IPv4 network of the City and ASN test databases.
    #[test]
    fn six_to_four_and_teredo_answer_with_the_embedded_ipv4_record() {
        for name in ["GeoIP2-City-Test.mmdb", "GeoLite2-ASN-Test.mmdb"] {
            let db = open(name);
            let mut checked = 0;
            for (net, data) in scan(&db, None) {
                let net: IpNetwork = net.parse().unwrap();
                let IpAddr::V4(v4) = net.network() else {
                    continue;
                };
                let v4 = u128::from(u32::from(v4));
                for (prefix, shift, extra) in [(0x2002u128, 112, 16), (0x2001_0000, 96, 32)] {
                    let ip = IpAddr::V6(((prefix << shift) | (v4 << (shift - 32))).into());
                    let hit = db.lookup(ip).unwrap().unwrap();
                    assert_eq!(db.record_json(&hit).unwrap().as_ref(), Some(&data), "{ip}");
                    assert_eq!(
                        hit.network().unwrap().prefix(),
                        net.prefix() + extra,
                        "{ip}: the prefix walked in the IPv6 tree"
                    );
                }
                checked += 1;
            }
            assert!(checked > 10, "{name}: {checked} IPv4 networks");
        }
    }
}
