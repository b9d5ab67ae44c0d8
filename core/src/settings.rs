//! Parsing of setting values, kept free of Postgres so it is unit-tested and shared by the
//! GUC check hooks and the readers.

use std::path::{Path, PathBuf};

/// One entry of `ip_inventory.databases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedDatabase {
    pub name: String,
    pub path: PathBuf,
}

/// Parses `name=/abs/path.mmdb, other=/abs/other.mmdb`. Names are lowercase identifiers
/// (`[a-z_][a-z0-9_]*`), unique, not `city`/`asn`; paths are absolute.
pub fn parse_database_list(value: &str) -> Result<Vec<NamedDatabase>, String> {
    let mut out: Vec<NamedDatabase> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, path) = entry.split_once('=').ok_or_else(|| {
            format!("entry \"{entry}\" is not of the form name=/path/to/file.mmdb")
        })?;
        let (name, path) = (name.trim(), path.trim());
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(format!(
                "database name \"{name}\" must be a lowercase identifier ([a-z_][a-z0-9_]*)"
            ));
        }
        if crate::mmdb::DbSlot::RESERVED.contains(&name) {
            return Err(format!(
                "database name \"{name}\" is reserved for the MaxMind slot of that name"
            ));
        }
        if out.iter().any(|d| d.name == name) {
            return Err(format!("database name \"{name}\" appears twice"));
        }
        if !Path::new(path).is_absolute() {
            return Err(format!(
                "path \"{path}\" of database \"{name}\" is not absolute"
            ));
        }
        out.push(NamedDatabase {
            name: name.to_owned(),
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

/// Whether a path setting is acceptable: empty (unset) or absolute.
pub fn check_absolute_path(value: &str) -> Result<(), String> {
    let v = value.trim();
    if v.is_empty() || Path::new(v).is_absolute() {
        Ok(())
    } else {
        Err(format!("\"{v}\" is not an absolute path"))
    }
}

/// Checks the base URL of a source that is sent an API key: `https://` to any host, or
/// `http://` to a loopback address only (a key sent in clear over the network is a key given
/// away; loopback is what tests use). No user information, no whitespace.
pub fn check_key_url(value: &str) -> Result<(), String> {
    let v = value.trim();
    let (https, rest) = if let Some(r) = v.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = v.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("use an https:// URL, e.g. https://api.greynoise.io".to_owned());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || v.contains(char::is_whitespace) || authority.contains('@') {
        return Err(
            "use an https:// URL with a host and no user name, e.g. https://api.greynoise.io"
                .to_owned(),
        );
    }
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if https || loopback {
        Ok(())
    } else {
        Err("http:// would send the API key in clear: use https://, or http:// to a loopback address (tests)".to_owned())
    }
}

/// A secret setting: the secret itself, or where the server finds it.
#[derive(PartialEq, Eq)]
pub enum Secret {
    Plain(String),
    /// `env:NAME`: an environment variable of the server process.
    Env(String),
    /// `file:/path`: the first line of a file the server can read.
    File(PathBuf),
}

// Never print a plain secret, not even in a debug dump.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(<hidden>)"),
            Secret::Env(n) => write!(f, "Env({n})"),
            Secret::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// Parses a secret setting; `None` when empty. Only the `env:` and `file:` forms can be
/// rejected (the error quotes nothing but the name or path).
pub fn parse_secret(value: &str) -> Result<Option<Secret>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if let Some(name) = v.strip_prefix("env:") {
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        return if valid {
            Ok(Some(Secret::Env(name.to_owned())))
        } else {
            Err(format!("\"{name}\" is not an environment variable name"))
        };
    }
    if let Some(path) = v.strip_prefix("file:") {
        return if Path::new(path).is_absolute() {
            Ok(Some(Secret::File(PathBuf::from(path))))
        } else {
            Err(format!("the path \"{path}\" is not absolute"))
        };
    }
    Ok(Some(Secret::Plain(v.to_owned())))
}

/// The secret's value. Errors name the variable or file, never a value.
pub fn resolve_secret(secret: &Secret) -> Result<String, String> {
    let value = match secret {
        Secret::Plain(v) => v.clone(),
        Secret::Env(name) => std::env::var(name).map_err(|_| {
            format!("the environment variable {name} is not set in the server's environment")
        })?,
        Secret::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(match secret {
            Secret::Env(name) => format!("the environment variable {name} is empty"),
            Secret::File(path) => format!("{} is empty", path.display()),
            Secret::Plain(_) => "the value is empty".to_owned(),
        });
    }
    if value.chars().any(|c| c.is_control()) {
        return Err("the value holds control characters".to_owned());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_list_parses_names_and_paths() {
        let list =
            parse_database_list(" anon = /srv/GeoIP2-Anonymous-IP.mmdb ,dbip=/srv/dbip.mmdb,")
                .unwrap();
        assert_eq!(
            list,
            vec![
                NamedDatabase {
                    name: "anon".into(),
                    path: "/srv/GeoIP2-Anonymous-IP.mmdb".into()
                },
                NamedDatabase {
                    name: "dbip".into(),
                    path: "/srv/dbip.mmdb".into()
                },
            ]
        );
        assert_eq!(parse_database_list("").unwrap(), vec![]);
        assert_eq!(parse_database_list("  ").unwrap(), vec![]);
    }

    #[test]
    fn database_list_rejects_bad_entries() {
        for (value, needle) in [
            ("anon", "not of the form"),
            ("Anon=/x.mmdb", "lowercase identifier"),
            ("1x=/x.mmdb", "lowercase identifier"),
            ("a-b=/x.mmdb", "lowercase identifier"),
            ("=/x.mmdb", "lowercase identifier"),
            ("city=/x.mmdb", "reserved"),
            ("asn=/x.mmdb", "reserved"),
            ("a=/x.mmdb,a=/y.mmdb", "twice"),
            ("a=relative.mmdb", "not absolute"),
        ] {
            let err = parse_database_list(value).unwrap_err();
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn path_settings_must_be_absolute() {
        assert!(check_absolute_path("").is_ok());
        assert!(check_absolute_path("/srv/x.mmdb").is_ok());
        assert!(check_absolute_path("x.mmdb")
            .unwrap_err()
            .contains("not an absolute path"));
    }

    #[test]
    fn key_urls_are_https_or_loopback() {
        for ok in [
            "https://api.greynoise.io",
            "https://api.greynoise.io:8443/base",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1",
            "http://[::1]:8080/x",
        ] {
            assert!(check_key_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.greynoise.io",
            "http://10.0.0.1:8080",
            "http://127.0.0.1.evil.example",
            "http://[2001:db8::1]/",
            "https://user:pw@api.greynoise.io",
            "http://localhost@evil.example",
            "ftp://x",
            "https://",
            "https://a b",
        ] {
            assert!(check_key_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_in_three_forms() {
        assert_eq!(parse_secret("  ").unwrap(), None);
        assert_eq!(
            parse_secret("abc").unwrap(),
            Some(Secret::Plain("abc".into()))
        );
        assert_eq!(
            format!("{:?}", parse_secret("abc").unwrap().unwrap()),
            "Plain(<hidden>)"
        );
        assert_eq!(
            parse_secret("env:GN_KEY").unwrap(),
            Some(Secret::Env("GN_KEY".into()))
        );
        assert!(parse_secret("env:").is_err());
        assert!(parse_secret("env:1X").is_err());
        assert!(parse_secret("file:relative").is_err());

        std::env::set_var("IPI_TEST_SECRET", " k3y \n");
        assert_eq!(
            resolve_secret(&Secret::Env("IPI_TEST_SECRET".into())).unwrap(),
            "k3y"
        );
        let e = resolve_secret(&Secret::Env("IPI_TEST_SECRET_UNSET".into())).unwrap_err();
        assert!(e.contains("IPI_TEST_SECRET_UNSET"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "filekey\nsecond line\n").unwrap();
        assert_eq!(resolve_secret(&Secret::File(f.clone())).unwrap(), "filekey");
        std::fs::write(&f, "\n").unwrap();
        let e = resolve_secret(&Secret::File(f)).unwrap_err();
        assert!(e.ends_with("is empty"), "{e}");
        let e = resolve_secret(&Secret::File(dir.path().join("missing"))).unwrap_err();
        assert!(e.contains("cannot read") && !e.contains("filekey"), "{e}");
    }
}
