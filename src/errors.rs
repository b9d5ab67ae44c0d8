//! Every error ip_inventory raises: a real SQLSTATE, a message naming the file, and a hint
//! naming what to change.

use ip_inventory_core::mmdb::{DbError, DbSlot, ErrorKind};
use ip_inventory_core::sources::Source;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode::{self, *};

/// An ERROR on its way up a lookup's hot path, boxed. A `Result` is copied whole each time
/// it is returned, and one that can hold an `ErrorReport` (about 190 bytes) is copied by
/// `memcpy` even when nothing failed: a fifth of `ip_country`'s time in a profile
/// (docs/benchmarks.md, "Issue 20, round 5"). Boxed, the `Ok` path moves only its value.
pub type Boxed = Box<ErrorReport>;

/// Raises `report` as an ERROR with its SQLSTATE, detail and hint, as pgrx does with a
/// returned `Err(ErrorReport)`: the functions that return a plain value raise through it.
pub fn raise(report: Boxed) -> ! {
    report.report(pgrx::PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

pub fn report(code: PgSqlErrorCode, message: String) -> ErrorReport {
    // A last bound for messages that carry a path or another value of the caller's.
    ErrorReport::new(code, cut_to(&message, 1000), "ip_inventory")
}

/// User input quoted in a message, cut to a sane length: a message must not carry
/// megabytes of whatever a caller passed into the server log.
pub fn cut(input: &str) -> String {
    cut_to(input, 64)
}

pub fn cut_to(input: &str, max_chars: usize) -> String {
    match input.char_indices().nth(max_chars) {
        None => input.to_owned(),
        Some((end, _)) => format!("{}...", &input[..end]),
    }
}

/// A failure of pgrx's SPI layer itself (an SQL error inside propagates with its own SQLSTATE).
pub fn spi(e: pgrx::spi::Error) -> ErrorReport {
    report(
        ERRCODE_INTERNAL_ERROR,
        format!("ip_inventory: SPI failed: {e}"),
    )
}

/// A NULL table argument.
pub fn no_table() -> ErrorReport {
    report(ERRCODE_NULL_VALUE_NOT_ALLOWED, "no table given".to_owned())
}

/// A relation of a kind the extension never reads or writes for another role.
pub fn not_a_table(name: &str, relkind: &str) -> ErrorReport {
    let kind = match relkind {
        "v" => "a view",
        "m" => "a materialized view",
        "f" => "a foreign table",
        "S" => "a sequence",
        "i" | "I" => "an index",
        "c" => "a composite type",
        "t" => "a TOAST table",
        _ => "not a table",
    };
    report(ERRCODE_WRONG_OBJECT_TYPE, format!("{name} is {kind}"))
        .set_detail("Only ordinary and partitioned tables can be observed, backfilled or kept by retention: reading other relations can run code their owner wrote.")
        .set_hint("Attach the table the events are stored in.")
}

/// The caller does not own a table it wants to attach or detach.
pub fn must_own(name: &str, action: &str) -> ErrorReport {
    report(
        ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("must be owner of table {name} to {action} it"),
    )
    .set_hint("The table's owner (or a superuser) attaches it; see docs/security.md.")
}

/// The caller lacks a privilege on a table the extension would act on for it.
pub fn table_privilege(name: &str, privilege: &str, doing: &str) -> ErrorReport {
    report(
        ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("permission denied for table {name}"),
    )
    .set_detail(format!("{privilege} on the table is needed to {doing}."))
}

/// An attached column that is gone.
pub fn event_column_missing(table: &str, column: &str) -> ErrorReport {
    report(
        ERRCODE_UNDEFINED_COLUMN,
        format!("column \"{}\" of {table} does not exist", cut(column)),
    )
    .set_detail("The table changed since it was attached.")
    .set_hint(format!(
        "Attach it again with its current columns: SELECT ip_inventory_attach('{table}', ...);"
    ))
}

/// An attached column whose type changed to one the extension does not read.
pub fn event_column_type(table: &str, column: &str, is_time: bool) -> ErrorReport {
    report(
        ERRCODE_DATATYPE_MISMATCH,
        format!(
            "column \"{}\" of {table} is not {}",
            cut(column),
            if is_time { "timestamptz, timestamp or date" } else { "inet or cidr" }
        ),
    )
    .set_detail("Only these built-in types are read: reading another type could run code its owner wrote.")
    .set_hint(format!("Convert the column back, or attach the table again: SELECT ip_inventory_attach('{table}', ...);"))
}

/// An event time outside PostgreSQL's timestamp range (infinity).
pub fn bad_event_time() -> ErrorReport {
    report(
        ERRCODE_DATETIME_FIELD_OVERFLOW,
        "an event time is infinite or out of range".to_owned(),
    )
}

/// ip_inventory_observe() used other than as its statement-level AFTER INSERT trigger.
pub fn observe_misused() -> ErrorReport {
    report(
        ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        "ip_inventory_observe() must be an AFTER INSERT ... FOR EACH STATEMENT trigger with a NEW TABLE".to_owned(),
    )
    .set_hint("Create it with ip_inventory_attach().")
}

/// A table that is not in ip_inventory_observed.
pub fn not_attached(table: &str) -> ErrorReport {
    report(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("{table} is not attached to ip_inventory: its inserts are not recorded"),
    )
    .set_detail("Only tables attached with ip_inventory_attach() feed the inventory.")
    .set_hint("Its owner runs SELECT ip_inventory_attach(...); see docs/security.md.")
}

/// A relation holds a name ip_inventory_enriched_view would give a view, and is not one of
/// the views it created for this table.
pub fn view_name_taken(name: &str, table: &str) -> ErrorReport {
    report(
        ERRCODE_DUPLICATE_TABLE,
        format!("relation {} already exists", cut(name)),
    )
    .set_detail(format!(
        "It is not a view ip_inventory_enriched_view() created for {}: it is left alone.",
        cut(table)
    ))
    .set_hint("Pass another view_name (or view_schema), or drop or rename that relation.")
}

pub fn retention_mode(mode: &str) -> ErrorReport {
    report(
        ERRCODE_INVALID_PARAMETER_VALUE,
        format!("mode must be anonymize or delete, not {}", cut(mode)),
    )
}

/// A batch job that another session is running.
pub fn job_running(job: &str, holder: Option<i32>) -> ErrorReport {
    let who = holder.map_or_else(|| "another session".to_owned(), |p| format!("process {p}"));
    let report = report(
        ERRCODE_OBJECT_IN_USE,
        format!("job {} is already running ({who})", cut(job)),
    );
    match holder {
        Some(p) => report.set_hint(format!(
            "Wait for it, or stop it with SELECT pg_cancel_backend({p});"
        )),
        None => report,
    }
}

/// An unusable database file.
pub fn database(slot: &DbSlot, err: &DbError) -> ErrorReport {
    let code = match err.kind {
        ErrorKind::NotFound => ERRCODE_UNDEFINED_FILE,
        ErrorKind::PermissionDenied => ERRCODE_INSUFFICIENT_PRIVILEGE,
        ErrorKind::NotAFile | ErrorKind::WrongType { .. } => ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::Io(_) => ERRCODE_IO_ERROR,
        ErrorKind::Empty | ErrorKind::NotMmdb | ErrorKind::Corrupt(_) => ERRCODE_DATA_CORRUPTED,
        ErrorKind::ResourceLimit(_) => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
    };
    let hint = match (slot.settings(), &err.kind) {
        (Some(settings), ErrorKind::NotFound | ErrorKind::NotAFile | ErrorKind::WrongType { .. }) => {
            format!("Point {settings} at the right file, then run SELECT pg_reload_conf();")
        }
        (_, ErrorKind::PermissionDenied) => {
            "Make the file readable by the operating-system user the server runs as.".to_owned()
        }
        (Some(_), _) => "Install an intact copy (replace the file by rename, never in place), then run SELECT maxmind_reload();".to_owned(),
        (None, ErrorKind::NotFound | ErrorKind::NotAFile | ErrorKind::WrongType { .. }) => {
            "Pass the absolute path of a MaxMind DB file of the right type.".to_owned()
        }
        (None, _) => "The file is damaged or not a MaxMind DB; obtain an intact copy.".to_owned(),
    };
    report(
        code,
        format!("{} {}", slot.label(), cut_to(&err.to_string(), 300)),
    )
    .set_hint(hint)
}

/// A slot with no path configured.
pub fn not_configured(slot: &DbSlot) -> ErrorReport {
    report(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("no {} is configured", slot.label()),
    )
    .set_hint(format!(
        "Set {} in postgresql.conf (or with ALTER SYSTEM), then run SELECT pg_reload_conf();",
        slot.settings().unwrap_or_default()
    ))
}

/// The store of verified copies in the data directory cannot be used.
pub fn store_unusable(e: &std::io::Error) -> ErrorReport {
    report(
        ERRCODE_IO_ERROR,
        format!("cannot use the store of verified MaxMind databases ($PGDATA/ip_inventory): {e}"),
    )
    .set_hint("The server's operating-system user must be able to create and write that directory.")
}

/// What a function needs shared memory for, and what still works without it.
pub struct NeedsSharedMemory {
    pub function: &'static str,
    pub kept_there: &'static str,
    pub otherwise: &'static str,
}

pub const RELOAD_NEEDS: NeedsSharedMemory = NeedsSharedMemory {
    function: "maxmind_reload()",
    kept_there: "The reader generation that tells every backend to reopen its databases lives in shared memory.",
    otherwise: " Without it, backends still notice replaced files on their own (ip_inventory.file_check_interval).",
};

pub const QUOTA_NEEDS: NeedsSharedMemory = NeedsSharedMemory {
    function: "the GreyNoise quota",
    kept_there:
        "The daily quota is counted in shared memory, so that no number of sessions can exceed it.",
    otherwise: "",
};

pub const STATS_NEED: NeedsSharedMemory = NeedsSharedMemory {
    function: "ip_inventory_stats",
    kept_there: "The counters are kept in shared memory, for the whole cluster; without it nothing is counted.",
    otherwise: " Lookups, recording and refreshes work without it.",
};

/// A function that needs shared memory, without preload.
pub fn preload_required(needs: &NeedsSharedMemory) -> ErrorReport {
    report(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!(
            "{} requires ip_inventory to be loaded via shared_preload_libraries",
            needs.function
        ),
    )
    .set_detail(needs.kept_there)
    .set_hint(format!(
        "Add 'ip_inventory' to shared_preload_libraries in postgresql.conf and restart the server.{}",
        needs.otherwise
    ))
}

pub fn unknown_database(name: &str, known: &[String]) -> ErrorReport {
    let known = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    report(
        ERRCODE_UNDEFINED_OBJECT,
        format!("unknown database \"{}\"", cut(name)),
    )
    .set_detail(format!("Configured names: {known}."))
    .set_hint("Use city, asn, anonymous, isp, connection_type, a name from ip_inventory.databases, or an absolute file path.")
}

pub fn path_not_allowed() -> ErrorReport {
    report(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to read a database file by path".to_owned())
        .set_detail("Looking up a file by path reads server files.")
        .set_hint(
            "Only superusers and members of pg_read_server_files may pass a path; others use a name configured in ip_inventory.databases.",
        )
}

/// Text given as an address that is not one, worded like PostgreSQL's own inet input.
pub fn invalid_address_text(text: &str) -> ErrorReport {
    report(
        ERRCODE_INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type inet: \"{}\"", cut(text)),
    )
}

/// A datum that cannot be an `inet` (only reachable through a corrupt value).
pub fn bad_inet(detail: String) -> ErrorReport {
    report(ERRCODE_DATA_CORRUPTED, "invalid inet value".to_owned()).set_detail(detail)
}

/// The `ip_enrichment` type no longer has the shape this library builds.
pub fn type_altered(type_name: &str, detail: String) -> ErrorReport {
    report(
        ERRCODE_DATATYPE_MISMATCH,
        format!("type {type_name} does not match this version of ip_inventory"),
    )
    .set_detail(detail)
    .set_hint(format!(
        "Do not alter {type_name}; reinstall the extension to restore it."
    ))
}

/// A network source's setting that cannot be used (the message never holds a secret).
pub fn network_setting(setting: &str, problem: &str) -> ErrorReport {
    report(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("cannot use {setting}: {problem}"),
    )
    .set_hint(format!(
        "Set {setting} in postgresql.conf (or with ALTER SYSTEM), then run SELECT pg_reload_conf();"
    ))
}

/// A name that is not a network source (`ip_inventory_fetch`, `ip_inventory_ttl`; SQL's
/// `cascade_refresh` raises its own, which also accepts maxmind and all).
pub fn unknown_source(source: &str) -> ErrorReport {
    report(
        ERRCODE_INVALID_PARAMETER_VALUE,
        format!("unknown enrichment source \"{}\"", cut(source)),
    )
    .set_hint(format!("Network sources: {}.", Source::names()))
}

/// A network source switched off (`ip_inventory.<source>_enabled`) asked directly.
pub fn source_disabled(source: Source) -> ErrorReport {
    let setting = format!("ip_inventory.{}_enabled", source.name());
    report(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!(
            "network source {} is disabled ({setting} = off)",
            source.name()
        ),
    )
    .set_hint(format!(
        "ALTER SYSTEM SET {setting} = on; SELECT pg_reload_conf();"
    ))
}

/// A database kind `maxmind_verify` does not know.
pub fn unknown_kind(kind: &str) -> ErrorReport {
    report(
        ERRCODE_INVALID_PARAMETER_VALUE,
        format!("unknown database kind \"{}\"", cut(kind)),
    )
    .set_hint("Use city, asn or any.")
}

/// GreyNoise answered 401/403: no call can succeed with this key.
pub fn greynoise_unauthorized(status: u16) -> ErrorReport {
    report(
        ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        format!("GreyNoise rejected the API key (HTTP {status})"),
    )
    .set_detail("The refresh stopped; the addresses it selected stay due for the next run.")
    .set_hint(
        "Check the key that ip_inventory.greynoise_api_key (env:NAME or file:/path) points to, then run SELECT pg_reload_conf();",
    )
}

pub fn quota_needs_preload() -> ErrorReport {
    preload_required(&QUOTA_NEEDS)
}

pub fn threads(e: &std::io::Error) -> ErrorReport {
    report(
        ERRCODE_INSUFFICIENT_RESOURCES,
        format!("cannot start the network threads of a refresh: {e}"),
    )
}

/// A value outside what a privacy function accepts (a prefix length, a short salt).
pub fn privacy_argument(message: String) -> ErrorReport {
    report(ERRCODE_INVALID_PARAMETER_VALUE, message)
}

/// ip_pseudonymize(ip, NULL) through a 0.1.0 declaration.
pub fn null_salt() -> ErrorReport {
    report(ERRCODE_NULL_VALUE_NOT_ALLOWED, "the salt is NULL".to_owned())
        .set_hint("Call ip_pseudonymize(ip) for the configured salt (after ALTER EXTENSION ip_inventory UPDATE).")
}

/// ip_pseudonymize() without a salt argument and without ip_inventory.pseudonymize_salt.
pub fn no_salt() -> ErrorReport {
    report(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        "no pseudonymization salt is configured".to_owned(),
    )
    .set_hint(
        "A superuser sets ip_inventory.pseudonymize_salt to env:NAME or file:/path (a secret of at least 16 bytes), then runs SELECT pg_reload_conf();",
    )
}

/// The configured salt cannot be read (the message names the variable or file only).
pub fn salt_unreadable(detail: String) -> ErrorReport {
    report(
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        "the pseudonymization salt cannot be read".to_owned(),
    )
    .set_detail(detail)
    .set_hint("Check ip_inventory.pseudonymize_salt and the variable or file it names.")
}

/// ip_inventory_count_recorded() called by a role that cannot write ip_inventory.
pub fn cannot_count_writes() -> ErrorReport {
    report(
        ERRCODE_INSUFFICIENT_PRIVILEGE,
        "permission denied to count inventory writes".to_owned(),
    )
    .set_detail("Only roles that can INSERT or UPDATE ip_inventory count its writes.")
    .set_hint("The observe trigger, ip_inventory_backfill and ip_inventory_enrich_pending call it; nothing else needs to.")
}
