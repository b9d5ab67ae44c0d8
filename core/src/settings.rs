//! Parsing of setting values, kept free of Postgres so it is unit-tested and shared by the
//! GUC check hooks and the readers.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

/// One entry of `ip_inventory.databases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedDatabase {
    pub name: String,
    pub path: PathBuf,
}

/// Parses `name=/abs/path.mmdb, other=/abs/other.mmdb`. Names are lowercase identifiers
/// (`[a-z_][a-z0-9_]*`), unique, not `city`/`asn`; paths are absolute.
pub fn parse_database_list(value: &str) -> Result<Vec<NamedDatabase>, String> {
    let mut out: Vec<NamedDatabase> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, path) = entry.split_once('=').ok_or_else(|| {
            format!("entry \"{entry}\" is not of the form name=/path/to/file.mmdb")
        })?;
        let (name, path) = (name.trim(), path.trim());
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(format!(
                "database name \"{name}\" must be a lowercase identifier ([a-z_][a-z0-9_]*)"
            ));
        }
        if crate::mmdb::DbSlot::RESERVED.contains(&name) {
            return Err(format!(
                "database name \"{name}\" is reserved for the MaxMind slot of that name"
            ));
        }
        if out.iter().any(|d| d.name == name) {
            return Err(format!("database name \"{name}\" appears twice"));
        }
        if !Path::new(path).is_absolute() {
            return Err(format!(
                "path \"{path}\" of database \"{name}\" is not absolute"
            ));
        }
        out.push(NamedDatabase {
            name: name.to_owned(),
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

/// Whether a path setting is acceptable: empty (unset) or absolute.
pub fn check_absolute_path(value: &str) -> Result<(), String> {
    let v = value.trim();
    if v.is_empty() || Path::new(v).is_absolute() {
        Ok(())
    } else {
        Err(format!("\"{v}\" is not an absolute path"))
    }
}

/// Whether a language setting is a language code as MaxMind databases name them.
pub fn check_language(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 16
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(
            "use a language code as MaxMind databases name them, e.g. en, de, pt-BR, zh-CN"
                .to_owned(),
        )
    }
}

/// Checks the base URL of a source that is sent an API key: `https://` to any host, or
/// `http://` to a loopback address only (a key sent in clear over the network is a key given
/// away; loopback is what tests use). No user information, no whitespace.
pub fn check_key_url(value: &str) -> Result<(), String> {
    let v = value.trim();
    let (https, rest) = if let Some(r) = v.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = v.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("use an https:// URL, e.g. https://api.greynoise.io".to_owned());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || v.contains(char::is_whitespace) || authority.contains('@') {
        return Err(
            "use an https:// URL with a host and no user name, e.g. https://api.greynoise.io"
                .to_owned(),
        );
    }
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if https || loopback {
        Ok(())
    } else {
        Err("http:// would send the API key in clear: use https://, or http:// to a loopback address (tests)".to_owned())
    }
}

/// At most this many networks in one skip list (each refresh tests every due row against them).
pub const MAX_SKIP_NETWORKS: usize = 1_000;

/// Parses the networks a source must not ask about (`ip_inventory.<source>_skip_networks`):
/// CIDR prefixes separated by commas, e.g. `10.0.0.0/8, 2001:db8::/32`; a bare address is a
/// single host. As with SQL's `cidr`, no bit may be set right of the mask.
pub fn parse_network_list(value: &str) -> Result<Vec<IpNetwork>, String> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let shown: String = entry.chars().take(64).collect();
        let net: IpNetwork = entry.parse().map_err(|_| {
            format!("\"{shown}\" is not a network: use CIDR notation, e.g. 192.0.2.0/24 or 2001:db8::/32")
        })?;
        if net.network() != net.ip() {
            return Err(format!(
                "\"{shown}\" has bits set right of its mask: write {}/{}",
                net.network(),
                net.prefix()
            ));
        }
        out.push(net);
    }
    if out.len() > MAX_SKIP_NETWORKS {
        return Err(format!(
            "{} networks: at most {MAX_SKIP_NETWORKS}; use shorter prefixes",
            out.len()
        ));
    }
    Ok(out)
}

/// Whether an address lies in one of the networks.
pub fn in_networks(ip: IpAddr, networks: &[IpNetwork]) -> bool {
    networks.iter().any(|n| n.contains(ip))
}

/// Parses `ip_inventory.quota_clock` (tests only): empty for the real clock, or a UTC time
/// `YYYY-MM-DD HH:MM[:SS]` (a `T` between, a trailing `Z` or `+00` accepted); seconds since 1970.
pub fn parse_utc_clock(value: &str) -> Result<Option<u64>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let bad = || "use a UTC time as YYYY-MM-DD HH:MM:SS, or empty for the real clock".to_owned();
    let v = v
        .strip_suffix('Z')
        .or_else(|| v.strip_suffix("+00:00"))
        .or_else(|| v.strip_suffix("+00"))
        .unwrap_or(v);
    let (date, time) = v.split_once([' ', 'T']).ok_or_else(bad)?;
    let num = |s: &str, lo: u32, hi: u32| -> Result<u32, String> {
        let n: u32 = s
            .parse()
            .ok()
            .filter(|_| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(bad)?;
        (lo..=hi).contains(&n).then_some(n).ok_or_else(bad)
    };
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || !(2..=3).contains(&t.len()) {
        return Err(bad());
    }
    let (year, month, day) = (num(d[0], 1970, 9999)?, num(d[1], 1, 12)?, num(d[2], 1, 31)?);
    let (hour, minute) = (num(t[0], 0, 23)?, num(t[1], 0, 59)?);
    let second = t.get(2).map_or(Ok(0), |s| num(s, 0, 59))?;
    let civil = crate::sources::greynoise::days_from_civil;
    let days = civil(i64::from(year), month, day);
    // Day 31 of a 30-day month and the like would silently become another date.
    if days >= civil(i64::from(year) + i64::from(month / 12), month % 12 + 1, 1) {
        return Err(bad());
    }
    let secs = days * 86_400 + i64::from(hour * 3_600 + minute * 60 + second);
    u64::try_from(secs).map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_list_parses_names_and_paths() {
        let list =
            parse_database_list(" anon = /srv/GeoIP2-Anonymous-IP.mmdb ,dbip=/srv/dbip.mmdb,")
                .unwrap();
        assert_eq!(
            list,
            vec![
                NamedDatabase {
                    name: "anon".into(),
                    path: "/srv/GeoIP2-Anonymous-IP.mmdb".into()
                },
                NamedDatabase {
                    name: "dbip".into(),
                    path: "/srv/dbip.mmdb".into()
                },
            ]
        );
        assert_eq!(parse_database_list("").unwrap(), vec![]);
        assert_eq!(parse_database_list("  ").unwrap(), vec![]);
    }

    #[test]
    fn database_list_rejects_bad_entries() {
        for (value, needle) in [
            ("anon", "not of the form"),
            ("Anon=/x.mmdb", "lowercase identifier"),
            ("1x=/x.mmdb", "lowercase identifier"),
            ("a-b=/x.mmdb", "lowercase identifier"),
            ("=/x.mmdb", "lowercase identifier"),
            ("city=/x.mmdb", "reserved"),
            ("asn=/x.mmdb", "reserved"),
            ("a=/x.mmdb,a=/y.mmdb", "twice"),
            ("a=relative.mmdb", "not absolute"),
        ] {
            let err = parse_database_list(value).unwrap_err();
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn path_settings_must_be_absolute() {
        assert!(check_absolute_path("").is_ok());
        assert!(check_absolute_path("/srv/x.mmdb").is_ok());
        assert!(check_absolute_path("x.mmdb")
            .unwrap_err()
            .contains("not an absolute path"));
    }

    #[test]
    fn languages_are_codes() {
        for ok in ["en", "pt-BR", "zh-CN"] {
            assert!(check_language(ok).is_ok(), "{ok}");
        }
        for bad in ["", "en;drop", "a very long language name", "de_DE"] {
            assert!(check_language(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_lists_parse_and_match() {
        let nets = parse_network_list(" 10.0.0.0/8, 2001:db8::/32,192.0.2.7 ,").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(in_networks("10.1.2.3".parse().unwrap(), &nets));
        assert!(in_networks("2001:db8::1".parse().unwrap(), &nets));
        assert!(in_networks("192.0.2.7".parse().unwrap(), &nets));
        assert!(!in_networks("192.0.2.8".parse().unwrap(), &nets));
        assert!(!in_networks("11.0.0.1".parse().unwrap(), &nets));
        assert!(parse_network_list("").unwrap().is_empty());
        for (bad, needle) in [
            ("10.0.0.1/8", "bits set right of its mask: write 10.0.0.0/8"),
            ("10.0.0.0/33", "not a network"),
            ("example.com", "not a network"),
            ("10.0.0.0/8; 11.0.0.0/8", "not a network"),
        ] {
            let err = parse_network_list(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let many = (0..=MAX_SKIP_NETWORKS)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_network_list(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn clocks_are_utc_times() {
        assert_eq!(parse_utc_clock("").unwrap(), None);
        assert_eq!(parse_utc_clock("1970-01-01 00:00").unwrap(), Some(0));
        assert_eq!(
            parse_utc_clock("2026-01-15 03:20:00").unwrap(),
            Some(1_768_447_200)
        );
        assert_eq!(
            parse_utc_clock("2026-01-15T03:20:00Z"),
            parse_utc_clock("2026-01-15 03:20+00")
        );
        assert_eq!(
            parse_utc_clock("2024-02-29 00:00").unwrap(),
            Some(1_709_164_800)
        );
        for bad in [
            "now",
            "2026-01-15",
            "2026-13-01 00:00",
            "2026-02-30 00:00",
            "2025-02-29 00:00",
            "2026-01-15 24:00",
            "2026-01-15 03:20 +02",
            "+2026-01-15 03:20",
        ] {
            assert!(parse_utc_clock(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_urls_are_https_or_loopback() {
        for ok in [
            "https://api.greynoise.io",
            "https://api.greynoise.io:8443/base",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1",
            "http://[::1]:8080/x",
        ] {
            assert!(check_key_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.greynoise.io",
            "http://10.0.0.1:8080",
            "http://127.0.0.1.evil.example",
            "http://[2001:db8::1]/",
            "https://user:pw@api.greynoise.io",
            "http://localhost@evil.example",
            "ftp://x",
            "https://",
            "https://a b",
        ] {
            assert!(check_key_url(bad).is_err(), "{bad}");
        }
    }
}
