//! Where a secret setting's value is kept: `env:NAME` (an environment variable of the server)
//! or `file:/path` (the first line of a file the server can read). The GreyNoise API key and
//! the pseudonymization salt are both read through [`resolve`].
//!
//! A secret written into the setting itself is refused: the server logs every changed setting
//! with its value on reload, so it would end up in the server log.

use std::path::{Path, PathBuf};

/// Where a secret is.
#[derive(Debug, PartialEq, Eq)]
pub enum Secret {
    /// `env:NAME`.
    Env(String),
    /// `file:/path`.
    File(PathBuf),
}

/// Why a secret setting's value is refused. The text quotes a variable name or path only,
/// never the value.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The value is not `env:` or `file:`: most likely the secret itself.
    Literal,
    Invalid(String),
}

/// Parses a secret setting; `None` when empty.
pub fn parse(value: &str) -> Result<Option<Secret>, Refused> {
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
            Err(Refused::Invalid(format!(
                "\"{name}\" is not an environment variable name"
            )))
        };
    }
    if let Some(path) = v.strip_prefix("file:") {
        return if Path::new(path).is_absolute() {
            Ok(Some(Secret::File(PathBuf::from(path))))
        } else {
            Err(Refused::Invalid(format!(
                "the path \"{path}\" is not absolute"
            )))
        };
    }
    Err(Refused::Literal)
}

/// The secret a setting names: `Ok(None)` when the setting is empty. Errors name the
/// variable or file, never a value.
pub fn resolve(setting: &str) -> Result<Option<String>, String> {
    match parse(setting) {
        Ok(None) => Ok(None),
        Ok(Some(secret)) => read(&secret).map(Some),
        Err(Refused::Literal) => Err("it must be env:NAME or file:/path".to_owned()),
        Err(Refused::Invalid(e)) => Err(e),
    }
}

/// The secret's value.
pub fn read(secret: &Secret) -> Result<String, String> {
    let value = match secret {
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
    fn secrets_are_named_never_written() {
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(parse("abc").unwrap_err(), Refused::Literal);
        assert_eq!(
            parse("env:GN_KEY").unwrap(),
            Some(Secret::Env("GN_KEY".into()))
        );
        assert!(matches!(parse("env:"), Err(Refused::Invalid(_))));
        assert!(matches!(parse("env:1X"), Err(Refused::Invalid(_))));
        assert!(matches!(parse("file:relative"), Err(Refused::Invalid(_))));
        let e = resolve("s3cr3t-key").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert_eq!(resolve("").unwrap(), None);
    }

    #[test]
    fn secrets_are_read_from_the_environment_or_a_file() {
        std::env::set_var("IPI_TEST_SECRET", " k3y \n");
        assert_eq!(
            resolve("env:IPI_TEST_SECRET").unwrap().as_deref(),
            Some("k3y")
        );
        let e = resolve("env:IPI_TEST_SECRET_UNSET").unwrap_err();
        assert!(e.contains("IPI_TEST_SECRET_UNSET"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "filekey\nsecond line\n").unwrap();
        assert_eq!(read(&Secret::File(f.clone())).unwrap(), "filekey");
        std::fs::write(&f, "\n").unwrap();
        let e = read(&Secret::File(f)).unwrap_err();
        assert!(e.ends_with("is empty"), "{e}");
        let e = read(&Secret::File(dir.path().join("missing"))).unwrap_err();
        assert!(e.contains("cannot read") && !e.contains("filekey"), "{e}");
        std::fs::write(dir.path().join("ctl"), "a\u{7}b\n").unwrap();
        assert!(read(&Secret::File(dir.path().join("ctl"))).is_err());
    }
}
