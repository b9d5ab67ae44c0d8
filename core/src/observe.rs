//! Aggregating observed events per address: how often each address appeared, and its first
//! and last event time. The observe trigger and backfill read event rows and hand each
//! (address, time) pair here; the inventory is then written once per distinct address.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::classify::canonical;

/// What the events said about one address. Times are PostgreSQL timestamps (microseconds
/// since 2000-01-01 UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub count: i64,
    pub first: i64,
    pub last: i64,
}

#[derive(Debug, Default)]
pub struct Observations {
    by_address: HashMap<IpAddr, Seen>,
    total: i64,
}

impl Observations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one appearance of `ip` at `ts`; the address is keyed canonically (an
    /// IPv4-mapped IPv6 address counts as its IPv4 address).
    #[inline]
    pub fn add(&mut self, ip: IpAddr, ts: i64) {
        self.total += 1;
        self.by_address
            .entry(canonical(ip))
            .and_modify(|s| {
                s.count += 1;
                s.first = s.first.min(ts);
                s.last = s.last.max(ts);
            })
            .or_insert(Seen {
                count: 1,
                first: ts,
                last: ts,
            });
    }

    /// Appearances counted so far.
    pub fn total(&self) -> i64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// The addresses in ascending order (the order PostgreSQL sorts `inet` host addresses:
    /// IPv4 before IPv6, then numerically), so that concurrent writers lock inventory rows in
    /// the same order and cannot deadlock.
    pub fn into_sorted(self) -> Vec<(IpAddr, Seen)> {
        let mut v: Vec<_> = self.by_address.into_iter().collect();
        v.sort_unstable_by_key(|(ip, _)| *ip);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn counts_first_and_last_per_canonical_address() {
        let mut o = Observations::new();
        o.add(ip("81.2.69.160"), 50);
        o.add(ip("::ffff:81.2.69.160"), 10);
        o.add(ip("2001:db8::1"), 7);
        o.add(ip("1.1.1.1"), 99);
        o.add(ip("81.2.69.160"), 30);
        assert_eq!(o.total(), 5);
        let v = o.into_sorted();
        assert_eq!(
            v,
            vec![
                (
                    ip("1.1.1.1"),
                    Seen {
                        count: 1,
                        first: 99,
                        last: 99
                    }
                ),
                (
                    ip("81.2.69.160"),
                    Seen {
                        count: 3,
                        first: 10,
                        last: 50
                    }
                ),
                (
                    ip("2001:db8::1"),
                    Seen {
                        count: 1,
                        first: 7,
                        last: 7
                    }
                ),
            ]
        );
    }
}
