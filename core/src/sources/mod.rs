//! The network sources: Team Cymru (ASN of addresses MaxMind has none for), GreyNoise
//! (scanner classification, daily quota) and reverse DNS.
//!
//! [`Source`] is the one name of a source everywhere: SQL passes its name, the extension
//! parses it once, and what differs between sources (settings, inventory column, which
//! addresses it answers for) is asked of the enum. Each source's protocol and client is its
//! own module; [`net`] is what they share (endpoints, deadlines, cancellation, worker
//! threads), [`fetch`] is one refresh run over any of them and [`claims`] keeps concurrent
//! refreshes from asking about the same address.

use std::net::IpAddr;

pub mod claims;
pub mod cymru;
pub mod dns;
pub mod fetch;
pub mod greynoise;
pub mod net;
pub mod queue;

named!(
    /// A network source, named as in `cascade_refresh(source)`, `ip_inventory_failures`,
    /// `enrichment`'s keys and `ip_inventory_stats`.
    Source { Cymru = "cymru", GreyNoise = "greynoise", Rdns = "rdns" }
);

impl Source {
    /// The setting that holds how long its answers stay fresh.
    pub const fn ttl_setting(self) -> &'static str {
        match self {
            Source::Cymru => "ip_inventory.cymru_ttl",
            Source::GreyNoise => "ip_inventory.greynoise_ttl",
            Source::Rdns => "ip_inventory.rdns_ttl",
        }
    }

    /// A small number naming it in shared memory (claims); never 0.
    pub const fn code(self) -> u8 {
        match self {
            Source::Cymru => 1,
            Source::GreyNoise => 2,
            Source::Rdns => 3,
        }
    }

    /// Whether the source can answer for this address at all: GreyNoise Community knows
    /// IPv4 only. (The rows a refresh selects follow the same rule in SQL:
    /// `_ip_inventory_source_serves`, sql/cascade.sql.)
    pub fn answers_for(self, ip: IpAddr) -> bool {
        match self {
            Source::GreyNoise => ip.is_ipv4(),
            Source::Cymru | Source::Rdns => true,
        }
    }

    /// Whether the source serves an inventory row: public addresses only; Team Cymru only
    /// where MaxMind has no ASN (the row's ASN is none or Cymru's own); GreyNoise IPv4 only.
    /// The same rule in SQL, where the due-row indexes need it as a predicate:
    /// `_ip_inventory_source_serves` (sql/cascade.sql).
    pub fn serves(self, ip: IpAddr, public: bool, asn_source: Option<&str>) -> bool {
        public
            && self.answers_for(ip)
            && match self {
                Source::Cymru => matches!(asn_source, None | Some("cymru")),
                Source::GreyNoise | Source::Rdns => true,
            }
    }

    /// The names, as a hint lists them: "cymru, greynoise, rdns".
    pub fn names() -> String {
        Source::ALL
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An address as the shared-memory tables of the refresh (claims, queue) store it: its family
/// and 16 bytes (IPv4 in the first four).
pub(crate) fn address_key(ip: std::net::IpAddr) -> (u8, [u8; 16]) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&v4.octets());
            (4, a)
        }
        std::net::IpAddr::V6(v6) => (6, v6.octets()),
    }
}

/// The slot where an entry's probe window starts in a table of `capacity` slots: FNV-1a of
/// `prefix` (what else the entry is keyed by) and the address key.
pub(crate) fn home_slot(prefix: &[u8], family: u8, addr: &[u8; 16], capacity: usize) -> usize {
    let h = prefix
        .iter()
        .chain(std::iter::once(&family))
        .chain(addr.iter())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    (h as usize) % capacity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_rows_a_source_serves() {
        let v4: IpAddr = "81.2.69.142".parse().unwrap();
        let v6: IpAddr = "2001:218::1".parse().unwrap();
        // Private and other special addresses: no source.
        assert!(Source::ALL.iter().all(|s| !s.serves(v4, false, None)));
        // Cymru only where MaxMind gave no ASN.
        assert!(Source::Cymru.serves(v4, true, None));
        assert!(Source::Cymru.serves(v6, true, Some("cymru")));
        assert!(!Source::Cymru.serves(v4, true, Some("maxmind")));
        // GreyNoise Community knows IPv4 only; rDNS serves both.
        assert!(Source::GreyNoise.serves(v4, true, Some("maxmind")));
        assert!(!Source::GreyNoise.serves(v6, true, None));
        assert!(Source::Rdns.serves(v6, true, Some("maxmind")));
    }

    #[test]
    fn names_parse_back_and_codes_are_distinct() {
        for &s in Source::ALL {
            assert_eq!(Source::parse(s.name()), Some(s));
            assert!(s.ttl_setting().ends_with(&format!("{}_ttl", s.name())));
            assert_ne!(s.code(), 0);
            assert_eq!(
                Source::ALL.iter().filter(|o| o.code() == s.code()).count(),
                1
            );
        }
        assert_eq!(Source::parse("GreyNoise"), None);
        assert_eq!(Source::parse("maxmind"), None);
        assert_eq!(Source::names(), "cymru, greynoise, rdns");
    }

    #[test]
    fn greynoise_answers_for_ipv4_only() {
        let v6: IpAddr = "2620:fe::fe".parse().unwrap();
        assert!(!Source::GreyNoise.answers_for(v6));
        assert!(Source::Rdns.answers_for(v6));
        assert!(Source::GreyNoise.answers_for("8.8.8.8".parse().unwrap()));
    }
}
