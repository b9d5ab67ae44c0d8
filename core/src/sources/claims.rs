//! Claims on addresses a refresh is asking a network source about.
//!
//! A refresh claims the due rows it picked, talks to the network holding no row lock (so an
//! event insert for one of those addresses never waits for a source), then locks the rows
//! briefly to write the answers. The claims are what keeps two concurrent refreshes from
//! asking about the same address: they live in shared memory, visible to every backend at
//! once, and lapse on their own: when the claiming process is gone, or at the end of the lease.
//!
//! The table is a fixed array with open addressing (it lives in shared memory): a key is
//! placed within [`PROBES`] slots of its hash; a slot whose claim lapsed is reused, and a
//! table that holds no live claim any more is wiped, so lapsed claims never pile up.

use std::net::IpAddr;

/// Slots in the table (a claim is 32 bytes: 512 KiB of shared memory). A refresh claims at
/// most this many addresses at once; more than that in one call is not a refresh but a backfill.
pub const CAPACITY: usize = 1 << 14;
/// How far from its hash a key may be placed.
const PROBES: usize = 64;

/// One claim: source (0: never used), the address, who holds it and until when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Claim {
    source: u8,
    /// 4 or 6.
    family: u8,
    addr: [u8; 16],
    pid: i32,
    /// Seconds since 1970.
    until: i64,
}

impl Claim {
    fn held(&self, now: i64, alive: &dyn Fn(i32) -> bool) -> bool {
        self.source != 0 && self.until > now && alive(self.pid)
    }

    fn is(&self, source: u8, family: u8, addr: &[u8; 16]) -> bool {
        self.source == source && self.family == family && self.addr == *addr
    }
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct ClaimTable {
    slots: [Claim; CAPACITY],
}

impl Default for ClaimTable {
    fn default() -> Self {
        ClaimTable {
            slots: [Claim::default(); CAPACITY],
        }
    }
}

/// Who claims, when, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Claimant {
    pub pid: i32,
    /// Seconds since 1970.
    pub now: i64,
    /// Seconds the claim lasts unless released.
    pub lease: i64,
}

/// Whether a process runs (a claim of a process that is gone has lapsed).
pub fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let sent = unsafe { libc::kill(pid, 0) } == 0;
    sent || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn home(source: u8, family: u8, addr: &[u8; 16]) -> usize {
    super::home_slot(&[source], family, addr, CAPACITY)
}

impl ClaimTable {
    /// Claims, in order, up to `limit` of `ips` for `source` that no live claim holds, for
    /// `lease` seconds; returns those it claimed. `alive(pid)` says whether a process runs.
    pub fn claim(
        &mut self,
        source: u8,
        ips: &[IpAddr],
        limit: usize,
        by: Claimant,
        alive: &dyn Fn(i32) -> bool,
    ) -> Vec<IpAddr> {
        let Claimant { pid, now, lease } = by;
        if !self.slots.iter().any(|c| c.held(now, alive)) {
            self.slots.fill(Claim::default());
        }
        let until = now.saturating_add(lease);
        let mut claimed = Vec::new();
        for &ip in ips {
            if claimed.len() >= limit {
                break;
            }
            let (family, addr) = super::address_key(ip);
            let start = home(source, family, &addr);
            let mut free = None;
            let mut taken = false;
            for k in 0..PROBES {
                let i = (start + k) % CAPACITY;
                let c = self.slots[i];
                if c.is(source, family, &addr) {
                    if c.held(now, alive) && c.pid != pid {
                        taken = true;
                    } else {
                        free = Some(i);
                    }
                    break;
                }
                if free.is_none() && !c.held(now, alive) {
                    free = Some(i);
                }
                if c.source == 0 {
                    break;
                }
            }
            if taken {
                continue;
            }
            // A full neighbourhood: the address stays unclaimed for this run.
            if let Some(i) = free {
                self.slots[i] = Claim {
                    source,
                    family,
                    addr,
                    pid,
                    until,
                };
                claimed.push(ip);
            }
        }
        claimed
    }

    /// Releases the claims `pid` holds on `ips` for `source`.
    pub fn release(&mut self, source: u8, ips: &[IpAddr], pid: i32) {
        for &ip in ips {
            let (family, addr) = super::address_key(ip);
            let start = home(source, family, &addr);
            for k in 0..PROBES {
                let i = (start + k) % CAPACITY;
                let c = &mut self.slots[i];
                if c.is(source, family, &addr) {
                    if c.pid == pid {
                        c.until = 0;
                    }
                    break;
                }
                if c.source == 0 {
                    break;
                }
            }
        }
    }

    /// Releases every claim of `pid` (its transaction ended in an error).
    pub fn release_all(&mut self, pid: i32) {
        for c in self.slots.iter_mut().filter(|c| c.pid == pid) {
            c.until = 0;
        }
    }

    /// How many claims are live.
    pub fn held(&self, now: i64, alive: &dyn Fn(i32) -> bool) -> usize {
        self.slots.iter().filter(|c| c.held(now, alive)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn table() -> Box<ClaimTable> {
        // SAFETY: all zeros is an empty table (every field of Claim is an integer); built on
        // the heap, not on a test thread's small stack.
        unsafe { Box::<ClaimTable>::new_zeroed().assume_init() }
    }

    const ALIVE: &dyn Fn(i32) -> bool = &|_| true;

    #[test]
    fn two_refreshes_never_claim_the_same_address() {
        let mut t = table();
        let a = t.claim(
            1,
            &ips(&["1.1.1.1", "2.2.2.2", "2001:db8::1"]),
            10,
            Claimant {
                pid: 100,
                now: 1000,
                lease: 60,
            },
            ALIVE,
        );
        assert_eq!(a.len(), 3);
        let b = t.claim(
            1,
            &ips(&["2.2.2.2", "3.3.3.3", "2001:db8::1"]),
            10,
            Claimant {
                pid: 200,
                now: 1000,
                lease: 60,
            },
            ALIVE,
        );
        assert_eq!(b, ips(&["3.3.3.3"]));
        // Another source is another claim.
        assert_eq!(
            t.claim(
                2,
                &ips(&["1.1.1.1"]),
                10,
                Claimant {
                    pid: 200,
                    now: 1000,
                    lease: 60
                },
                ALIVE
            )
            .len(),
            1
        );
        // The limit counts claimed addresses, in order.
        assert_eq!(
            t.claim(
                3,
                &ips(&["4.4.4.4", "5.5.5.5", "6.6.6.6"]),
                2,
                Claimant {
                    pid: 300,
                    now: 1000,
                    lease: 60
                },
                ALIVE
            ),
            ips(&["4.4.4.4", "5.5.5.5"])
        );
    }

    #[test]
    fn claims_lapse_when_released_expired_or_their_process_is_gone() {
        let mut t = table();
        let list = ips(&["1.1.1.1", "2.2.2.2"]);
        t.claim(
            1,
            &list,
            10,
            Claimant {
                pid: 100,
                now: 1000,
                lease: 60,
            },
            ALIVE,
        );
        t.release(1, &list[..1], 100);
        assert_eq!(
            t.claim(
                1,
                &list,
                10,
                Claimant {
                    pid: 200,
                    now: 1000,
                    lease: 60
                },
                ALIVE
            ),
            ips(&["1.1.1.1"])
        );
        // At the end of the lease.
        assert_eq!(
            t.claim(
                1,
                &list,
                10,
                Claimant {
                    pid: 300,
                    now: 1061,
                    lease: 60
                },
                ALIVE
            )
            .len(),
            2
        );
        // A process that is gone holds nothing.
        let gone = |pid: i32| pid != 300;
        assert_eq!(
            t.claim(
                1,
                &list,
                10,
                Claimant {
                    pid: 400,
                    now: 1062,
                    lease: 60
                },
                &gone
            )
            .len(),
            2
        );
        t.release_all(400);
        assert_eq!(t.held(1062, ALIVE), 0);
    }

    #[test]
    fn a_full_table_claims_less_and_empties_itself() {
        let mut t = table();
        let many: Vec<IpAddr> = (0..CAPACITY as u32 + 1000)
            .map(|i| IpAddr::from(i.to_be_bytes()))
            .collect();
        let got = t.claim(
            1,
            &many,
            usize::MAX,
            Claimant {
                pid: 1,
                now: 0,
                lease: 60,
            },
            ALIVE,
        );
        assert!(
            got.len() < many.len() && got.len() > CAPACITY / 2,
            "{}",
            got.len()
        );
        assert_eq!(t.held(0, ALIVE), got.len());
        // Once none is live, the table starts empty again.
        let later = t.claim(
            1,
            &many[..10],
            10,
            Claimant {
                pid: 2,
                now: 100,
                lease: 60,
            },
            ALIVE,
        );
        assert_eq!(later.len(), 10);
        assert_eq!(t.held(100, ALIVE), 10);
    }
}
