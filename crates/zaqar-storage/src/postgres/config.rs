//! Settings of the PostgreSQL store, and the schema names it accepts.

/// Settings of the PostgreSQL store (`[drivers:message_store:postgresql]`; the URI is
/// `[drivers:message_store:postgresql] uri`).
#[derive(Debug, Clone)]
pub struct PostgresStoreConfig {
    /// Schema of the tables; empty: the connection's search_path.
    pub schema: String,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// 0: no limit.
    pub statement_timeout_secs: u64,
    pub gc_interval_secs: u64,
}

/// Whether `name` is acceptable as the store's schema: a plain lower-case identifier, so it can
/// be used unquoted in `search_path` and DDL.
pub fn valid_schema_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 63
        && !name.starts_with("pg_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(valid_schema_name("zaqar"));
        assert!(valid_schema_name("zaqar_test_0123abcd"));
        assert!(valid_schema_name("_x1"));
        assert!(!valid_schema_name(""));
        assert!(!valid_schema_name("1abc"));
        assert!(!valid_schema_name("Zaqar"));
        assert!(!valid_schema_name("a-b"));
        assert!(!valid_schema_name("a;drop"));
        assert!(!valid_schema_name("pg_temp"));
        assert!(!valid_schema_name(&"a".repeat(64)));
    }
}
