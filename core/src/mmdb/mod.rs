//! MaxMind DB files: open (mmap), validate, look up, decode.
//!
//! A [`Database`] maps its file read-only; the kernel shares those pages between every
//! process that maps the same file, so each Postgres backend holding its own `Database`
//! costs page-table entries, not copies. The mapping stays valid when the path is later
//! replaced by `rename()` (the old inode lives on until unmapped), but NOT when the file is
//! rewritten in place: that is undefined behaviour for the reader (SIGBUS on truncation).
//! Operators must install new files by rename; see `docs/maxmind.md`.

mod cache;
mod data;
pub mod decoded;
mod json;
mod record;
pub mod scan;
pub mod slot;
pub mod store;
mod walk;

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ipnetwork::IpNetwork;
use maxminddb::{MaxMindDbError, Metadata, Mmap, PathElement, Reader, WithinOptions};

pub use cache::CityCache;
pub use slot::{DbSlot, Replaced, SlotReader, Unusable};
pub use store::Identity;
pub use store::Store;

pub use record::{AnonymousFlags, AsnFields, AsnNumber, CityFields, IspFields};

named!(
    /// The counters of database slots (`custom`: `ip_inventory.databases` names and files
    /// named by path); [`DbSlot::family`] says which a slot counts into.
    DbFamily {
        City = "city",
        Asn = "asn",
        Custom = "custom",
        Anonymous = "anonymous",
        Isp = "isp",
        ConnectionType = "connection_type",
    }
);

named!(
    /// Why a database lookup failed, as counted ([`ErrorKind::counted_as`]).
    DbErrorKind {
        NotConfigured = "not_configured",
        /// Missing, unreadable, empty, not a regular file.
        Unreadable = "unreadable",
        /// Not a MaxMind DB, or the wrong database type for the slot.
        Invalid = "invalid",
        /// A MaxMind DB with a broken tree or records (or one tripping a decoder limit).
        Corrupt = "corrupt",
    }
);

named!(
    /// Which databases a slot accepts, judged by the `database_type` metadata field.
    DbKind {
        /// Geolocation: GeoLite2/GeoIP2 City, Country or Enterprise, DB-IP City/Country
        /// (Lite or not), IPinfo Lite.
        City = "city",
        /// Autonomous systems: GeoLite2-ASN, GeoIP2-ISP, DB-IP ASN Lite and ISP, IPinfo Lite.
        Asn = "asn",
        /// Anything in MaxMind DB format (`mmdb_lookup`).
        Any = "any",
        /// Anonymizer flags: GeoIP2 Anonymous-IP, GeoIP Anonymous Plus, GeoIP2 Enterprise.
        Anonymous = "anonymous",
        /// ISP and organisation: GeoIP2 ISP, GeoIP2 Enterprise.
        Isp = "isp",
        /// Connection type: GeoIP2 Connection-Type, GeoIP2 Enterprise.
        ConnectionType = "connection_type",
    }
);

/// How a database's records are laid out, judged by its `database_type`: what the typed
/// decoders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// MaxMind's (GeoIP2/GeoLite2), which DB-IP's files follow too (`DBIP-City-Lite`,
    /// `DBIP-Country-Lite`, `DBIP-ASN-Lite (compat=GeoLite2-ASN)`, ...).
    MaxMind,
    /// IPinfo Lite (`ipinfo lite.mmdb`): one flat record with country and AS.
    IpinfoLite,
    /// Another IPinfo file (`ipinfo country_asn.mmdb`, `ipinfo country.mmdb`, ...): flat, with
    /// other field names (`country` is a code there, a name in Lite). No typed slot takes it,
    /// rather than answer wrong fields; `mmdb_lookup` reads it through a named database.
    IpinfoOther,
}

impl Layout {
    pub fn of(database_type: &str) -> Layout {
        let t = database_type.trim().to_ascii_lowercase();
        if !t.starts_with("ipinfo") {
            Layout::MaxMind
        } else if t
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == "lite")
        {
            Layout::IpinfoLite
        } else {
            Layout::IpinfoOther
        }
    }
}

impl DbKind {
    pub fn accepts(self, database_type: &str) -> bool {
        let t = database_type.to_ascii_lowercase();
        match (self, Layout::of(database_type)) {
            (DbKind::Any, _) => true,
            // One IPinfo Lite file answers both country and AS: it may fill both slots.
            (DbKind::City | DbKind::Asn, Layout::IpinfoLite) => true,
            (_, Layout::IpinfoLite | Layout::IpinfoOther) => false,
            (kind, Layout::MaxMind) => kind.accepts_maxmind(&t),
        }
    }

    /// Whether a MaxMind-layout database of (lowercase) type `t` is of this kind.
    fn accepts_maxmind(self, t: &str) -> bool {
        match self {
            DbKind::City => ["city", "country", "enterprise"]
                .iter()
                .any(|k| t.contains(k)),
            DbKind::Asn => ["asn", "isp"].iter().any(|k| t.contains(k)),
            DbKind::Any => true,
            DbKind::Anonymous => ["anonymous", "enterprise"].iter().any(|k| t.contains(k)),
            DbKind::Isp => ["isp", "enterprise"].iter().any(|k| t.contains(k)),
            DbKind::ConnectionType => ["connection-type", "enterprise"]
                .iter()
                .any(|k| t.contains(k)),
        }
    }

    pub fn expected(self) -> &'static str {
        match self {
            DbKind::City => {
                "a City, Country or Enterprise database (MaxMind, DB-IP) or IPinfo Lite"
            }
            DbKind::Asn => "an ASN or ISP database (MaxMind, DB-IP) or IPinfo Lite",
            DbKind::Any => "a MaxMind DB file",
            DbKind::Anonymous => "an Anonymous-IP, Anonymous Plus or Enterprise database",
            DbKind::Isp => "an ISP or Enterprise database",
            DbKind::ConnectionType => "a Connection-Type or Enterprise database",
        }
    }
}

/// Why a database could not be opened or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    PermissionDenied,
    NotAFile,
    Empty,
    Io(String),
    /// No metadata marker: the file is not in MaxMind DB format at all.
    NotMmdb,
    /// The file claims to be a MaxMind DB but its metadata, tree or data are broken.
    Corrupt(String),
    /// A decoder safety limit was hit (deeply nested or amplifying records).
    ResourceLimit(String),
    /// Valid file, but not what the slot needs (an ASN database configured as City).
    WrongType {
        found: String,
        expected: &'static str,
    },
}

impl ErrorKind {
    /// The counter a failure of this kind counts into.
    pub fn counted_as(&self) -> DbErrorKind {
        match self {
            ErrorKind::NotFound
            | ErrorKind::PermissionDenied
            | ErrorKind::NotAFile
            | ErrorKind::Empty
            | ErrorKind::Io(_) => DbErrorKind::Unreadable,
            ErrorKind::NotMmdb | ErrorKind::WrongType { .. } => DbErrorKind::Invalid,
            ErrorKind::Corrupt(_) | ErrorKind::ResourceLimit(_) => DbErrorKind::Corrupt,
        }
    }
}

/// An error about one database file; its `Display` names the file and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

impl DbError {
    pub fn new(path: &Path, kind: ErrorKind) -> Self {
        DbError {
            path: path.to_path_buf(),
            kind,
        }
    }

    /// An I/O failure on `path` (not found, permission denied, ...).
    pub fn from_io(path: &Path, e: &io::Error) -> Self {
        DbError::new(path, io_kind(e))
    }

    fn from_mmdb(path: &Path, e: MaxMindDbError) -> Self {
        let kind = match e {
            MaxMindDbError::Io(io) | MaxMindDbError::Mmap(io) => io_kind(&io),
            MaxMindDbError::ResourceLimit { .. } => ErrorKind::ResourceLimit(e.to_string()),
            MaxMindDbError::InvalidDatabase { ref message, .. }
                if message.contains("could not find MaxMind DB metadata") =>
            {
                ErrorKind::NotMmdb
            }
            other => ErrorKind::Corrupt(other.to_string()),
        };
        DbError::new(path, kind)
    }

    /// The reason alone, without the path.
    pub fn reason(&self) -> String {
        match &self.kind {
            ErrorKind::NotFound => "file does not exist".into(),
            ErrorKind::PermissionDenied => {
                "permission denied (the server's operating-system user cannot read it)".into()
            }
            ErrorKind::NotAFile => "not a regular file".into(),
            ErrorKind::Empty => "file is empty".into(),
            ErrorKind::Io(m) => format!("I/O error: {m}"),
            ErrorKind::NotMmdb => {
                "not a MaxMind DB file (no metadata section found; truncated or another format)"
                    .into()
            }
            ErrorKind::Corrupt(m) => format!("corrupt MaxMind DB: {m}"),
            ErrorKind::ResourceLimit(m) => format!("record exceeds decoder safety limits: {m}"),
            ErrorKind::WrongType { found, expected } => {
                format!("database type is \"{found}\", expected {expected}")
            }
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\": {}", self.path.display(), self.reason())
    }
}

impl std::error::Error for DbError {}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::IsADirectory => ErrorKind::NotAFile,
        _ => ErrorKind::Io(e.to_string()),
    }
}

/// Latest plausible build time (2100-01-01): beyond it `build_epoch` is garbage, and
/// converting it to a timestamp would overflow Postgres' range.
const MAX_BUILD_EPOCH: u64 = 4_102_444_800;

/// Addresses decoded in full when a database is opened, to catch broken data early.
const PROBE_ADDRESSES: [&str; 4] = ["1.1.1.1", "8.8.8.8", "81.2.69.160", "2001:4860:4860::8888"];
/// Leading networks of the search tree whose records are decoded when opening.
const PROBE_NETWORKS: usize = 32;

/// The mapped file, shared by the reader and [`Database`] (which needs the bytes to find
/// cached strings again).
#[derive(Clone)]
struct Mapped(Arc<Mmap>);

impl AsRef<[u8]> for Mapped {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Numbers each opened [`Database`], so a [`CityCache`] knows whose records it holds.
static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// An opened, validated MaxMind DB file.
pub struct Database {
    reader: Reader<Mapped>,
    map: Mapped,
    instance: u64,
    path: PathBuf,
    size: u64,
    /// What the typed decoders read, from the metadata's `database_type`.
    layout: Layout,
    /// Strings of the file that hold control characters, sanitized once and kept for the life
    /// of the database, so that the typed fields still borrow `&str` from it. Keyed by the
    /// string's place in the file: bounded by the file's distinct strings (real files have a
    /// few, e.g. 3 mis-encoded AS names in GeoLite2 ASN of 2018).
    sanitized: Mutex<HashMap<(usize, usize), Box<str>>>,
    /// Our walk of the search tree, built on the first lookup (`None` inside: the crate
    /// walks every address).
    tree: OnceLock<Option<walk::Tree>>,
    /// Country codes and ASN fields of records decoded before, by offset.
    records: cache::RecordCaches,
    /// Every City record decoded in one language, shared with the other backends
    /// ([`decoded`]); attached by the slot that serves this database.
    decoded: Option<decoded::DecodedCity>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .field("database_type", &self.metadata().database_type)
            .field("build_epoch", &self.metadata().build_epoch)
            .finish()
    }
}

/// The result of looking up one address: the matched network and whether a record exists.
///
/// Found by our own walk ([`walk`]) when it can, then the crate's `LookupResult` is made only
/// when a record must be decoded (a cache miss); or by the crate's lookup from the start.
pub struct Hit<'a> {
    db: &'a Database,
    /// The canonical address looked up.
    ip: IpAddr,
    offset: Option<usize>,
    network: Option<IpNetwork>,
    result: OnceCell<maxminddb::LookupResult<'a, Mapped>>,
}

impl<'a> Hit<'a> {
    fn from_result(
        db: &'a Database,
        ip: IpAddr,
        result: maxminddb::LookupResult<'a, Mapped>,
    ) -> Self {
        Hit {
            db,
            ip,
            offset: result.offset(),
            network: result.network().ok(),
            result: OnceCell::from(result),
        }
    }

    /// The most specific network of the database containing the address (also when the
    /// database has no data for it).
    pub fn network(&self) -> Option<IpNetwork> {
        self.network
    }

    pub fn has_data(&self) -> bool {
        self.offset.is_some()
    }

    /// Offset of the record in the data section; equal offsets mean equal records.
    pub fn record_offset(&self) -> Option<usize> {
        self.offset
    }

    /// The crate's result, looked up now if our walk found the hit.
    fn result(&self) -> Result<&maxminddb::LookupResult<'a, Mapped>, DbError> {
        if let Some(r) = self.result.get() {
            return Ok(r);
        }
        let r = self
            .db
            .reader
            .lookup(self.ip)
            .map_err(|e| DbError::from_mmdb(&self.db.path, e))?;
        Ok(self.result.get_or_init(|| r))
    }
}

/// The network of `ip` with `prefix` bits (as the crate masks it).
fn network_of(ip: IpAddr, prefix: u8) -> Option<IpNetwork> {
    let ip = match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    };
    IpNetwork::new(ip, prefix).ok()
}

/// `try_map_strings` with a mapping that always answers cannot fail; kept as an error, not a
/// panic, should that ever change.
fn unreachable_unclean(path: &Path) -> DbError {
    DbError::new(
        path,
        ErrorKind::Corrupt("a string of the record cannot be read".into()),
    )
}

impl Database {
    /// Opens and maps `path`, then runs the quick validation: metadata sanity, slot type,
    /// and a decode of the records of a few probe addresses and of the first networks in
    /// the search tree. Costs well under a millisecond on a full-size City database.
    pub fn open(path: &Path, kind: DbKind) -> Result<Database, DbError> {
        let file = File::open(path).map_err(|e| DbError::from_io(path, &e))?;
        // Identity from the descriptor we map, not a second stat() of the path: the path
        // could be replaced in between.
        let meta = file.metadata().map_err(|e| DbError::from_io(path, &e))?;
        if !meta.is_file() {
            return Err(DbError::new(path, ErrorKind::NotAFile));
        }
        if meta.len() == 0 {
            return Err(DbError::new(path, ErrorKind::Empty));
        }
        // SAFETY: the mapping is read-only. Its contents stay valid as long as nobody
        // rewrites the file in place; replacing it by rename is safe. That is the documented
        // operating rule (docs/maxmind.md), and validation below bounds what a reader can do
        // with whatever bytes it finds.
        let mmap = unsafe { Mmap::map(&file) }
            .map_err(|e| DbError::new(path, ErrorKind::Io(e.to_string())))?;
        let map = Mapped(Arc::new(mmap));
        let reader = Reader::from_source(map.clone()).map_err(|e| DbError::from_mmdb(path, e))?;
        let layout = Layout::of(&reader.metadata().database_type);
        let db = Database {
            reader,
            map,
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            size: meta.len(),
            layout,
            sanitized: Mutex::new(HashMap::new()),
            tree: OnceLock::new(),
            records: cache::RecordCaches::default(),
            decoded: None,
        };
        db.check_metadata(kind)?;
        db.probe()?;
        Ok(db)
    }

    fn check_metadata(&self, kind: DbKind) -> Result<(), DbError> {
        let m = self.metadata();
        if m.build_epoch > MAX_BUILD_EPOCH {
            return Err(DbError::new(
                &self.path,
                ErrorKind::Corrupt(format!(
                    "build_epoch {} is not a plausible build time",
                    m.build_epoch
                )),
            ));
        }
        if !kind.accepts(&m.database_type) {
            return Err(DbError::new(
                &self.path,
                ErrorKind::WrongType {
                    found: m.database_type.clone(),
                    expected: kind.expected(),
                },
            ));
        }
        Ok(())
    }

    /// Decodes, in full, the records behind a few addresses and the first networks of the
    /// tree: a cheap check that the tree leads to decodable data.
    fn probe(&self) -> Result<(), DbError> {
        for ip in PROBE_ADDRESSES {
            let ip: IpAddr = ip.parse().expect("probe addresses are valid");
            if let Some(hit) = self.lookup(ip)? {
                self.record_json(&hit)?;
            }
        }
        let networks = self
            .reader
            .networks(WithinOptions::default())
            .map_err(|e| DbError::from_mmdb(&self.path, e))?;
        for item in networks.take(PROBE_NETWORKS) {
            let result = item.map_err(|e| DbError::from_mmdb(&self.path, e))?;
            self.record_json(&Hit::from_result(
                self,
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                result,
            ))?;
        }
        Ok(())
    }

    /// Full verification: walks the whole search tree and decodes every record
    /// (`maxminddb::Reader::verify`). Seconds on a full-size City database: run it when an
    /// operator installs a new file (`maxmind_reload()`), not on every open.
    pub fn verify(&self) -> Result<(), DbError> {
        self.reader
            .verify()
            .map_err(|e| DbError::from_mmdb(&self.path, e))
    }

    /// Full verification for files MaxMind's verifier refuses for their metadata alone (an
    /// empty description, common outside MaxMind): walks every network of the search tree and
    /// decodes every record once.
    pub fn verify_records(&self) -> Result<(), DbError> {
        self.verify_tree_nodes()?;
        let mut seen = std::collections::HashSet::new();
        // As MaxMind's verifier walks the tree: networks without data too, and a cap on the
        // walk (a cycle in the tree would make it endless).
        let cap = usize::try_from(self.metadata().node_count)
            .unwrap_or(usize::MAX)
            .saturating_mul(3)
            .max(16);
        let networks = self
            .reader
            .networks(WithinOptions::default().include_networks_without_data())
            .map_err(|e| DbError::from_mmdb(&self.path, e))?;
        for (n, item) in networks.enumerate() {
            if n > cap {
                return Err(DbError::new(
                    &self.path,
                    ErrorKind::Corrupt(
                        "the search tree has a cycle or an invalid structure".into(),
                    ),
                ));
            }
            let result = item.map_err(|e| DbError::from_mmdb(&self.path, e))?;
            let hit = Hit::from_result(self, IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), result);
            if hit.has_data() && hit.record_offset().is_none_or(|o| seen.insert(o)) {
                self.record_json(&hit)?;
            }
        }
        Ok(())
    }

    /// Checks every record of every node of the search tree: each is a node, the empty
    /// marker, or a pointer into the data section. (Lookups and the walk of networks only
    /// meet the nodes they reach; this meets all of them.)
    fn verify_tree_nodes(&self) -> Result<(), DbError> {
        use walk::SEPARATOR;
        let corrupt = |m: String| DbError::new(&self.path, ErrorKind::Corrupt(m));
        let bytes: &[u8] = self.map.as_ref();
        let m = self.metadata();
        let nb = walk::node_bytes(m.record_size)
            .ok_or_else(|| corrupt(format!("record size {}", m.record_size)))?;
        let nodes = usize::try_from(m.node_count)
            .map_err(|_| corrupt("search tree larger than the file".into()))?;
        let tree = nodes
            .checked_mul(nb)
            .filter(|t| t.checked_add(SEPARATOR).is_some_and(|e| e <= bytes.len()))
            .ok_or_else(|| corrupt("search tree larger than the file".into()))?;
        let marker = walk::metadata_start(bytes).ok_or_else(|| corrupt("no metadata".into()))?;
        let data_len = marker
            .checked_sub(tree + SEPARATOR)
            .ok_or_else(|| corrupt("search tree overlaps the metadata".into()))?;
        if bytes[tree..tree + SEPARATOR].iter().any(|b| *b != 0) {
            return Err(corrupt("the data section separator is not zero".into()));
        }
        for (i, node) in bytes[..tree].chunks_exact(nb).enumerate() {
            for bit in [0, 1] {
                // Past the node count: the empty marker (== nodes), the separator, then
                // offsets into the data section. Checked in that order, so that no
                // subtraction can go below zero.
                let r = walk::record(node, bit);
                if r > nodes && r < nodes + SEPARATOR {
                    return Err(corrupt(format!(
                        "search tree node {i} points into the separator"
                    )));
                }
                if r >= nodes + SEPARATOR && r - nodes - SEPARATOR >= data_len {
                    return Err(corrupt(format!(
                        "search tree node {i} points outside the data section"
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> &Metadata {
        self.reader.metadata()
    }

    pub fn file_size(&self) -> u64 {
        self.size
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// A hit's IPinfo Lite record (`None`: no data).
    fn ipinfo_lite<'a>(
        &'a self,
        hit: &Hit<'a>,
    ) -> Result<Option<record::IpinfoLiteRecord<'a>>, DbError> {
        hit.result()?
            .decode::<record::IpinfoLiteRecord<'a>>()
            .map_err(|e| DbError::from_mmdb(&self.path, e))
    }

    /// Looks up an address (IPv4-mapped addresses as their IPv4 address). `Ok(None)` when
    /// the database cannot hold the address at all (IPv6 in an IPv4-only database).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<Hit<'_>>, DbError> {
        let ip = crate::classify::canonical(ip);
        if ip.is_ipv6() && self.metadata().ip_version == 4 {
            return Ok(None);
        }
        if let Some(w) = self.walk(ip) {
            return Ok(Some(Hit {
                db: self,
                ip,
                offset: w.offset,
                network: network_of(ip, w.prefix),
                result: OnceCell::new(),
            }));
        }
        match self.reader.lookup(ip) {
            Ok(result) => Ok(Some(Hit::from_result(self, ip, result))),
            Err(e) => Err(DbError::from_mmdb(&self.path, e)),
        }
    }

    /// Our walk of the tree for a canonical address; `None`: the crate's lookup answers.
    #[inline]
    fn walk(&self, ip: IpAddr) -> Option<walk::Walked> {
        let (tree, bytes) = self.tree()?;
        match ip {
            IpAddr::V4(v4) => tree.walk_v4(bytes, u32::from(v4)),
            IpAddr::V6(v6) => tree.walk_v6(bytes, u128::from(v6)),
        }
    }

    /// Our walk's tree (built on first use) and the bytes it reads; `None`: the crate walks.
    #[inline]
    fn tree(&self) -> Option<(&walk::Tree, &[u8])> {
        let bytes: &[u8] = self.map.as_ref();
        let tree = self
            .tree
            .get_or_init(|| {
                let m = self.metadata();
                walk::Tree::build(bytes, m.node_count, m.record_size, m.ip_version)
            })
            .as_ref()?;
        Some((tree, bytes))
    }

    /// The City/Country fields of a hit, names in `language` (falling back to English).
    #[inline]
    pub fn city_fields<'a>(
        &'a self,
        hit: &Hit<'a>,
        language: &str,
    ) -> Result<CityFields<'a>, DbError> {
        if self.layout == Layout::IpinfoLite {
            // English names only: IPinfo Lite has no other language.
            return self
                .ipinfo_lite(hit)?
                .map(|r| r.city())
                .unwrap_or_default()
                .try_map_strings(|s| Some(self.clean(s)))
                .ok_or_else(|| unreachable_unclean(&self.path));
        }
        let result = hit.result()?;
        match record::decode_names_in(language, || result.decode::<record::CityRecord<'a>>()) {
            Ok(Some(rec)) => rec
                .flatten()
                .try_map_strings(|s| Some(self.clean(s)))
                .ok_or_else(|| unreachable_unclean(&self.path)),
            Ok(None) => Ok(CityFields::default()),
            Err(e) => Err(DbError::from_mmdb(&self.path, e)),
        }
    }

    /// [`Database::city_fields`] from the pre-decoded records when they are in `language`,
    /// else through `cache`: records decoded before are not decoded again.
    #[inline]
    pub fn city_fields_cached<'a>(
        &'a self,
        hit: &Hit<'a>,
        language: &str,
        cache: &mut CityCache,
    ) -> Result<CityFields<'a>, DbError> {
        let Some(offset) = hit.record_offset() else {
            return Ok(CityFields::default());
        };
        if let Some(fields) = self
            .decoded
            .as_ref()
            .filter(|d| d.language() == language)
            .and_then(|d| d.get(offset))
        {
            // Counted as a hit: a lookup that decoded no record.
            cache.count_hit();
            return Ok(fields);
        }
        if let Some(fields) = cache.get(self, language, offset) {
            return Ok(fields);
        }
        let fields = self.city_fields(hit, language)?;
        cache.put(self, language, offset, fields);
        Ok(fields)
    }

    /// Serves City fields in `d`'s language from `d` from now on (it must have been built
    /// from this database's file: [`store::Store::decoded_city`]).
    pub fn attach_decoded(&mut self, d: decoded::DecodedCity) {
        self.decoded = Some(d);
    }

    /// Decodes every City record again at each lookup (`ip_inventory.predecoded_city` off).
    pub fn detach_decoded(&mut self) {
        self.decoded = None;
    }

    /// The pre-decoded records in service, if any.
    pub fn decoded(&self) -> Option<&decoded::DecodedCity> {
        self.decoded.as_ref()
    }

    /// The ASN fields of a hit: from this database's record cache, else decoded (and kept).
    #[inline]
    pub fn asn_fields<'a>(&'a self, hit: &Hit<'a>) -> Result<AsnFields<'a>, DbError> {
        let Some(offset) = hit.record_offset() else {
            return Ok(AsnFields::default());
        };
        if let Some(fields) = self.records.asn(self, offset) {
            return Ok(fields);
        }
        let fields = self.asn_fields_decoded(hit)?;
        self.records.put_asn(self, offset, &fields);
        Ok(fields)
    }

    /// The ASN fields of a hit, decoded.
    fn asn_fields_decoded<'a>(&'a self, hit: &Hit<'a>) -> Result<AsnFields<'a>, DbError> {
        if self.layout == Layout::IpinfoLite {
            let mut fields = self.ipinfo_lite(hit)?.map(|r| r.asn()).unwrap_or_default();
            fields.organization = fields.organization.map(|o| self.clean(o));
            return Ok(fields);
        }
        match hit.result()?.decode::<record::AsnRecord<'a>>() {
            Ok(Some(rec)) => {
                let mut fields = AsnFields::from(rec);
                fields.organization = fields.organization.map(|o| self.clean(o));
                Ok(fields)
            }
            Ok(None) => Ok(AsnFields::default()),
            Err(e) => Err(DbError::from_mmdb(&self.path, e)),
        }
    }

    /// `ip_country`'s answer for an IPv4 address without walking the tree: from the
    /// pre-decoded records' country map ([`decoded::DecodedCity::country_v4`]), as
    /// `(country code, whether the database has a record)`. `None`: look it up.
    #[inline]
    pub fn country_v4(&self, ip: IpAddr) -> Option<(Option<&str>, bool)> {
        match crate::classify::canonical(ip) {
            IpAddr::V4(v4) => self.decoded.as_ref()?.country_v4(u32::from(v4)),
            IpAddr::V6(_) => None,
        }
    }

    /// The leaves of the IPv4 tree as our walk answers them ([`walk::Tree::v4_leaves`]).
    fn v4_leaves(&self, cap: usize, leaf: impl FnMut(u32, u8, Option<walk::Walked>)) -> Option<()> {
        let (tree, bytes) = self.tree()?;
        tree.v4_leaves(bytes, cap, leaf)
    }

    /// `country.iso_code` alone (the `ip_country` hot path): from the pre-decoded records,
    /// else this database's record cache, else decoded (and kept).
    #[inline]
    pub fn country_code<'a>(&'a self, hit: &Hit<'a>) -> Result<Option<&'a str>, DbError> {
        let Some(offset) = hit.record_offset() else {
            return Ok(None);
        };
        // The country code is the same in every language's pre-decoded records.
        if let Some(code) = self.decoded.as_ref().and_then(|d| d.country_code(offset)) {
            return Ok(code);
        }
        if let Some(code) = self.records.country(self, offset) {
            return Ok(code);
        }
        let code = self.country_code_decoded(hit)?;
        self.records.put_country(self, offset, code);
        Ok(code)
    }

    /// `country.iso_code` alone, decoded: by our own reader of the record when it can (no
    /// second walk of the tree), else by the crate.
    fn country_code_decoded<'a>(&'a self, hit: &Hit<'a>) -> Result<Option<&'a str>, DbError> {
        const PATH: [PathElement<'static>; 2] =
            [PathElement::Key("country"), PathElement::Key("iso_code")];
        const IPINFO_PATH: [PathElement<'static>; 1] = [PathElement::Key("country_code")];
        let path: &[PathElement<'static>] = match self.layout {
            Layout::IpinfoLite => &IPINFO_PATH,
            _ => &PATH,
        };
        if let Some(code) = self.string_at(hit, path) {
            return Ok(code.map(|c| self.clean(c)));
        }
        match hit.result()?.decode_path::<&'a str>(path) {
            Ok(Some(code)) => Ok(Some(self.clean(code))),
            Ok(None) => Ok(None),
            Err(e) => Err(DbError::from_mmdb(&self.path, e)),
        }
    }

    /// The string at `path` of a hit's record, read by [`data`] without the crate; `None`:
    /// it declined (or the tree is not ours), ask the crate.
    fn string_at<'a>(&'a self, hit: &Hit<'a>, path: &[PathElement<'_>]) -> Option<Option<&'a str>> {
        let offset = hit.record_offset()?;
        let bytes: &'a [u8] = self.map.as_ref();
        let data = self.tree.get()?.as_ref()?.data(bytes)?;
        data::string_at(data, offset, path)
    }

    /// A string of a record as it may be returned: without control characters (a NUL
    /// cannot be stored in text or jsonb, and the others are no data of a name or code: C1
    /// controls can drive a terminal) and at most
    /// [`sanitize::MAX_TEXT`](crate::sanitize::MAX_TEXT) bytes. A clean string (nearly all)
    /// is borrowed from the file; an unclean one is answered sanitized as the network
    /// answers are (each control character becomes U+FFFD), not refused: real MaxMind files
    /// hold a few such strings, and refusing them would fail every lookup and job that meets
    /// them.
    #[inline]
    fn clean<'s>(&'s self, s: &'s str) -> &'s str {
        if crate::sanitize::is_clean(s, crate::sanitize::MAX_TEXT) {
            return s;
        }
        let mut sanitized = self.sanitized.lock().unwrap_or_else(|e| e.into_inner());
        let kept = sanitized
            .entry((s.as_ptr() as usize, s.len()))
            .or_insert_with(|| {
                crate::sanitize::text(s, crate::sanitize::MAX_TEXT).into_boxed_str()
            });
        let kept: *const str = &**kept;
        // SAFETY: the boxed string lives on the heap, is never removed, replaced or changed
        // while this database lives (entries are only added), and does not move when the map
        // grows; so it outlives the borrow of `self`.
        unsafe { &*kept }
    }

    /// The anonymizer flags of a hit: those of an Anonymous-IP record, or of an Enterprise
    /// record's `traits`; a flag the record does not carry is false, as MaxMind's readers
    /// answer it. `None` when the database has no record for the address or the record
    /// carries no flag.
    #[inline]
    pub fn anonymous_flags(&self, hit: &Hit<'_>) -> Result<Option<AnonymousFlags>, DbError> {
        match hit.result()?.decode::<record::AnonymousRecord>() {
            Ok(rec) => Ok(rec.and_then(record::AnonymousRecord::flags)),
            Err(e) => Err(DbError::from_mmdb(&self.path, e)),
        }
    }

    /// The ISP fields of a hit (an ISP record, or an Enterprise record's `traits`), strings
    /// sanitized as every field is. `None` when the database has no record for the address or
    /// the record carries none of the fields.
    #[inline]
    pub fn isp_fields<'a>(&'a self, hit: &Hit<'a>) -> Result<Option<IspFields<'a>>, DbError> {
        match hit.result()?.decode::<record::IspRecord<'a>>() {
            Ok(rec) => {
                let Some(f) = rec.and_then(record::IspRecord::fields) else {
                    return Ok(None);
                };
                let clean = |s: Option<&'a str>| s.map(|s| self.clean(s));
                Ok(Some(IspFields {
                    isp: clean(f.isp),
                    organization: clean(f.organization),
                    autonomous_system_number: f.autonomous_system_number,
                    autonomous_system_organization: clean(f.autonomous_system_organization),
                    mobile_country_code: clean(f.mobile_country_code),
                    mobile_network_code: clean(f.mobile_network_code),
                }))
            }
            Err(e) => Err(DbError::from_mmdb(&self.path, e)),
        }
    }

    /// `connection_type` of a hit (a Connection-Type record, or an Enterprise record's
    /// `traits`), sanitized.
    #[inline]
    pub fn connection_type<'a>(&'a self, hit: &Hit<'a>) -> Result<Option<&'a str>, DbError> {
        match hit.result()?.decode::<record::ConnectionTypeRecord<'a>>() {
            Ok(rec) => Ok(rec.and_then(|r| r.get()).map(|s| self.clean(s))),
            Err(e) => Err(DbError::from_mmdb(&self.path, e)),
        }
    }

    /// `autonomous_system_number` alone (the `ip_asn` hot path); IPinfo Lite's `asn` text
    /// read as a number, `malformed` when it is none.
    ///
    /// From the record cache when the record's fields are there (the number the whole record
    /// decodes to is the one its path decodes to); otherwise the record is decoded whole and
    /// kept, and should that fail, the path alone is decoded as before, so that answers and
    /// errors stay what they were.
    #[inline]
    pub fn asn_number<'a>(&'a self, hit: &Hit<'a>) -> Result<AsnNumber, DbError> {
        let Some(offset) = hit.record_offset() else {
            return Ok(AsnNumber::default());
        };
        if let Some(f) = self.records.asn(self, offset) {
            return Ok(AsnNumber {
                number: f.number,
                malformed: f.malformed,
            });
        }
        if let Ok(f) = self.asn_fields_decoded(hit) {
            self.records.put_asn(self, offset, &f);
            return Ok(AsnNumber {
                number: f.number,
                malformed: f.malformed,
            });
        }
        self.asn_number_decoded(hit)
    }

    /// `autonomous_system_number` alone, decoded.
    fn asn_number_decoded(&self, hit: &Hit<'_>) -> Result<AsnNumber, DbError> {
        const PATH: [PathElement<'static>; 1] = [PathElement::Key("autonomous_system_number")];
        const IPINFO_PATH: [PathElement<'static>; 1] = [PathElement::Key("asn")];
        if self.layout == Layout::IpinfoLite {
            return hit
                .result()?
                .decode_path::<&str>(&IPINFO_PATH)
                .map(AsnNumber::from_ipinfo)
                .map_err(|e| DbError::from_mmdb(&self.path, e));
        }
        hit.result()?
            .decode_path(&PATH)
            .map(|number| AsnNumber {
                number,
                malformed: false,
            })
            .map_err(|e| DbError::from_mmdb(&self.path, e))
    }

    /// The whole record as JSON (`None` when the database has no data for the address).
    pub fn record_json(&self, hit: &Hit<'_>) -> Result<Option<serde_json::Value>, DbError> {
        hit.result()?
            .decode::<json::JsonRecord>()
            .map(|r| r.map(|r| r.0))
            .map_err(|e| DbError::from_mmdb(&self.path, e))
    }
}

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
