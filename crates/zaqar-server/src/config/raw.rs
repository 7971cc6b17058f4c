//! Raw option values as the operator wrote them (`zaqar.conf` INI files, `ZAQAR_*`
//! environment variables, command-line overrides), each with where it came from, before any
//! typing or checking.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{ConfigError, OPTIONS};

/// Where a raw value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Cli,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Cli => write!(f, "command line"),
        }
    }
}

/// Raw option values, keyed by (section, option), both as written by the operator except that
/// the unnamed leading section and `DEFAULT` are the same section.
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    pub(super) values: BTreeMap<(String, String), (String, Origin)>,
}

fn norm_section(s: &str) -> String {
    if s.eq_ignore_ascii_case("default") {
        "DEFAULT".to_string()
    } else {
        s.to_string()
    }
}

pub(super) fn norm_option(o: &str) -> String {
    // oslo.config treats dashes and underscores in option names alike.
    o.trim().replace('-', "_")
}

impl RawConfig {
    pub fn set(&mut self, section: &str, option: &str, value: &str, origin: Origin) {
        self.values.insert(
            (norm_section(section), norm_option(option)),
            (value.to_string(), origin),
        );
    }

    /// Reads one `zaqar.conf`-style INI file.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        self.load_str(&text, Origin::File(path.to_path_buf()))
    }

    pub fn load_str(&mut self, text: &str, origin: Origin) -> Result<(), ConfigError> {
        check_lines(text, &origin)?;
        let opt = ini::ParseOption {
            enabled_quote: true,
            enabled_escape: false,
            ..Default::default()
        };
        let parsed = ini::Ini::load_from_str_opt(text, opt)
            .map_err(|e| ConfigError(format!("cannot parse {origin}: {e}")))?;
        for (section, props) in parsed.iter() {
            let section = section.unwrap_or("DEFAULT");
            for (k, v) in props.iter() {
                self.set(section, k, v.trim(), origin.clone());
            }
        }
        Ok(())
    }

    /// Applies `ZAQAR_<SECTION>__<OPTION>` variables. The section part uses `_` for `:`, e.g.
    /// `ZAQAR_DRIVERS_TRANSPORT_WSGI__PORT=8889` or `ZAQAR_TRANSPORT__MAX_MESSAGES_PER_PAGE=10`.
    /// Variables that name no known option are returned so the caller can warn about them.
    pub fn load_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        let mut unknown = Vec::new();
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix("ZAQAR_") else {
                continue;
            };
            let Some((sec, opt)) = rest.split_once("__") else {
                // Variables such as ZAQAR_TEST_REDIS_URL belong to other tools.
                continue;
            };
            match OPTIONS.iter().find(|s| {
                env_section(s.section).eq_ignore_ascii_case(sec)
                    && s.name.replace('-', "_").eq_ignore_ascii_case(opt)
            }) {
                Some(spec) => self.set(spec.section, spec.name, &v, Origin::Env(k.clone())),
                None => unknown.push(k),
            }
        }
        unknown
    }

    pub(super) fn get(&self, section: &str, option: &str) -> Option<&(String, Origin)> {
        self.values.get(&(section.to_string(), norm_option(option)))
    }
}

/// Refuses what the INI parser would otherwise read as something else (a line without `=` as
/// an option with an empty value, an unclosed section header as an option): every line must be
/// blank, a comment (`#` or `;`), a `[section]` header, or `option = value` (`option: value`).
/// Lines are named by number; their text is not repeated, as it may hold a secret.
fn check_lines(text: &str, origin: &Origin) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        let why = if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        } else if let Some(rest) = t.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) if !name.trim().is_empty() => continue,
                Some(_) => "a section header needs a name",
                None => "the section header is not closed with ]",
            }
        } else {
            match t.find(['=', ':']) {
                Some(at) if !t[..at].trim().is_empty() => continue,
                Some(_) => "the option name before = is missing",
                None => "expected `option = value`, a [section] header or a comment",
            }
        };
        problems.push(format!("{origin}, line {}: {why}", i + 1));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(problems.join("\n")))
    }
}

/// The environment-variable spelling of a section name.
pub fn env_section(section: &str) -> String {
    section.replace([':', '-'], "_").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let mut raw = RawConfig::default();
        raw.load_str("[drivers:transport:wsgi]\nport = 1000\n", Origin::Cli)
            .unwrap();
        let unknown = raw.load_env(vec![
            (
                "ZAQAR_DRIVERS_TRANSPORT_WSGI__PORT".to_string(),
                "2000".to_string(),
            ),
            (
                "ZAQAR_TRANSPORT__MAX_MESSAGES_PER_PAGE".to_string(),
                "5".to_string(),
            ),
            ("ZAQAR_NOPE__X".to_string(), "1".to_string()),
            ("ZAQAR_TEST_REDIS_URL".to_string(), "redis://".to_string()),
        ]);
        assert_eq!(unknown, vec!["ZAQAR_NOPE__X".to_string()]);
        let (c, _) = Config::from_raw(&raw, true).unwrap();
        assert_eq!(c.port, 2000);
        assert_eq!(c.limits.max_messages_per_page, 5);
        raw.set("drivers:transport:wsgi", "port", "3000", Origin::Cli);
        assert_eq!(Config::from_raw(&raw, true).unwrap().0.port, 3000);
    }

    #[test]
    fn lines_that_are_not_ini_are_named_by_file_and_number() {
        let origin = Origin::File("zaqar.conf".into());
        let mut raw = RawConfig::default();
        let e = raw
            .load_str("this is not ini\n", origin.clone())
            .unwrap_err();
        assert!(
            e.0.contains("zaqar.conf, line 1: expected `option = value`"),
            "{e}"
        );
        let e = raw
            .load_str(
                "# fine\n[drivers\nmessage_store = embedded\n = x\n[]\n",
                origin.clone(),
            )
            .unwrap_err();
        assert!(
            e.0.contains("line 2: the section header is not closed"),
            "{e}"
        );
        assert!(
            e.0.contains("line 4: the option name before = is missing"),
            "{e}"
        );
        assert!(e.0.contains("line 5: a section header needs a name"), "{e}");
        // The secret-bearing text of a bad line is not repeated.
        let e = raw
            .load_str("password hunter2\n", origin.clone())
            .unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");
        raw.load_str("[a]\n; c\nx: 1\n  y = 2\n\n", origin).unwrap();
    }
}
