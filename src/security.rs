//! Who runs what. Work on a table another role owns runs as that owner inside a
//! security-restricted operation, the way VACUUM, ANALYZE and REFRESH MATERIALIZED VIEW do:
//! code the owner planted (triggers, rules, policies, operators of column types) runs with the
//! owner's rights only, and cannot change role settings or leave temporary objects behind.
//! The extension's own bookkeeping (its catalog, the triggers it attaches) runs as the
//! extension's owner after the caller's own rights were checked.
//!
//! The switch is undone when the guard drops, and by PostgreSQL itself when the transaction
//! or subtransaction aborts, so an error inside never leaves the backend as another user.

use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode::*;

use crate::errors;

/// The user and security context in force before a switch; restores them when dropped.
struct Switched {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for Switched {
    fn drop(&mut self) {
        // SAFETY: restores exactly what GetUserIdAndSecContext returned.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}

/// Runs `f` as `user` in a security-restricted operation.
pub fn run_as<R>(user: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let mut saved = Switched {
        user: pg_sys::Oid::INVALID,
        context: 0,
    };
    // SAFETY: plain reads and writes of the backend's current user state.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved.user, &mut saved.context);
        pg_sys::SetUserIdAndSecContext(
            user,
            saved.context
                | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION)
                    as i32,
        );
    }
    let _restore = saved;
    f()
}

/// The role the checks are made for: the current user (no SECURITY DEFINER is in between:
/// the functions that call this are SECURITY INVOKER).
pub fn caller() -> pg_sys::Oid {
    // SAFETY: a plain read.
    unsafe { pg_sys::GetUserId() }
}

/// A role's name.
pub fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId returns a palloc'd copy (noerr: NULL for a dropped role).
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, true);
        if name.is_null() {
            return u32::from(role).to_string();
        }
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Drops `trigger` from `table` when it is there (detach, unregister).
pub fn drop_trigger(
    client: &mut pgrx::spi::SpiClient<'_>,
    table: &Table,
    trigger: &str,
) -> Result<(), ErrorReport> {
    let present = !client
        .select(
            "SELECT FROM pg_catalog.pg_trigger AS t WHERE t.tgrelid OPERATOR(pg_catalog.=) $1
               AND t.tgname OPERATOR(pg_catalog.=) $2",
            Some(1),
            &[table.oid.into(), trigger.into()],
        )
        .map_err(errors::spi)?
        .is_empty();
    if present {
        let trigger = spi::quote_identifier(trigger);
        client
            .update(
                &format!("DROP TRIGGER {trigger} ON {}", table.name),
                None,
                &[],
            )
            .map_err(errors::spi)?;
    }
    Ok(())
}

/// A relation the extension may act on for its owner: it exists, is an ordinary or
/// partitioned table, and its owner.
pub struct Table {
    pub oid: pg_sys::Oid,
    /// Schema-qualified and quoted: SQL built with it names this table whatever the
    /// search_path.
    pub name: String,
    pub owner: pg_sys::Oid,
}

impl Table {
    /// Looks `oid` up; refuses views, materialized views, foreign tables and anything else
    /// whose reading or writing can run code we do not control (22023 / 42809).
    pub fn open(oid: pg_sys::Oid) -> Result<Table, ErrorReport> {
        let row = Spi::connect(|client| {
            let t = client.select(
                "SELECT pg_catalog.concat(pg_catalog.quote_ident(n.nspname), '.', pg_catalog.quote_ident(c.relname)),
                        c.relkind::pg_catalog.text, c.relowner
                 FROM pg_catalog.pg_class AS c
                 JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                 WHERE c.oid OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[oid.into()],
            )?;
            if t.is_empty() {
                return Ok::<_, pgrx::spi::Error>(None);
            }
            let t = t.first();
            Ok(Some((
                t.get::<String>(1)?.unwrap_or_default(),
                t.get::<String>(2)?.unwrap_or_default(),
                t.get::<pg_sys::Oid>(3)?.unwrap_or(pg_sys::Oid::INVALID),
            )))
        })
        .map_err(errors::spi)?;
        let Some((name, kind, owner)) = row else {
            return Err(errors::report(
                ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", u32::from(oid)),
            ));
        };
        if kind != "r" && kind != "p" {
            return Err(errors::not_a_table(&name, &kind));
        }
        Ok(Table { oid, name, owner })
    }

    /// Whether the caller owns the table (directly or through a role it has the privileges
    /// of; superusers own everything).
    pub fn owned_by_caller(&self) -> bool {
        // SAFETY: a catalog lookup for the current user.
        unsafe { pg_sys::has_privs_of_role(caller(), self.owner) }
    }

    /// Whether the caller holds `privilege` (`"SELECT"`, `"UPDATE"`, ...) on the table.
    pub fn caller_may(&self, privilege: &str) -> Result<bool, ErrorReport> {
        Spi::get_one_with_args::<bool>(
            "SELECT pg_catalog.has_table_privilege($1, $2)",
            &[self.oid.into(), privilege.into()],
        )
        .map(|b| b.unwrap_or(false))
        .map_err(errors::spi)
    }

    /// Raises 42501 unless the caller holds `privilege` on the table.
    pub fn require(&self, privilege: &str, doing: &str) -> Result<(), ErrorReport> {
        if self.caller_may(privilege)? {
            Ok(())
        } else {
            Err(errors::table_privilege(&self.name, privilege, doing))
        }
    }

    /// Runs `f` as the table's owner in a security-restricted operation.
    pub fn as_owner<R>(&self, f: impl FnOnce() -> R) -> R {
        run_as(self.owner, f)
    }
}

/// The role that owns the extension (it created it: a superuser, as the control file
/// demands). The extension's bookkeeping runs as this role.
pub fn extension_owner() -> Result<pg_sys::Oid, ErrorReport> {
    Spi::get_one::<pg_sys::Oid>(
        "SELECT e.extowner FROM pg_catalog.pg_extension AS e WHERE e.extname OPERATOR(pg_catalog.=) 'ip_inventory'",
    )
    .map_err(errors::spi)?
    .ok_or_else(|| {
        errors::report(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "extension \"ip_inventory\" is not installed in this database".to_owned(),
        )
    })
}

/// The schema the function being called lives in, quoted for SQL: the extension's schema.
pub fn schema_of(fcinfo: pg_sys::FunctionCallInfo) -> String {
    // SAFETY: fcinfo and its flinfo are this call's; the catalog lookups return palloc'd
    // strings (or NULL for a vanished schema, which cannot happen while the function runs).
    unsafe {
        let namespace = pg_sys::get_func_namespace((*(*fcinfo).flinfo).fn_oid);
        let name = pg_sys::get_namespace_name(namespace);
        if name.is_null() {
            return "public".to_owned();
        }
        std::ffi::CStr::from_ptr(pg_sys::quote_identifier(name))
            .to_string_lossy()
            .into_owned()
    }
}
