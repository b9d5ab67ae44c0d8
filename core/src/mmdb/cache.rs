//! A per-reader cache of decoded City records, keyed by the record's offset in the data
//! section.
//!
//! Decoding a GeoLite2 City record costs most of a lookup (about 0.9 µs of 1.1 µs: the
//! record's maps and the names it points to are scattered over the file, one cache miss
//! after another), while few records serve most addresses: on one million uniformly random
//! public IPv4 addresses the 1 024 most used of 130 000 records answer 71 % of them, and
//! honeypot traffic repeats far more. The cache keeps the decoded fields as positions in
//! the mapped file, so it holds no references and can live beside the reader it serves.
//!
//! Direct-mapped: an entry is overwritten by the next record hashing to its place. Fixed
//! size (`ENTRIES` × 160 bytes, 1.25 MiB per backend), no allocation after creation.

use super::record::CityFieldsOf;
use std::sync::Mutex;

use super::{AsnFields, CityFields, Database};

/// Number of entries; a power of two.
const ENTRIES: usize = 8192;

/// A string of the mapped file: its position and length.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

/// The fields of the record at `offset`, strings as their positions in the file.
#[derive(Clone, Copy)]
struct Entry {
    offset: usize,
    fields: CityFieldsOf<Span>,
}

/// Decoded City records of one [`Database`] in one language. Emptied by itself when used
/// with another database or language.
pub struct CityCache {
    /// The [`Database::instance`] the entries were decoded from.
    instance: u64,
    language: String,
    entries: Box<[Option<Entry>]>,
    hits: u64,
    misses: u64,
    /// `hits` and `misses` when [`CityCache::take_new_counts`] last took them.
    taken: (u64, u64),
}

impl Default for CityCache {
    fn default() -> Self {
        CityCache {
            instance: 0,
            language: String::new(),
            entries: vec![None; ENTRIES].into_boxed_slice(),
            hits: 0,
            misses: 0,
            taken: (0, 0),
        }
    }
}

impl CityCache {
    /// Lookups that decoded no record (answered from the cache or the pre-decoded records)
    /// and lookups that decoded one, since it was created.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Hits and misses since the last call: the metrics add them to the shared counters
    /// now and then, not once per lookup.
    pub fn take_new_counts(&mut self) -> (u64, u64) {
        let new = (self.hits - self.taken.0, self.misses - self.taken.1);
        self.taken = (self.hits, self.misses);
        new
    }

    /// Counts a lookup answered without decoding, by the pre-decoded records.
    #[inline]
    pub(super) fn count_hit(&mut self) {
        self.hits += 1;
    }

    /// Forgets every entry if they belong to another database or language.
    #[inline]
    fn prepare(&mut self, db: &Database, language: &str) {
        if self.instance != db.instance || self.language != language {
            self.entries.fill(None);
            self.instance = db.instance;
            self.language.clear();
            self.language.push_str(language);
        }
    }

    #[inline]
    fn slot(offset: usize) -> usize {
        // Fibonacci hashing: record offsets are clustered, their high bits are not.
        (offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize
            >> (64 - ENTRIES.trailing_zeros())
    }

    /// The cached fields of the record at `offset`, if present.
    #[inline]
    pub(super) fn get<'a>(
        &mut self,
        db: &'a Database,
        language: &str,
        offset: usize,
    ) -> Option<CityFields<'a>> {
        self.prepare(db, language);
        let found = self.entries[Self::slot(offset)]
            .filter(|e| e.offset == offset)
            .and_then(|e| e.fields.try_map_strings(|s| db.text_at(s)));
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Remembers the fields of the record at `offset`, decoded by `db` in `language`.
    /// Records whose strings lie outside the mapped file (they cannot: every string borrows
    /// from it) or beyond 4 GiB are simply not cached.
    #[inline]
    pub(super) fn put(&mut self, db: &Database, language: &str, offset: usize, f: CityFields<'_>) {
        self.prepare(db, language);
        if let Some(fields) = f.try_map_strings(|s| db.span_of(s)) {
            self.entries[Self::slot(offset)] = Some(Entry { offset, fields });
        }
    }
}

impl Database {
    /// The position of `s` in the mapped file, if it lies there and fits in 32 bits.
    fn span_of(&self, s: &str) -> Option<Span> {
        let base = self.map.as_ref().as_ptr() as usize;
        let start = (s.as_ptr() as usize).checked_sub(base)?;
        if start + s.len() > self.map.as_ref().len() {
            return None;
        }
        Some(Span {
            start: u32::try_from(start).ok()?,
            len: u32::try_from(s.len()).ok()?,
        })
    }

    /// [`Database::span_of`] of an optional string: `Some(None)` for no string, `None` when
    /// the string lies outside the file (a sanitized one), which is then not cached.
    fn span_of_opt(&self, s: Option<&str>) -> Option<Option<Span>> {
        match s {
            None => Some(None),
            Some(s) => self.span_of(s).map(Some),
        }
    }

    /// [`Database::text_at`] of an optional span: `Some(None)` for no string, `None` when
    /// the span cannot be read back (a cache miss).
    fn text_at_opt(&self, span: Option<Span>) -> Option<Option<&str>> {
        match span {
            None => Some(None),
            Some(span) => self.text_at(span).map(Some),
        }
    }

    /// The string at a span taken by [`Database::span_of`] from this same file.
    #[inline]
    fn text_at(&self, span: Span) -> Option<&str> {
        let start = span.start as usize;
        let bytes = self.map.as_ref().get(start..start + span.len as usize)?;
        // It was a &str when cached: valid UTF-8, rechecked here (cheap for short ASCII)
        // rather than trusted.
        std::str::from_utf8(bytes).ok()
    }
}

/// Entries of each [`RecordCaches`] table; a power of two.
const RECORD_ENTRIES: usize = 16384;

/// A record's offset and its country code (`None`: the record has none).
type CountryEntry = (u32, Option<Span>);

/// The fields of an ASN record, strings as their positions in the file.
#[derive(Clone, Copy)]
struct AsnEntry {
    offset: u32,
    number: Option<u32>,
    organization: Option<Span>,
    malformed: bool,
}

/// Country codes (`ip_country`) and ASN fields (`ip_asn`, `ip_asn_org`, `enrich_ip`) of the
/// records of one [`Database`], by offset, direct-mapped as [`CityCache`] is. Held by the
/// database itself, so no other database's entries can answer; allocated on first use
/// (16 384 × 16 bytes for codes, 16 384 × 24 bytes for ASN fields: 256 + 384 KiB at most;
/// records beyond 4 GiB are not cached).
/// A lookup that finds the lock taken (another thread of the same process) just decodes.
#[derive(Default)]
pub(super) struct RecordCaches {
    country: Mutex<Option<Box<[Option<CountryEntry>]>>>,
    asn: Mutex<Option<Box<[Option<AsnEntry>]>>>,
}

impl RecordCaches {
    #[inline]
    fn slot(offset: usize) -> usize {
        (offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize
            >> (64 - RECORD_ENTRIES.trailing_zeros())
    }

    /// The country code cached for the record at `offset` (`Some(None)`: it has none).
    #[inline]
    pub(super) fn country<'a>(&self, db: &'a Database, offset: usize) -> Option<Option<&'a str>> {
        let guard = self.country.try_lock().ok()?;
        let (_, code) = guard.as_ref()?[Self::slot(offset)].filter(|e| e.0 as usize == offset)?;
        db.text_at_opt(code)
    }

    #[inline]
    pub(super) fn put_country(&self, db: &Database, offset: usize, code: Option<&str>) {
        let Some(span) = db.span_of_opt(code) else {
            return;
        };
        let (Ok(key), Ok(mut guard)) = (u32::try_from(offset), self.country.try_lock()) else {
            return;
        };
        let table = guard.get_or_insert_with(|| vec![None; RECORD_ENTRIES].into_boxed_slice());
        table[Self::slot(offset)] = Some((key, span));
    }

    /// The ASN fields cached for the record at `offset`.
    #[inline]
    pub(super) fn asn<'a>(&self, db: &'a Database, offset: usize) -> Option<AsnFields<'a>> {
        let guard = self.asn.try_lock().ok()?;
        let e = guard.as_ref()?[Self::slot(offset)].filter(|e| e.offset as usize == offset)?;
        let organization = db.text_at_opt(e.organization)?;
        Some(AsnFields {
            number: e.number,
            organization,
            malformed: e.malformed,
        })
    }

    #[inline]
    pub(super) fn put_asn(&self, db: &Database, offset: usize, f: &AsnFields<'_>) {
        let Some(organization) = db.span_of_opt(f.organization) else {
            return;
        };
        let (Ok(key), Ok(mut guard)) = (u32::try_from(offset), self.asn.try_lock()) else {
            return;
        };
        let table = guard.get_or_insert_with(|| vec![None; RECORD_ENTRIES].into_boxed_slice());
        table[Self::slot(offset)] = Some(AsnEntry {
            offset: key,
            number: f.number,
            organization,
            malformed: f.malformed,
        });
    }
}
