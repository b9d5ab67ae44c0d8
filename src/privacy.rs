//! `ip_anonymize` and `ip_pseudonymize`: SQL glue over `ip_inventory_core::privacy`.

use std::cell::RefCell;

use ip_inventory_core::{privacy, settings};
use ipnetwork::IpNetwork;
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;

use crate::datum::{self, InetArg, InetDatum, TextDatum};
use crate::{errors, gucs};

/// `ip_anonymize(inet, prefix_v4 int default 24, prefix_v6 int default 48) → inet`: the
/// network the address falls in, with its prefix length (`81.2.69.160` → `81.2.69.0/24`).
/// IPv4-mapped addresses are truncated as IPv4.
#[pg_extern(immutable, strict, parallel_safe)]
fn ip_anonymize(
    ip: InetArg,
    prefix_v4: default!(i32, 24),
    prefix_v6: default!(i32, 48),
) -> Result<InetDatum, ErrorReport> {
    let (network, bits) =
        privacy::truncate(ip.addr, prefix_v4, prefix_v6).map_err(errors::privacy_argument)?;
    let net = IpNetwork::new(network, bits).expect("truncate returns a valid prefix length");
    Ok(InetDatum(datum::network_datum(net)))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_anonymize(inet, int, int) IS
    'The network an address falls in, truncated to prefix_v4 (default 24) or prefix_v6 (default 48) bits, with its prefix length: 81.2.69.160 -> 81.2.69.0/24. IPv4-mapped addresses are truncated as IPv4.';
"#,
    name = "ip_anonymize_comment",
    requires = [ip_anonymize]
);

/// `ip_pseudonymize(inet, salt text) → text`: a keyed hash of the address (32 hex digits),
/// the same for the same address and salt.
#[pg_extern(immutable, strict, parallel_safe)]
fn ip_pseudonymize(ip: InetArg, salt: Option<&str>) -> Result<TextDatum, ErrorReport> {
    // (Declared STRICT; the Option keeps a 0.1.0 declaration, which passed NULL for the
    // configured salt, from unboxing a NULL before ALTER EXTENSION ... UPDATE.)
    let salt = salt.ok_or_else(errors::null_salt)?;
    let pseudonym = privacy::pseudonym(ip.addr, salt).map_err(errors::privacy_argument)?;
    Ok(TextDatum::new(&pseudonym))
}

/// `ip_pseudonymize(inet) → text`: [`ip_pseudonymize`] with the salt that
/// `ip_inventory.pseudonymize_salt` names. Not for PUBLIC: whoever may call it can hash the
/// whole IPv4 space and reverse every pseudonym.
#[pg_extern(stable, strict, parallel_safe, name = "ip_pseudonymize")]
fn ip_pseudonymize_configured(ip: InetArg) -> Result<TextDatum, ErrorReport> {
    let pseudonym = with_configured_salt(|salt| privacy::pseudonym(ip.addr, salt))?
        .map_err(errors::privacy_argument)?;
    Ok(TextDatum::new(&pseudonym))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_pseudonymize(inet, text) IS
    'A keyed hash of the address (HMAC-SHA256, 32 hex digits), the same for the same address and salt.';
COMMENT ON FUNCTION @extschema@.ip_pseudonymize(inet) IS
    'ip_pseudonymize() with the salt named by ip_inventory.pseudonymize_salt. Not granted to PUBLIC: whoever can call it can reverse pseudonyms of IPv4 addresses by trying them all.';
REVOKE ALL ON FUNCTION @extschema@.ip_pseudonymize(inet) FROM PUBLIC;
"#,
    name = "pseudonymize_acl",
    requires = [ip_pseudonymize, ip_pseudonymize_configured]
);

thread_local! {
    /// The configured salt as resolved for the running statement: (setting, statement start,
    /// salt). A `file:` salt is read once per statement, not once per row; a changed file
    /// or setting is picked up by the next statement.
    static CONFIGURED_SALT: RefCell<Option<(String, pg_sys::TimestampTz, String)>> =
        const { RefCell::new(None) };
}

/// Runs `f` with the salt `ip_inventory.pseudonymize_salt` names.
fn with_configured_salt<T>(f: impl FnOnce(&str) -> T) -> Result<T, ErrorReport> {
    let raw = gucs::pseudonymize_salt().ok_or_else(errors::no_salt)?;
    // SAFETY: a plain read of the current statement's start time.
    let started = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    CONFIGURED_SALT.with_borrow_mut(|cache| {
        let fresh = matches!(cache, Some((r, t, _)) if *r == raw && *t == started);
        if !fresh {
            let secret = settings::parse_secret(&raw)
                .map_err(errors::salt_unreadable)?
                .ok_or_else(errors::no_salt)?;
            let salt = settings::resolve_secret(&secret).map_err(errors::salt_unreadable)?;
            *cache = Some((raw, started, salt));
        }
        let (_, _, salt) = cache.as_ref().expect("filled above");
        Ok(f(salt))
    })
}
