//! The refresh queue: addresses a live consumer asked about (`ip_verdict`) whose answer from a
//! network source was missing or stale, to be asked about first by the next scheduled refresh
//! of that source.
//!
//! It lives in shared memory, not in a table, because the consumer must never wait: queueing
//! is a few hundred nanoseconds under a lightweight lock, with no transaction id, no WAL and
//! no row lock that a running refresh could hold. It is a fixed array (bounded: a flood of
//! unknown addresses fills it and is then refused, never grows it) with open addressing like
//! the claims (`claims`): an address is placed within [`PROBES`] slots of its hash, and a
//! lookup scans that whole window, so removing an entry is clearing its slot. An entry
//! older than [`MAX_AGE_SECS`] counts as free: addresses queued for a source that no refresh
//! runs for do not hold their slots for ever. The queue is a priority hint, never the only
//! record of work: a stale row stays due for the scheduled refresh whether queued or not,
//! and a restart (which clears shared memory) only loses the priority. Entries belong to a
//! database (its OID): each database's refresh takes only what its own verdicts queued.

use std::net::IpAddr;

use super::Source;

/// Slots in the queue (an entry is 32 bytes: 128 KiB of shared memory).
pub const CAPACITY: usize = 1 << 12;
/// How far from its hash an address may be placed.
const PROBES: usize = 32;
/// An entry lapses after this long (a day): by then the scheduled refresh reached the row.
pub const MAX_AGE_SECS: i64 = 86_400;

/// One queued address: the sources it waits for (a bit per `Source::code`; 0: a free slot),
/// the address, the database, and when it was queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    sources: u8,
    /// 4 or 6.
    family: u8,
    addr: [u8; 16],
    /// The database's OID.
    db: u32,
    /// Seconds since 1970.
    queued_at: i64,
}

impl Entry {
    fn live(&self, now: i64) -> bool {
        self.sources != 0 && now.saturating_sub(self.queued_at) < MAX_AGE_SECS
    }

    fn is(&self, db: u32, family: u8, addr: &[u8; 16]) -> bool {
        self.db == db && self.family == family && self.addr == *addr
    }

    fn ip(&self) -> IpAddr {
        if self.family == 4 {
            IpAddr::from([self.addr[0], self.addr[1], self.addr[2], self.addr[3]])
        } else {
            IpAddr::from(self.addr)
        }
    }
}

/// The bit of a source in [`Entry::sources`].
pub const fn bit(source: Source) -> u8 {
    1 << source.code()
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct RefreshQueue {
    slots: [Entry; CAPACITY],
}

impl Default for RefreshQueue {
    fn default() -> Self {
        RefreshQueue {
            slots: [Entry::default(); CAPACITY],
        }
    }
}

/// What [`RefreshQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The address was queued now.
    Queued,
    /// It was queued already (now also for any source it was not queued for).
    Already,
    /// No room near its hash: the queue is full there; nothing changed.
    Full,
}

fn home(db: u32, family: u8, addr: &[u8; 16]) -> usize {
    super::home_slot(&db.to_le_bytes(), family, addr, CAPACITY)
}

impl RefreshQueue {
    fn find(&self, db: u32, family: u8, addr: &[u8; 16], now: i64) -> Option<usize> {
        let start = home(db, family, addr);
        (0..PROBES)
            .map(|k| (start + k) % CAPACITY)
            .find(|&i| self.slots[i].live(now) && self.slots[i].is(db, family, addr))
    }

    /// Queues `ip` of database `db` for the sources of `sources` (bits); `sources == 0`
    /// queues nothing.
    pub fn push(&mut self, db: u32, ip: IpAddr, sources: u8, now: i64) -> Pushed {
        if sources == 0 {
            return Pushed::Already;
        }
        let (family, addr) = super::address_key(ip);
        if let Some(i) = self.find(db, family, &addr, now) {
            self.slots[i].sources |= sources;
            return Pushed::Already;
        }
        let start = home(db, family, &addr);
        match (0..PROBES)
            .map(|k| (start + k) % CAPACITY)
            .find(|&i| !self.slots[i].live(now))
        {
            Some(i) => {
                self.slots[i] = Entry {
                    sources,
                    family,
                    addr,
                    db,
                    queued_at: now,
                };
                Pushed::Queued
            }
            None => Pushed::Full,
        }
    }

    /// Up to `limit` addresses of database `db` queued for the source `bit`, longest queued
    /// first.
    pub fn peek(&self, db: u32, bit: u8, limit: usize, now: i64) -> Vec<IpAddr> {
        let mut waiting: Vec<&Entry> = self
            .slots
            .iter()
            .filter(|e| e.live(now) && e.db == db && e.sources & bit != 0)
            .collect();
        waiting.sort_by_key(|e| (e.queued_at, e.family, e.addr));
        waiting.iter().take(limit).map(|e| e.ip()).collect()
    }

    /// The refresh of the source `bit` is done with `ips`: they no longer wait for it (an
    /// address waiting for no source any more frees its slot).
    pub fn done(&mut self, db: u32, bit: u8, ips: &[IpAddr], now: i64) {
        for &ip in ips {
            let (family, addr) = super::address_key(ip);
            if let Some(i) = self.find(db, family, &addr, now) {
                self.slots[i].sources &= !bit;
            }
        }
    }

    /// Every live entry of database `db`: address, source bits, when queued.
    pub fn entries(&self, db: u32, now: i64) -> Vec<(IpAddr, u8, i64)> {
        let mut all: Vec<(IpAddr, u8, i64)> = self
            .slots
            .iter()
            .filter(|e| e.live(now) && e.db == db)
            .map(|e| (e.ip(), e.sources, e.queued_at))
            .collect();
        all.sort_by_key(|&(ip, _, at)| (at, ip));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn queue() -> Box<RefreshQueue> {
        // SAFETY: all zeros is an empty queue (every field of Entry is an integer); built on
        // the heap, not on a test thread's small stack.
        unsafe { Box::<RefreshQueue>::new_zeroed().assume_init() }
    }

    const GN: u8 = bit(Source::GreyNoise);
    const RDNS: u8 = bit(Source::Rdns);

    #[test]
    fn queued_per_source_oldest_first_and_done_frees() {
        let mut q = queue();
        assert_eq!(q.push(7, ip("8.8.8.8"), GN | RDNS, 100), Pushed::Queued);
        assert_eq!(q.push(7, ip("2001:db8::1"), RDNS, 101), Pushed::Queued);
        assert_eq!(q.push(7, ip("1.1.1.1"), GN, 102), Pushed::Queued);
        assert_eq!(q.push(7, ip("8.8.8.8"), GN, 103), Pushed::Already);
        assert_eq!(q.push(7, ip("9.9.9.9"), 0, 103), Pushed::Already);
        assert_eq!(q.peek(7, GN, 10, 110), vec![ip("8.8.8.8"), ip("1.1.1.1")]);
        assert_eq!(q.peek(7, RDNS, 1, 110), vec![ip("8.8.8.8")]);
        q.done(7, GN, &[ip("8.8.8.8"), ip("1.1.1.1"), ip("7.7.7.7")], 110);
        assert!(q.peek(7, GN, 10, 110).is_empty());
        // Another database's queue is its own.
        assert_eq!(q.push(8, ip("8.8.8.8"), GN, 111), Pushed::Queued);
        assert!(q.peek(7, GN, 10, 111).is_empty());
        assert_eq!(q.peek(8, GN, 10, 111), vec![ip("8.8.8.8")]);
        q.done(7, GN, &[ip("8.8.8.8")], 111);
        assert_eq!(q.entries(8, 111), vec![(ip("8.8.8.8"), GN, 111)]);
        // 8.8.8.8 still waits for rdns; 1.1.1.1 waits for nothing and is gone.
        assert_eq!(
            q.entries(7, 110),
            vec![(ip("8.8.8.8"), RDNS, 100), (ip("2001:db8::1"), RDNS, 101)]
        );
    }

    #[test]
    fn bounded_a_flood_is_refused_not_grown() {
        let mut q = queue();
        let mut queued = 0;
        let mut full = 0;
        for n in 0..(CAPACITY as u32 * 2) {
            match q.push(7, IpAddr::from((0x0100_0000 + n).to_be_bytes()), GN, 100) {
                Pushed::Queued => queued += 1,
                Pushed::Full => full += 1,
                Pushed::Already => unreachable!(),
            }
        }
        assert!(queued <= CAPACITY && queued > CAPACITY / 2, "{queued}");
        assert_eq!(queued + full, CAPACITY * 2);
        assert_eq!(q.entries(7, 100).len(), queued);
        // Draining makes room again.
        let all = q.peek(7, GN, CAPACITY, 100);
        assert_eq!(all.len(), queued);
        q.done(7, GN, &all, 100);
        assert!(q.entries(7, 100).is_empty());
        assert_eq!(q.push(7, ip("8.8.8.8"), GN, 100), Pushed::Queued);
    }

    #[test]
    fn old_entries_lapse() {
        let mut q = queue();
        assert_eq!(q.push(7, ip("8.8.8.8"), GN, 100), Pushed::Queued);
        assert_eq!(q.peek(7, GN, 10, 100 + MAX_AGE_SECS - 1).len(), 1);
        assert!(q.peek(7, GN, 10, 100 + MAX_AGE_SECS).is_empty());
        assert_eq!(
            q.push(7, ip("8.8.8.8"), GN, 100 + MAX_AGE_SECS),
            Pushed::Queued
        );
    }
}
