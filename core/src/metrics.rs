//! Operational counters: what every backend counts (lookups, errors by kind, network requests
//! and their latency, inventory writes, reloads) and how it is laid out.
//!
//! [`Counters`] is one flat array of atomics, so it can live in Postgres shared memory and be
//! updated from any thread. Hot paths count into a per-backend [`Pending`] (plain integers)
//! and add it to the shared array now and then (`Pending::drain_into`): a shared atomic per
//! lookup would put every backend on the same cache lines.
//!
//! Every counter is a [`Metric`], an index with a name: `(source, metric, error_kind)`, e.g.
//! `("city", "lookups", None)` or `("greynoise", "errors", Some("rate_limited"))`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::mmdb::{DbErrorKind, DbFamily};
use crate::sources::net::NetErrorKind;
use crate::sources::Source;

named!(DbMetric {
    Lookups = "lookups",
    NotFound = "not_found",
    /// Lookups whose time was measured (one in [`LATENCY_SAMPLE_EVERY`]).
    LookupSamples = "lookup_samples",
    LookupNsSum = "lookup_ns_sum",
});
named!(SourceMetric {
    /// Network exchanges: one whois session per batch, one DNS query, one HTTP request.
    Requests = "requests",
    RequestSuccesses = "request_successes",
    RequestFailures = "request_failures",
    RequestNsSum = "request_ns_sum",
    /// Per address, as recorded in the inventory.
    Found = "found",
    NotFound = "not_found",
    Failed = "failed",
    Skipped = "skipped",
});
named!(
    /// Inventory writes, counted when their transaction commits.
    InventoryMetric {
        /// Address appearances recorded (an event with two address columns counts two).
        Observations = "observations",
        NewAddresses = "new_addresses",
        /// Rows enriched from MaxMind (on recording or by enrich_pending).
        MaxmindEnriched = "maxmind_enriched",
    }
);
named!(MaxmindMetric {
    /// Lookups answered without a database because the address is not public.
    NotPublic = "not_public",
    Reloads = "reloads",
    ReloadFailures = "reload_failures",
    /// City lookups answered from the backend's cache of decoded records, and those that
    /// decoded the record (core::mmdb::CityCache).
    CityCacheHits = "city_cache_hits",
    CityCacheMisses = "city_cache_misses",
    /// Record values that could not be read and were answered NULL (an IPinfo `asn` that is
    /// no `AS<number>`).
    BadValues = "bad_values",
});

/// One lookup in this many is timed (two clock reads per timed lookup).
pub const LATENCY_SAMPLE_EVERY: u64 = 64;

/// Upper bounds (nanoseconds, inclusive) of the buckets of the MaxMind lookup latency
/// histogram (timed lookups only); one more bucket counts the slower ones (`+Inf`). A lookup
/// takes about 1 µs; the tail is page faults and cold caches.
pub const LOOKUP_BOUNDS_NS: [u64; 11] = [
    500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 10_000_000,
];
/// Upper bounds (nanoseconds, inclusive) of the buckets of the network request latency
/// histogram; one more bucket counts the slower ones (`+Inf`). Timeouts are seconds.
pub const REQUEST_BOUNDS_NS: [u64; 12] = [
    1_000_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
const LOOKUP_BUCKETS: usize = LOOKUP_BOUNDS_NS.len() + 1;
const REQUEST_BUCKETS: usize = REQUEST_BOUNDS_NS.len() + 1;

/// The bucket of `ns` among `bounds`: the first bound at least `ns`, else the last (`+Inf`).
#[inline]
fn bucket_of(bounds: &[u64], ns: u64) -> usize {
    bounds.partition_point(|&b| b < ns)
}

const DBS: usize = DbFamily::ALL.len();
const SOURCES: usize = Source::ALL.len();
const DB_BASE: usize = 0;
const DB_ERROR_BASE: usize = DB_BASE + DBS * DbMetric::ALL.len();
const SOURCE_BASE: usize = DB_ERROR_BASE + DBS * DbErrorKind::ALL.len();
const NET_ERROR_BASE: usize = SOURCE_BASE + SOURCES * SourceMetric::ALL.len();
const INVENTORY_BASE: usize = NET_ERROR_BASE + SOURCES * NetErrorKind::ALL.len();
const MAXMIND_BASE: usize = INVENTORY_BASE + InventoryMetric::ALL.len();
/// The number of named counters (the rows of `ip_inventory_stats`).
pub const NAMED_COUNT: usize = MAXMIND_BASE + MaxmindMetric::ALL.len();
// Histogram buckets (not cumulative: one count per bucket), read by `Counters::histograms`.
const LOOKUP_BUCKET_BASE: usize = NAMED_COUNT;
const REQUEST_BUCKET_BASE: usize = LOOKUP_BUCKET_BASE + DBS * LOOKUP_BUCKETS;
/// The number of counters, histogram buckets included.
pub const COUNT: usize = REQUEST_BUCKET_BASE + SOURCES * REQUEST_BUCKETS;

/// One counter: an index into [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Metric(usize);

/// What a [`Metric`] is called in `ip_inventory_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    /// `city`, `asn`, `custom`, `maxmind`, `cymru`, `greynoise`, `rdns` or `inventory`.
    pub source: &'static str,
    pub metric: &'static str,
    /// For `errors`: why.
    pub error_kind: Option<&'static str>,
}

impl Metric {
    pub const fn db(db: DbFamily, m: DbMetric) -> Metric {
        Metric(DB_BASE + db as usize * DbMetric::ALL.len() + m as usize)
    }
    pub const fn db_error(db: DbFamily, kind: DbErrorKind) -> Metric {
        Metric(DB_ERROR_BASE + db as usize * DbErrorKind::ALL.len() + kind as usize)
    }
    pub const fn source(source: Source, m: SourceMetric) -> Metric {
        Metric(SOURCE_BASE + source as usize * SourceMetric::ALL.len() + m as usize)
    }
    pub const fn net_error(source: Source, kind: NetErrorKind) -> Metric {
        Metric(NET_ERROR_BASE + source as usize * NetErrorKind::ALL.len() + kind as usize)
    }
    pub const fn inventory(m: InventoryMetric) -> Metric {
        Metric(INVENTORY_BASE + m as usize)
    }
    pub const fn maxmind(m: MaxmindMetric) -> Metric {
        Metric(MAXMIND_BASE + m as usize)
    }
    /// The lookup latency bucket of `db` that a lookup of `ns` nanoseconds falls in.
    #[inline]
    pub fn lookup_bucket(db: DbFamily, ns: u64) -> Metric {
        Metric(LOOKUP_BUCKET_BASE + db as usize * LOOKUP_BUCKETS + bucket_of(&LOOKUP_BOUNDS_NS, ns))
    }
    /// The request latency bucket of `source` that a request of `ns` nanoseconds falls in.
    #[inline]
    pub fn request_bucket(source: Source, ns: u64) -> Metric {
        Metric(
            REQUEST_BUCKET_BASE
                + source as usize * REQUEST_BUCKETS
                + bucket_of(&REQUEST_BOUNDS_NS, ns),
        )
    }

    /// Every named counter, in index order (the order of `ip_inventory_stats`); histogram
    /// buckets are read with [`Counters::histograms`].
    pub fn all() -> impl Iterator<Item = Metric> {
        (0..NAMED_COUNT).map(Metric)
    }

    pub fn name(self) -> Name {
        let i = self.0;
        let (source, metric, error_kind) = if i < DB_ERROR_BASE {
            let k = i - DB_BASE;
            let n = DbMetric::ALL.len();
            (
                DbFamily::ALL[k / n].name(),
                DbMetric::ALL[k % n].name(),
                None,
            )
        } else if i < SOURCE_BASE {
            let k = i - DB_ERROR_BASE;
            let n = DbErrorKind::ALL.len();
            (
                DbFamily::ALL[k / n].name(),
                "errors",
                Some(DbErrorKind::ALL[k % n].name()),
            )
        } else if i < NET_ERROR_BASE {
            let k = i - SOURCE_BASE;
            let n = SourceMetric::ALL.len();
            (
                Source::ALL[k / n].name(),
                SourceMetric::ALL[k % n].name(),
                None,
            )
        } else if i < INVENTORY_BASE {
            let k = i - NET_ERROR_BASE;
            let n = NetErrorKind::ALL.len();
            (
                Source::ALL[k / n].name(),
                "errors",
                Some(NetErrorKind::ALL[k % n].name()),
            )
        } else if i < MAXMIND_BASE {
            (
                "inventory",
                InventoryMetric::ALL[i - INVENTORY_BASE].name(),
                None,
            )
        } else if i < NAMED_COUNT {
            ("maxmind", MaxmindMetric::ALL[i - MAXMIND_BASE].name(), None)
        } else if i < REQUEST_BUCKET_BASE {
            let k = i - LOOKUP_BUCKET_BASE;
            (
                DbFamily::ALL[k / LOOKUP_BUCKETS].name(),
                "lookup_bucket",
                None,
            )
        } else {
            let k = i - REQUEST_BUCKET_BASE;
            (
                Source::ALL[k / REQUEST_BUCKETS].name(),
                "request_bucket",
                None,
            )
        };
        Name {
            source,
            metric,
            error_kind,
        }
    }
}

/// The shared counters (in shared memory in the extension), plus when they were last reset.
pub struct Counters {
    values: [AtomicU64; COUNT],
    /// Microseconds since 1970 (0: never reset since the server started).
    reset_at: AtomicI64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new()
    }
}

impl Counters {
    pub const fn new() -> Counters {
        Counters {
            values: [const { AtomicU64::new(0) }; COUNT],
            reset_at: AtomicI64::new(0),
        }
    }

    #[inline]
    pub fn add(&self, m: Metric, n: u64) {
        if n != 0 {
            self.values[m.0].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, m: Metric) -> u64 {
        self.values[m.0].load(Ordering::Relaxed)
    }

    /// Zeroes every counter and records `now` (microseconds since 1970) as the reset time.
    /// Counts added concurrently land before or after the reset.
    pub fn reset(&self, now: i64) {
        for v in &self.values {
            v.store(0, Ordering::Relaxed);
        }
        self.reset_at.store(now, Ordering::Release);
    }

    /// Microseconds since 1970 of the last reset, if any.
    pub fn reset_at(&self) -> Option<i64> {
        Some(self.reset_at.load(Ordering::Acquire)).filter(|&t| t != 0)
    }

    /// Records one network request: its latency, and its failure kind if it failed.
    pub fn request(&self, source: Source, elapsed_ns: u64, failure: Option<NetErrorKind>) {
        self.add(Metric::source(source, SourceMetric::Requests), 1);
        self.add(
            Metric::source(source, SourceMetric::RequestNsSum),
            elapsed_ns,
        );
        self.add(Metric::request_bucket(source, elapsed_ns), 1);
        match failure {
            None => self.add(Metric::source(source, SourceMetric::RequestSuccesses), 1),
            Some(kind) => {
                self.add(Metric::source(source, SourceMetric::RequestFailures), 1);
                self.add(Metric::net_error(source, kind), 1);
            }
        }
    }
}

/// A latency histogram as Prometheus wants it: cumulative counts per upper bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// A database family (`city`, `asn`, ...) or a network source (`cymru`, ...).
    pub source: &'static str,
    /// `lookup_seconds` (MaxMind, timed lookups only) or `request_seconds` (network).
    pub metric: &'static str,
    /// Upper bounds in nanoseconds, without the last (`+Inf`).
    pub bounds_ns: &'static [u64],
    /// Observations at most each bound: non-decreasing, one per bound.
    pub cumulative: Vec<u64>,
    /// All observations (the `+Inf` bucket): at least the last of `cumulative`.
    pub count: u64,
    /// Their total time in nanoseconds.
    pub sum_ns: u64,
}

impl Counters {
    /// The lookup latency histogram of every database family, then the request latency
    /// histogram of every network source. The count is the sum of the buckets (not the
    /// `lookup_samples` / `requests` counters), so each histogram is consistent in itself
    /// even when read while a backend adds to it.
    pub fn histograms(&self) -> Vec<Histogram> {
        let read = |base: usize, n: usize| -> (Vec<u64>, u64) {
            let mut cumulative = Vec::with_capacity(n - 1);
            let mut total = 0u64;
            for i in 0..n {
                total = total.saturating_add(self.values[base + i].load(Ordering::Relaxed));
                if i + 1 < n {
                    cumulative.push(total);
                }
            }
            (cumulative, total)
        };
        let mut out = Vec::with_capacity(DBS + SOURCES);
        for &db in DbFamily::ALL {
            let (cumulative, count) = read(
                LOOKUP_BUCKET_BASE + db as usize * LOOKUP_BUCKETS,
                LOOKUP_BUCKETS,
            );
            out.push(Histogram {
                source: db.name(),
                metric: "lookup_seconds",
                bounds_ns: &LOOKUP_BOUNDS_NS,
                cumulative,
                count,
                sum_ns: self.get(Metric::db(db, DbMetric::LookupNsSum)),
            });
        }
        for &source in Source::ALL {
            let (cumulative, count) = read(
                REQUEST_BUCKET_BASE + source as usize * REQUEST_BUCKETS,
                REQUEST_BUCKETS,
            );
            out.push(Histogram {
                source: source.name(),
                metric: "request_seconds",
                bounds_ns: &REQUEST_BOUNDS_NS,
                cumulative,
                count,
                sum_ns: self.get(Metric::source(source, SourceMetric::RequestNsSum)),
            });
        }
        out
    }
}

/// Counts not yet added to [`Counters`]: one per backend, touched by its main thread only.
pub struct Pending {
    values: [u64; COUNT],
    /// How many counts were added since the last drain (a cheap "is there anything").
    since_drain: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Pending::new()
    }
}

impl Pending {
    pub const fn new() -> Pending {
        Pending {
            values: [0; COUNT],
            since_drain: 0,
        }
    }

    /// Adds `n`; returns how many counts are pending now (the caller drains past a limit).
    #[inline]
    pub fn add(&mut self, m: Metric, n: u64) -> u64 {
        self.values[m.0] += n;
        self.since_drain += 1;
        self.since_drain
    }

    #[inline]
    pub fn get(&self, m: Metric) -> u64 {
        self.values[m.0]
    }

    pub fn is_empty(&self) -> bool {
        self.since_drain == 0
    }

    /// Adds everything to `counters` and starts again from zero.
    pub fn drain_into(&mut self, counters: &Counters) {
        if self.is_empty() {
            return;
        }
        for (i, v) in self.values.iter_mut().enumerate() {
            counters.add(Metric(i), std::mem::take(v));
        }
        self.since_drain = 0;
    }

    /// Forgets everything (the counts of a rolled-back transaction).
    pub fn clear(&mut self) {
        if !self.is_empty() {
            self.values = [0; COUNT];
            self.since_drain = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_index_has_one_distinct_name_and_the_constructors_round_trip() {
        let names: Vec<Name> = Metric::all().map(Metric::name).collect();
        assert_eq!(names.len(), NAMED_COUNT);
        let distinct: HashSet<_> = names
            .iter()
            .map(|n| (n.source, n.metric, n.error_kind))
            .collect();
        assert_eq!(distinct.len(), NAMED_COUNT, "two counters share a name");

        let mut seen = HashSet::new();
        for &db in DbFamily::ALL {
            for &m in DbMetric::ALL {
                let n = Metric::db(db, m).name();
                assert_eq!(
                    (n.source, n.metric, n.error_kind),
                    (db.name(), m.name(), None)
                );
                assert!(seen.insert(Metric::db(db, m)));
            }
            for &k in DbErrorKind::ALL {
                let n = Metric::db_error(db, k).name();
                assert_eq!(
                    (n.source, n.metric, n.error_kind),
                    (db.name(), "errors", Some(k.name()))
                );
                assert!(seen.insert(Metric::db_error(db, k)));
            }
        }
        for &s in Source::ALL {
            for &m in SourceMetric::ALL {
                let n = Metric::source(s, m).name();
                assert_eq!((n.source, n.metric), (s.name(), m.name()));
                assert!(seen.insert(Metric::source(s, m)));
            }
            for &k in NetErrorKind::ALL {
                let n = Metric::net_error(s, k).name();
                assert_eq!(
                    (n.source, n.metric, n.error_kind),
                    (s.name(), "errors", Some(k.name()))
                );
                assert!(seen.insert(Metric::net_error(s, k)));
            }
        }
        for &m in InventoryMetric::ALL {
            assert_eq!(Metric::inventory(m).name().source, "inventory");
            assert!(seen.insert(Metric::inventory(m)));
        }
        for &m in MaxmindMetric::ALL {
            assert_eq!(Metric::maxmind(m).name().metric, m.name());
            assert!(seen.insert(Metric::maxmind(m)));
        }
        assert_eq!(
            seen.len(),
            NAMED_COUNT,
            "the constructors cover every named index"
        );
        // Bucket indices lie past the named ones, one set per database and per source.
        let mut buckets = HashSet::new();
        for &db in DbFamily::ALL {
            assert_eq!(Metric::lookup_bucket(db, 0), Metric::lookup_bucket(db, 500));
            assert_eq!(
                Metric::lookup_bucket(db, 10_000_001),
                Metric::lookup_bucket(db, u64::MAX)
            );
            for ns in [0, 501, 10_000_000, u64::MAX] {
                assert!(buckets.insert(Metric::lookup_bucket(db, ns)));
            }
        }
        for &s in Source::ALL {
            for ns in [0, 1_000_001, u64::MAX] {
                assert!(buckets.insert(Metric::request_bucket(s, ns)));
            }
        }
        assert!(buckets.iter().all(|m| m.0 >= NAMED_COUNT && m.0 < COUNT));
        assert_eq!(
            Metric::request_bucket(Source::ALL[SOURCES - 1], u64::MAX).0,
            COUNT - 1
        );
    }

    #[test]
    fn histograms_are_cumulative_with_the_slow_ones_only_in_the_count() {
        let c = Counters::new();
        let mut pending = Pending::new();
        // Inclusive upper bounds: 500 ns is in the first bucket, 501 ns in the second.
        for ns in [1, 500, 501, 3_000, 3_000, 20_000_000] {
            pending.add(Metric::lookup_bucket(DbFamily::Asn, ns), 1);
            pending.add(Metric::db(DbFamily::Asn, DbMetric::LookupNsSum), ns);
        }
        pending.drain_into(&c);
        c.request(Source::Rdns, 2_000_000, None);
        c.request(Source::Rdns, 30_000_000_000, Some(NetErrorKind::Timeout));
        let hs = c.histograms();
        assert_eq!(hs.len(), DBS + SOURCES);
        let asn = hs.iter().find(|h| h.source == "asn").unwrap();
        assert_eq!(asn.metric, "lookup_seconds");
        assert_eq!(asn.cumulative.len(), LOOKUP_BOUNDS_NS.len());
        assert_eq!(&asn.cumulative[..4], &[2, 3, 3, 5]);
        assert_eq!(
            *asn.cumulative.last().unwrap(),
            5,
            "20 ms is beyond the last bound"
        );
        assert_eq!(asn.count, 6);
        assert_eq!(asn.sum_ns, 20_007_002);
        assert!(asn.cumulative.windows(2).all(|w| w[0] <= w[1]));
        let rdns = hs.iter().find(|h| h.source == "rdns").unwrap();
        assert_eq!(rdns.metric, "request_seconds");
        assert_eq!(&rdns.cumulative[..2], &[0, 1]);
        assert_eq!(*rdns.cumulative.last().unwrap(), 1);
        assert_eq!(rdns.count, 2);
        assert_eq!(rdns.sum_ns, 30_002_000_000);
        let city = hs.iter().find(|h| h.source == "city").unwrap();
        assert_eq!(city.count, 0);
        c.reset(1);
        assert!(c.histograms().iter().all(|h| h.count == 0 && h.sum_ns == 0));
    }

    #[test]
    fn pending_counts_reach_the_shared_counters_once() {
        let shared = Counters::new();
        let mut pending = Pending::new();
        let lookups = Metric::db(DbFamily::City, DbMetric::Lookups);
        let enriched = Metric::inventory(InventoryMetric::MaxmindEnriched);
        assert_eq!(pending.add(lookups, 1), 1);
        assert_eq!(pending.add(lookups, 1), 2);
        pending.add(enriched, 40);
        assert_eq!(shared.get(lookups), 0, "nothing shared before the drain");
        pending.drain_into(&shared);
        assert!(pending.is_empty());
        pending.drain_into(&shared);
        assert_eq!(shared.get(lookups), 2);
        assert_eq!(shared.get(enriched), 40);

        pending.add(enriched, 5);
        pending.clear();
        pending.drain_into(&shared);
        assert_eq!(shared.get(enriched), 40, "cleared counts are never shared");
    }

    #[test]
    fn requests_count_latency_and_failures_by_kind() {
        let c = Counters::new();
        c.request(Source::GreyNoise, 1_500, None);
        c.request(
            Source::GreyNoise,
            2_000_000,
            Some(NetErrorKind::RateLimited),
        );
        let get = |m| c.get(Metric::source(Source::GreyNoise, m));
        assert_eq!(get(SourceMetric::Requests), 2);
        assert_eq!(get(SourceMetric::RequestSuccesses), 1);
        assert_eq!(get(SourceMetric::RequestFailures), 1);
        assert_eq!(get(SourceMetric::RequestNsSum), 2_001_500);
        assert_eq!(
            c.get(Metric::net_error(
                Source::GreyNoise,
                NetErrorKind::RateLimited
            )),
            1
        );
        assert_eq!(
            c.get(Metric::net_error(Source::Cymru, NetErrorKind::RateLimited)),
            0
        );
        assert_eq!(c.reset_at(), None);
        c.reset(1_700_000_000_000_000);
        assert_eq!(get(SourceMetric::Requests), 0);
        assert_eq!(c.reset_at(), Some(1_700_000_000_000_000));
    }
}
