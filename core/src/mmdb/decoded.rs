//! Pre-decoded City records: every record of a verified City copy, decoded once in one
//! language by whichever process first needs them, written beside the copy in the store
//! (`<sha256>.city-<language>.decoded`) and mapped read-only by every backend.
//!
//! Decoding a GeoLite2 City record is most of what `enrich_ip` pays on an address whose record
//! no cache holds: its maps and the names it points to lie scattered over the file, one cache
//! miss after another (about 1.2 µs; the per-backend [`super::CityCache`] keeps 8 192 records
//! and answers 72 % of uniformly random addresses). Here a lookup reads one slot of a hash
//! table, one entry of one cache line, and the entry's strings from a pool: on one million
//! uniformly random addresses over GeoLite2 City, walk and fields 377–473 ns against 742–970
//! ns through the cache, in the same runs (`core/examples/lookup_speed.rs`,
//! `docs/benchmarks.md`). The file of GeoLite2 City takes 64 MB for its 539 790 records and
//! the IPv4 country map, shared by all backends through the page cache, and 1.5 s to build.
//! `ip_country` reads the map alone for IPv4 addresses (28 ns against 195 ns for the walk and
//! the table's slot), and the slot alone for IPv6.
//!
//! The bytes are derived by this code from a verified copy, in the directory only the server
//! writes, and exist under their final name only once complete (written, synced, renamed), as
//! the copies themselves. Still, every read is bounds-checked and every string checked as
//! UTF-8: a damaged file answers `None` (the caller decodes the record), never a panic.
//!
//! Layout (little-endian):
//! - header, [`HEADER`] bytes: magic, version, table slots (a power of two), records, string
//!   pool length, IPv4 ranges ([`NO_V4_MAP`]: no map), the copy's SHA-256, the language
//!   (length and up to [`MAX_LANGUAGE`] bytes);
//! - the table: per slot ([`SLOT`] bytes) the record's data-section offset plus one (0:
//!   empty), its entry's number and the place of its country code in the pool ([`NO_STRING`]:
//!   none), all `u32`; open addressing, at most half full. `ip_country` reads the slot alone
//!   for IPv6 addresses;
//! - the entries, [`ENTRY`] bytes each (one cache line): presence bits (`u32`), accuracy radius
//!   (`u16`), latitude and longitude (`f64`), and per string ([`STRINGS`]) its place in the pool
//!   (`u32`);
//! - the pool: each distinct string once, as its length (`u16`) and its bytes (15 MB for
//!   GeoLite2 City, mostly city names and postal codes). The strings many records share
//!   (countries, regions, time zones) stay in the CPU's cache;
//! - the IPv4 country map, `ip_country`'s answer without walking the tree: per /16
//!   ([`V4_TOP`] entries of [`V4_TOP_ENTRY`] bytes) either its one answer, or where its ranges
//!   start and how many there are; then each range's first address within its /16 (`u16`),
//!   then each range's answer (`u32`: a country code's place, [`NO_STRING`], [`NO_DATA`] or
//!   [`LOOK_UP`]). Adjacent networks with the same answer are one range: GeoLite2 City's
//!   IPv4 tree has millions of networks and far fewer country changes, so the map stays a few
//!   MB that the CPU's cache holds, where the walk reads one random place of a 26 MB tree per
//!   level.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use maxminddb::{Mmap, WithinOptions};

use super::record::CityFieldsOf;
use super::walk::Walked;
use super::{CityFields, Database, DbError, ErrorKind, Hit};

const MAGIC: &[u8; 8] = b"IPIDECOD";
const VERSION: u32 = 3;
/// Longest language code kept (GeoLite2's are at most 5 bytes: `pt-BR`).
pub const MAX_LANGUAGE: usize = 32;
const HEADER: usize = 8 + 4 + 4 + 4 + 4 + 4 + 32 + 4 + MAX_LANGUAGE;
/// Where the header's fields are.
const AT_HASH: usize = 28;
const AT_LANGUAGE: usize = AT_HASH + 32;
/// One slot of the table: key, entry number, country code's place.
const SLOT: usize = 12;
/// The strings of an entry, in [`CityFieldsOf::strings`] order.
const STRINGS: usize = super::record::CITY_STRINGS;
/// One entry: presence bits, accuracy, latitude, longitude, the strings' places; padded.
const ENTRY: usize = 64;
const _: () = assert!(4 + 2 + 2 + 8 + 8 + 4 * STRINGS <= ENTRY);
/// The place of a string the record does not have.
const NO_STRING: u32 = u32::MAX;
/// IPv4 country map answers beside the pool places: no record, and "look it up" (the walk
/// would decline, or a record with no entry).
const NO_DATA: u32 = u32::MAX - 1;
const LOOK_UP: u32 = u32::MAX - 2;
/// The header's count of IPv4 ranges when the file has no IPv4 country map.
const NO_V4_MAP: u32 = u32::MAX;
/// The IPv4 country map's first level: one entry per /16 (answer or first range, count).
const V4_TOP: usize = 1 << 16;
const V4_TOP_ENTRY: usize = 8;
// Presence bits past the strings' (bit i: string i present).
const LATITUDE: u32 = 1 << 9;
const LONGITUDE: u32 = 1 << 10;
const ACCURACY: u32 = 1 << 11;
// Each flag takes two bits: present, then its value.
const ANONYMOUS_PROXY: u32 = 12;
const SATELLITE: u32 = 14;
const ANYCAST: u32 = 16;

/// The pre-decoded City records of one verified copy, in one language.
pub struct DecodedCity {
    map: Mmap,
    language: String,
    slots: usize,
    table: usize,
    entries: usize,
    records: usize,
    pool: usize,
    v4: Option<V4Map>,
}

/// Where the IPv4 country map's parts start in the file.
#[derive(Clone, Copy)]
struct V4Map {
    top: usize,
    lows: usize,
    answers: usize,
    ranges: usize,
}

impl std::fmt::Debug for DecodedCity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedCity")
            .field("language", &self.language)
            .field("slots", &self.slots)
            .field("bytes", &self.map.len())
            .finish()
    }
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[inline]
fn f64_at(b: &[u8], at: usize) -> Option<f64> {
    Some(f64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The table slot where the search for `key` starts.
#[inline]
fn home(key: u32, slots: usize) -> usize {
    // Fibonacci hashing: record offsets are clustered, the product's high bits are not.
    let bits = slots.trailing_zeros();
    if bits == 0 {
        return 0;
    }
    (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

fn flag(bits: &mut u32, shift: u32, v: Option<bool>) {
    if let Some(v) = v {
        *bits |= 1 << shift;
        if v {
            *bits |= 1 << (shift + 1);
        }
    }
}

/// The IPv4 country map's three parts, as written.
struct V4Parts {
    top: Vec<u8>,
    lows: Vec<u8>,
    answers: Vec<u8>,
}

/// The IPv4 country map of `db`, whose records are `keys` (offset plus one, country code's
/// place). `None` when our walk cannot list the IPv4 tree (the crate then walks every IPv4
/// address, and so does `ip_country`).
fn v4_map(db: &Database, keys: &[(u32, u32)]) -> Option<V4Parts> {
    let country: HashMap<u32, u32> = keys.iter().copied().collect();
    let cap = usize::try_from(db.metadata().node_count)
        .ok()?
        .saturating_mul(2)
        .saturating_add(V4_TOP);
    // Over the whole IPv4 space, in order: where each answer starts.
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    db.v4_leaves(cap, |start, _prefix, walked| {
        let answer = match walked {
            None => LOOK_UP,
            Some(Walked { offset: None, .. }) => NO_DATA,
            Some(Walked {
                offset: Some(offset),
                ..
            }) => u32::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(1))
                .and_then(|key| country.get(&key).copied())
                .unwrap_or(LOOK_UP),
        };
        if ranges.last().is_none_or(|&(_, a)| a != answer) {
            ranges.push((start, answer));
        }
    })?;
    let mut parts = V4Parts {
        top: Vec::with_capacity(V4_TOP * V4_TOP_ENTRY),
        lows: Vec::new(),
        answers: Vec::new(),
    };
    let mut k = 0;
    for i in 0..V4_TOP as u32 {
        let (lo, hi) = (i << 16, i << 16 | 0xffff);
        // ranges[k] holds the /16's first address; ranges[k..j] meet the /16.
        while k + 1 < ranges.len() && ranges[k + 1].0 <= lo {
            k += 1;
        }
        let mut j = k + 1;
        while j < ranges.len() && ranges[j].0 <= hi {
            j += 1;
        }
        if j - k == 1 {
            parts.top.extend_from_slice(&ranges[k].1.to_le_bytes());
            parts.top.extend_from_slice(&1u32.to_le_bytes());
            continue;
        }
        let first = u32::try_from(parts.answers.len() / 4).ok()?;
        parts.top.extend_from_slice(&first.to_le_bytes());
        parts.top.extend_from_slice(&((j - k) as u32).to_le_bytes());
        for (n, &(start, answer)) in ranges[k..j].iter().enumerate() {
            let low = if n == 0 { 0 } else { start as u16 };
            parts.lows.extend_from_slice(&low.to_le_bytes());
            parts.answers.extend_from_slice(&answer.to_le_bytes());
        }
    }
    (parts.answers.len() / 4 < NO_V4_MAP as usize).then_some(parts)
}

fn flag_of(bits: u32, shift: u32) -> Option<bool> {
    (bits & (1 << shift) != 0).then_some(bits & (1 << (shift + 1)) != 0)
}

/// The most a file may take for a database file of `file_size` bytes: twice that, plus 16 MiB
/// (GeoLite2 City: 62 MB for a 61 MB file).
fn max_bytes(file_size: u64) -> u64 {
    file_size.saturating_mul(2).saturating_add(16 << 20)
}

/// Strings kept once each: their places in the pool.
#[derive(Default)]
struct Pool<'a> {
    bytes: Vec<u8>,
    places: HashMap<&'a str, u32>,
}

impl<'a> Pool<'a> {
    /// The place of `s`, added if new; `None` when the string is longer than 64 KiB or the
    /// pool would pass 4 GiB.
    fn place(&mut self, s: &'a str) -> Option<u32> {
        if let Some(&p) = self.places.get(s) {
            return Some(p);
        }
        let p = u32::try_from(self.bytes.len())
            .ok()
            .filter(|&p| p < LOOK_UP)?;
        self.bytes
            .extend_from_slice(&u16::try_from(s.len()).ok()?.to_le_bytes());
        self.bytes.extend_from_slice(s.as_bytes());
        self.places.insert(s, p);
        Some(p)
    }
}

/// Appends one record's entry to `entries`, its strings to `pool`; `None` when a string
/// does not fit (see [`Pool::place`]).
fn encode<'a>(f: &CityFields<'a>, entries: &mut Vec<u8>, pool: &mut Pool<'a>) -> Option<()> {
    let strings = f.strings();
    let mut bits = 0u32;
    for (i, s) in strings.iter().enumerate() {
        if s.is_some() {
            bits |= 1 << i;
        }
    }
    if f.latitude.is_some() {
        bits |= LATITUDE;
    }
    if f.longitude.is_some() {
        bits |= LONGITUDE;
    }
    if f.accuracy_radius.is_some() {
        bits |= ACCURACY;
    }
    flag(&mut bits, ANONYMOUS_PROXY, f.is_anonymous_proxy);
    flag(&mut bits, SATELLITE, f.is_satellite_provider);
    flag(&mut bits, ANYCAST, f.is_anycast);
    let start = entries.len();
    entries.extend_from_slice(&bits.to_le_bytes());
    entries.extend_from_slice(&f.accuracy_radius.unwrap_or(0).to_le_bytes());
    entries.extend_from_slice(&[0, 0]);
    entries.extend_from_slice(&f.latitude.unwrap_or(0.0).to_le_bytes());
    entries.extend_from_slice(&f.longitude.unwrap_or(0.0).to_le_bytes());
    for s in strings {
        let place = match s {
            Some(s) => pool.place(s)?,
            None => NO_STRING,
        };
        entries.extend_from_slice(&place.to_le_bytes());
    }
    entries.resize(start + ENTRY, 0);
    Some(())
}

impl DecodedCity {
    /// Decodes every record of `db` (a City database) in `language` and returns the file's
    /// bytes. `copy_hash` is the SHA-256 naming the copy, written into the header so that the
    /// file is never taken for another copy's. `None` when the database does not suit (a data
    /// section beyond 4 GiB, more than 2^31 records, a string over 64 KiB, or more bytes than
    /// [`max_bytes`] allows); an error when a record cannot be decoded or `cancelled` says so.
    pub fn build(
        db: &Database,
        language: &str,
        copy_hash: &[u8; 32],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<u8>>, DbError> {
        Self::build_within(
            db,
            language,
            copy_hash,
            cancelled,
            max_bytes(db.file_size()),
        )
    }

    /// [`DecodedCity::build`], `None` past `max_bytes` (about: the table is counted full).
    fn build_within(
        db: &Database,
        language: &str,
        copy_hash: &[u8; 32],
        cancelled: &dyn Fn() -> bool,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, DbError> {
        if language.len() > MAX_LANGUAGE {
            return Ok(None);
        }
        let err = |e| DbError::from_mmdb(db.path(), e);
        // As in `Database::verify_records`: a cap on the walk, should the tree have a cycle.
        let cap = usize::try_from(db.metadata().node_count)
            .unwrap_or(usize::MAX)
            .saturating_mul(3)
            .max(16);
        // Records in the order met, so that the same copy always gives the same bytes.
        let mut keys: Vec<(u32, u32)> = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        let mut entries = Vec::new();
        let mut pool = Pool::default();
        for (n, item) in db
            .reader
            .networks(WithinOptions::default())
            .map_err(err)?
            .enumerate()
        {
            if n > cap {
                return Err(DbError::new(
                    db.path(),
                    ErrorKind::Corrupt(
                        "the search tree has a cycle or an invalid structure".into(),
                    ),
                ));
            }
            if n.is_multiple_of(65_536) && cancelled() {
                return Err(DbError::new(db.path(), ErrorKind::Io("cancelled".into())));
            }
            let hit = Hit::from_result(db, IpAddr::V4(Ipv4Addr::UNSPECIFIED), item.map_err(err)?);
            let Some(offset) = hit.record_offset() else {
                continue;
            };
            let Some(key) = u32::try_from(offset).ok().and_then(|o| o.checked_add(1)) else {
                return Ok(None);
            };
            if !seen.insert(key) {
                continue;
            }
            let fields = db.city_fields(&hit, language)?;
            if encode(&fields, &mut entries, &mut pool).is_none() {
                return Ok(None);
            }
            // Each record takes an entry and two slots: tiny records (a hostile but valid
            // file) must not make the store grow many times the file's size.
            if (entries.len() + pool.bytes.len()) as u64 + 2 * SLOT as u64 * keys.len() as u64
                > max_bytes
            {
                return Ok(None);
            }
            let country = match fields.country_code {
                Some(c) => pool.place(c).unwrap_or(NO_STRING),
                None => NO_STRING,
            };
            keys.push((key, country));
        }
        let Some(slots) = keys
            .len()
            .checked_mul(2)
            .map(|n| n.max(2).next_power_of_two())
            .filter(|&s| u32::try_from(s).is_ok())
        else {
            return Ok(None);
        };
        let mut table = vec![(0u32, 0u32, NO_STRING); slots];
        for (number, &(key, country)) in keys.iter().enumerate() {
            let mut i = home(key, slots);
            while table[i].0 != 0 {
                i = (i + 1) & (slots - 1);
            }
            table[i] = (key, number as u32, country);
        }
        let v4 = v4_map(db, &keys);
        let ranges = v4
            .as_ref()
            .map_or(NO_V4_MAP, |m| (m.answers.len() / 4) as u32);
        let mut out = Vec::with_capacity(HEADER + slots * SLOT + entries.len() + pool.bytes.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        for n in [slots, keys.len(), pool.bytes.len()] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        out.extend_from_slice(&ranges.to_le_bytes());
        out.extend_from_slice(copy_hash);
        out.extend_from_slice(&(language.len() as u32).to_le_bytes());
        out.extend_from_slice(language.as_bytes());
        out.resize(HEADER, 0);
        for (key, number, country) in table {
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&number.to_le_bytes());
            out.extend_from_slice(&country.to_le_bytes());
        }
        out.extend_from_slice(&entries);
        out.extend_from_slice(&pool.bytes);
        if let Some(m) = v4 {
            out.extend_from_slice(&m.top);
            out.extend_from_slice(&m.lows);
            out.extend_from_slice(&m.answers);
        }
        if out.len() as u64 > max_bytes {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Maps a file written by [`DecodedCity::build`] and checks its header: its magic and
    /// version, that it was built from the copy named `copy_hash` in `language`, and that its
    /// parts fill the file exactly. `None` for anything else (the caller builds it again).
    pub fn open(path: &Path, copy_hash: &[u8; 32], language: &str) -> Option<DecodedCity> {
        let file = File::open(path).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        // SAFETY: read-only mapping of a file in the store, which only this code writes, and
        // only by rename of a complete file; every read below is bounds-checked.
        let map = unsafe { Mmap::map(&file) }.ok()?;
        let b: &[u8] = &map;
        if b.get(..8)? != MAGIC || u32_at(b, 8)? != VERSION {
            return None;
        }
        let slots = u32_at(b, 12)? as usize;
        let records = u32_at(b, 16)? as usize;
        let pool_len = u32_at(b, 20)? as usize;
        let ranges = u32_at(b, 24)?;
        let language_len = u32_at(b, AT_LANGUAGE)? as usize;
        let language_at = AT_LANGUAGE + 4;
        if b.get(AT_HASH..AT_LANGUAGE)? != copy_hash
            || language_len > MAX_LANGUAGE
            || b.get(language_at..language_at + language_len)? != language.as_bytes()
            || !slots.is_power_of_two()
        {
            return None;
        }
        let table = HEADER;
        let entries = table.checked_add(slots.checked_mul(SLOT)?)?;
        let pool = entries.checked_add(records.checked_mul(ENTRY)?)?;
        let end = pool.checked_add(pool_len)?;
        let (v4, end) = if ranges == NO_V4_MAP {
            (None, end)
        } else {
            let ranges = ranges as usize;
            let lows = end.checked_add(V4_TOP * V4_TOP_ENTRY)?;
            let answers = lows.checked_add(ranges.checked_mul(2)?)?;
            let map = V4Map {
                top: end,
                lows,
                answers,
                ranges,
            };
            (Some(map), answers.checked_add(ranges.checked_mul(4)?)?)
        };
        if end != b.len() {
            return None;
        }
        Some(DecodedCity {
            language: language.to_owned(),
            slots,
            table,
            entries,
            records,
            pool,
            v4,
            map,
        })
    }

    /// The language the names are in.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The fields of the record at `offset` in the data section; `None` when the file holds
    /// no such record or its entry cannot be read (the caller then decodes the record).
    #[inline]
    pub fn get(&self, offset: usize) -> Option<CityFields<'_>> {
        let at = self.slot_of(offset)?;
        self.entry(u32_at(&self.map, at + 4)? as usize)
    }

    /// The country code of the record at `offset` alone (`ip_country`), from its table slot:
    /// `Some(None)` when the record has none, `None` as for [`DecodedCity::get`].
    #[inline]
    pub fn country_code(&self, offset: usize) -> Option<Option<&str>> {
        let at = self.slot_of(offset)?;
        match u32_at(&self.map, at + 8)? {
            NO_STRING => Some(None),
            place => self.pooled(place as usize).map(Some),
        }
    }

    /// `ip_country`'s answer for an IPv4 address from the country map, without walking the
    /// tree: `(country code, whether the database has a record)`. `None` when the file has
    /// no map, the map says to look the address up, or its bytes cannot be read.
    #[inline]
    pub fn country_v4(&self, ip: u32) -> Option<(Option<&str>, bool)> {
        let m = self.v4?;
        let b: &[u8] = &self.map;
        let at = m.top + (ip >> 16) as usize * V4_TOP_ENTRY;
        let first = u32_at(b, at)?;
        let count = u32_at(b, at + 4)? as usize;
        let answer = if count == 1 {
            first
        } else {
            let first = first as usize;
            if count > m.ranges || first > m.ranges - count {
                return None;
            }
            let lows = b.get(m.lows + 2 * first..m.lows + 2 * (first + count))?;
            // The ranges of this /16 whose first address is at or below the address's.
            let low = ip as u16;
            let (mut lo, mut hi) = (0, count);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if u16_at(lows, 2 * mid)? <= low {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            u32_at(b, m.answers + 4 * (first + lo.checked_sub(1)?))?
        };
        match answer {
            LOOK_UP => None,
            NO_DATA => Some((None, false)),
            NO_STRING => Some((None, true)),
            place => Some((Some(self.pooled(place as usize)?), true)),
        }
    }

    /// Where the table slot of the record at `offset` starts; `None` when the table holds no
    /// such record.
    #[inline]
    fn slot_of(&self, offset: usize) -> Option<usize> {
        let key = u32::try_from(offset).ok()?.checked_add(1)?;
        let mut i = home(key, self.slots);
        // Bounded: a damaged table with no empty slot ends after one round.
        for _ in 0..self.slots {
            let at = self.table + i * SLOT;
            match u32_at(&self.map, at)? {
                0 => return None,
                k if k == key => return Some(at),
                _ => i = (i + 1) & (self.slots - 1),
            }
        }
        None
    }

    /// The string at `place` in the pool.
    #[inline]
    fn pooled(&self, place: usize) -> Option<&str> {
        let pool = self.map.get(self.pool..)?;
        let len = usize::from(u16_at(pool, place)?);
        std::str::from_utf8(pool.get(place + 2..place + 2 + len)?).ok()
    }

    #[inline]
    fn entry(&self, number: usize) -> Option<CityFields<'_>> {
        if number >= self.records {
            return None;
        }
        let at = self.entries + number * ENTRY;
        let e = self.map.get(at..at + ENTRY)?;
        let bits = u32_at(e, 0)?;
        let mut strings: [Option<&str>; STRINGS] = [None; STRINGS];
        for (i, s) in strings.iter_mut().enumerate() {
            if bits & (1 << i) != 0 {
                *s = Some(self.pooled(u32_at(e, 24 + 4 * i)? as usize)?);
            }
        }
        let [country_code, country_name, continent_code, registered_country_code, subdivision_code, subdivision_name, city, postal_code, time_zone] =
            strings;
        Some(CityFieldsOf {
            country_code,
            country_name,
            continent_code,
            registered_country_code,
            subdivision_code,
            subdivision_name,
            city,
            postal_code,
            latitude: f64_at(e, 8).filter(|_| bits & LATITUDE != 0),
            longitude: f64_at(e, 16).filter(|_| bits & LONGITUDE != 0),
            accuracy_radius: u16_at(e, 4).filter(|_| bits & ACCURACY != 0),
            time_zone,
            is_anonymous_proxy: flag_of(bits, ANONYMOUS_PROXY),
            is_satellite_provider: flag_of(bits, SATELLITE),
            is_anycast: flag_of(bits, ANYCAST),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmdb::slot::{DbSlot, SlotReader};
    use crate::mmdb::store::{Decoded, Store, Wait};
    use crate::mmdb::testdata::{never, setup};
    use crate::mmdb::DbKind;
    use std::fs;
    use std::path::PathBuf;

    /// The City databases of the test data, MaxMind's and the vendors' layouts.
    const CITY_FIXTURES: [&str; 6] = [
        "GeoIP2-City-Test.mmdb",
        "GeoLite2-City-Test.mmdb",
        "GeoIP2-Country-Test.mmdb",
        "GeoIP2-Enterprise-Test.mmdb",
        "../../vendors/dbip-city-lite-test.mmdb",
        "../../vendors/ipinfo-lite-test.mmdb",
    ];

    /// The verified copy of `name` in a fresh store, opened as a City database.
    fn copy_of(name: &str) -> (tempfile::TempDir, Store, Database) {
        let (dir, store, live) = setup(name);
        let v = match store.verified(&live, Wait::Yes, &never).unwrap() {
            crate::mmdb::store::Found::Verified(v) => v,
            crate::mmdb::store::Found::Busy => unreachable!(),
        };
        let db = Database::open(&v.copy, DbKind::City).unwrap();
        (dir, store, db)
    }

    fn ready(store: &Store, db: &Database, language: &str) -> DecodedCity {
        match store
            .decoded_city(db, language, Some(Wait::Yes), &never)
            .unwrap()
        {
            Decoded::Ready(d) => d,
            other => panic!("{language}: {other:?}"),
        }
    }

    fn decoded_files(store: &Store) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "decoded"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_record_reads_back_as_decoding_it_gives_in_every_language() {
        for name in CITY_FIXTURES {
            let (_dir, store, db) = copy_of(name);
            let languages = db.metadata().languages.clone();
            assert!(!languages.is_empty(), "{name}");
            for language in &languages {
                let d = ready(&store, &db, language);
                let mut records = 0;
                for item in db.reader.networks(WithinOptions::default()).unwrap() {
                    let hit =
                        Hit::from_result(&db, IpAddr::V4(Ipv4Addr::UNSPECIFIED), item.unwrap());
                    let offset = hit.record_offset().unwrap();
                    let expected = db.city_fields(&hit, language).unwrap();
                    assert_eq!(d.get(offset), Some(expected), "{name} {language} {offset}");
                    // ip_country's answer, read from the slot alone.
                    let country = db.country_code_decoded(&hit).unwrap();
                    assert_eq!(d.country_code(offset), Some(country), "{name} {offset}");
                    assert_eq!(country, expected.country_code, "{name} {offset}");
                    records += 1;
                }
                assert!(records > 0, "{name}");
                // An offset that is no record's is not found.
                assert_eq!(d.get(usize::MAX), None);
            }
            // One file per language, read-only, and none for a language the database does
            // not list.
            assert_eq!(decoded_files(&store).len(), languages.len(), "{name}");
            for f in decoded_files(&store) {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    fs::metadata(&f).unwrap().permissions().mode() & 0o777,
                    0o400
                );
            }
            assert!(matches!(
                store
                    .decoded_city(&db, "xx", Some(Wait::Yes), &never)
                    .unwrap(),
                Decoded::Absent
            ));
            assert_eq!(decoded_files(&store).len(), languages.len(), "{name}");
        }
    }

    #[test]
    fn city_lookups_read_the_predecoded_records_in_their_language_only() {
        let (_dir, store, live) = setup("GeoIP2-City-Test.mmdb");
        let mut r = SlotReader::new(DbSlot::City, Some(live));
        r.decoded_language = Some("en".into());
        r.ensure_open(&store, &never, None).unwrap();
        let [file] = &decoded_files(&store)[..] else {
            panic!("one file expected: {:?}", decoded_files(&store));
        };
        // Doctor the file (same length): lookups answer what it says, so they read it.
        let mut bytes = fs::read(file).unwrap();
        while let Some(at) = bytes.windows(6).position(|w| w == b"London") {
            bytes[at..at + 6].copy_from_slice(b"Lindon");
        }
        fs::remove_file(file).unwrap();
        fs::write(file, &bytes).unwrap();
        let city = |r: &SlotReader, language: &str| {
            let db = r.database().unwrap();
            let hit = db.lookup("81.2.69.160".parse().unwrap()).unwrap().unwrap();
            let mut cache = crate::mmdb::CityCache::default();
            db.city_fields_cached(&hit, language, &mut cache)
                .unwrap()
                .city
                .map(str::to_owned)
        };
        // The reader in service mapped the file before it was doctored; a new one maps it now.
        let mut r = SlotReader::new(DbSlot::City, r.path.clone());
        r.decoded_language = Some("en".into());
        r.ensure_open(&store, &never, None).unwrap();
        assert_eq!(city(&r, "en").as_deref(), Some("Lindon"));
        // Another language decodes the record.
        assert_eq!(city(&r, "de").as_deref(), Some("London"));
        // Switched off (ip_inventory.predecoded_city): decoded again.
        r.decoded_language = None;
        r.refresh_decoded(&store, Wait::No, &never);
        assert_eq!(city(&r, "en").as_deref(), Some("London"));
    }

    #[test]
    fn a_damaged_file_is_built_again_and_damaged_bytes_are_never_a_panic() {
        let (_dir, store, db) = copy_of("GeoIP2-City-Test.mmdb");
        let good = ready(&store, &db, "en");
        let offsets: Vec<usize> = db
            .reader
            .networks(WithinOptions::default())
            .unwrap()
            .map(|i| i.unwrap().offset().unwrap())
            .collect();
        let expected: Vec<_> = offsets.iter().map(|&o| good.get(o)).collect();
        // IPv4 addresses for the country map: every network's first, and spread ones.
        let mut ips: Vec<u32> = db
            .reader
            .networks(WithinOptions::default())
            .unwrap()
            .filter_map(|i| match i.unwrap().network().unwrap().ip() {
                IpAddr::V4(v4) => Some(u32::from(v4)),
                IpAddr::V6(_) => None,
            })
            .collect();
        ips.extend((0..4096u32).map(|i| i.wrapping_mul(0x9E37_79B9)));
        let countries: Vec<_> = ips.iter().map(|&ip| good.country_v4(ip)).collect();
        assert!(countries.iter().all(Option::is_some));
        let [file] = &decoded_files(&store)[..] else {
            panic!("one file expected");
        };
        let bytes = fs::read(file).unwrap();
        let hash: [u8; 32] = bytes[AT_HASH..AT_LANGUAGE].try_into().unwrap();
        let damaged = file.with_extension("damaged");

        // Truncated, or for another copy or language: not opened, so built again.
        fs::write(&damaged, &bytes[..bytes.len() - 1]).unwrap();
        assert!(DecodedCity::open(&damaged, &hash, "en").is_none());
        fs::write(&damaged, &bytes).unwrap();
        assert!(DecodedCity::open(&damaged, &[0; 32], "en").is_none());
        assert!(DecodedCity::open(&damaged, &hash, "de").is_none());
        fs::remove_file(file).unwrap();
        fs::write(file, &bytes[..bytes.len() / 2]).unwrap();
        let again = ready(&store, &db, "en");
        assert_eq!(fs::read(file).unwrap(), bytes);
        assert_eq!(
            offsets.iter().map(|&o| again.get(o)).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(
            ips.iter()
                .map(|&ip| again.country_v4(ip))
                .collect::<Vec<_>>(),
            countries
        );

        // Any byte of the table, the arena or the country map changed: an answer or None,
        // never a panic. Half the changes in the map, which is most of this small file.
        let map = good.v4.unwrap().top;
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..4_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = bytes.clone();
            let at = if state & 0x200 != 0 {
                HEADER + (state as usize >> 10) % (map - HEADER)
            } else {
                map + (state as usize >> 10) % (b.len() - map)
            };
            b[at] = state as u8;
            if state & 0x100 != 0 {
                // And a neighbour, to break lengths and positions more than one byte at a time.
                let next = (at + 1).min(b.len() - 1);
                b[next] = (state >> 16) as u8;
            }
            fs::write(&damaged, &b).unwrap();
            let d = DecodedCity::open(&damaged, &hash, "en").unwrap();
            for &o in &offsets {
                let _ = d.get(o);
                let _ = d.country_code(o);
            }
            for &ip in &ips {
                let _ = d.country_v4(ip);
            }
        }
    }

    #[test]
    fn the_country_map_says_to_look_up_what_it_does_not_know() {
        let (_dir, store, db) = copy_of("GeoIP2-City-Test.mmdb");
        let d = ready(&store, &db, "en");
        let london = u32::from(Ipv4Addr::new(81, 2, 69, 160));
        assert_eq!(d.country_v4(london), Some((Some("GB"), true)));
        // Space with no network: no record, found nowhere.
        assert_eq!(
            d.country_v4(u32::from(Ipv4Addr::new(1, 1, 1, 1))),
            Some((None, false))
        );
        let [file] = &decoded_files(&store)[..] else {
            panic!("one file expected");
        };
        let bytes = fs::read(file).unwrap();
        let top = d.v4.unwrap().top + (london >> 16) as usize * V4_TOP_ENTRY;
        let doctored = file.with_extension("doctored");
        let hash: [u8; 32] = bytes[AT_HASH..AT_LANGUAGE].try_into().unwrap();
        let with_top = |answer: u32, count: u32| {
            let mut b = bytes.clone();
            b[top..top + 4].copy_from_slice(&answer.to_le_bytes());
            b[top + 4..top + 8].copy_from_slice(&count.to_le_bytes());
            let _ = fs::remove_file(&doctored);
            fs::write(&doctored, &b).unwrap();
            DecodedCity::open(&doctored, &hash, "en").unwrap()
        };
        // The /16 said to be looked up, or ranges past the map's end, or none: looked up.
        assert_eq!(with_top(LOOK_UP, 1).country_v4(london), None);
        assert_eq!(with_top(u32::MAX - 3, 2).country_v4(london), None);
        assert_eq!(with_top(0, 0).country_v4(london), None);
        assert_eq!(with_top(0, u32::MAX).country_v4(london), None);
        assert_eq!(with_top(NO_DATA, 1).country_v4(london), Some((None, false)));
        // A file without the map answers nothing from it.
        let mut b = bytes[..d.v4.unwrap().top].to_vec();
        b[24..28].copy_from_slice(&NO_V4_MAP.to_le_bytes());
        let _ = fs::remove_file(&doctored);
        fs::write(&doctored, &b).unwrap();
        let none = DecodedCity::open(&doctored, &hash, "en").unwrap();
        assert_eq!(none.country_v4(london), None);
        assert_eq!(
            none.get(d_offset(&db, london)),
            d.get(d_offset(&db, london))
        );
    }

    fn d_offset(db: &Database, ip: u32) -> usize {
        db.lookup(IpAddr::V4(ip.into()))
            .unwrap()
            .unwrap()
            .record_offset()
            .unwrap()
    }

    #[test]
    fn a_build_that_cannot_be_written_is_reported_once_and_lookups_decode() {
        let (_dir, store, live) = setup("GeoIP2-City-Test.mmdb");
        let (_d2, _s2, db) = copy_of("GeoIP2-City-Test.mmdb");
        // Where the file would go, a directory (a failure even for root).
        let hash = db.path().file_stem().unwrap().to_str().unwrap().to_owned();
        fs::create_dir_all(store.dir().join(format!("{hash}.city-en.decoded/x"))).unwrap();
        let mut r = SlotReader::new(DbSlot::City, Some(live.clone()));
        r.decoded_language = Some("en".into());
        r.ensure_open(&store, &never, None).unwrap();
        let e = r.decoded_error.take().expect("the failure is reported");
        assert_eq!(e.path, live, "it names the operator's file");
        assert!(r.database().unwrap().decoded().is_none());
        let db = r.database().unwrap();
        let hit = db.lookup("81.2.69.160".parse().unwrap()).unwrap().unwrap();
        let mut cache = crate::mmdb::CityCache::default();
        assert_eq!(
            db.city_fields_cached(&hit, "en", &mut cache).unwrap().city,
            Some("London")
        );
        // Not built again for this reader, so not reported again.
        r.check_replaced(&store, &never, None);
        assert!(r.decoded_error.is_none());
    }

    #[test]
    fn records_that_would_take_too_much_room_are_not_pre_decoded() {
        let (_dir, _store, db) = copy_of("GeoIP2-City-Test.mmdb");
        let built = |max| DecodedCity::build_within(&db, "en", &[0; 32], &never, max).unwrap();
        let size = built(u64::MAX).expect("fits without a limit").len() as u64;
        assert!(built(size).is_some());
        assert!(built(size / 2).is_none());
        assert!(size < max_bytes(db.file_size()));
    }

    #[test]
    fn pre_decoded_records_go_with_their_copy() {
        let (_dir, store, db) = copy_of("GeoIP2-City-Test.mmdb");
        ready(&store, &db, "en");
        assert_eq!(decoded_files(&store).len(), 1);
        // A store whose copy is gone: the files built from it go too, once old enough.
        let copy = db.path().to_path_buf();
        drop(db);
        fs::remove_dir_all(store.dir().join("identities")).unwrap();
        fs::create_dir(store.dir().join("identities")).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for f in decoded_files(&store).into_iter().chain([copy.clone()]) {
            fs::File::options()
                .write(true)
                .open(&f)
                .or_else(|_| {
                    let mut p = fs::metadata(&f)?.permissions();
                    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o600);
                    fs::set_permissions(&f, p)?;
                    fs::File::options().write(true).open(&f)
                })
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        store.collect_garbage();
        assert!(!copy.exists());
        assert!(decoded_files(&store).is_empty());
    }

    /// Every record of a full-size City file in every language it lists, against decoding
    /// it: `IPI_FULL_MMDB=/path/City.mmdb cargo test --release -p ip_inventory_core
    /// predecoded_full -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn predecoded_full_size_city() {
        let paths = std::env::var("IPI_FULL_MMDB").expect("IPI_FULL_MMDB");
        let path = Path::new(paths.split(':').next().unwrap());
        let db = Database::open(path, DbKind::City).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for language in &db.metadata().languages {
            let t = std::time::Instant::now();
            let bytes = DecodedCity::build(&db, language, &[7; 32], &never)
                .unwrap()
                .unwrap();
            let built = t.elapsed();
            let file = dir.path().join(format!("{language}.decoded"));
            fs::write(&file, &bytes).unwrap();
            let d = DecodedCity::open(&file, &[7; 32], language).unwrap();
            // ip_country's map: both ends of every IPv4 network, as the lookup answers.
            let mut ends = 0;
            for item in db.reader.networks(WithinOptions::default()).unwrap() {
                let net = item.unwrap().network().unwrap();
                let IpAddr::V4(first) = net.ip() else {
                    continue;
                };
                let first = u32::from(first);
                let last = first | u32::MAX.checked_shr(net.prefix().into()).unwrap_or(0);
                for ip in [first, last] {
                    let hit = db.lookup(IpAddr::V4(ip.into())).unwrap().unwrap();
                    let expected = (db.country_code(&hit).unwrap(), hit.has_data());
                    assert_eq!(d.country_v4(ip), Some(expected), "{ip}");
                    ends += 1;
                }
            }
            let mut seen = HashSet::new();
            for item in db.reader.networks(WithinOptions::default()).unwrap() {
                let hit = Hit::from_result(&db, IpAddr::V4(Ipv4Addr::UNSPECIFIED), item.unwrap());
                let offset = hit.record_offset().unwrap();
                if seen.insert(offset) {
                    assert_eq!(d.get(offset), Some(db.city_fields(&hit, language).unwrap()));
                    assert_eq!(
                        d.country_code(offset),
                        Some(db.country_code_decoded(&hit).unwrap())
                    );
                }
            }
            eprintln!(
                "{language}: {} records and {ends} IPv4 network ends agreed; built in {built:?}, {} bytes",
                seen.len(),
                bytes.len()
            );
        }
    }
}
