//! Every ip_inventory setting, its registration and typed getters.
//!
//! Reading a string setting copies it, so the lookup hot path never reads settings: the
//! assign hook of every setting that affects the readers bumps [`settings_epoch`], and the
//! per-backend reader cache re-reads the settings only when that number changes.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::time::Duration;

use ip_inventory_core::mmdb::DbSlot;
use ip_inventory_core::{dns, net, settings};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;

pub static MAXMIND_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static CITY_DB: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ASN_DB: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static LANGUAGE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"en"));
pub static FILE_CHECK_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static INGEST_ENRICHMENT: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static CYMRU_TTL: GucSetting<i32> = GucSetting::<i32>::new(90 * DAY);
pub static GREYNOISE_TTL: GucSetting<i32> = GucSetting::<i32>::new(7 * DAY);
pub static RDNS_TTL: GucSetting<i32> = GucSetting::<i32>::new(DAY);
pub static MAXMIND_AGE_WARNING: GucSetting<i32> = GucSetting::<i32>::new(7 * DAY);
pub static MAXMIND_AGE_CRITICAL: GucSetting<i32> = GucSetting::<i32>::new(14 * DAY);

// Network sources: superuser-only, so that nobody else can point them at other hosts.
pub static CYMRU_MODE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"whois"));
pub static CYMRU_WHOIS_SERVER: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"whois.cymru.com:43"));
pub static CYMRU_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(500);
pub static CYMRU_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30_000);
pub static DNS_SERVER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DNS_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(2_000);
pub static GREYNOISE_URL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"https://api.greynoise.io"));
pub static GREYNOISE_API_KEY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static PSEUDONYMIZE_SALT: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static GREYNOISE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10_000);
pub static GREYNOISE_DAILY_QUOTA: GucSetting<i32> = GucSetting::<i32>::new(10_000);
pub static NETWORK_CONCURRENCY: GucSetting<i32> = GucSetting::<i32>::new(4);

const DAY: i32 = 86_400;

thread_local! {
    static EPOCH: Cell<u64> = const { Cell::new(1) };
}

/// Changes whenever a setting that affects the readers changes in this backend (SET,
/// RESET, configuration reload, transaction rollback of a SET).
#[inline]
pub fn settings_epoch() -> u64 {
    EPOCH.with(Cell::get)
}

fn bump_epoch() {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_string(_new: *const c_char, _extra: *mut c_void) {
    bump_epoch();
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_int(_new: i32, _extra: *mut c_void) {
    bump_epoch();
}

/// Reports a rejected value the way Postgres does for its own settings (detail line). A long
/// value is not quoted whole: Postgres's own message would put all of it in the server log.
unsafe fn reject(value: &str, detail: &str) -> bool {
    let detail =
        CString::new(crate::errors::cut_to(detail, 300).replace('\0', "")).unwrap_or_default();
    // SAFETY: GUC_check_errdetail_string / _errmsg_string are read by the GUC machinery right
    // after the check hook returns false; pstrdup copies into the current memory context.
    unsafe {
        pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
        if value.chars().count() > 64 {
            let msg = CString::new(
                format!(
                    "invalid value for an ip_inventory setting: \"{}\"",
                    crate::errors::cut(value)
                )
                .replace('\0', ""),
            )
            .unwrap_or_default();
            pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(msg.as_ptr());
        }
    }
    false
}

/// A check hook's answer from a parser's result.
unsafe fn verdict<T>(value: &str, parsed: Result<T, String>) -> bool {
    match parsed {
        Ok(_) => true,
        Err(e) => unsafe { reject(value, &e) },
    }
}

unsafe fn new_value<'a>(newval: *mut *mut c_char) -> &'a str {
    // SAFETY: Postgres passes a valid pointer to a (possibly null) C string.
    unsafe {
        let p = *newval;
        if p.is_null() {
            ""
        } else {
            CStr::from_ptr(p).to_str().unwrap_or("\u{fffd}")
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_path(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    unsafe { verdict(v, settings::check_absolute_path(v)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_databases(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    unsafe { verdict(v, settings::parse_database_list(v)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_language(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    let ok =
        !v.is_empty() && v.len() <= 16 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok || unsafe {
        reject(
            v,
            "use a language code as MaxMind databases name them, e.g. en, de, pt-BR, zh-CN",
        )
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_cymru_mode(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    matches!(v, "whois" | "dns")
        || unsafe { reject(v, "use whois (bulk whois over TCP) or dns (TXT queries)") }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_whois_server(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    unsafe { verdict(v, net::parse_endpoint(v, 43)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_dns_server(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    v.trim().is_empty() || unsafe { verdict(v, dns::parse_server(v)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_url(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    unsafe { verdict(v, settings::check_key_url(v)) }
}

/// Only `env:NAME` and `file:/path` are accepted. A key written into the configuration
/// would reach the server log: the postmaster logs `parameter "..." changed to "<value>"` on
/// every reload that changes it. The refusal replaces Postgres's message, which would quote
/// the value.
#[pg_guard]
unsafe extern "C-unwind" fn check_secret(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    unsafe {
        check_secret_named(
            newval,
            c"ip_inventory.greynoise_api_key takes env:NAME or file:/path, not the key itself",
        )
    }
}

/// As [`check_secret`], for the pseudonymization salt.
#[pg_guard]
unsafe extern "C-unwind" fn check_salt(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    unsafe {
        check_secret_named(
            newval,
            c"ip_inventory.pseudonymize_salt takes env:NAME or file:/path, not the salt itself",
        )
    }
}

unsafe fn check_secret_named(newval: *mut *mut c_char, message: &CStr) -> bool {
    let v = unsafe { new_value(newval) };
    match settings::parse_secret(v) {
        Ok(None | Some(settings::Secret::Env(_) | settings::Secret::File(_))) => true,
        Ok(Some(settings::Secret::Plain(_))) => {
            // SAFETY: as in reject(): read by the GUC machinery right after the hook returns.
            unsafe { pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(message.as_ptr()) };
            unsafe {
                reject(
                    "",
                    "The server logs every changed setting with its value on reload, so a secret in the configuration would be in the server log. Put it in an environment variable of the server or in a file only the server can read.",
                )
            }
        }
        Err(e) => unsafe { reject(v, &e) },
    }
}

/// Registers a string setting; the other `define_*string` functions fix its context,
/// flags and assign hook.
#[allow(clippy::too_many_arguments)]
fn define_string_with(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    context: GucContext,
    flags: GucFlags,
    check: pg_sys::GucStringCheckHook,
    assign: pg_sys::GucStringAssignHook,
) {
    // SAFETY: the hooks are #[pg_guard]ed; check hooks only parse the value, the assign
    // hook only touches thread-local state.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            name, short, long, setting, context, flags, check, assign, None,
        )
    }
}

/// A setting the readers depend on: changing it bumps the settings epoch.
fn define_string(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    context: GucContext,
    check: pg_sys::GucStringCheckHook,
) {
    define_string_with(
        name,
        short,
        long,
        setting,
        context,
        GucFlags::default(),
        check,
        Some(assign_string),
    );
}

/// Registers all settings; called from `_PG_init`.
pub fn init() {
    define_string(
        c"ip_inventory.maxmind_dir",
        c"Directory holding the MaxMind databases.",
        c"Looked up there: GeoIP2-City.mmdb or GeoLite2-City.mmdb, and GeoIP2-ISP.mmdb or GeoLite2-ASN.mmdb. ip_inventory.city_db and ip_inventory.asn_db take precedence.",
        &MAXMIND_DIR,
        GucContext::Sighup,
        Some(check_path),
    );
    define_string(
        c"ip_inventory.city_db",
        c"Absolute path of the City (or Country, Enterprise) database.",
        c"Overrides the file found in ip_inventory.maxmind_dir. Replace the file by rename, never in place.",
        &CITY_DB,
        GucContext::Sighup,
        Some(check_path),
    );
    define_string(
        c"ip_inventory.asn_db",
        c"Absolute path of the ASN (or ISP) database.",
        c"Overrides the file found in ip_inventory.maxmind_dir. Replace the file by rename, never in place.",
        &ASN_DB,
        GucContext::Sighup,
        Some(check_path),
    );
    define_string(
        c"ip_inventory.databases",
        c"Named extra databases for mmdb_lookup(), as name=/path/file.mmdb, comma separated.",
        c"Any MaxMind DB format file (GeoIP2 Anonymous-IP, DB-IP, IPinfo, ip-location-db ...).",
        &DATABASES,
        GucContext::Sighup,
        Some(check_databases),
    );
    define_string(
        c"ip_inventory.language",
        c"Language of the place names enrich_ip() returns.",
        c"A language code of the database (en, de, es, fr, ja, pt-BR, ru, zh-CN in GeoLite2); names missing in that language fall back to English.",
        &LANGUAGE,
        GucContext::Userset,
        Some(check_language),
    );
    // SAFETY: the hook is #[pg_guard]ed and only touches thread-local state.
    unsafe {
        GucRegistry::define_int_guc_with_hooks(
            c"ip_inventory.file_check_interval",
            c"Seconds between checks whether a database file was replaced.",
            c"Each backend checks at most this often, at the start of a statement, and switches to a replaced file on its own. 0 checks at every statement, -1 never (then only maxmind_reload() switches).",
            &FILE_CHECK_INTERVAL,
            -1,
            86_400,
            GucContext::Sighup,
            GucFlags::UNIT_S,
            None,
            Some(assign_int),
            None,
        );
    }
    init_inventory();
    init_network();
    define_string_with(
        c"ip_inventory.pseudonymize_salt",
        c"Where the salt of ip_pseudonymize() is: env:NAME or file:/path. Empty: none.",
        c"Superusers only can see or set it; anyone who knows it can reverse pseudonyms of IPv4 addresses. The salt itself is refused: a changed setting is logged with its value on reload.",
        &PSEUDONYMIZE_SALT,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
        Some(check_salt),
        None,
    );
}

/// A time setting in seconds, read by SQL as `current_setting(name)::interval`.
fn define_seconds(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<i32>,
) {
    GucRegistry::define_int_guc(
        name,
        short,
        long,
        setting,
        1,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
}

/// The inventory's settings: read by the SQL in `sql/` (`current_setting()`), registered here
/// so they are typed, range-checked and listed in `pg_settings`.
fn init_inventory() {
    GucRegistry::define_bool_guc(
        c"ip_inventory.ingest_enrichment",
        c"Whether recording observations enriches new addresses from MaxMind inline.",
        c"Turn off in a session for a fast historical import: observations are still counted, and ip_inventory_enrich_pending() enriches the new rows afterwards.",
        &INGEST_ENRICHMENT,
        GucContext::Userset,
        GucFlags::default(),
    );
    define_seconds(
        c"ip_inventory.cymru_ttl",
        c"How long a Team Cymru answer stays fresh.",
        c"Rows whose cymru_ts is older are stale (ip_inventory_staleness, ip_inventory_health()).",
        &CYMRU_TTL,
    );
    define_seconds(
        c"ip_inventory.greynoise_ttl",
        c"How long a GreyNoise answer stays fresh.",
        c"Rows whose greynoise_ts is older are stale.",
        &GREYNOISE_TTL,
    );
    define_seconds(
        c"ip_inventory.rdns_ttl",
        c"How long a reverse-DNS answer stays fresh.",
        c"Rows whose rdns_ts is older are stale.",
        &RDNS_TTL,
    );
    define_seconds(
        c"ip_inventory.maxmind_age_warning",
        c"MaxMind data older than this is a warning in ip_inventory_health().",
        c"Measured from the databases' build_epoch (maxmind_age()).",
        &MAXMIND_AGE_WARNING,
    );
    define_seconds(
        c"ip_inventory.maxmind_age_critical",
        c"MaxMind data older than this is critical in ip_inventory_health().",
        c"Measured from the databases' build_epoch (maxmind_age()).",
        &MAXMIND_AGE_CRITICAL,
    );
}

/// A network source's setting: superuser only, read when a refresh starts.
fn define_network_string(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    flags: GucFlags,
    check: pg_sys::GucStringCheckHook,
) {
    define_string_with(
        name,
        short,
        long,
        setting,
        GucContext::Suset,
        flags,
        check,
        None,
    );
}

fn define_millis(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<i32>,
) {
    GucRegistry::define_int_guc(
        name,
        short,
        long,
        setting,
        100,
        600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
}

/// The network sources (cascade_refresh): endpoints, timeouts, the GreyNoise key and quota.
fn init_network() {
    define_network_string(
        c"ip_inventory.cymru_mode",
        c"How Team Cymru is asked: whois (bulk, many addresses per connection) or dns.",
        c"whois sends ip_inventory.cymru_batch_size addresses per TCP connection to ip_inventory.cymru_whois_server; dns asks origin.asn.cymru.com TXT records through ip_inventory.dns_server.",
        &CYMRU_MODE,
        GucFlags::default(),
        Some(check_cymru_mode),
    );
    define_network_string(
        c"ip_inventory.cymru_whois_server",
        c"Team Cymru bulk whois server, host[:port] (port 43 by default).",
        c"",
        &CYMRU_WHOIS_SERVER,
        GucFlags::default(),
        Some(check_whois_server),
    );
    GucRegistry::define_int_guc(
        c"ip_inventory.cymru_batch_size",
        c"Addresses per Team Cymru bulk whois connection.",
        c"Team Cymru null-routes clients that open a connection per address.",
        &CYMRU_BATCH_SIZE,
        1,
        10_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    define_millis(
        c"ip_inventory.cymru_timeout",
        c"Time limit of one Team Cymru bulk whois exchange (a whole batch).",
        c"",
        &CYMRU_TIMEOUT,
    );
    define_network_string(
        c"ip_inventory.dns_server",
        c"DNS server for reverse DNS and Team Cymru's DNS mode, address[:port]; empty: the first nameserver of /etc/resolv.conf.",
        c"",
        &DNS_SERVER,
        GucFlags::default(),
        Some(check_dns_server),
    );
    define_millis(
        c"ip_inventory.dns_timeout",
        c"Time limit of one DNS question (reverse DNS, Team Cymru DNS mode).",
        c"",
        &DNS_TIMEOUT,
    );
    define_network_string(
        c"ip_inventory.greynoise_url",
        c"Base URL of the GreyNoise API.",
        c"Addresses are asked at <url>/v3/community/<ip>.",
        &GREYNOISE_URL,
        GucFlags::default(),
        Some(check_url),
    );
    define_network_string(
        c"ip_inventory.greynoise_api_key",
        c"Where the GreyNoise API key is: env:NAME (an environment variable of the server) or file:/path (a file the server can read). Empty: no key.",
        c"Superusers only can see or set it. The key itself is refused: a changed setting is logged with its value on reload.",
        &GREYNOISE_API_KEY,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
        Some(check_secret),
    );
    define_millis(
        c"ip_inventory.greynoise_timeout",
        c"Time limit of one GreyNoise call.",
        c"",
        &GREYNOISE_TIMEOUT,
    );
    GucRegistry::define_int_guc(
        c"ip_inventory.greynoise_daily_quota",
        c"GreyNoise calls allowed per UTC day, counted across all sessions.",
        c"The count lives in shared memory (so it needs shared_preload_libraries) and is saved in ip_inventory_quota by every refresh.",
        &GREYNOISE_DAILY_QUOTA,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ip_inventory.network_concurrency",
        c"Calls a refresh makes at once (GreyNoise, reverse DNS, Team Cymru DNS mode).",
        c"",
        &NETWORK_CONCURRENCY,
        1,
        64,
        GucContext::Suset,
        GucFlags::default(),
    );
}

fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The path the settings name for the City or ASN slot, if any.
pub fn slot_path(slot: &DbSlot) -> Option<PathBuf> {
    let explicit = match slot {
        DbSlot::City => string(&CITY_DB),
        DbSlot::Asn => string(&ASN_DB),
        DbSlot::Named(_) | DbSlot::Path => None,
    };
    slot.configured_path(explicit.as_deref(), string(&MAXMIND_DIR).as_deref())
}

/// The named extra databases (the check hook guarantees the value parses).
pub fn named_databases() -> Vec<settings::NamedDatabase> {
    string(&DATABASES)
        .map(|v| settings::parse_database_list(&v).unwrap_or_default())
        .unwrap_or_default()
}

pub fn language() -> String {
    string(&LANGUAGE).unwrap_or_else(|| "en".to_owned())
}

/// `None`: never check automatically.
pub fn file_check_interval_secs() -> Option<u32> {
    u32::try_from(FILE_CHECK_INTERVAL.get()).ok()
}

/// The TTL of an enrichment source in seconds, `None` for an unknown source.
pub fn ttl_secs(source: &str) -> Option<i32> {
    match source {
        "cymru" => Some(CYMRU_TTL.get()),
        "greynoise" => Some(GREYNOISE_TTL.get()),
        "rdns" => Some(RDNS_TTL.get()),
        _ => None,
    }
}

fn millis(setting: &GucSetting<i32>) -> Duration {
    Duration::from_millis(u64::try_from(setting.get()).unwrap_or(0))
}

/// The network settings a refresh run needs, read on the main thread before its workers
/// start (workers must not read settings).
pub struct NetworkSettings {
    pub cymru_mode_dns: bool,
    pub cymru_whois_server: String,
    pub cymru_batch_size: usize,
    pub cymru_timeout: Duration,
    pub dns_server: Option<String>,
    pub dns_timeout: Duration,
    pub greynoise_url: String,
    /// The raw setting (a key, env:NAME or file:/path); resolved by the caller.
    pub greynoise_api_key: Option<String>,
    pub greynoise_timeout: Duration,
    pub greynoise_daily_quota: u32,
    pub concurrency: usize,
}

pub fn network() -> NetworkSettings {
    NetworkSettings {
        cymru_mode_dns: string(&CYMRU_MODE).as_deref() == Some("dns"),
        cymru_whois_server: string(&CYMRU_WHOIS_SERVER)
            .unwrap_or_else(|| "whois.cymru.com:43".to_owned()),
        cymru_batch_size: usize::try_from(CYMRU_BATCH_SIZE.get()).unwrap_or(500),
        cymru_timeout: millis(&CYMRU_TIMEOUT),
        dns_server: string(&DNS_SERVER),
        dns_timeout: millis(&DNS_TIMEOUT),
        greynoise_url: string(&GREYNOISE_URL)
            .unwrap_or_else(|| "https://api.greynoise.io".to_owned()),
        greynoise_api_key: GREYNOISE_API_KEY
            .get()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.trim().is_empty()),
        greynoise_timeout: millis(&GREYNOISE_TIMEOUT),
        greynoise_daily_quota: u32::try_from(GREYNOISE_DAILY_QUOTA.get()).unwrap_or(0),
        concurrency: usize::try_from(NETWORK_CONCURRENCY.get()).unwrap_or(4),
    }
}

/// The raw salt setting (env:NAME or file:/path), if set.
pub fn pseudonymize_salt() -> Option<String> {
    string(&PSEUDONYMIZE_SALT)
}

pub fn greynoise_daily_quota() -> u32 {
    u32::try_from(GREYNOISE_DAILY_QUOTA.get()).unwrap_or(0)
}
