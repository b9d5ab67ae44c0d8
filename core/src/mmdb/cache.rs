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
//! size (`ENTRIES` × ~150 bytes, about 1.2 MiB per backend), no allocation after creation.

use super::{CityFields, Database};

/// Number of entries; a power of two.
const ENTRIES: usize = 8192;

/// A string of the mapped file: its position and length (`len == u32::MAX`: no value).
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const NONE: Span = Span {
        start: 0,
        len: u32::MAX,
    };
}

#[derive(Clone, Copy)]
struct Entry {
    /// Record offset + 1 (0: empty).
    key: usize,
    country_code: Span,
    country_name: Span,
    continent_code: Span,
    registered_country_code: Span,
    subdivision_code: Span,
    subdivision_name: Span,
    city: Span,
    postal_code: Span,
    time_zone: Span,
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u16>,
    is_anonymous_proxy: Option<bool>,
    is_satellite_provider: Option<bool>,
    is_anycast: Option<bool>,
}

const EMPTY: Entry = Entry {
    key: 0,
    country_code: Span::NONE,
    country_name: Span::NONE,
    continent_code: Span::NONE,
    registered_country_code: Span::NONE,
    subdivision_code: Span::NONE,
    subdivision_name: Span::NONE,
    city: Span::NONE,
    postal_code: Span::NONE,
    time_zone: Span::NONE,
    latitude: None,
    longitude: None,
    accuracy_radius: None,
    is_anonymous_proxy: None,
    is_satellite_provider: None,
    is_anycast: None,
};

/// Decoded City records of one [`Database`] in one language. Emptied by itself when used
/// with another database or language.
pub struct CityCache {
    /// The [`Database::instance`] the entries were decoded from.
    instance: u64,
    language: String,
    entries: Box<[Entry]>,
    hits: u64,
    misses: u64,
}

impl Default for CityCache {
    fn default() -> Self {
        CityCache {
            instance: 0,
            language: String::new(),
            entries: vec![EMPTY; ENTRIES].into_boxed_slice(),
            hits: 0,
            misses: 0,
        }
    }
}

impl CityCache {
    /// Lookups answered from the cache and decoded, since it was created.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Forgets every entry if they belong to another database or language.
    #[inline]
    fn prepare(&mut self, db: &Database, language: &str) {
        if self.instance != db.instance || self.language != language {
            self.entries.fill(EMPTY);
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
        let e = &self.entries[Self::slot(offset)];
        if e.key != offset + 1 {
            self.misses += 1;
            return None;
        }
        self.hits += 1;
        let text = |s: Span| db.text_at(s.start, s.len);
        Some(CityFields {
            country_code: text(e.country_code),
            country_name: text(e.country_name),
            continent_code: text(e.continent_code),
            registered_country_code: text(e.registered_country_code),
            subdivision_code: text(e.subdivision_code),
            subdivision_name: text(e.subdivision_name),
            city: text(e.city),
            postal_code: text(e.postal_code),
            latitude: e.latitude,
            longitude: e.longitude,
            accuracy_radius: e.accuracy_radius,
            time_zone: text(e.time_zone),
            is_anonymous_proxy: e.is_anonymous_proxy,
            is_satellite_provider: e.is_satellite_provider,
            is_anycast: e.is_anycast,
        })
    }

    /// Remembers the fields of the record at `offset`, decoded by `db` in `language`.
    /// Records whose strings lie outside the mapped file (they cannot: every string borrows
    /// from it) or beyond 4 GiB are simply not cached.
    #[inline]
    pub(super) fn put(&mut self, db: &Database, language: &str, offset: usize, f: &CityFields<'_>) {
        self.prepare(db, language);
        let mut ok = true;
        let mut span = |s: Option<&str>| match s {
            None => Span::NONE,
            Some(s) => db.span_of(s).unwrap_or_else(|| {
                ok = false;
                Span::NONE
            }),
        };
        let entry = Entry {
            key: offset + 1,
            country_code: span(f.country_code),
            country_name: span(f.country_name),
            continent_code: span(f.continent_code),
            registered_country_code: span(f.registered_country_code),
            subdivision_code: span(f.subdivision_code),
            subdivision_name: span(f.subdivision_name),
            city: span(f.city),
            postal_code: span(f.postal_code),
            time_zone: span(f.time_zone),
            latitude: f.latitude,
            longitude: f.longitude,
            accuracy_radius: f.accuracy_radius,
            is_anonymous_proxy: f.is_anonymous_proxy,
            is_satellite_provider: f.is_satellite_provider,
            is_anycast: f.is_anycast,
        };
        if ok {
            self.entries[Self::slot(offset)] = entry;
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
            len: u32::try_from(s.len()).ok().filter(|&l| l != u32::MAX)?,
        })
    }

    /// The string at a span taken by [`Database::span_of`] from this same file.
    #[inline]
    fn text_at(&self, start: u32, len: u32) -> Option<&str> {
        if len == u32::MAX {
            return None;
        }
        let bytes = self
            .map
            .as_ref()
            .get(start as usize..start as usize + len as usize)?;
        // It was a &str when cached: valid UTF-8, rechecked here (cheap for short ASCII)
        // rather than trusted.
        std::str::from_utf8(bytes).ok()
    }
}
