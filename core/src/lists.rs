//! Network lists: longest-prefix match over a user's list of networks (`ip_list_match`).
//!
//! Networks either nest or are disjoint, so a list flattens into disjoint address ranges,
//! each owned by the most specific network covering it. A lookup is then one binary search
//! over the range starts of the address's family: no per-prefix-length probing, and the
//! same cost for a list of ten networks with five prefix lengths as for a million.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::classify::canonical;

/// An address or range bound as an integer of its family.
trait Bits: Copy + Ord {
    fn succ(self) -> Option<Self>;
    fn pred(self) -> Self;
}

impl Bits for u32 {
    fn succ(self) -> Option<u32> {
        self.checked_add(1)
    }
    fn pred(self) -> u32 {
        self - 1
    }
}

impl Bits for u128 {
    fn succ(self) -> Option<u128> {
        self.checked_add(1)
    }
    fn pred(self) -> u128 {
        self - 1
    }
}

/// Disjoint ranges `[start, end]` of one family, sorted, each naming the entry that owns it.
#[derive(Debug, Default)]
struct Ranges<B> {
    starts: Vec<B>,
    ends: Vec<B>,
    owners: Vec<u32>,
}

impl<B: Bits> Ranges<B> {
    fn push(&mut self, start: B, end: B, owner: u32) {
        // Neighbouring pieces of one network (split around a more specific one) stay apart:
        // merging would gain little and the pieces are few.
        self.starts.push(start);
        self.ends.push(end);
        self.owners.push(owner);
    }

    /// Flattens `(start, end, owner)` networks sorted by start, wider first on equal starts.
    /// A network equal to one before it is a duplicate: the first keeps it.
    fn build(sorted: &[(B, B, u32)]) -> (Ranges<B>, usize) {
        let mut out = Ranges {
            starts: Vec::new(),
            ends: Vec::new(),
            owners: Vec::new(),
        };
        let mut duplicates = 0;
        // Open networks, each containing the next; `cursor` is the first address of the
        // innermost one not yet given to a range (None: past the end of the space).
        let mut stack: Vec<(B, B, u32)> = Vec::new();
        let mut cursor: Option<B> = None;
        let close = |stack: &mut Vec<(B, B, u32)>, cursor: &mut Option<B>, out: &mut Ranges<B>| {
            let (_, end, owner) = stack.pop().expect("non-empty");
            if let Some(c) = *cursor {
                if c <= end {
                    out.push(c, end, owner);
                }
            }
            *cursor = end.succ();
        };
        for &(start, end, owner) in sorted {
            while stack.last().is_some_and(|&(_, e, _)| e < start) {
                close(&mut stack, &mut cursor, &mut out);
            }
            if let Some(&(s, e, _)) = stack.last() {
                if s == start && e == end {
                    duplicates += 1;
                    continue;
                }
                // The enclosing network owns what lies before this one.
                let (_, _, enclosing) = *stack.last().expect("non-empty");
                if let Some(c) = cursor {
                    if c < start {
                        out.push(c, start.pred(), enclosing);
                    }
                }
            }
            stack.push((start, end, owner));
            cursor = Some(start);
        }
        while !stack.is_empty() {
            close(&mut stack, &mut cursor, &mut out);
        }
        (out, duplicates)
    }

    #[inline]
    fn find(&self, ip: B) -> Option<u32> {
        // The last range starting at or before ip.
        let i = self.starts.partition_point(|&s| s <= ip).checked_sub(1)?;
        (ip <= self.ends[i]).then(|| self.owners[i])
    }

    fn len(&self) -> usize {
        self.starts.len()
    }
}

/// A list's networks, ready for longest-prefix match. Entries are numbered in the order they
/// were given; a lookup answers the number of the most specific network holding the address.
#[derive(Debug, Default)]
pub struct PrefixTable {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    networks: usize,
    duplicates: usize,
}

/// A network as the lists key it: IPv4-mapped networks (`::ffff:0:0/96` and inside) as IPv4.
pub fn canonical_network(net: IpNetwork) -> IpNetwork {
    match net {
        IpNetwork::V6(v6) if v6.prefix() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => IpNetwork::new(IpAddr::V4(v4), v6.prefix() - 96).unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

impl PrefixTable {
    /// Builds the table of `networks` (entry `i` is `networks[i]`; host bits are ignored).
    pub fn new(networks: &[IpNetwork]) -> PrefixTable {
        let mut v4: Vec<(u32, u32, u32)> = Vec::new();
        let mut v6: Vec<(u128, u128, u32)> = Vec::new();
        for (i, net) in networks.iter().enumerate() {
            let owner = u32::try_from(i).expect("fewer than 2^32 networks");
            match canonical_network(*net) {
                IpNetwork::V4(n) => {
                    let start = u32::from(n.network());
                    let span = u32::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
                    v4.push((start, start | span, owner));
                }
                IpNetwork::V6(n) => {
                    let start = u128::from(n.network());
                    let span = u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
                    v6.push((start, start | span, owner));
                }
            }
        }
        // By start, wider first; equal networks in entry order (the first wins).
        v4.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        v6.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let (v4, d4) = Ranges::build(&v4);
        let (v6, d6) = Ranges::build(&v6);
        PrefixTable {
            v4,
            v6,
            networks: networks.len(),
            duplicates: d4 + d6,
        }
    }

    /// The entry of the most specific network holding `ip` (IPv4-mapped addresses as IPv4).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<usize> {
        match canonical(ip) {
            IpAddr::V4(a) => self.v4.find(u32::from(a)),
            IpAddr::V6(a) => self.v6.find(u128::from(a)),
        }
        .map(|i| i as usize)
    }

    /// Networks given, including duplicates.
    pub fn networks(&self) -> usize {
        self.networks
    }

    /// Networks given more than once (the first of each answers).
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Disjoint ranges the table holds (memory: 12 bytes per IPv4 range, 36 per IPv6).
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Bytes the table holds, roughly.
    pub fn memory(&self) -> usize {
        self.v4.len() * 12 + self.v6.len() * 36
    }
}

/// The name of a list: a lowercase identifier (it appears in SQL, views and column names).
pub fn valid_list_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNetwork> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn hit(t: &PrefixTable, list: &[IpNetwork], ip: &str) -> Option<String> {
        t.lookup(ip.parse().unwrap()).map(|i| list[i].to_string())
    }

    /// The obvious answer: the longest listed prefix containing the address.
    fn naive(list: &[IpNetwork], ip: IpAddr) -> Option<usize> {
        let ip = canonical(ip);
        let mut best: Option<(usize, u8)> = None;
        for (i, n) in list.iter().enumerate() {
            let n = canonical_network(*n);
            let same_family = n.is_ipv4() == ip.is_ipv4();
            if same_family && n.contains(ip) && best.is_none_or(|(_, p)| n.prefix() > p) {
                best = Some((i, n.prefix()));
            }
        }
        best.map(|(i, _)| i)
    }

    #[test]
    fn the_most_specific_network_answers() {
        let list = nets(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.128/25",
            "192.168.0.0/16",
            "2001:db8::/32",
            "2001:db8:1::/48",
        ]);
        let t = PrefixTable::new(&list);
        assert_eq!(hit(&t, &list, "10.0.0.1").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(hit(&t, &list, "10.1.0.1").as_deref(), Some("10.1.0.0/16"));
        assert_eq!(hit(&t, &list, "10.1.2.1").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(
            hit(&t, &list, "10.1.2.200").as_deref(),
            Some("10.1.2.128/25")
        );
        assert_eq!(hit(&t, &list, "10.1.3.0").as_deref(), Some("10.1.0.0/16"));
        assert_eq!(hit(&t, &list, "10.2.0.0").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(
            hit(&t, &list, "10.255.255.255").as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(hit(&t, &list, "11.0.0.0"), None);
        assert_eq!(hit(&t, &list, "9.255.255.255"), None);
        assert_eq!(
            hit(&t, &list, "::ffff:10.1.2.3").as_deref(),
            Some("10.1.2.0/24")
        );
        assert_eq!(
            hit(&t, &list, "2001:db8:1::5").as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(
            hit(&t, &list, "2001:db8:2::5").as_deref(),
            Some("2001:db8::/32")
        );
        assert_eq!(hit(&t, &list, "2001:db9::"), None);
        // An IPv4 network never answers an IPv6 address that is not IPv4-mapped.
        assert_eq!(hit(&t, &list, "::10.1.2.3"), None);
    }

    #[test]
    fn whole_spaces_hosts_and_duplicates() {
        let list = nets(&[
            "0.0.0.0/0",
            "255.255.255.255/32",
            "::/0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
            "1.2.3.4/32",
            "1.2.3.4/32",
            "::ffff:5.6.7.0/120",
        ]);
        let t = PrefixTable::new(&list);
        assert_eq!(t.duplicates(), 1);
        assert_eq!(
            t.lookup("1.2.3.4".parse().unwrap()),
            Some(4),
            "the first of equals"
        );
        assert_eq!(t.lookup("1.2.3.5".parse().unwrap()), Some(0));
        assert_eq!(t.lookup("255.255.255.255".parse().unwrap()), Some(1));
        assert_eq!(t.lookup("255.255.255.254".parse().unwrap()), Some(0));
        assert_eq!(t.lookup("5.6.7.8".parse().unwrap()), Some(6));
        assert_eq!(
            t.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()),
            Some(3)
        );
        assert_eq!(t.lookup("::".parse().unwrap()), Some(2));
        assert_eq!(
            PrefixTable::new(&[]).lookup("1.1.1.1".parse().unwrap()),
            None
        );
    }

    #[test]
    fn agrees_with_the_naive_answer_on_random_lists() {
        // A small deterministic generator: no dependency, the same lists every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..200 {
            let mut list = Vec::new();
            for _ in 0..(next() % 40) {
                // Addresses from a small space so that networks nest and collide often.
                let base = (next() % 64) as u32;
                let prefix = 24 + (next() % 9) as u8;
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 | (base << 2) | (next() % 4) as u32);
                let net = IpNetwork::new(IpAddr::V4(ip), prefix).unwrap();
                list.push(IpNetwork::new(net.network(), prefix).unwrap());
                if next() % 3 == 0 {
                    let v6 = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(base));
                    let p6 = 120 + (next() % 9) as u8;
                    let n6 = IpNetwork::new(IpAddr::V6(v6), p6).unwrap();
                    list.push(IpNetwork::new(n6.network(), p6).unwrap());
                }
            }
            let t = PrefixTable::new(&list);
            for probe in 0..300u32 {
                let v4 = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | probe));
                let v6 = IpAddr::V6(std::net::Ipv6Addr::from(
                    (0x2001_0db8u128 << 96) | u128::from(probe),
                ));
                for ip in [v4, v6] {
                    let want = naive(&list, ip).map(|i| canonical_network(list[i]));
                    let got = t.lookup(ip).map(|i| canonical_network(list[i]));
                    assert_eq!(got, want, "round {round}: {ip} in {list:?}");
                }
            }
        }
    }

    #[test]
    fn list_names() {
        assert!(valid_list_name("sensors"));
        assert!(valid_list_name("aws_ranges_2024"));
        assert!(!valid_list_name(""));
        assert!(!valid_list_name("Sensors"));
        assert!(!valid_list_name("1list"));
        assert!(!valid_list_name("a-b"));
        assert!(!valid_list_name(&"a".repeat(64)));
    }
}
