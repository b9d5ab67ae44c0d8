//! The readers each backend holds: opened lazily on first use (never in the postmaster),
//! kept for the life of the backend, and replaced when
//! - the settings naming the files change (`pg_reload_conf()`),
//! - the shared generation moves (`maxmind_reload()` in any session), or
//! - the file behind a path was replaced (checked at statement start, at most every
//!   `ip_inventory.file_check_interval` seconds).
//!
//! A replacement that fails validation never takes a working reader out of service: the
//! backend warns once per bad file and keeps answering from the previous one.
//!
//! The per-row cost of all this is one settings-epoch compare, one atomic load and one
//! statement-timestamp compare.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use ip_inventory_core::metrics::{Db, DbErrorKind};
use ip_inventory_core::mmdb::{CityCache, Database, DbError, DbKind, ErrorKind, FileIdentity};
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::PgLogLevel;

use crate::errors::{self, Source};
use crate::{gucs, metrics, shmem};

/// At most this many files opened by path through `mmdb_lookup` stay mapped per backend.
const MAX_PATH_SLOTS: usize = 8;

/// One database a backend may use.
pub struct Slot {
    pub source: Source,
    kind: DbKind,
    /// What the settings (or the caller) name; `None`: not configured.
    pub path: Option<PathBuf>,
    /// The reader in service.
    db: Option<Database>,
    /// Generation under which `db` was opened (`None` without preload).
    pub opened_generation: Option<u64>,
    /// Identity of the last file at `path` that could not be used: warned about once, not
    /// retried until the file changes again.
    failed: Option<FileIdentity>,
    /// Why the file at `path` is not in service, if it is not.
    pub last_error: Option<DbError>,
    /// Whether a lenient lookup already warned about this slot since its reader changed.
    warned: bool,
}

impl Slot {
    fn new(source: Source, kind: DbKind, path: Option<PathBuf>) -> Slot {
        Slot {
            source,
            kind,
            path,
            db: None,
            opened_generation: None,
            failed: None,
            last_error: None,
            warned: false,
        }
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The reader in service, if any (without opening anything).
    pub fn database(&self) -> Option<&Database> {
        self.db.as_ref()
    }

    /// The reader in service; call [`Slot::ensure_open`] first.
    #[inline]
    pub fn db(&self) -> &Database {
        self.db
            .as_ref()
            .expect("ensure_open() succeeded before db()")
    }

    /// Which counters this slot's lookups count into.
    #[inline]
    pub fn counted_as(&self) -> Db {
        metrics::db_of(&self.source)
    }

    /// An ERROR about this slot's database.
    pub fn error(&self, err: &DbError) -> ErrorReport {
        errors::database(&self.source, err)
    }

    /// An ERROR for a lookup that failed in this slot's database, counted by its kind.
    pub fn lookup_error(&self, err: &DbError) -> ErrorReport {
        metrics::count_db_error(self.counted_as(), DbErrorKind::of(&err.kind));
        self.error(err)
    }

    /// [`Slot::ensure_open`] for a lookup: a failure counts as a failed lookup (reports
    /// such as `maxmind_info()` open slots too, but are not lookups).
    #[inline]
    pub fn open_for_lookup(&mut self) -> Result<(), ErrorReport> {
        let opened = self.ensure_open();
        if opened.is_err() {
            let kind = self
                .last_error
                .as_ref()
                .map_or(DbErrorKind::NotConfigured, |e| DbErrorKind::of(&e.kind));
            metrics::count_db_error(self.counted_as(), kind);
        }
        opened
    }

    /// Makes sure a reader is in service, opening the file on first use. Fails only when
    /// nothing can serve: no path configured, or no reader yet and the file is unusable.
    #[inline]
    pub fn ensure_open(&mut self) -> Result<(), ErrorReport> {
        if self.db.is_some() {
            return Ok(());
        }
        let Some(path) = self.path.clone() else {
            return Err(match self.source {
                Source::Slot(slot) => errors::not_configured(slot),
                _ => unreachable!("named and path slots always have a path"),
            });
        };
        match Database::open(&path, self.kind) {
            Ok(db) => {
                self.install(db);
                Ok(())
            }
            Err(e) => {
                let report = self.error(&e);
                self.last_error = Some(e);
                Err(report)
            }
        }
    }

    fn install(&mut self, db: Database) {
        self.db = Some(db);
        self.opened_generation = shmem::generation();
        self.failed = None;
        self.last_error = None;
        self.warned = false;
    }

    /// Reports `report` as a WARNING, once until this slot's reader changes.
    pub fn warn_once(&mut self, report: ErrorReport) {
        if !self.warned {
            self.warned = true;
            report.report(PgLogLevel::WARNING);
        }
    }

    /// Installs a database that the caller already validated (`maxmind_reload()`).
    pub fn install_validated(&mut self, db: Database) {
        self.path = Some(db.path().to_path_buf());
        self.install(db);
    }

    /// Switches to the file the path names now, if it is not the one in service. Slots
    /// never used are left for lazy opening.
    fn check_replaced(&mut self) {
        let (Some(db), Some(path)) = (&self.db, &self.path) else {
            return;
        };
        let path = path.clone();
        let identity = match FileIdentity::of(&path) {
            Ok(id) => id,
            Err(e) => {
                // Removed or unreadable (perhaps mid-replacement): keep serving.
                let err = DbError::from_io(&path, &e);
                if self.last_error.as_ref() != Some(&err) {
                    warn_kept(&self.source, &err);
                    self.last_error = Some(err);
                }
                return;
            }
        };
        if db.path() == path && identity == db.identity() {
            // The file in service is (again) the one at the path.
            self.failed = None;
            self.last_error = None;
            return;
        }
        if self.failed == Some(identity) {
            return;
        }
        let outcome = if shmem::is_rejected(identity) {
            Err(DbError::new(
                &path,
                ErrorKind::Corrupt("this file was refused by maxmind_reload()".into()),
            ))
        } else {
            Database::open(&path, self.kind)
        };
        match outcome {
            Ok(db) => self.install(db),
            Err(e) => {
                warn_kept(&self.source, &e);
                self.failed = Some(identity);
                self.last_error = Some(e);
            }
        }
    }
}

fn warn_kept(source: &Source, err: &DbError) {
    errors::database(source, err)
        .set_detail("The previously opened file stays in service until a usable file is installed.")
        .report(PgLogLevel::WARNING);
}

/// All readers of this backend.
pub struct Readers {
    settings_epoch: u64,
    generation: u64,
    last_check: pg_sys::TimestampTz,
    check_interval_us: Option<i64>,
    pub language: String,
    pub city: Slot,
    /// Decoded records of the City reader in service (it empties itself when the reader or
    /// the language changes).
    pub city_cache: CityCache,
    pub asn: Slot,
    pub named: Vec<(String, Slot)>,
    paths: Vec<Slot>,
}

thread_local! {
    static READERS: RefCell<Option<Readers>> = const { RefCell::new(None) };
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
            city_cache: CityCache::default(),
            city: Slot::new(Source::Slot("city"), DbKind::City, None),
            asn: Slot::new(Source::Slot("asn"), DbKind::Asn, None),
            named: Vec::new(),
            paths: Vec::new(),
        };
        r.apply_settings();
        r
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
            let now = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
            if now != self.last_check && now - self.last_check >= interval {
                self.last_check = now;
                self.check_all();
            }
        }
    }

    fn apply_settings(&mut self) {
        self.settings_epoch = gucs::settings_epoch();
        self.language = gucs::language();
        self.check_interval_us = gucs::file_check_interval_secs().map(|s| i64::from(s) * 1_000_000);
        self.city.path = gucs::city_path();
        self.asn.path = gucs::asn_path();
        let configured = gucs::named_databases();
        // Keep the readers of names that stay; a changed path is picked up by check_all().
        let mut named = Vec::with_capacity(configured.len());
        for d in configured {
            let slot = match self.named.iter().position(|(n, _)| *n == d.name) {
                Some(i) => {
                    let (_, mut slot) = self.named.swap_remove(i);
                    slot.path = Some(d.path);
                    slot
                }
                None => Slot::new(Source::Named(d.name.clone()), DbKind::Any, Some(d.path)),
            };
            named.push((d.name, slot));
        }
        self.named = named;
        // A slot whose path was unset drops its reader: the operator unconfigured it.
        for slot in [&mut self.city, &mut self.asn] {
            if slot.path.is_none() {
                slot.db = None;
                slot.last_error = None;
            }
        }
    }

    fn check_all(&mut self) {
        self.city.check_replaced();
        self.asn.check_replaced();
        for (_, slot) in &mut self.named {
            slot.check_replaced();
        }
        for slot in &mut self.paths {
            slot.check_replaced();
        }
    }

    /// The slot for `mmdb_lookup`'s `database` argument: `city`, `asn`, a configured name,
    /// or an absolute path (the caller checked the privilege).
    pub fn slot_for(&mut self, database: &str) -> Result<&mut Slot, ErrorReport> {
        match database {
            "city" => return Ok(&mut self.city),
            "asn" => return Ok(&mut self.asn),
            _ => {}
        }
        if let Some(i) = self.named.iter().position(|(n, _)| n == database) {
            return Ok(&mut self.named[i].1);
        }
        if !Path::new(database).is_absolute() {
            let mut known: Vec<String> = vec!["city".into(), "asn".into()];
            known.extend(self.named.iter().map(|(n, _)| n.clone()));
            return Err(errors::unknown_database(database, &known));
        }
        let path = PathBuf::from(database);
        let i = match self
            .paths
            .iter()
            .position(|s| s.path.as_ref() == Some(&path))
        {
            Some(i) => i,
            None => {
                if self.paths.len() >= MAX_PATH_SLOTS {
                    self.paths.remove(0);
                }
                self.paths
                    .push(Slot::new(Source::Path, DbKind::Any, Some(path)));
                self.paths.len() - 1
            }
        };
        Ok(&mut self.paths[i])
    }

    /// The configured slots, for reporting: city, asn, then named databases.
    pub fn configured_slots(&mut self) -> impl Iterator<Item = (String, &mut Slot)> {
        [
            ("city".to_owned(), &mut self.city),
            ("asn".to_owned(), &mut self.asn),
        ]
        .into_iter()
        .chain(self.named.iter_mut().map(|(n, s)| (n.clone(), s)))
    }

    /// Marks the readers current with `generation` (after this backend installed them).
    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }
}
