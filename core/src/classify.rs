//! Address classification after the IANA special-purpose address registries
//! (<https://www.iana.org/assignments/iana-ipv4-special-registry>,
//! <https://www.iana.org/assignments/iana-ipv6-special-registry>) and the IPv6 address space
//! registry (everything outside `2000::/3` is unassigned or reserved).
//!
//! Only `public` addresses are ever looked up in a database or sent to a remote service.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are classified as the IPv4 address they carry:
//! dual-stack sockets report IPv4 peers in that form, and a separate `ipv4_mapped` class would
//! hide that `::ffff:10.0.0.1` is private and `::ffff:8.8.8.8` public.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address is, in the sense that matters for enrichment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpClass {
    /// Globally routable unicast: the only class that is looked up or sent anywhere.
    Public,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`).
    Private,
    /// `127/8`, `::1`.
    Loopback,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// RFC 6598 shared address space `100.64/10`.
    Cgnat,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`, `2001:2::/48`.
    Benchmarking,
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0/8` other than `0.0.0.0` ("this network").
    ThisNetwork,
    /// `255.255.255.255`.
    Broadcast,
    /// `fc00::/7`.
    UniqueLocal,
    /// `192.0.0/24` and `2001::/23` assignments that are not globally reachable.
    IetfProtocol,
    /// NAT64 prefixes `64:ff9b::/96` and `64:ff9b:1::/48` (RFC 6052, RFC 8215).
    Ipv4Translated,
    /// Teredo `2001::/32`.
    Teredo,
    /// 6to4 `2002::/16` and the deprecated 6to4 relay anycast `192.88.99/24`.
    SixToFour,
    /// Discard-only `100::/64` and the dummy prefix `100:0:0:1::/64`.
    Discard,
    /// SRv6 SIDs `5f00::/16`.
    SegmentRouting,
    /// `240/4` and all IPv6 space outside `2000::/3` not named above.
    Reserved,
}

impl IpClass {
    /// The name used in SQL (`ip_class()`, the `ip_class` column).
    pub const fn as_str(self) -> &'static str {
        match self {
            IpClass::Public => "public",
            IpClass::Private => "private",
            IpClass::Loopback => "loopback",
            IpClass::LinkLocal => "link_local",
            IpClass::Cgnat => "cgnat",
            IpClass::Multicast => "multicast",
            IpClass::Documentation => "documentation",
            IpClass::Benchmarking => "benchmarking",
            IpClass::Unspecified => "unspecified",
            IpClass::ThisNetwork => "this_network",
            IpClass::Broadcast => "broadcast",
            IpClass::UniqueLocal => "unique_local",
            IpClass::IetfProtocol => "ietf_protocol",
            IpClass::Ipv4Translated => "ipv4_translated",
            IpClass::Teredo => "teredo",
            IpClass::SixToFour => "6to4",
            IpClass::Discard => "discard",
            IpClass::SegmentRouting => "segment_routing",
            IpClass::Reserved => "reserved",
        }
    }

    /// Every class, in declaration order (for documentation and tests).
    pub const ALL: [IpClass; 19] = [
        IpClass::Public,
        IpClass::Private,
        IpClass::Loopback,
        IpClass::LinkLocal,
        IpClass::Cgnat,
        IpClass::Multicast,
        IpClass::Documentation,
        IpClass::Benchmarking,
        IpClass::Unspecified,
        IpClass::ThisNetwork,
        IpClass::Broadcast,
        IpClass::UniqueLocal,
        IpClass::IetfProtocol,
        IpClass::Ipv4Translated,
        IpClass::Teredo,
        IpClass::SixToFour,
        IpClass::Discard,
        IpClass::SegmentRouting,
        IpClass::Reserved,
    ];

    pub const fn is_public(self) -> bool {
        matches!(self, IpClass::Public)
    }

    /// Whether the MaxMind databases are consulted for an address of this class: public
    /// addresses, and the 6to4 (`2002::/16`, `192.88.99/24`) and Teredo (`2001::/32`)
    /// transition ranges. MaxMind's writers alias `2002::/16` and `2001::/32` to the IPv4
    /// tree, so libmaxminddb answers them with the data of the IPv4 address they embed (the
    /// 6to4 gateway, the Teredo server); we answer as it does. Network sources (Team Cymru,
    /// GreyNoise, reverse DNS) still get public addresses only.
    pub const fn in_maxmind(self) -> bool {
        matches!(self, IpClass::Public | IpClass::SixToFour | IpClass::Teredo)
    }

    /// The classes [`IpClass::in_maxmind`] accepts, as SQL names.
    pub const MAXMIND: [&'static str; 3] = ["public", "6to4", "teredo"];
}

impl std::fmt::Display for IpClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address a lookup should use: IPv4-mapped IPv6 addresses become their IPv4 address,
/// everything else is unchanged.
#[inline]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Classifies an address (IPv4-mapped addresses by the IPv4 address they carry).
#[inline]
pub fn classify(ip: IpAddr) -> IpClass {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

#[inline]
fn in_v4(ip: u32, net: u32, len: u32) -> bool {
    // len is never 0 here; a /0 would shift by 32.
    (ip ^ net) >> (32 - len) == 0
}

/// IPv4 ranges, most specific first where they nest (`192.0.0/24` holds global exceptions).
const V4_RANGES: &[(u32, u32, IpClass)] = &[
    (0x0000_0000, 32, IpClass::Unspecified),   // 0.0.0.0/32
    (0x0000_0000, 8, IpClass::ThisNetwork),    // 0.0.0.0/8
    (0x0A00_0000, 8, IpClass::Private),        // 10.0.0.0/8
    (0x6440_0000, 10, IpClass::Cgnat),         // 100.64.0.0/10
    (0x7F00_0000, 8, IpClass::Loopback),       // 127.0.0.0/8
    (0xA9FE_0000, 16, IpClass::LinkLocal),     // 169.254.0.0/16
    (0xAC10_0000, 12, IpClass::Private),       // 172.16.0.0/12
    (0xC000_0009, 32, IpClass::Public),        // 192.0.0.9/32 PCP anycast (global)
    (0xC000_000A, 32, IpClass::Public),        // 192.0.0.10/32 TURN anycast (global)
    (0xC000_0000, 24, IpClass::IetfProtocol),  // 192.0.0.0/24
    (0xC000_0200, 24, IpClass::Documentation), // 192.0.2.0/24 TEST-NET-1
    (0xC058_6300, 24, IpClass::SixToFour),     // 192.88.99.0/24 deprecated 6to4 relay
    (0xC0A8_0000, 16, IpClass::Private),       // 192.168.0.0/16
    (0xC612_0000, 15, IpClass::Benchmarking),  // 198.18.0.0/15
    (0xC633_6400, 24, IpClass::Documentation), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24, IpClass::Documentation), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4, IpClass::Multicast),      // 224.0.0.0/4
    (0xFFFF_FFFF, 32, IpClass::Broadcast),     // 255.255.255.255/32
    (0xF000_0000, 4, IpClass::Reserved),       // 240.0.0.0/4
];

pub fn classify_v4(ip: Ipv4Addr) -> IpClass {
    let ip = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|&&(net, len, _)| in_v4(ip, net, len))
        .map_or(IpClass::Public, |&(_, _, class)| class)
}

#[inline]
fn in_v6(ip: u128, net: u128, len: u32) -> bool {
    (ip ^ net) >> (128 - len) == 0
}

/// IPv6 ranges, most specific first where they nest.
const V6_RANGES: &[(u128, u32, IpClass)] = &[
    (0, 128, IpClass::Unspecified), // ::/128
    (1, 128, IpClass::Loopback),    // ::1/128
    (
        0x0064_ff9b_0000_0000_0000_0000_0000_0000,
        96,
        IpClass::Ipv4Translated,
    ), // 64:ff9b::/96
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        IpClass::Ipv4Translated,
    ), // 64:ff9b:1::/48
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        IpClass::Discard,
    ), // 100::/64
    (
        0x0100_0000_0000_0001_0000_0000_0000_0000,
        64,
        IpClass::Discard,
    ), // 100:0:0:1::/64 dummy
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        32,
        IpClass::Teredo,
    ), // 2001::/32
    (
        0x2001_0001_0000_0000_0000_0000_0000_0001,
        128,
        IpClass::Public,
    ), // PCP anycast (global)
    (
        0x2001_0001_0000_0000_0000_0000_0000_0002,
        128,
        IpClass::Public,
    ), // TURN anycast (global)
    (
        0x2001_0001_0000_0000_0000_0000_0000_0003,
        128,
        IpClass::Public,
    ), // DNS-SD SRP (global)
    (
        0x2001_0002_0000_0000_0000_0000_0000_0000,
        48,
        IpClass::Benchmarking,
    ), // 2001:2::/48
    (
        0x2001_0003_0000_0000_0000_0000_0000_0000,
        32,
        IpClass::Public,
    ), // AMT (global)
    (
        0x2001_0004_0112_0000_0000_0000_0000_0000,
        48,
        IpClass::Public,
    ), // AS112-v6 (global)
    (
        0x2001_0020_0000_0000_0000_0000_0000_0000,
        28,
        IpClass::Public,
    ), // ORCHIDv2 (global)
    (
        0x2001_0030_0000_0000_0000_0000_0000_0000,
        28,
        IpClass::Public,
    ), // Drone Remote ID (global)
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        23,
        IpClass::IetfProtocol,
    ), // 2001::/23
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        IpClass::Documentation,
    ), // 2001:db8::/32
    (
        0x2002_0000_0000_0000_0000_0000_0000_0000,
        16,
        IpClass::SixToFour,
    ), // 2002::/16
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        IpClass::Documentation,
    ), // 3fff::/20
    (
        0x5f00_0000_0000_0000_0000_0000_0000_0000,
        16,
        IpClass::SegmentRouting,
    ), // 5f00::/16
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        IpClass::UniqueLocal,
    ), // fc00::/7
    (
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        IpClass::LinkLocal,
    ), // fe80::/10
    (
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        IpClass::Multicast,
    ), // ff00::/8
    (
        0x2000_0000_0000_0000_0000_0000_0000_0000,
        3,
        IpClass::Public,
    ), // 2000::/3 global unicast
];

/// Classifies an IPv6 address as it stands (an IPv4-mapped address falls in `::/3`, i.e.
/// `reserved`; use [`classify`] to classify it by the IPv4 address it carries).
pub fn classify_v6(ip: Ipv6Addr) -> IpClass {
    let ip = u128::from(ip);
    V6_RANGES
        .iter()
        .find(|&&(net, len, _)| in_v6(ip, net, len))
        .map_or(IpClass::Reserved, |&(_, _, class)| class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(s: &str) -> &'static str {
        classify(s.parse().unwrap()).as_str()
    }

    #[test]
    fn maxmind_is_consulted_for_public_6to4_and_teredo_only() {
        for class in IpClass::ALL {
            assert_eq!(
                class.in_maxmind(),
                IpClass::MAXMIND.contains(&class.as_str()),
                "{class}"
            );
        }
        for (ip, consulted) in [
            ("8.8.8.8", true),
            ("2002:5102:45a0::1", true),
            ("2001:0:5102:45a0::1", true),
            ("192.88.99.1", true),
            ("10.0.0.1", false),
            ("2001:db8::1", false),
            ("2001:2::1", false),
            ("64:ff9b::808:808", false),
        ] {
            assert_eq!(
                classify(ip.parse().unwrap()).in_maxmind(),
                consulted,
                "{ip}"
            );
        }
    }

    #[test]
    fn ipv4_special_purpose_registry() {
        let cases = [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this_network"),
            ("10.0.0.1", "private"),
            ("10.255.255.255", "private"),
            ("11.0.0.1", "public"),
            ("100.63.255.255", "public"),
            ("100.64.0.1", "cgnat"),
            ("100.127.255.255", "cgnat"),
            ("100.128.0.0", "public"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.169.254", "link_local"),
            ("172.15.255.255", "public"),
            ("172.16.0.0", "private"),
            ("172.31.255.255", "private"),
            ("172.32.0.0", "public"),
            ("192.0.0.1", "ietf_protocol"),
            ("192.0.0.9", "public"),
            ("192.0.0.10", "public"),
            ("192.0.0.170", "ietf_protocol"),
            ("192.0.2.55", "documentation"),
            ("192.88.99.1", "6to4"),
            ("192.168.1.1", "private"),
            ("192.169.0.1", "public"),
            ("198.17.255.255", "public"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("198.20.0.0", "public"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.200", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.255", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("1.1.1.1", "public"),
            ("8.8.8.8", "public"),
            ("81.2.69.160", "public"),
        ];
        for (ip, want) in cases {
            assert_eq!(class_of(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_special_purpose_registry() {
        let cases = [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::2", "reserved"),
            ("::1.2.3.4", "reserved"), // deprecated IPv4-compatible form
            ("64:ff9b::808:808", "ipv4_translated"),
            ("64:ff9b:1::1", "ipv4_translated"),
            ("100::1", "discard"),
            ("100:0:0:1::1", "discard"),
            ("2001::1", "teredo"),
            ("2001:1::1", "public"),
            ("2001:1::4", "ietf_protocol"),
            ("2001:2::1", "benchmarking"),
            ("2001:3::1", "public"),
            ("2001:4:112::1", "public"),
            ("2001:10::1", "ietf_protocol"), // deprecated ORCHID
            ("2001:20::1", "public"),
            ("2001:30::1", "public"),
            ("2001:1ff::1", "ietf_protocol"),
            ("2001:200::1", "public"),
            ("2001:db8::1", "documentation"),
            ("2002:c000:204::1", "6to4"),
            ("2400:cb00::1", "public"),
            ("2a02:ff0::1", "public"),
            ("3fff::1", "documentation"),
            ("3fff:fff::1", "documentation"),
            ("3fff:1000::1", "public"),
            ("4000::1", "reserved"),
            ("5f00::1", "segment_routing"),
            ("fc00::1", "unique_local"),
            ("fd12:3456::1", "unique_local"),
            ("fe80::1", "link_local"),
            ("febf::1", "link_local"),
            ("fec0::1", "reserved"), // deprecated site-local
            ("ff02::1", "multicast"),
        ];
        for (ip, want) in cases {
            assert_eq!(class_of(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_classified_by_their_ipv4_address() {
        assert_eq!(class_of("::ffff:8.8.8.8"), "public");
        assert_eq!(class_of("::ffff:10.1.2.3"), "private");
        assert_eq!(class_of("::ffff:127.0.0.1"), "loopback");
        assert_eq!(class_of("::ffff:0.0.0.0"), "unspecified");
        assert_eq!(
            canonical("::ffff:1.2.3.4".parse().unwrap()),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            canonical("2001:db8::1".parse().unwrap()),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Without unmapping, the mapped range is plain reserved IPv6 space.
        assert_eq!(
            classify_v6("::ffff:8.8.8.8".parse().unwrap()),
            IpClass::Reserved
        );
    }

    #[test]
    fn only_public_is_public_and_names_are_unique() {
        let mut names: Vec<_> = IpClass::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), IpClass::ALL.len());
        for class in IpClass::ALL {
            assert_eq!(class.is_public(), class == IpClass::Public);
        }
    }
}
