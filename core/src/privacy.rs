//! Privacy: truncating addresses (anonymization) and keyed pseudonyms.
//!
//! A pseudonym is HMAC-SHA256 over the address bytes, keyed with a secret salt. Without the
//! salt nobody can link a pseudonym to an address; with it, anyone can (an IPv4 address has
//! only 2^32 candidates), so the salt must stay secret.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shorter salts are refused: a pseudonym is only as private as its salt is hard to guess.
pub const MIN_SALT_LEN: usize = 16;

/// The network of `ip` with `prefix_v4` / `prefix_v6` bits kept (IPv4-mapped addresses count
/// as IPv4), and the prefix length used.
pub fn truncate(ip: IpAddr, prefix_v4: i32, prefix_v6: i32) -> Result<(IpAddr, u8), String> {
    let v4 = u8::try_from(prefix_v4)
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("prefix_v4 must be between 0 and 32, not {prefix_v4}"))?;
    let v6 = u8::try_from(prefix_v6)
        .ok()
        .filter(|p| *p <= 128)
        .ok_or_else(|| format!("prefix_v6 must be between 0 and 128, not {prefix_v6}"))?;
    Ok(match crate::canonical(ip) {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)), v4)
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            (IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)), v6)
        }
    })
}

/// The pseudonym of `ip` under `salt`: 32 hex digits (128 bits of HMAC-SHA256). IPv4-mapped
/// addresses get their IPv4 address's pseudonym.
pub fn pseudonym(ip: IpAddr, salt: &str) -> Result<String, String> {
    if salt.len() < MIN_SALT_LEN {
        return Err(format!(
            "the salt has {} bytes; at least {MIN_SALT_LEN} are needed",
            salt.len()
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(salt.as_bytes()).expect("HMAC takes any key");
    match crate::canonical(ip) {
        IpAddr::V4(a) => mac.update(&a.octets()),
        IpAddr::V6(a) => mac.update(&a.octets()),
    }
    let digest = mac.finalize().into_bytes();
    Ok(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn truncates_each_family_and_mapped_addresses() {
        assert_eq!(
            truncate(ip("81.2.69.160"), 24, 48).unwrap(),
            (ip("81.2.69.0"), 24)
        );
        assert_eq!(
            truncate(ip("81.2.69.160"), 0, 48).unwrap(),
            (ip("0.0.0.0"), 0)
        );
        assert_eq!(
            truncate(ip("81.2.69.160"), 32, 48).unwrap(),
            (ip("81.2.69.160"), 32)
        );
        assert_eq!(
            truncate(ip("81.2.69.160"), 20, 48).unwrap(),
            (ip("81.2.64.0"), 20)
        );
        assert_eq!(
            truncate(ip("::ffff:81.2.69.160"), 16, 48).unwrap(),
            (ip("81.2.0.0"), 16)
        );
        assert_eq!(
            truncate(ip("2001:db8:1234:5678::1"), 24, 48).unwrap(),
            (ip("2001:db8:1234::"), 48)
        );
        assert_eq!(truncate(ip("2001:db8::1"), 24, 0).unwrap(), (ip("::"), 0));
        assert_eq!(
            truncate(ip("2001:db8::1"), 24, 128).unwrap(),
            (ip("2001:db8::1"), 128)
        );
        assert_eq!(
            truncate(ip("2001:db8::ff"), 24, 121).unwrap(),
            (ip("2001:db8::80"), 121)
        );
    }

    #[test]
    fn refuses_prefixes_out_of_range() {
        assert!(truncate(ip("1.2.3.4"), 33, 48).is_err());
        assert!(truncate(ip("1.2.3.4"), -1, 48).is_err());
        assert!(truncate(ip("1.2.3.4"), 24, 129).is_err());
    }

    #[test]
    fn pseudonyms_are_keyed_stable_and_distinct() {
        let salt = "0123456789abcdef-salt";
        let a = pseudonym(ip("81.2.69.160"), salt).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, pseudonym(ip("81.2.69.160"), salt).unwrap());
        assert_eq!(a, pseudonym(ip("::ffff:81.2.69.160"), salt).unwrap());
        assert_ne!(a, pseudonym(ip("81.2.69.161"), salt).unwrap());
        assert_ne!(
            a,
            pseudonym(ip("81.2.69.160"), "another-salt-of-16+").unwrap()
        );
        // Against an independent HMAC-SHA256: key "key-key-key-key-",
        // message 0x01020304 (computed with Python's hmac module).
        assert_eq!(
            pseudonym(ip("1.2.3.4"), "key-key-key-key-").unwrap(),
            PY_HMAC_1_2_3_4
        );
    }

    #[test]
    fn short_salts_are_refused() {
        assert!(pseudonym(ip("1.2.3.4"), "short").is_err());
        assert!(pseudonym(ip("1.2.3.4"), "").is_err());
    }

    const PY_HMAC_1_2_3_4: &str = "00e3b44dc3f7f24f29dcee5a8d0035e2";
}
