//! Query-string parsing with Zaqar's rules (spec §2.7): empty values count as absent, booleans
//! accept oslo's spellings, integers are base 10, lists are comma-separated.

use zaqar_core::error::{Error, Result};
use zaqar_core::service::validate::parse_bool;

/// The decoded parameters of one request, in order of appearance.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Error::param(name, "The value must be an integer.")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| Error::param(name, "The value of the parameter must be a boolean.")),
        }
    }

    pub fn flag(&self, name: &str) -> Result<bool> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    /// A list given comma-separated (`ids=a,b`), repeated (`ids=a&ids=b`, as python-zaqarclient
    /// sends it), or both; empty items are dropped. `None` when the parameter is absent.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let mut found = false;
        let mut out = Vec::new();
        for (k, v) in &self.pairs {
            if k == name {
                found = true;
                out.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
        }
        found.then_some(out)
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Builds `path?k=v&...` with proper escaping.
pub fn href(path: &str, params: &[(&str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    format!("{path}?{}", s.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent_and_types_are_checked() {
        let q = Query::parse(Some("limit=&echo=yes&ids=a,,b&n=12&bad=x&detailed=maybe"));
        assert_eq!(q.int("limit").unwrap(), None);
        assert_eq!(q.bool("echo").unwrap(), Some(true));
        assert_eq!(q.list("ids").unwrap(), vec!["a", "b"]);
        assert_eq!(q.int("n").unwrap(), Some(12));
        assert!(q.int("bad").is_err());
        assert!(q.bool("detailed").is_err());
        let q = Query::parse(Some("ids=a&ids=b,c&other=1"));
        assert_eq!(q.list("ids").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(q.list("nope"), None);
    }

    #[test]
    fn hrefs_escape_values() {
        assert_eq!(
            href("/v2/queues", &[("marker", "a b".into())]),
            "/v2/queues?marker=a+b"
        );
    }
}
