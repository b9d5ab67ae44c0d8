//! The databases a backend uses, and when it replaces one.
//!
//! A [`DbSlot`] names a database the way settings, errors and counters know it: the City and
//! ASN slots, a name from `ip_inventory.databases`, or a file named by path in `mmdb_lookup`.
//! A [`SlotReader`] holds the reader in service for one slot and applies the replacement
//! rules: a reader maps only a verified copy from the [`Store`]; the first use of a database
//! waits for its verification; a replaced file is picked up only once verified, and until
//! then (or when it fails) the reader in service keeps answering.

use std::path::{Path, PathBuf};

use super::store::{Decoded, Found, Identity, Store, Verified, Wait};
use super::{Database, DbError, DbFamily, DbKind};

/// City and ASN files looked for in `ip_inventory.maxmind_dir`, in this order: MaxMind's
/// (commercial editions first), then DB-IP Lite's, then IPinfo Lite's (docs/maxmind.md).
const CITY_FILE_NAMES: [DirName; 7] = [
    DirName::Exact("GeoIP2-City.mmdb"),
    DirName::Exact("GeoLite2-City.mmdb"),
    DirName::Exact("dbip-city-lite.mmdb"),
    DirName::Dated("dbip-city-lite-"),
    DirName::Exact("dbip-country-lite.mmdb"),
    DirName::Dated("dbip-country-lite-"),
    DirName::Exact("ipinfo_lite.mmdb"),
];
const ASN_FILE_NAMES: [DirName; 5] = [
    DirName::Exact("GeoIP2-ISP.mmdb"),
    DirName::Exact("GeoLite2-ASN.mmdb"),
    DirName::Exact("dbip-asn-lite.mmdb"),
    DirName::Dated("dbip-asn-lite-"),
    DirName::Exact("ipinfo_lite.mmdb"),
];
/// The name a City or ASN slot configured through the directory expects when none of its
/// files is there: the file its error names.
const CITY_MISSING: &str = "GeoLite2-City.mmdb";
const ASN_MISSING: &str = "GeoLite2-ASN.mmdb";
/// Files of the optional slots looked for there: used only when present (a directory without
/// them configures none, so City/ASN set-ups keep working unchanged).
const ANONYMOUS_FILE_NAMES: [DirName; 2] = [
    DirName::Exact("GeoIP2-Anonymous-IP.mmdb"),
    DirName::Exact("GeoIP-Anonymous-Plus.mmdb"),
];
const ISP_FILE_NAMES: [DirName; 1] = [DirName::Exact("GeoIP2-ISP.mmdb")];
const CONNECTION_TYPE_FILE_NAMES: [DirName; 1] = [DirName::Exact("GeoIP2-Connection-Type.mmdb")];

/// A file name looked for in `ip_inventory.maxmind_dir`.
#[derive(Debug, Clone, Copy)]
enum DirName {
    /// This name exactly.
    Exact(&'static str),
    /// This prefix, a date of digits and dashes, `.mmdb` (DB-IP's downloads are named
    /// `dbip-city-lite-2026-11.mmdb`): the greatest such name, which is the newest date.
    Dated(&'static str),
}

impl DirName {
    /// The existing file of this name in `dir`, if any.
    fn find(self, dir: &Path) -> Option<PathBuf> {
        match self {
            DirName::Exact(name) => Some(dir.join(name)).filter(|p| p.exists()),
            DirName::Dated(prefix) => std::fs::read_dir(dir)
                .ok()?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| {
                    name.strip_prefix(prefix)
                        .and_then(|rest| rest.strip_suffix(".mmdb"))
                        .is_some_and(|date| {
                            date.starts_with(|c: char| c.is_ascii_digit())
                                && date.chars().all(|c| c.is_ascii_digit() || c == '-')
                        })
                })
                .max()
                .map(|name| dir.join(name))
                .filter(|p| p.exists()),
        }
    }
}

/// A database slot: what settings configure, errors name and counters count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbSlot {
    City,
    Asn,
    /// Anonymizer flags (`ip_anonymous`).
    Anonymous,
    /// ISP data (`ip_isp`).
    Isp,
    /// Connection type (`ip_connection_type`).
    ConnectionType,
    /// A name from `ip_inventory.databases`.
    Named(String),
    /// A file named by its path (`mmdb_lookup`, superusers and pg_read_server_files).
    Path,
}

impl DbSlot {
    /// Names `mmdb_lookup` accepts for the MaxMind slots (reserved in
    /// `ip_inventory.databases`).
    pub const RESERVED: [&'static str; 5] = ["city", "asn", "anonymous", "isp", "connection_type"];

    /// The MaxMind slots, in the order `maxmind_info()` lists them.
    pub const MAXMIND: [DbSlot; 5] = [
        DbSlot::City,
        DbSlot::Asn,
        DbSlot::Anonymous,
        DbSlot::Isp,
        DbSlot::ConnectionType,
    ];

    /// Whether `maxmind_info()` lists the slot when it is not configured (City and ASN: the
    /// slots every installation uses).
    pub fn listed_unconfigured(&self) -> bool {
        matches!(self, DbSlot::City | DbSlot::Asn)
    }

    /// The slot a `mmdb_lookup` argument names: `city`, `asn`, a configured name, or an
    /// absolute path (`None`: none of these).
    pub fn named(
        name: &str,
        configured: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Option<DbSlot> {
        match name {
            "city" => Some(DbSlot::City),
            "asn" => Some(DbSlot::Asn),
            "anonymous" => Some(DbSlot::Anonymous),
            "isp" => Some(DbSlot::Isp),
            "connection_type" => Some(DbSlot::ConnectionType),
            _ if configured.into_iter().any(|c| c.as_ref() == name) => {
                Some(DbSlot::Named(name.to_owned()))
            }
            _ if Path::new(name).is_absolute() => Some(DbSlot::Path),
            _ => None,
        }
    }

    /// The name in `maxmind_info()` and counters' messages.
    pub fn name(&self) -> &str {
        match self {
            DbSlot::City => "city",
            DbSlot::Asn => "asn",
            DbSlot::Anonymous => "anonymous",
            DbSlot::Isp => "isp",
            DbSlot::ConnectionType => "connection_type",
            DbSlot::Named(n) => n,
            DbSlot::Path => "path",
        }
    }

    /// How messages name the database.
    pub fn label(&self) -> String {
        match self {
            DbSlot::City => "MaxMind City database".to_owned(),
            DbSlot::Asn => "MaxMind ASN database".to_owned(),
            DbSlot::Anonymous => "MaxMind Anonymous-IP database".to_owned(),
            DbSlot::Isp => "MaxMind ISP database".to_owned(),
            DbSlot::ConnectionType => "MaxMind Connection-Type database".to_owned(),
            DbSlot::Named(n) => format!("database \"{n}\""),
            DbSlot::Path => "database file".to_owned(),
        }
    }

    /// The setting(s) an operator changes to fix this slot's database.
    pub fn settings(&self) -> Option<&'static str> {
        match self {
            DbSlot::City => Some("ip_inventory.city_db or ip_inventory.maxmind_dir"),
            DbSlot::Asn => Some("ip_inventory.asn_db or ip_inventory.maxmind_dir"),
            DbSlot::Anonymous => Some("ip_inventory.anonymous_db or ip_inventory.maxmind_dir"),
            DbSlot::Isp => Some("ip_inventory.isp_db or ip_inventory.maxmind_dir"),
            DbSlot::ConnectionType => {
                Some("ip_inventory.connection_type_db or ip_inventory.maxmind_dir")
            }
            DbSlot::Named(_) => Some("ip_inventory.databases"),
            DbSlot::Path => None,
        }
    }

    /// The database types the slot accepts.
    pub fn kind(&self) -> DbKind {
        match self {
            DbSlot::City => DbKind::City,
            DbSlot::Asn => DbKind::Asn,
            DbSlot::Anonymous => DbKind::Anonymous,
            DbSlot::Isp => DbKind::Isp,
            DbSlot::ConnectionType => DbKind::ConnectionType,
            DbSlot::Named(_) | DbSlot::Path => DbKind::Any,
        }
    }

    /// The counters its lookups count into.
    pub fn family(&self) -> DbFamily {
        match self {
            DbSlot::City => DbFamily::City,
            DbSlot::Asn => DbFamily::Asn,
            DbSlot::Anonymous => DbFamily::Anonymous,
            DbSlot::Isp => DbFamily::Isp,
            DbSlot::ConnectionType => DbFamily::ConnectionType,
            DbSlot::Named(_) | DbSlot::Path => DbFamily::Custom,
        }
    }

    /// The path the settings name for a MaxMind slot: the explicit path setting if set, else
    /// the first of its file names that exists in the directory setting (else the GeoLite2
    /// name, so that an error names the file expected), else none.
    pub fn configured_path(&self, explicit: Option<&str>, dir: Option<&str>) -> Option<PathBuf> {
        let names: &[DirName] = match self {
            DbSlot::City => &CITY_FILE_NAMES,
            DbSlot::Asn => &ASN_FILE_NAMES,
            DbSlot::Anonymous => &ANONYMOUS_FILE_NAMES,
            DbSlot::Isp => &ISP_FILE_NAMES,
            DbSlot::ConnectionType => &CONNECTION_TYPE_FILE_NAMES,
            DbSlot::Named(_) | DbSlot::Path => &[],
        };
        let optional = !self.listed_unconfigured();
        let explicit = explicit.map(str::trim).filter(|s| !s.is_empty());
        let dir = dir.map(str::trim).filter(|s| !s.is_empty());
        match (explicit, dir) {
            (Some(path), _) => Some(PathBuf::from(path)),
            (None, Some(dir)) if !names.is_empty() => {
                let dir = Path::new(dir);
                let found = names.iter().find_map(|n| n.find(dir));
                if optional {
                    found
                } else {
                    let missing = if *self == DbSlot::Asn {
                        ASN_MISSING
                    } else {
                        CITY_MISSING
                    };
                    Some(found.unwrap_or_else(|| dir.join(missing)))
                }
            }
            _ => None,
        }
    }
}

/// Why a slot has no reader in service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    NotConfigured,
    Failed(DbError),
}

/// What a check for a replaced file did.
#[derive(Debug, PartialEq, Eq)]
pub enum Replaced {
    /// The file at the path is the one in service (or the slot is not in use yet).
    Same,
    /// A new verified file is in service.
    Switched,
    /// The file at the path cannot be used (newly noticed: warn); the reader stays.
    Refused(DbError),
    /// Another process is verifying the new file; the reader stays for now.
    Busy,
}

/// The reader in service for one slot.
#[derive(Debug)]
pub struct SlotReader {
    pub slot: DbSlot,
    /// What the settings (or the caller) name; `None`: not configured.
    pub path: Option<PathBuf>,
    db: Option<Database>,
    /// The identity of the operator's file whose verified copy is in service.
    source: Option<Identity>,
    /// Generation under which the reader was installed (`None` without preload).
    pub generation: Option<u64>,
    /// The file at the path that was refused (warned about once, not retried until it changes).
    refused: Option<Identity>,
    /// Why the file now at the path is not in service, if it is not.
    pub last_error: Option<DbError>,
    /// Whether a lenient lookup already warned about this slot since its reader changed.
    pub warned: bool,
    /// The language to serve pre-decoded City records in ([`super::decoded`]); `None`: decode
    /// at each lookup. Set by the caller for the City slot only.
    pub decoded_language: Option<String>,
    /// The language whose pre-decoded records this reader could not get built (not tried
    /// again for this reader; a file another process builds is still picked up).
    decoded_failed: Option<String>,
    /// Why building them failed, until the caller took it to report it (once).
    pub decoded_error: Option<DbError>,
}

impl SlotReader {
    pub fn new(slot: DbSlot, path: Option<PathBuf>) -> Self {
        SlotReader {
            slot,
            path,
            db: None,
            source: None,
            generation: None,
            refused: None,
            last_error: None,
            warned: false,
            decoded_language: None,
            decoded_failed: None,
            decoded_error: None,
        }
    }

    /// The reader in service, if any.
    pub fn database(&self) -> Option<&Database> {
        self.db.as_ref()
    }

    /// Forgets the reader (the setting naming the file was unset).
    pub fn clear(&mut self) {
        self.db = None;
        self.source = None;
        self.last_error = None;
    }

    /// Makes sure a reader is in service, waiting for the verification of the file on first
    /// use. When the file at the path cannot be used, the copy last in service for the path
    /// (in any process) serves, and `Ok(Some(error))` says why. Fails only when nothing can
    /// serve.
    pub fn ensure_open(
        &mut self,
        store: &Store,
        cancelled: &dyn Fn() -> bool,
        generation: Option<u64>,
    ) -> Result<Option<DbError>, Unusable> {
        if self.db.is_some() {
            return Ok(None);
        }
        let Some(path) = self.path.clone() else {
            return Err(Unusable::NotConfigured);
        };
        let opened = match store.verified(&path, Wait::Yes, cancelled) {
            Ok(Found::Verified(v)) => self.open_copy(&path, &v.copy).map(|db| (db, v)),
            Ok(Found::Busy) => unreachable!("a caller that waits is never told busy"),
            Err(e) => Err(e),
        };
        match opened {
            Ok((db, v)) => {
                store.set_current(&path, &v);
                self.install(db, v.source, generation);
                self.refresh_decoded(store, Wait::Yes, cancelled);
                Ok(None)
            }
            Err(e) => {
                let fallback = store
                    .current(&path)
                    .and_then(|v| self.open_copy(&path, &v.copy).ok().map(|db| (db, v.source)));
                match fallback {
                    Some((db, source)) => {
                        self.install(db, source, generation);
                        self.refresh_decoded(store, Wait::Yes, cancelled);
                        self.refused = Identity::of(&path).ok();
                        self.last_error = Some(e.clone());
                        Ok(Some(e))
                    }
                    None => {
                        self.last_error = Some(e.clone());
                        Err(Unusable::Failed(e))
                    }
                }
            }
        }
    }

    /// Opens a verified copy for this slot: the slot's type check and a quick probe. Errors
    /// name the operator's file.
    fn open_copy(&self, path: &Path, copy: &Path) -> Result<Database, DbError> {
        Database::open(copy, self.slot.kind()).map_err(|mut e| {
            e.path = path.to_path_buf();
            e
        })
    }

    /// Installs a reader (from [`SlotReader::ensure_open`], a check, or `maxmind_reload()`).
    pub fn install(&mut self, db: Database, source: Identity, generation: Option<u64>) {
        self.db = Some(db);
        self.source = Some(source);
        self.generation = generation;
        self.refused = None;
        self.last_error = None;
        self.warned = false;
        self.decoded_failed = None;
    }

    /// Puts the pre-decoded City records of the reader in service in [`Self::decoded_language`]
    /// in service (or takes them out when it is `None`): mapped when another process built
    /// them, else built now, waiting for the store's lock or not. A build that fails is not
    /// tried again for this reader: lookups decode each record, as they do without.
    pub fn refresh_decoded(&mut self, store: &Store, wait: Wait, cancelled: &dyn Fn() -> bool) {
        let Some(db) = self.db.as_mut() else {
            return;
        };
        let Some(language) = self.decoded_language.as_deref() else {
            db.detach_decoded();
            return;
        };
        if db.decoded().is_some_and(|d| d.language() == language) {
            return;
        }
        let build = (self.decoded_failed.as_deref() != Some(language)).then_some(wait);
        match store.decoded_city(db, language, build, cancelled) {
            Ok(Decoded::Ready(d)) => db.attach_decoded(d),
            Ok(Decoded::Busy) => {}
            Ok(Decoded::Absent) if build.is_some() => {
                self.decoded_failed = Some(language.to_owned());
            }
            Ok(Decoded::Absent) => {}
            // A cancel is the query's, not the build's: tried again at the next check.
            Err(_) if cancelled() => {}
            Err(mut e) => {
                self.decoded_failed = Some(language.to_owned());
                // Errors name the operator's file, not the store.
                if let Some(path) = &self.path {
                    e.path = path.clone();
                }
                self.decoded_error = Some(e);
            }
        }
    }

    /// Opens the verified copy of the file the path names now, for `maxmind_reload()`: waits
    /// for its verification, installs nothing.
    pub fn verified_now(
        &self,
        store: &Store,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<(Database, Verified)>, DbError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        match store.verified(path, Wait::Yes, cancelled)? {
            Found::Verified(v) => Ok(Some((self.open_copy(path, &v.copy)?, v))),
            Found::Busy => unreachable!("a caller that waits is never told busy"),
        }
    }

    /// Switches to the file the path names now if it is not the one in service and its
    /// verified copy is ready; never waits for another process's verification. A slot never
    /// used is left for lazy opening. Then brings the pre-decoded records up to date (without
    /// waiting for the store's lock either).
    pub fn check_replaced(
        &mut self,
        store: &Store,
        cancelled: &dyn Fn() -> bool,
        generation: Option<u64>,
    ) -> Replaced {
        let replaced = self.check_file(store, cancelled, generation);
        self.refresh_decoded(store, Wait::No, cancelled);
        replaced
    }

    fn check_file(
        &mut self,
        store: &Store,
        cancelled: &dyn Fn() -> bool,
        generation: Option<u64>,
    ) -> Replaced {
        let (Some(path), Some(source)) = (self.path.clone(), self.source) else {
            return Replaced::Same;
        };
        let now = Identity::of(&path);
        match &now {
            Ok(id) if *id == source => {
                self.refused = None;
                self.last_error = None;
                return Replaced::Same;
            }
            Ok(id) if self.refused == Some(*id) => return Replaced::Same,
            _ => {}
        }
        let outcome = match store.verified(&path, Wait::No, cancelled) {
            Ok(Found::Busy) => return Replaced::Busy,
            Ok(Found::Verified(v)) => self.open_copy(&path, &v.copy).map(|db| (db, v)),
            Err(e) => Err(e),
        };
        match outcome {
            Ok((db, v)) => {
                store.set_current(&path, &v);
                self.install(db, v.source, generation);
                Replaced::Switched
            }
            // A path that cannot be examined (gone, a FIFO) is warned about once per error.
            Err(e) if self.last_error.as_ref() == Some(&e) => Replaced::Same,
            Err(e) => {
                self.refused = now.ok();
                self.last_error = Some(e.clone());
                Replaced::Refused(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmdb::testdata::{install, never, setup};
    use crate::mmdb::ErrorKind;
    use std::fs;

    fn country(r: &SlotReader, ip: &str) -> Option<String> {
        let db = r.database()?;
        let hit = db.lookup(ip.parse().unwrap()).unwrap()?;
        db.country_code(&hit).unwrap().map(str::to_owned)
    }

    /// A slot reader serving `name` from a fresh store.
    fn opened(name: &str) -> (tempfile::TempDir, Store, PathBuf, SlotReader) {
        let (dir, store, live) = setup(name);
        let mut r = SlotReader::new(DbSlot::City, Some(live.clone()));
        r.ensure_open(&store, &never, None).unwrap();
        (dir, store, live, r)
    }

    #[test]
    fn slots_name_their_settings_and_counters() {
        assert_eq!(DbSlot::named("city", ["anon"]), Some(DbSlot::City));
        assert_eq!(
            DbSlot::named("anon", ["anon"]),
            Some(DbSlot::Named("anon".into()))
        );
        assert_eq!(DbSlot::named("/srv/x.mmdb", ["anon"]), Some(DbSlot::Path));
        assert_eq!(DbSlot::named("other", ["anon"]), None);
        assert_eq!(
            DbSlot::City.settings(),
            Some("ip_inventory.city_db or ip_inventory.maxmind_dir")
        );
        assert_eq!(DbSlot::Named("anon".into()).family(), DbFamily::Custom);
        assert_eq!(DbSlot::Asn.kind(), DbKind::Asn);
        assert_eq!(DbSlot::Path.settings(), None);
    }

    #[test]
    fn configured_paths_prefer_the_explicit_setting_then_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            DbSlot::City.configured_path(Some("/a/b.mmdb"), Some(d)),
            Some("/a/b.mmdb".into())
        );
        assert_eq!(DbSlot::City.configured_path(None, None), None);
        assert_eq!(DbSlot::City.configured_path(Some(" "), Some("")), None);
        // Nothing in the directory: the GeoLite2 name, for the error message.
        assert_eq!(
            DbSlot::City.configured_path(None, Some(d)),
            Some(dir.path().join("GeoLite2-City.mmdb"))
        );
        fs::write(dir.path().join("GeoIP2-City.mmdb"), b"x").unwrap();
        assert_eq!(
            DbSlot::City.configured_path(None, Some(d)),
            Some(dir.path().join("GeoIP2-City.mmdb"))
        );
        assert_eq!(
            DbSlot::Asn.configured_path(None, Some(d)),
            Some(dir.path().join("GeoLite2-ASN.mmdb"))
        );
        assert_eq!(
            DbSlot::Named("x".into()).configured_path(None, Some(d)),
            None
        );
        // The optional slots take a file of the directory only when it is there.
        assert_eq!(DbSlot::Anonymous.configured_path(None, Some(d)), None);
        assert_eq!(
            DbSlot::Isp.configured_path(None, Some(d)),
            None,
            "no GeoIP2-ISP.mmdb yet"
        );
        fs::write(dir.path().join("GeoIP2-ISP.mmdb"), b"x").unwrap();
        assert_eq!(
            DbSlot::Isp.configured_path(None, Some(d)),
            Some(dir.path().join("GeoIP2-ISP.mmdb"))
        );
        assert_eq!(
            DbSlot::ConnectionType.configured_path(Some("/a/ct.mmdb"), None),
            Some("/a/ct.mmdb".into())
        );
    }

    #[test]
    fn the_directory_finds_vendors_files_after_maxminds_in_a_fixed_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let touch = |name: &str| fs::write(dir.path().join(name), b"x").unwrap();
        let city = || DbSlot::City.configured_path(None, Some(d));
        let asn = || DbSlot::Asn.configured_path(None, Some(d));
        let at = |name: &str| Some(dir.path().join(name));

        // IPinfo Lite alone fills both slots.
        touch("ipinfo_lite.mmdb");
        assert_eq!(city(), at("ipinfo_lite.mmdb"));
        assert_eq!(asn(), at("ipinfo_lite.mmdb"));
        // DB-IP Country Lite comes before IPinfo for City only.
        touch("dbip-country-lite-2026-10.mmdb");
        assert_eq!(city(), at("dbip-country-lite-2026-10.mmdb"));
        assert_eq!(asn(), at("ipinfo_lite.mmdb"));
        // Dated DB-IP files: the newest by name; names that are no dated download are ignored.
        touch("dbip-city-lite-2026-09.mmdb");
        touch("dbip-city-lite-2026-11.mmdb");
        touch("dbip-city-lite-2026-10.mmdb");
        touch("dbip-city-lite-latest.mmdb");
        touch("dbip-city-lite-2027-01.mmdb.tmp");
        touch("dbip-city-lite-.mmdb");
        assert_eq!(city(), at("dbip-city-lite-2026-11.mmdb"));
        touch("dbip-asn-lite-2026-10.mmdb");
        touch("dbip-asn-lite-2026-08.mmdb");
        assert_eq!(asn(), at("dbip-asn-lite-2026-10.mmdb"));
        // The updater's undated name (replaced in place by rename) before the dated ones.
        touch("dbip-city-lite.mmdb");
        touch("dbip-asn-lite.mmdb");
        assert_eq!(city(), at("dbip-city-lite.mmdb"));
        assert_eq!(asn(), at("dbip-asn-lite.mmdb"));
        // MaxMind's names first, GeoIP2 before GeoLite2.
        touch("GeoLite2-City.mmdb");
        touch("GeoLite2-ASN.mmdb");
        assert_eq!(city(), at("GeoLite2-City.mmdb"));
        assert_eq!(asn(), at("GeoLite2-ASN.mmdb"));
        touch("GeoIP2-City.mmdb");
        touch("GeoIP2-ISP.mmdb");
        assert_eq!(city(), at("GeoIP2-City.mmdb"));
        assert_eq!(asn(), at("GeoIP2-ISP.mmdb"));
        // Vendors' files never fill the optional slots.
        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join("ipinfo_lite.mmdb"), b"x").unwrap();
        fs::write(other.path().join("dbip-asn-lite-2026-10.mmdb"), b"x").unwrap();
        let o = other.path().to_str().unwrap();
        for slot in [DbSlot::Anonymous, DbSlot::Isp, DbSlot::ConnectionType] {
            assert_eq!(slot.configured_path(None, Some(o)), None, "{slot:?}");
        }
        // A directory that cannot be read finds nothing: the expected MaxMind name.
        let gone = dir.path().join("gone");
        assert_eq!(
            DbSlot::Asn.configured_path(None, gone.to_str()),
            Some(gone.join("GeoLite2-ASN.mmdb"))
        );
    }

    #[test]
    fn the_first_use_opens_a_verified_copy_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let mut none = SlotReader::new(DbSlot::City, None);
        assert_eq!(
            none.ensure_open(&store, &never, None).unwrap_err(),
            Unusable::NotConfigured
        );
        let live = dir.path().join("live.mmdb");
        install("GeoIP2-City-Test.mmdb", &live);
        let mut r = SlotReader::new(DbSlot::City, Some(live.clone()));
        assert_eq!(r.ensure_open(&store, &never, Some(7)).unwrap(), None);
        let db = r.database().unwrap();
        assert!(
            db.path().starts_with(store.dir()),
            "the copy is mapped, not {}",
            db.path().display()
        );
        assert_eq!(r.generation, Some(7));
        // A database of the wrong type for the slot is refused, naming the operator's file.
        let mut asn = SlotReader::new(DbSlot::Asn, Some(live.clone()));
        match asn.ensure_open(&store, &never, None).unwrap_err() {
            Unusable::Failed(e) => {
                assert!(matches!(e.kind, ErrorKind::WrongType { .. }), "{e}");
                assert_eq!(e.path, live);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_replaced_file_is_served_once_verified_and_a_bad_one_never() {
        let (_dir, store, live, mut r) = opened("GeoLite2-City-Test.mmdb");
        assert_eq!(r.check_replaced(&store, &never, None), Replaced::Same);
        assert_eq!(
            r.database().unwrap().metadata().database_type,
            "GeoLite2-City"
        );

        // A corrupt file replaces it: refused once (a warning), then quietly; the old reader
        // keeps answering.
        install("GeoIP2-City-Test-Broken-Double-Format.mmdb", &live);
        assert!(matches!(
            r.check_replaced(&store, &never, None),
            Replaced::Refused(_)
        ));
        assert_eq!(r.check_replaced(&store, &never, None), Replaced::Same);
        assert_eq!(
            r.database().unwrap().metadata().database_type,
            "GeoLite2-City"
        );
        assert!(r.last_error.is_some());
        assert_eq!(country(&r, "81.2.69.160").as_deref(), Some("GB"));

        // Removed: still answering from the copy.
        fs::remove_file(&live).unwrap();
        assert!(matches!(
            r.check_replaced(&store, &never, None),
            Replaced::Refused(_)
        ));
        assert_eq!(country(&r, "81.2.69.160").as_deref(), Some("GB"));

        // A good file: switched.
        install("GeoIP2-City-Test.mmdb", &live);
        assert_eq!(
            r.check_replaced(&store, &never, Some(3)),
            Replaced::Switched
        );
        assert_eq!(
            r.database().unwrap().metadata().database_type,
            "GeoIP2-City"
        );
        assert_eq!(r.generation, Some(3));
        assert!(r.last_error.is_none());
    }

    #[test]
    fn truncating_or_replacing_the_file_by_a_fifo_never_reaches_the_reader() {
        let (_dir, store, live, mut r) = opened("GeoIP2-City-Test.mmdb");
        // Truncated in place: the copy is untouched.
        fs::OpenOptions::new()
            .write(true)
            .open(&live)
            .unwrap()
            .set_len(1000)
            .unwrap();
        assert!(matches!(
            r.check_replaced(&store, &never, None),
            Replaced::Refused(_)
        ));
        assert_eq!(country(&r, "81.2.69.160").as_deref(), Some("GB"));
        // A FIFO at the path: refused without opening it.
        fs::remove_file(&live).unwrap();
        let c = std::ffi::CString::new(live.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        match r.check_replaced(&store, &never, None) {
            Replaced::Refused(e) => assert_eq!(e.kind, ErrorKind::NotAFile),
            other => panic!("{other:?}"),
        }
        assert_eq!(country(&r, "81.2.69.160").as_deref(), Some("GB"));
    }

    #[test]
    fn a_process_that_starts_while_the_file_is_bad_serves_the_copy_last_in_service() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let live = dir.path().join("live.mmdb");
        install("GeoIP2-City-Test.mmdb", &live);
        SlotReader::new(DbSlot::City, Some(live.clone()))
            .ensure_open(&store, &never, None)
            .unwrap();
        install("GeoIP2-City-Test-Broken-Double-Format.mmdb", &live);
        let mut late = SlotReader::new(DbSlot::City, Some(live.clone()));
        let why = late.ensure_open(&store, &never, None).unwrap();
        assert!(
            matches!(
                why,
                Some(DbError {
                    kind: ErrorKind::Corrupt(_),
                    ..
                })
            ),
            "{why:?}"
        );
        assert_eq!(country(&late, "81.2.69.160").as_deref(), Some("GB"));
        assert!(late.last_error.is_some());
        // Quiet until the file changes again; then a good file is picked up.
        assert_eq!(late.check_replaced(&store, &never, None), Replaced::Same);
        install("GeoLite2-City-Test.mmdb", &live);
        assert_eq!(
            late.check_replaced(&store, &never, None),
            Replaced::Switched
        );
        assert_eq!(
            late.database().unwrap().metadata().database_type,
            "GeoLite2-City"
        );
        // A path never in service has nothing to fall back on.
        let other = dir.path().join("other.mmdb");
        install("GeoIP2-City-Test-Broken-Double-Format.mmdb", &other);
        assert!(SlotReader::new(DbSlot::City, Some(other))
            .ensure_open(&store, &never, None)
            .is_err());
    }

    #[test]
    fn while_another_process_verifies_the_reader_in_service_stays() {
        let (_dir, store, live, mut r) = opened("GeoLite2-City-Test.mmdb");
        install("GeoIP2-City-Test.mmdb", &live);
        let other = Store::open(store.dir()).unwrap();
        let held = fs::OpenOptions::new()
            .write(true)
            .open(store.dir().join(".lock"))
            .unwrap();
        // SAFETY: flock on our own descriptor, as another process's verification would hold it.
        assert_eq!(
            unsafe { libc::flock(std::os::unix::io::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) },
            0
        );
        assert_eq!(r.check_replaced(&other, &never, None), Replaced::Busy);
        drop(held);
        assert_eq!(r.check_replaced(&other, &never, None), Replaced::Switched);
    }
}
