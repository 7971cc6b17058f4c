//! Typed reading of raw values: each option is looked up in the registry for its default,
//! parsed and range-checked with an error that names it and where its value came from, and
//! marked as read, so that whatever is left over can be reported as unknown.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use super::raw::norm_option;
use super::{parse_bool, ConfigError, OptKind, OptSpec, Origin, RawConfig, Warning, OPTIONS};

/// Reads typed values out of a [`RawConfig`], recording which options were read so that the
/// remaining ones can be reported as unknown.
pub(super) struct Resolver<'a> {
    raw: &'a RawConfig,
    used: Mutex<HashSet<(String, String)>>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(raw: &'a RawConfig) -> Resolver<'a> {
        Resolver {
            raw,
            used: Mutex::new(HashSet::new()),
        }
    }

    fn spec(section: &str, name: &str) -> &'static OptSpec {
        OPTIONS
            .iter()
            .find(|s| s.section == section && s.name == name)
            .unwrap_or_else(|| panic!("option [{section}] {name} is not in the registry"))
    }

    pub(super) fn raw(&self, section: &str, name: &str) -> (String, Origin) {
        let spec = Self::spec(section, name);
        self.used
            .lock()
            .unwrap()
            .insert((section.to_string(), norm_option(name)));
        match self.raw.get(section, name) {
            Some((v, o)) => (v.clone(), o.clone()),
            None => (spec.default.to_string(), Origin::Default),
        }
    }

    pub(super) fn err(
        section: &str,
        name: &str,
        value: &str,
        origin: &Origin,
        why: &str,
    ) -> ConfigError {
        ConfigError(format!(
            "invalid value {value:?} for option [{section}] {name} (from {origin}): {why}"
        ))
    }

    pub(super) fn string(&self, section: &str, name: &str) -> String {
        self.raw(section, name).0
    }

    pub(super) fn bool(&self, section: &str, name: &str) -> Result<bool, ConfigError> {
        let (v, o) = self.raw(section, name);
        parse_bool(&v).ok_or_else(|| Self::err(section, name, &v, &o, "expected true or false"))
    }

    pub(super) fn int(
        &self,
        section: &str,
        name: &str,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let (v, o) = self.raw(section, name);
        let n: i64 = v
            .trim()
            .parse()
            .map_err(|_| Self::err(section, name, &v, &o, "expected an integer"))?;
        if n < min || n > max {
            return Err(Self::err(
                section,
                name,
                &v,
                &o,
                &format!("must be between {min} and {max}"),
            ));
        }
        Ok(n)
    }

    pub(super) fn list(&self, section: &str, name: &str) -> Vec<String> {
        let (v, _) = self.raw(section, name);
        v.split(',')
            .map(|s| s.trim().trim_matches(|c| c == '[' || c == ']').trim())
            .map(|s| s.trim_matches(|c| c == '\'' || c == '"').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub(super) fn choice(
        &self,
        section: &str,
        name: &str,
        allowed: &[&str],
    ) -> Result<String, ConfigError> {
        let (v, o) = self.raw(section, name);
        let lower = v.trim().to_ascii_lowercase();
        if allowed.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(Self::err(
                section,
                name,
                &v,
                &o,
                &format!("must be one of: {}", allowed.join(", ")),
            ))
        }
    }

    /// Ends the resolution: every option of the configuration that was not read is unknown
    /// (or unsupported), a warning each, or one error for them all with `strict`.
    pub(super) fn unknown_options(self, strict: bool) -> Result<Vec<Warning>, ConfigError> {
        // Options that are registered but only validated here (read for the 'used' set).
        for spec in OPTIONS.iter().filter(|s| s.kind == OptKind::Accepted) {
            self.raw(spec.section, spec.name);
        }

        let used = self.used.into_inner().unwrap();
        let mut warnings = Vec::new();
        for ((section, option), (_, origin)) in &self.raw.values {
            if !used.contains(&(section.clone(), option.clone())) {
                warnings.push(Warning(format!(
                    "unknown or unsupported option [{section}] {option} (from {origin}) is ignored"
                )));
            }
        }
        if strict && !warnings.is_empty() {
            let list: Vec<String> = warnings.iter().map(|w| w.0.clone()).collect();
            return Err(ConfigError(format!(
                "strict configuration: {}",
                list.join("; ")
            )));
        }
        Ok(warnings)
    }
}

/// An oslo `DictOpt` value (`key:value,key:value`); a piece without `:` continues the previous
/// value (so values may contain commas).
pub(super) fn parse_dict(text: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for piece in text.split(',') {
        match piece.split_once(':') {
            Some((k, v)) if !k.trim().contains(' ') && !k.trim().is_empty() => {
                let k = k.trim().to_string();
                out.insert(k.clone(), v.trim().to_string());
                last = Some(k);
            }
            _ => {
                if let Some(k) = &last {
                    let v = out.get_mut(k).expect("inserted");
                    v.push(',');
                    v.push_str(piece);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load;
    use crate::config::Config;

    #[test]
    fn invalid_value_names_the_option_and_origin() {
        let e = load("[drivers:transport:wsgi]\nport = eighty\n").unwrap_err();
        assert!(e.0.contains("[drivers:transport:wsgi] port"), "{e}");
        assert!(e.0.contains("zaqar.conf"), "{e}");
        let e = load("[transport]\ndefault_message_ttl = 10\n").unwrap_err();
        assert!(e.0.contains("default_message_ttl"), "{e}");
        let e = load("[DEFAULT]\nadmin_mode = maybe\n").unwrap_err();
        assert!(e.0.contains("admin_mode"), "{e}");
    }

    #[test]
    fn unknown_options_warn_or_fail_in_strict_mode() {
        let (_, w) =
            load("[oslo_messaging_rabbit]\nrabbit_host = x\n[transport]\nbogus = 1\n").unwrap();
        assert_eq!(w.len(), 2);
        assert!(w.iter().any(|w| w.0.contains("[transport] bogus")));
        let mut raw = RawConfig::default();
        raw.load_str("[transport]\nbogus = 1\n", Origin::Cli)
            .unwrap();
        assert!(Config::from_raw(&raw, true).is_err());
    }
}
