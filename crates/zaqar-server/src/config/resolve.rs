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
    /// Invalid values found so far: resolution goes on with the option's default, so that
    /// every mistake of a configuration is reported at once.
    errors: Mutex<Vec<String>>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(raw: &'a RawConfig) -> Resolver<'a> {
        Resolver {
            raw,
            used: Mutex::new(HashSet::new()),
            errors: Mutex::new(Vec::new()),
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

    /// Records an invalid value and answers the option's default in its place (the
    /// configuration is refused at the end, with every mistake listed).
    fn invalid<T>(&self, e: ConfigError, default: T) -> Result<T, ConfigError> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e.0);
        Ok(default)
    }

    /// The invalid values found, in the order they were read.
    pub(super) fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn bool(&self, section: &str, name: &str) -> Result<bool, ConfigError> {
        let (v, o) = self.raw(section, name);
        match parse_bool(&v) {
            Some(b) => Ok(b),
            None => {
                let default = parse_bool(Self::spec(section, name).default).unwrap_or(false);
                let e = Self::err(section, name, &v, &o, "expected true or false");
                self.invalid(e, default)
            }
        }
    }

    pub(super) fn int(
        &self,
        section: &str,
        name: &str,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let (v, o) = self.raw(section, name);
        let default = || {
            Self::spec(section, name)
                .default
                .parse::<i64>()
                .unwrap_or(min)
                .clamp(min, max)
        };
        let Ok(n) = v.trim().parse::<i64>() else {
            let e = Self::err(section, name, &v, &o, "expected an integer");
            return self.invalid(e, default());
        };
        if n < min || n > max {
            let why = format!("must be between {min} and {max}");
            return self.invalid(Self::err(section, name, &v, &o, &why), default());
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
            let why = format!("must be one of: {}", allowed.join(", "));
            let default = Self::spec(section, name).default.to_ascii_lowercase();
            self.invalid(Self::err(section, name, &v, &o, &why), default)
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
        let mut errors = Vec::new();
        for ((section, option), (_, origin)) in &self.raw.values {
            if used.contains(&(section.clone(), option.clone())) {
                continue;
            }
            let hint = closest_option(section, option)
                .map(|(s, o)| {
                    if s == section {
                        format!("; did you mean {o}?")
                    } else {
                        format!("; did you mean [{s}] {o}?")
                    }
                })
                .unwrap_or_default();
            // An option typed on the command line is always a mistake; in a file it may be
            // meant for another service (the reference reads options we do not).
            if strict || *origin == Origin::Cli {
                errors.push(format!(
                    "unknown or unsupported option [{section}] {option} (from {origin}) is not \
                     allowed{hint}"
                ));
            } else {
                warnings.push(Warning(format!(
                    "unknown or unsupported option [{section}] {option} (from {origin}) is \
                     ignored{hint}"
                )));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors.join("\n")));
        }
        Ok(warnings)
    }
}

/// Edit distance between two names (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The registered option closest to an unknown one: in its section first, then anywhere, within
/// an edit distance of a third of the name (at least 2).
fn closest_option(section: &str, option: &str) -> Option<(&'static str, &'static str)> {
    let limit = (option.len() / 3).max(2);
    let best = |same_section: bool| {
        OPTIONS
            .iter()
            .filter(|s| (s.section == section) == same_section)
            .map(|s| (edit_distance(option, s.name), s))
            .filter(|(d, _)| *d <= limit)
            .min_by_key(|(d, _)| *d)
            .map(|(_, s)| (s.section, s.name))
    };
    best(true).or_else(|| best(false))
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
    fn every_invalid_value_is_reported_at_once() {
        let e = load(
            "[drivers:transport:wsgi]\nport = eighty\n[DEFAULT]\nadmin_mode = maybe\n\
             [drivers]\nmessage_store = mongodb\n",
        )
        .unwrap_err();
        assert_eq!(e.0.lines().count(), 3, "{e}");
        for name in ["port", "admin_mode", "message_store"] {
            assert!(e.0.contains(name), "{name}: {e}");
        }
    }

    #[test]
    fn an_unknown_option_names_the_closest_known_one() {
        let (_, w) = load("[transport]\nmax_mesages_per_page = 5\n").unwrap();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].0
                .contains("is ignored; did you mean max_messages_per_page?"),
            "{w:?}"
        );
        let (_, w) = load("[DEFAULT]\nmax_messages_per_page = 5\n").unwrap();
        assert!(
            w[0].0
                .contains("did you mean [transport] max_messages_per_page?"),
            "{w:?}"
        );
        let (_, w) = load("[transport]\ncompletely_different = 5\n").unwrap();
        assert!(!w[0].0.contains("did you mean"), "{w:?}");
        let mut raw = RawConfig::default();
        raw.load_str("[transport]\nmax_mesages_per_page = 5\n", Origin::Cli)
            .unwrap();
        let e = Config::from_raw(&raw, false).unwrap_err();
        assert!(e.0.contains("is not allowed; did you mean"), "{e}");
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
