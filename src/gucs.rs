//! Every ip_inventory setting: registered once here (`init`), read through the typed getters
//! at the end. The statics are private, and each default is written once, in its static.
//!
//! Reading a string setting copies it, so the lookup hot path never reads settings: the
//! assign hook of every setting that affects the readers bumps [`settings_epoch`], and the
//! per-backend reader cache re-reads the settings only when that number changes.
//!
//! To add a setting: a static with its default, one `define` call in the `init_*` function
//! of its area, a getter, and a line in docs/sql-reference.md's settings table.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::time::Duration;

use ip_inventory_core::mmdb::DbSlot;
use ip_inventory_core::sources::{dns, net, Source};
use ip_inventory_core::{secret, settings};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::pg_sys;
use pgrx::prelude::*;

const DAY: i32 = 86_400;

// MaxMind databases and lookups.
static MAXMIND_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static CITY_DB: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ASN_DB: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ANONYMOUS_DB: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ISP_DB: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static CONNECTION_TYPE_DB: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const LANGUAGE_DEFAULT: &CStr = c"en";
static LANGUAGE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(LANGUAGE_DEFAULT));
static FILE_CHECK_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10);
static MAXMIND_AGE_WARNING: GucSetting<i32> = GucSetting::<i32>::new(7 * DAY);
static MAXMIND_AGE_CRITICAL: GucSetting<i32> = GucSetting::<i32>::new(14 * DAY);

// The inventory.
static INGEST_ENRICHMENT: GucSetting<bool> = GucSetting::<bool>::new(true);
static PREDECODED_CITY: GucSetting<bool> = GucSetting::<bool>::new(true);
static CYMRU_TTL: GucSetting<i32> = GucSetting::<i32>::new(90 * DAY);
static GREYNOISE_TTL: GucSetting<i32> = GucSetting::<i32>::new(7 * DAY);
static RDNS_TTL: GucSetting<i32> = GucSetting::<i32>::new(DAY);

// The refresh: what each source of cascade_refresh() does when lim is not given, and the
// per-source switches. Plain settings (reload), so that an operator changes them with
// ALTER SYSTEM + pg_reload_conf() and every refresh after that sees them.
static MAXMIND_REFRESH_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static CYMRU_REFRESH_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(1_000);
static GREYNOISE_REFRESH_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(500);
static RDNS_REFRESH_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(500);
static CYMRU_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
static GREYNOISE_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
static RDNS_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
static CYMRU_SKIP_NETWORKS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static GREYNOISE_SKIP_NETWORKS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
static RDNS_SKIP_NETWORKS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static GREYNOISE_REFRESH_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(600);
static GREYNOISE_QUOTA_WARNING: GucSetting<i32> = GucSetting::<i32>::new(2_000);
static GREYNOISE_QUOTA_CRITICAL: GucSetting<i32> = GucSetting::<i32>::new(1_000);
// Tests only: the time the GreyNoise quota and its pacing take as now.
static QUOTA_CLOCK: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

// Network sources: superuser-only, so that nobody else can point them at other hosts.
static CYMRU_MODE: GucSetting<CymruMode> = GucSetting::<CymruMode>::new(CymruMode::Whois);
const CYMRU_WHOIS_DEFAULT: &CStr = c"whois.cymru.com:43";
static CYMRU_WHOIS_SERVER: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(CYMRU_WHOIS_DEFAULT));
static CYMRU_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(500);
static CYMRU_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30_000);
static DNS_SERVER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static DNS_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(2_000);
const GREYNOISE_URL_DEFAULT: &CStr = c"https://api.greynoise.io";
static GREYNOISE_URL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(GREYNOISE_URL_DEFAULT));
static GREYNOISE_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static GREYNOISE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static GREYNOISE_DAILY_QUOTA: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static NETWORK_CONCURRENCY: GucSetting<i32> = GucSetting::<i32>::new(4);

// Privacy.
static PSEUDONYMIZE_SALT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// How Team Cymru is asked (`ip_inventory.cymru_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PostgresGucEnum)]
pub enum CymruMode {
    /// Bulk whois over TCP, many addresses per connection.
    #[name = c"whois"]
    Whois,
    /// One TXT question per address.
    #[name = c"dns"]
    Dns,
}

// --- the settings epoch ---------------------------------------------------------------

thread_local! {
    static EPOCH: Cell<u64> = const { Cell::new(1) };
}

/// Changes whenever a setting that affects the readers changes in this backend (SET,
/// RESET, configuration reload, transaction rollback of a SET).
#[inline]
pub fn settings_epoch() -> u64 {
    EPOCH.with(Cell::get)
}

#[pg_guard]
unsafe extern "C-unwind" fn bump_epoch_string(_new: *const c_char, _extra: *mut c_void) {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
}

#[pg_guard]
unsafe extern "C-unwind" fn bump_epoch_bool(_new: bool, _extra: *mut c_void) {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
}

#[pg_guard]
unsafe extern "C-unwind" fn bump_epoch_int(_new: i32, _extra: *mut c_void) {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
}

// --- check hooks ------------------------------------------------------------------------

/// Reports a rejected value the way Postgres does for its own settings (detail line). A long
/// value is not quoted whole: Postgres's own message would put all of it in the server log.
fn reject(value: &str, detail: &str) -> bool {
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
fn parsed<T>(value: &str, result: Result<T, String>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => reject(value, &e),
    }
}

/// A string check hook: `check!(name, |value| -> bool)`, false having called [`reject`].
macro_rules! check {
    ($hook:ident, $verdict:expr) => {
        #[pg_guard]
        unsafe extern "C-unwind" fn $hook(
            newval: *mut *mut c_char,
            _extra: *mut *mut c_void,
            _source: pg_sys::GucSource::Type,
        ) -> bool {
            // SAFETY: Postgres passes a valid pointer to a (possibly null) C string.
            let value = unsafe {
                let p = *newval;
                if p.is_null() {
                    ""
                } else {
                    CStr::from_ptr(p).to_str().unwrap_or("\u{fffd}")
                }
            };
            let verdict: fn(&str) -> bool = $verdict;
            verdict(value)
        }
    };
}

check!(check_path, |v| parsed(v, settings::check_absolute_path(v)));
check!(check_databases, |v| parsed(
    v,
    settings::parse_database_list(v)
));
check!(check_language, |v| parsed(v, settings::check_language(v)));
check!(check_whois_server, |v| parsed(
    v,
    net::parse_endpoint(v, 43)
));
check!(check_dns_server, |v| v.trim().is_empty()
    || parsed(v, dns::parse_server(v)));
check!(check_url, |v| parsed(v, settings::check_key_url(v)));
check!(check_networks, |v| parsed(
    v,
    settings::parse_network_list(v)
));
check!(check_clock, |v| parsed(v, settings::parse_utc_clock(v)));

/// Secret settings take only `env:NAME` and `file:/path`: a key written into the
/// configuration would reach the server log, which logs `parameter "..." changed to
/// "<value>"` on every reload that changes it. The refusal replaces Postgres's message,
/// which would quote the value.
fn check_secret(value: &str, setting: &CStr, what: &str) -> bool {
    match secret::parse(value) {
        Ok(_) => true,
        Err(secret::Refused::Literal) => {
            let message = format!(
                "{} takes env:NAME or file:/path, not the {what} itself",
                setting.to_string_lossy()
            );
            let message = CString::new(message).unwrap_or_default();
            // SAFETY: as in reject(): read by the GUC machinery right after the hook returns.
            unsafe { pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(message.as_ptr()) };
            reject(
                "",
                "The server logs every changed setting with its value on reload, so a secret in the configuration would be in the server log. Put it in an environment variable of the server or in a file only the server can read.",
            )
        }
        Err(secret::Refused::Invalid(e)) => reject(value, &e),
    }
}

const API_KEY: &CStr = c"ip_inventory.greynoise_api_key";
const SALT: &CStr = c"ip_inventory.pseudonymize_salt";
check!(check_api_key, |v| check_secret(v, API_KEY, "key"));
check!(check_salt, |v| check_secret(v, SALT, "salt"));

// --- registration -----------------------------------------------------------------------

/// What a string setting is and who may change it.
struct Text {
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    context: GucContext,
    flags: GucFlags,
    check: pg_sys::GucStringCheckHook,
    /// The readers depend on it: changing it bumps the settings epoch.
    readers: bool,
}

fn define_text(t: Text) {
    // SAFETY: the hooks are #[pg_guard]ed; check hooks only parse the value, the assign
    // hook only touches thread-local state.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            t.name,
            t.short,
            t.long,
            t.setting,
            t.context,
            t.flags,
            t.check,
            if t.readers {
                Some(bump_epoch_string)
            } else {
                None
            },
            None,
        )
    }
}

/// An integer setting with its range and unit.
struct Int {
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<i32>,
    min: i32,
    max: i32,
    context: GucContext,
    unit: GucFlags,
}

fn define_int(i: Int) {
    GucRegistry::define_int_guc(
        i.name, i.short, i.long, i.setting, i.min, i.max, i.context, i.unit,
    );
}

/// A time setting in seconds, read by SQL as `current_setting(name)::interval`.
fn seconds(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<i32>,
) -> Int {
    Int {
        name,
        short,
        long,
        setting,
        min: 1,
        max: i32::MAX,
        context: GucContext::Sighup,
        unit: GucFlags::UNIT_S,
    }
}

/// A network time limit in milliseconds (superuser only).
fn millis(name: &'static CStr, short: &'static CStr, setting: &'static GucSetting<i32>) -> Int {
    Int {
        name,
        short,
        long: c"",
        setting,
        min: 100,
        max: 600_000,
        context: GucContext::Suset,
        unit: GucFlags::UNIT_MS,
    }
}

/// Registers all settings and reserves the `ip_inventory.` prefix (a mistyped name in the
/// configuration is reported, and SET of one fails); called from `_PG_init`.
pub fn init() {
    init_maxmind();
    init_inventory();
    init_network();
    init_refresh();
    define_text(Text {
        name: SALT,
        short: c"Where the salt of ip_pseudonymize() is: env:NAME or file:/path. Empty: none.",
        long: c"Superusers only can see or set it; anyone who knows it can reverse pseudonyms of IPv4 addresses. The salt itself is refused: a changed setting is logged with its value on reload.",
        setting: &PSEUDONYMIZE_SALT,
        context: GucContext::Suset,
        flags: GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
        check: Some(check_salt),
        readers: false,
    });
    // SAFETY: called once from _PG_init, after every ip_inventory setting is defined.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"ip_inventory".as_ptr()) };
}

fn database_path(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
) {
    define_text(Text {
        name,
        short,
        long,
        setting,
        context: GucContext::Sighup,
        flags: GucFlags::default(),
        check: Some(check_path),
        readers: true,
    });
}

fn init_maxmind() {
    database_path(
        c"ip_inventory.maxmind_dir",
        c"Directory holding the MaxMind databases.",
        c"Looked up there, first found: GeoIP2-City.mmdb, GeoLite2-City.mmdb, then DB-IP Lite (dbip-city-lite, dbip-country-lite) and ipinfo_lite.mmdb; GeoIP2-ISP.mmdb, GeoLite2-ASN.mmdb, then dbip-asn-lite and ipinfo_lite.mmdb (docs/maxmind.md). ip_inventory.city_db and ip_inventory.asn_db take precedence.",
        &MAXMIND_DIR,
    );
    database_path(
        c"ip_inventory.city_db",
        c"Absolute path of the City (or Country, Enterprise) database.",
        c"Overrides the file found in ip_inventory.maxmind_dir. Replace the file by rename, never in place.",
        &CITY_DB,
    );
    database_path(
        c"ip_inventory.asn_db",
        c"Absolute path of the ASN (or ISP) database.",
        c"Overrides the file found in ip_inventory.maxmind_dir. Replace the file by rename, never in place.",
        &ASN_DB,
    );
    database_path(
        c"ip_inventory.anonymous_db",
        c"Absolute path of the Anonymous-IP (or Anonymous Plus, Enterprise) database for ip_anonymous().",
        c"Overrides GeoIP2-Anonymous-IP.mmdb or GeoIP-Anonymous-Plus.mmdb in ip_inventory.maxmind_dir (used only when present there). Replace the file by rename, never in place.",
        &ANONYMOUS_DB,
    );
    database_path(
        c"ip_inventory.isp_db",
        c"Absolute path of the ISP (or Enterprise) database for ip_isp().",
        c"Overrides GeoIP2-ISP.mmdb in ip_inventory.maxmind_dir (used only when present there). Replace the file by rename, never in place.",
        &ISP_DB,
    );
    database_path(
        c"ip_inventory.connection_type_db",
        c"Absolute path of the Connection-Type (or Enterprise) database for ip_connection_type().",
        c"Overrides GeoIP2-Connection-Type.mmdb in ip_inventory.maxmind_dir (used only when present there). Replace the file by rename, never in place.",
        &CONNECTION_TYPE_DB,
    );
    define_text(Text {
        name: c"ip_inventory.databases",
        short:
            c"Named extra databases for mmdb_lookup(), as name=/path/file.mmdb, comma separated.",
        long:
            c"Any MaxMind DB format file (GeoIP2 Anonymous-IP, DB-IP, IPinfo, ip-location-db ...).",
        setting: &DATABASES,
        context: GucContext::Sighup,
        flags: GucFlags::default(),
        check: Some(check_databases),
        readers: true,
    });
    define_text(Text {
        name: c"ip_inventory.language",
        short: c"Language of the place names enrich_ip() returns.",
        long: c"A language code of the database (en, de, es, fr, ja, pt-BR, ru, zh-CN in GeoLite2); names missing in that language fall back to English.",
        setting: &LANGUAGE,
        context: GucContext::Userset,
        flags: GucFlags::default(),
        check: Some(check_language),
        readers: true,
    });
    // SAFETY: the hook is #[pg_guard]ed and only touches thread-local state.
    unsafe {
        GucRegistry::define_bool_guc_with_hooks(
            c"ip_inventory.predecoded_city",
            c"Whether City lookups read records decoded once and shared by all backends.",
            c"Every record of the City database, decoded once in the language of ip_inventory.language and written beside its verified copy (about 62 MB for GeoLite2 City), then mapped by every backend. Off: each lookup decodes its record (docs/maxmind.md).",
            &PREDECODED_CITY,
            GucContext::Userset,
            GucFlags::default(),
            None,
            Some(bump_epoch_bool),
            None,
        );
    }
    // SAFETY: the hook is #[pg_guard]ed and only touches thread-local state.
    unsafe {
        GucRegistry::define_int_guc_with_hooks(
            c"ip_inventory.file_check_interval",
            c"Seconds between checks whether a database file was replaced.",
            c"Each backend checks at most this often, at the start of a statement, and switches to a replaced file once it is verified. 0 checks at every statement, -1 never (then only maxmind_reload() switches).",
            &FILE_CHECK_INTERVAL,
            -1,
            86_400,
            GucContext::Sighup,
            GucFlags::UNIT_S,
            None,
            Some(bump_epoch_int),
            None,
        );
    }
    define_int(seconds(
        c"ip_inventory.maxmind_age_warning",
        c"MaxMind data older than this is a warning in ip_inventory_health().",
        c"Measured from the databases' build_epoch (maxmind_age()).",
        &MAXMIND_AGE_WARNING,
    ));
    define_int(seconds(
        c"ip_inventory.maxmind_age_critical",
        c"MaxMind data older than this is critical in ip_inventory_health().",
        c"Measured from the databases' build_epoch (maxmind_age()).",
        &MAXMIND_AGE_CRITICAL,
    ));
}

/// The inventory's settings: read by the SQL in `sql/` (`current_setting()`) too, registered
/// here so they are typed, range-checked and listed in `pg_settings`.
fn init_inventory() {
    GucRegistry::define_bool_guc(
        c"ip_inventory.ingest_enrichment",
        c"Whether recording observations enriches new addresses from MaxMind inline.",
        c"Turn off in a session for a fast historical import: observations are still counted, and ip_inventory_enrich_pending() enriches the new rows afterwards.",
        &INGEST_ENRICHMENT,
        GucContext::Userset,
        GucFlags::default(),
    );
    for source in Source::ALL {
        let (name, short, long, setting) = match source {
            Source::Cymru => (
                c"ip_inventory.cymru_ttl",
                c"How long a Team Cymru answer stays fresh.",
                c"Rows whose cymru_ts is older are stale (ip_inventory_staleness, ip_inventory_health()).",
                &CYMRU_TTL,
            ),
            Source::GreyNoise => (
                c"ip_inventory.greynoise_ttl",
                c"How long a GreyNoise answer stays fresh.",
                c"Rows whose greynoise_ts is older are stale.",
                &GREYNOISE_TTL,
            ),
            Source::Rdns => (
                c"ip_inventory.rdns_ttl",
                c"How long a reverse-DNS answer stays fresh.",
                c"Rows whose rdns_ts is older are stale.",
                &RDNS_TTL,
            ),
        };
        debug_assert_eq!(name.to_str().ok(), Some(source.ttl_setting()));
        define_int(seconds(name, short, long, setting));
    }
}

/// A network source's endpoint: superuser only, read when a refresh starts.
fn endpoint(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    check: pg_sys::GucStringCheckHook,
) {
    define_text(Text {
        name,
        short,
        long,
        setting,
        context: GucContext::Suset,
        flags: GucFlags::default(),
        check,
        readers: false,
    });
}

/// The network sources (cascade_refresh): endpoints, timeouts, the GreyNoise key and quota.
fn init_network() {
    GucRegistry::define_enum_guc(
        c"ip_inventory.cymru_mode",
        c"How Team Cymru is asked: whois (bulk, many addresses per connection) or dns.",
        c"whois sends ip_inventory.cymru_batch_size addresses per TCP connection to ip_inventory.cymru_whois_server; dns asks origin.asn.cymru.com TXT records through ip_inventory.dns_server.",
        &CYMRU_MODE,
        GucContext::Suset,
        GucFlags::default(),
    );
    endpoint(
        c"ip_inventory.cymru_whois_server",
        c"Team Cymru bulk whois server, host[:port] (port 43 by default).",
        c"",
        &CYMRU_WHOIS_SERVER,
        Some(check_whois_server),
    );
    define_int(Int {
        name: c"ip_inventory.cymru_batch_size",
        short: c"Addresses per Team Cymru bulk whois connection.",
        long: c"Team Cymru null-routes clients that open a connection per address.",
        setting: &CYMRU_BATCH_SIZE,
        min: 1,
        max: 10_000,
        context: GucContext::Suset,
        unit: GucFlags::default(),
    });
    define_int(millis(
        c"ip_inventory.cymru_timeout",
        c"Time limit of one Team Cymru bulk whois exchange (a whole batch).",
        &CYMRU_TIMEOUT,
    ));
    endpoint(
        c"ip_inventory.dns_server",
        c"DNS server for reverse DNS and Team Cymru's DNS mode, address[:port]; empty: the first nameserver of /etc/resolv.conf.",
        c"",
        &DNS_SERVER,
        Some(check_dns_server),
    );
    define_int(millis(
        c"ip_inventory.dns_timeout",
        c"Time limit of one DNS question (reverse DNS, Team Cymru DNS mode).",
        &DNS_TIMEOUT,
    ));
    endpoint(
        c"ip_inventory.greynoise_url",
        c"Base URL of the GreyNoise API.",
        c"Addresses are asked at <url>/v3/community/<ip>.",
        &GREYNOISE_URL,
        Some(check_url),
    );
    define_text(Text {
        name: API_KEY,
        short: c"Where the GreyNoise API key is: env:NAME (an environment variable of the server) or file:/path (a file the server can read). Empty: no key.",
        long: c"Superusers only can see or set it. The key itself is refused: a changed setting is logged with its value on reload.",
        setting: &GREYNOISE_API_KEY,
        context: GucContext::Suset,
        flags: GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
        check: Some(check_api_key),
        readers: false,
    });
    define_int(millis(
        c"ip_inventory.greynoise_timeout",
        c"Time limit of one GreyNoise call.",
        &GREYNOISE_TIMEOUT,
    ));
    define_int(Int {
        name: c"ip_inventory.greynoise_daily_quota",
        short: c"GreyNoise calls allowed per UTC day, counted across all sessions.",
        long: c"The count lives in shared memory (so it needs shared_preload_libraries) and is saved in ip_inventory_quota by every refresh.",
        setting: &GREYNOISE_DAILY_QUOTA,
        min: 0,
        max: i32::MAX,
        context: GucContext::Suset,
        unit: GucFlags::default(),
    });
    define_int(Int {
        name: c"ip_inventory.network_concurrency",
        short: c"Calls a refresh makes at once (GreyNoise, reverse DNS, Team Cymru DNS mode).",
        long: c"",
        setting: &NETWORK_CONCURRENCY,
        min: 1,
        max: 64,
        context: GucContext::Suset,
        unit: GucFlags::default(),
    });
}

/// Per source: its limit when cascade_refresh() is given none, whether it runs at all, and
/// the networks it never asks about; the GreyNoise pace and quota thresholds.
fn init_refresh() {
    for (name, short, setting) in [
        (
            c"ip_inventory.maxmind_refresh_limit",
            c"Rows cascade_refresh('maxmind') or ('all') re-enriches from MaxMind when lim is not given.",
            &MAXMIND_REFRESH_LIMIT,
        ),
        (
            c"ip_inventory.cymru_refresh_limit",
            c"Rows cascade_refresh('cymru') or ('all') asks Team Cymru about when lim is not given.",
            &CYMRU_REFRESH_LIMIT,
        ),
        (
            c"ip_inventory.greynoise_refresh_limit",
            c"At most this many GreyNoise calls per cascade_refresh('greynoise') or ('all') without lim; fewer when the pace says so.",
            &GREYNOISE_REFRESH_LIMIT,
        ),
        (
            c"ip_inventory.rdns_refresh_limit",
            c"Rows cascade_refresh('rdns') or ('all') asks reverse DNS about when lim is not given.",
            &RDNS_REFRESH_LIMIT,
        ),
    ] {
        define_int(Int {
            name,
            short,
            long: c"An explicit lim argument replaces it.",
            setting,
            min: 0,
            max: 100_000,
            context: GucContext::Sighup,
            unit: GucFlags::default(),
        });
    }
    for source in Source::ALL {
        let (enabled, skip) = match source {
            Source::Cymru => (
                (c"ip_inventory.cymru_enabled", &CYMRU_ENABLED),
                (c"ip_inventory.cymru_skip_networks", &CYMRU_SKIP_NETWORKS),
            ),
            Source::GreyNoise => (
                (c"ip_inventory.greynoise_enabled", &GREYNOISE_ENABLED),
                (
                    c"ip_inventory.greynoise_skip_networks",
                    &GREYNOISE_SKIP_NETWORKS,
                ),
            ),
            Source::Rdns => (
                (c"ip_inventory.rdns_enabled", &RDNS_ENABLED),
                (c"ip_inventory.rdns_skip_networks", &RDNS_SKIP_NETWORKS),
            ),
        };
        GucRegistry::define_bool_guc(
            enabled.0,
            c"Whether this network source is asked at all (cascade_refresh, ip_inventory_fetch).",
            c"Off: cascade_refresh() of the source refreshes nothing and says so, ('all') skips it, ip_inventory_health() reports it disabled; the answers already stored are kept.",
            enabled.1,
            GucContext::Sighup,
            GucFlags::default(),
        );
        define_text(Text {
            name: skip.0,
            short: c"Networks this source is never asked about, in CIDR notation, comma separated.",
            long: c"Their rows are not selected by cascade_refresh() nor counted as stale; e.g. no reverse DNS for 192.0.2.0/24.",
            setting: skip.1,
            context: GucContext::Sighup,
            flags: GucFlags::default(),
            check: Some(check_networks),
            readers: false,
        });
    }
    define_int(Int {
        name: c"ip_inventory.greynoise_refresh_interval",
        short: c"How often the scheduled GreyNoise refresh runs (the period of the pg_cron job).",
        long: c"A cascade_refresh('greynoise') or ('all') without lim makes at most the calls left today divided by the runs left until midnight UTC at this interval.",
        setting: &GREYNOISE_REFRESH_INTERVAL,
        min: 60,
        max: DAY,
        context: GucContext::Sighup,
        unit: GucFlags::UNIT_S,
    });
    for (name, short, setting) in [
        (
            c"ip_inventory.greynoise_quota_warning",
            c"GreyNoise calls left today under which ip_inventory_health() warns.",
            &GREYNOISE_QUOTA_WARNING,
        ),
        (
            c"ip_inventory.greynoise_quota_critical",
            c"GreyNoise calls left today under which ip_inventory_health() is critical.",
            &GREYNOISE_QUOTA_CRITICAL,
        ),
    ] {
        define_int(Int {
            name,
            short,
            long: c"Also exported as gauges in ip_inventory_stats for alerting rules.",
            setting,
            min: 0,
            max: i32::MAX,
            context: GucContext::Sighup,
            unit: GucFlags::default(),
        });
    }
    define_text(Text {
        name: c"ip_inventory.quota_clock",
        short: c"Tests only: the UTC time (YYYY-MM-DD HH:MM:SS) the GreyNoise quota and its pacing take as now; empty: the real clock.",
        long: c"Superusers only. Lets a test simulate a UTC day of scheduled refreshes.",
        setting: &QUOTA_CLOCK,
        context: GucContext::Suset,
        flags: GucFlags::default(),
        check: Some(check_clock),
        readers: false,
    });
}

// --- typed getters ------------------------------------------------------------------------

/// A string setting, trimmed; `None` when unset or empty.
fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A string setting with a default: an empty value means the default.
fn text_or(setting: &GucSetting<Option<CString>>, default: &CStr) -> String {
    text(setting).unwrap_or_else(|| default.to_string_lossy().into_owned())
}

/// A setting whose range starts at 0 or above, as the unsigned type it is.
fn count(setting: &GucSetting<i32>) -> u32 {
    u32::try_from(setting.get()).unwrap_or(0)
}

fn duration_ms(setting: &GucSetting<i32>) -> Duration {
    Duration::from_millis(u64::from(count(setting)))
}

/// The path the settings name for a MaxMind slot, if any.
pub fn slot_path(slot: &DbSlot) -> Option<PathBuf> {
    let explicit = match slot {
        DbSlot::City => text(&CITY_DB),
        DbSlot::Asn => text(&ASN_DB),
        DbSlot::Anonymous => text(&ANONYMOUS_DB),
        DbSlot::Isp => text(&ISP_DB),
        DbSlot::ConnectionType => text(&CONNECTION_TYPE_DB),
        DbSlot::Named(_) | DbSlot::Path => None,
    };
    slot.configured_path(explicit.as_deref(), text(&MAXMIND_DIR).as_deref())
}

/// The named extra databases (the check hook guarantees the value parses).
pub fn named_databases() -> Vec<settings::NamedDatabase> {
    text(&DATABASES)
        .map(|v| settings::parse_database_list(&v).unwrap_or_default())
        .unwrap_or_default()
}

pub fn language() -> String {
    text_or(&LANGUAGE, LANGUAGE_DEFAULT)
}

/// `None`: never check automatically.
pub fn file_check_interval_secs() -> Option<u32> {
    u32::try_from(FILE_CHECK_INTERVAL.get()).ok()
}

pub fn predecoded_city() -> bool {
    PREDECODED_CITY.get()
}

pub fn ingest_enrichment() -> bool {
    INGEST_ENRICHMENT.get()
}

/// How long an answer of the source stays fresh, in seconds.
pub fn ttl_secs(source: Source) -> i32 {
    match source {
        Source::Cymru => CYMRU_TTL.get(),
        Source::GreyNoise => GREYNOISE_TTL.get(),
        Source::Rdns => RDNS_TTL.get(),
    }
}

/// The network settings a refresh run needs, read on the main thread before its workers
/// start (workers must not read settings).
pub struct NetworkSettings {
    pub cymru_mode: CymruMode,
    pub cymru_whois_server: String,
    pub cymru_batch_size: usize,
    pub cymru_timeout: Duration,
    pub dns_server: Option<String>,
    pub dns_timeout: Duration,
    pub greynoise_url: String,
    /// Where the key is (env:NAME or file:/path); resolved by the caller.
    pub greynoise_api_key: Option<String>,
    pub greynoise_timeout: Duration,
    pub greynoise_daily_quota: u32,
    pub concurrency: usize,
}

pub fn network() -> NetworkSettings {
    NetworkSettings {
        cymru_mode: CYMRU_MODE.get(),
        cymru_whois_server: text_or(&CYMRU_WHOIS_SERVER, CYMRU_WHOIS_DEFAULT),
        cymru_batch_size: count(&CYMRU_BATCH_SIZE) as usize,
        cymru_timeout: duration_ms(&CYMRU_TIMEOUT),
        dns_server: text(&DNS_SERVER),
        dns_timeout: duration_ms(&DNS_TIMEOUT),
        greynoise_url: text_or(&GREYNOISE_URL, GREYNOISE_URL_DEFAULT),
        greynoise_api_key: text(&GREYNOISE_API_KEY),
        greynoise_timeout: duration_ms(&GREYNOISE_TIMEOUT),
        greynoise_daily_quota: greynoise_daily_quota(),
        concurrency: count(&NETWORK_CONCURRENCY) as usize,
    }
}

/// Where the salt is (env:NAME or file:/path), if set.
pub fn pseudonymize_salt() -> Option<String> {
    text(&PSEUDONYMIZE_SALT)
}

pub fn greynoise_daily_quota() -> u32 {
    count(&GREYNOISE_DAILY_QUOTA)
}

/// The limit of a refresh of `source` (maxmind or a network source) when none is given.
pub fn refresh_limit(source: Option<Source>) -> i32 {
    match source {
        None => MAXMIND_REFRESH_LIMIT.get(),
        Some(Source::Cymru) => CYMRU_REFRESH_LIMIT.get(),
        Some(Source::GreyNoise) => GREYNOISE_REFRESH_LIMIT.get(),
        Some(Source::Rdns) => RDNS_REFRESH_LIMIT.get(),
    }
}

/// Whether a network source is switched on (`ip_inventory.<source>_enabled`).
pub fn source_enabled(source: Source) -> bool {
    match source {
        Source::Cymru => CYMRU_ENABLED.get(),
        Source::GreyNoise => GREYNOISE_ENABLED.get(),
        Source::Rdns => RDNS_ENABLED.get(),
    }
}

/// The networks a source never asks about (the check hook guarantees the value parses).
pub fn skip_networks(source: Source) -> Vec<ipnetwork::IpNetwork> {
    let setting = match source {
        Source::Cymru => &CYMRU_SKIP_NETWORKS,
        Source::GreyNoise => &GREYNOISE_SKIP_NETWORKS,
        Source::Rdns => &RDNS_SKIP_NETWORKS,
    };
    text(setting)
        .map(|v| settings::parse_network_list(&v).unwrap_or_default())
        .unwrap_or_default()
}

pub fn greynoise_refresh_interval_secs() -> u32 {
    count(&GREYNOISE_REFRESH_INTERVAL)
}

/// Now for the GreyNoise quota, in seconds since 1970: `ip_inventory.quota_clock` when a
/// test set it, else the real clock.
pub fn quota_clock() -> Option<u64> {
    text(&QUOTA_CLOCK).and_then(|v| settings::parse_utc_clock(&v).ok().flatten())
}
