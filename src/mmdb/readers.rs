//! The readers each backend holds, over the core's slots (`ip_inventory_core::mmdb::slot`):
//! opened lazily on first use (never in the postmaster), kept for the life of the backend,
//! and replaced when
//! - the settings naming the files change (`pg_reload_conf()`),
//! - the shared generation moves (`maxmind_reload()` in any session), or
//! - the file behind a path was replaced (checked at statement start, at most every
//!   `ip_inventory.file_check_interval` seconds).
//!
//! Readers map only verified copies from the store in the data directory
//! (`$PGDATA/ip_inventory`, `ip_inventory_core::mmdb::store`): nothing done to the operator's
//! file can change, crash or hang what is served. A replacement that fails verification never
//! takes a working reader out of service: the backend warns once and keeps answering.
//!
//! The per-row cost of all this is one settings-epoch compare, one atomic load and one
//! statement-timestamp compare.

use std::cell::RefCell;
use std::ffi::CStr;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ip_inventory_core::mmdb::{
    CityCache, Database, DbError, DbErrorKind, DbSlot, Hit, Replaced, SlotReader, Store, Unusable,
};
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::{check_for_interrupts, PgLogLevel};

use crate::metrics::{self, Probe};
use crate::{errors, gucs, shmem};

/// At most this many files opened by path through `mmdb_lookup` stay mapped per backend.
const MAX_PATH_SLOTS: usize = 8;

/// Whether a query cancel or termination is pending (asked between chunks of a copy).
fn interrupted() -> bool {
    // SAFETY: a plain read of a flag the signal handlers set.
    unsafe { pg_sys::InterruptPending != 0 }
}

// Declared here without pgrx's guard: it returns a static and cannot raise, and the guard (a
// sigsetjmp on every call) cost more than the read on each lookup.
unsafe extern "C" {
    fn GetCurrentStatementStartTimestamp() -> pg_sys::TimestampTz;
}

/// The store of verified copies, in the data directory.
fn open_store() -> Result<Store, std::io::Error> {
    // SAFETY: DataDir is set before any backend runs queries.
    let data_dir = unsafe { CStr::from_ptr(pg_sys::DataDir) };
    Store::open(&Path::new(&*data_dir.to_string_lossy()).join("ip_inventory"))
}

/// One database slot of this backend: the core's reader, with errors and counters.
pub struct Slot {
    pub reader: SlotReader,
}

impl Slot {
    fn new(slot: DbSlot, path: Option<PathBuf>) -> Slot {
        Slot {
            reader: SlotReader::new(slot, path),
        }
    }

    pub fn slot(&self) -> &DbSlot {
        &self.reader.slot
    }

    pub fn path(&self) -> Option<&Path> {
        self.reader.path.as_deref()
    }

    /// An ERROR about this slot's database.
    pub fn error(&self, err: &DbError) -> ErrorReport {
        errors::database(self.slot(), err)
    }

    /// An ERROR for a lookup that failed in this slot's database, counted by its kind.
    fn lookup_error(&self, err: &DbError) -> errors::Boxed {
        metrics::count_db_error(self.slot().family(), err.kind.counted_as());
        Box::new(self.error(err))
    }

    /// Makes sure a reader is in service, opening (and on first use of a file, verifying) it.
    pub fn ensure_open(&mut self, store: &Store) -> Result<&Database, ErrorReport> {
        let generation = shmem::generation();
        let opened = self.reader.ensure_open(store, &interrupted, generation);
        self.report_decoded_error();
        match opened {
            Ok(None) => Ok(self.reader.database().expect("opened")),
            Ok(Some(why)) => {
                // The file at the path cannot be used: the copy last in service answers.
                errors::database(self.slot(), &why)
                    .set_detail("The verified copy last in service for this path answers until a usable file is installed.")
                    .report(PgLogLevel::WARNING);
                Ok(self.reader.database().expect("opened"))
            }
            Err(Unusable::NotConfigured) => Err(errors::not_configured(self.slot())),
            Err(Unusable::Failed(e)) => {
                if interrupted() {
                    check_for_interrupts!();
                }
                Err(self.error(&e))
            }
        }
    }

    /// One lookup, the same for every function: count it, open the reader, look the address
    /// up, let `read` decode what it needs (it says whether the database had a record), time
    /// one lookup in many. A failure is counted by its kind and raised naming the file.
    pub fn lookup<R>(
        &mut self,
        store: &Store,
        ip: IpAddr,
        read: impl for<'a> FnOnce(&'a Database, Option<&Hit<'a>>) -> Result<(R, bool), DbError>,
    ) -> Result<R, errors::Boxed> {
        self.lookup_or(store, ip, |_| None, read)
    }

    /// [`Slot::lookup`], answered by `quick` when it can (value, whether the database has a
    /// record) without a walk of the tree: counted as a lookup all the same.
    #[inline]
    pub fn lookup_or<R>(
        &mut self,
        store: &Store,
        ip: IpAddr,
        quick: impl FnOnce(&Database) -> Option<(R, bool)>,
        read: impl for<'a> FnOnce(&'a Database, Option<&Hit<'a>>) -> Result<(R, bool), DbError>,
    ) -> Result<R, errors::Boxed> {
        let family = self.slot().family();
        let probe = Probe::start(family);
        if let Err(e) = self.ensure_open(store) {
            let kind = self
                .reader
                .last_error
                .as_ref()
                .map_or(DbErrorKind::NotConfigured, |e| e.kind.counted_as());
            metrics::count_db_error(family, kind);
            return Err(Box::new(e));
        }
        let db = self.reader.database().expect("opened");
        if let Some((value, found)) = quick(db) {
            probe.finish(found);
            return Ok(value);
        }
        let hit = db.lookup(ip).map_err(|e| self.lookup_error(&e))?;
        let (value, found) = read(db, hit.as_ref()).map_err(|e| self.lookup_error(&e))?;
        probe.finish(found);
        Ok(value)
    }

    /// Reports `report` as a WARNING, once until this slot's reader changes.
    pub fn warn_once(&mut self, report: ErrorReport) {
        if !self.reader.warned {
            self.reader.warned = true;
            report.report(PgLogLevel::WARNING);
        }
    }

    /// Warns once that the pre-decoded City records could not be built (the reader decodes
    /// each record instead, as with `ip_inventory.predecoded_city` off).
    pub fn report_decoded_error(&mut self) {
        if let Some(e) = self.reader.decoded_error.take() {
            errors::database(self.slot(), &e)
                .set_detail("The pre-decoded City records could not be built; lookups decode each record instead.")
                .set_hint("Check the free space and permissions of ip_inventory/ in the data directory; a new session tries again.")
                .report(PgLogLevel::WARNING);
        }
    }

    fn check_replaced(&mut self, store: &Store) {
        let replaced = self
            .reader
            .check_replaced(store, &interrupted, shmem::generation());
        self.report_decoded_error();
        match replaced {
            Replaced::Same | Replaced::Switched | Replaced::Busy => {}
            Replaced::Refused(e) => {
                errors::database(self.slot(), &e)
                    .set_detail("The previously opened file stays in service until a usable file is installed.")
                    .report(PgLogLevel::WARNING);
            }
        }
    }
}

/// All readers of this backend.
pub struct Readers {
    settings_epoch: u64,
    generation: u64,
    last_check: pg_sys::TimestampTz,
    check_interval_us: Option<i64>,
    pub language: String,
    store: Option<Store>,
    pub city: Slot,
    /// Decoded records of the City reader in service (it empties itself when the reader or
    /// the language changes).
    pub city_cache: CityCache,
    pub asn: Slot,
    pub anonymous: Slot,
    pub isp: Slot,
    pub connection_type: Slot,
    pub named: Vec<Slot>,
    paths: Vec<Slot>,
}

thread_local! {
    static READERS: RefCell<Option<Readers>> = const { RefCell::new(None) };
}

/// Hits and misses of this backend's City record cache since the last call; None while
/// the readers are in use (the counts wait for the next call) or before the first lookup.
pub fn take_cache_counts() -> Option<(u64, u64)> {
    READERS
        .try_with(|cell| {
            let mut guard = cell.try_borrow_mut().ok()?;
            guard.as_mut().map(|r| r.city_cache.take_new_counts())
        })
        .ok()
        .flatten()
}

/// Runs `f` with this backend's readers, first bringing them up to date.
#[inline]
pub fn with<R>(f: impl FnOnce(&mut Readers) -> R) -> R {
    READERS.with(|cell| {
        let mut guard = cell.borrow_mut();
        let readers = guard.get_or_insert_with(Readers::from_settings);
        readers.refresh();
        f(readers)
    })
}

impl Readers {
    fn from_settings() -> Readers {
        let mut r = Readers {
            settings_epoch: 0,
            generation: shmem::generation().unwrap_or(0),
            last_check: 0,
            check_interval_us: None,
            language: String::new(),
            store: None,
            city_cache: CityCache::default(),
            city: Slot::new(DbSlot::City, None),
            asn: Slot::new(DbSlot::Asn, None),
            anonymous: Slot::new(DbSlot::Anonymous, None),
            isp: Slot::new(DbSlot::Isp, None),
            connection_type: Slot::new(DbSlot::ConnectionType, None),
            named: Vec::new(),
            paths: Vec::new(),
        };
        r.apply_settings();
        r
    }

    /// The store of verified copies (opened on first use).
    pub fn store(&mut self) -> Result<&Store, ErrorReport> {
        if self.store.is_none() {
            self.store = Some(open_store().map_err(|e| errors::store_unusable(&e))?);
        }
        Ok(self.store.as_ref().expect("opened above"))
    }

    #[inline]
    fn refresh(&mut self) {
        if gucs::settings_epoch() != self.settings_epoch {
            self.apply_settings();
            self.check_all();
        }
        if let Some(generation) = shmem::generation() {
            if generation != self.generation {
                self.generation = generation;
                self.check_all();
            }
        }
        if let Some(interval) = self.check_interval_us {
            // The statement start time is free to read and fixed within a statement, so a
            // statement never sees more than one check.
            // SAFETY: returns a static of xact.c.
            let now = unsafe { GetCurrentStatementStartTimestamp() };
            if now != self.last_check && now - self.last_check >= interval {
                self.last_check = now;
                self.check_all();
            }
        }
    }

    fn apply_settings(&mut self) {
        self.settings_epoch = gucs::settings_epoch();
        self.language = gucs::language();
        self.city.reader.decoded_language = gucs::predecoded_city().then(|| self.language.clone());
        self.check_interval_us = gucs::file_check_interval_secs().map(|s| i64::from(s) * 1_000_000);
        for slot in self.maxmind_slots() {
            slot.reader.path = gucs::slot_path(&slot.reader.slot);
        }
        let configured = gucs::named_databases();
        // Keep the readers of names that stay; a changed path is picked up by check_all().
        let mut named = Vec::with_capacity(configured.len());
        for d in configured {
            let slot = match self.named.iter().position(|s| s.slot().name() == d.name) {
                Some(i) => {
                    let mut slot = self.named.swap_remove(i);
                    slot.reader.path = Some(d.path);
                    slot
                }
                None => Slot::new(DbSlot::Named(d.name), Some(d.path)),
            };
            named.push(slot);
        }
        self.named = named;
        // A slot whose path was unset drops its reader: the operator unconfigured it.
        for slot in self.maxmind_slots() {
            if slot.reader.path.is_none() {
                slot.reader.clear();
            }
        }
    }

    fn check_all(&mut self) {
        // (A store that cannot be opened fails the lookup that needs it, with the reason.)
        let Ok(store) = self.store().cloned() else {
            return;
        };
        for slot in self.maxmind_slots() {
            slot.check_replaced(&store);
        }
        for slot in self.named.iter_mut().chain(self.paths.iter_mut()) {
            slot.check_replaced(&store);
        }
    }

    /// The slot for `mmdb_lookup`'s `database` argument: `city`, `asn`, a configured name,
    /// or an absolute path (the caller checked the privilege).
    pub fn slot_for(&mut self, database: &str) -> Result<&mut Slot, ErrorReport> {
        let names: Vec<String> = self
            .named
            .iter()
            .map(|s| s.slot().name().to_owned())
            .collect();
        match DbSlot::named(database, &names) {
            Some(DbSlot::City) => Ok(&mut self.city),
            Some(DbSlot::Asn) => Ok(&mut self.asn),
            Some(DbSlot::Anonymous) => Ok(&mut self.anonymous),
            Some(DbSlot::Isp) => Ok(&mut self.isp),
            Some(DbSlot::ConnectionType) => Ok(&mut self.connection_type),
            Some(DbSlot::Named(n)) => Ok(self
                .named
                .iter_mut()
                .find(|s| s.slot().name() == n)
                .expect("configured")),
            Some(DbSlot::Path) => {
                let path = PathBuf::from(database);
                let i = match self.paths.iter().position(|s| s.path() == Some(&path)) {
                    Some(i) => i,
                    None => {
                        if self.paths.len() >= MAX_PATH_SLOTS {
                            self.paths.remove(0);
                        }
                        self.paths.push(Slot::new(DbSlot::Path, Some(path)));
                        self.paths.len() - 1
                    }
                };
                Ok(&mut self.paths[i])
            }
            None => {
                let mut known: Vec<String> =
                    DbSlot::RESERVED.iter().map(|s| (*s).to_owned()).collect();
                known.extend(names);
                Err(errors::unknown_database(database, &known))
            }
        }
    }

    /// Looks `ip` up in one slot (see [`Slot::lookup`]).
    pub fn lookup<R>(
        &mut self,
        pick: impl FnOnce(&mut Readers) -> Result<&mut Slot, ErrorReport>,
        ip: IpAddr,
        read: impl for<'a> FnOnce(&'a Database, Option<&Hit<'a>>) -> Result<(R, bool), DbError>,
    ) -> Result<R, errors::Boxed> {
        self.lookup_or(pick, ip, |_| None, read)
    }

    /// [`Readers::lookup`] through [`Slot::lookup_or`].
    #[inline]
    pub fn lookup_or<R>(
        &mut self,
        pick: impl FnOnce(&mut Readers) -> Result<&mut Slot, ErrorReport>,
        ip: IpAddr,
        quick: impl FnOnce(&Database) -> Option<(R, bool)>,
        read: impl for<'a> FnOnce(&'a Database, Option<&Hit<'a>>) -> Result<(R, bool), DbError>,
    ) -> Result<R, errors::Boxed> {
        self.with_store(|r, store| pick(r)?.lookup_or(store, ip, quick, read))
    }

    /// Runs `f` with these readers and their store (opened if need be): the store is taken
    /// out and put back, not cloned, which would be two atomic operations per lookup. An
    /// error raised through `f` (a cancel) leaves no store here: the next lookup opens it
    /// again.
    #[inline]
    pub fn with_store<R>(
        &mut self,
        f: impl FnOnce(&mut Readers, &Store) -> Result<R, errors::Boxed>,
    ) -> Result<R, errors::Boxed> {
        self.store()?;
        let store = self.store.take().expect("opened above");
        let result = f(self, &store);
        self.store = Some(store);
        result
    }

    /// The MaxMind slots (City, ASN, Anonymous-IP, ISP, Connection-Type).
    fn maxmind_slots(&mut self) -> [&mut Slot; 5] {
        [
            &mut self.city,
            &mut self.asn,
            &mut self.anonymous,
            &mut self.isp,
            &mut self.connection_type,
        ]
    }

    /// The slots to report and reload: city and asn always, the optional MaxMind slots when
    /// configured, then named databases.
    pub fn configured_slots(&mut self) -> impl Iterator<Item = &mut Slot> {
        [
            &mut self.city,
            &mut self.asn,
            &mut self.anonymous,
            &mut self.isp,
            &mut self.connection_type,
        ]
        .into_iter()
        .filter(|s| s.slot().listed_unconfigured() || s.path().is_some())
        .chain(self.named.iter_mut())
    }

    /// Marks the readers current with `generation` (after this backend installed them).
    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }
}
