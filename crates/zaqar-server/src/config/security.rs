//! Who may call the API and how its data is protected: the authentication strategy and
//! `[keystone_authtoken]`, the policy file, the key of pre-signed URLs, the keys of encrypted
//! queues, and CORS.

use std::path::PathBuf;

use super::resolve::Resolver;
use super::{ConfigError, CorsConfig, KeystoneConfig, Secret};

/// Keys for encrypted queues (`[transport] message_encryption_key`, `[encryption]`).
#[derive(Debug, Clone, Default)]
pub struct EncryptionConfig {
    pub passphrase: Option<Secret>,
    pub key_file: Option<PathBuf>,
    pub current_key: Option<String>,
}

/// `[DEFAULT] auth_strategy`: `""` (no authentication, also spelled `noauth`) or `"keystone"`.
pub(super) fn auth_strategy(r: &Resolver<'_>) -> Result<String, ConfigError> {
    const D: &str = "DEFAULT";
    match r.string(D, "auth_strategy").trim() {
        "" | "noauth" => Ok(String::new()),
        "keystone" => Ok("keystone".to_string()),
        other => {
            let origin = r.raw(D, "auth_strategy").1;
            Err(Resolver::err(
                D,
                "auth_strategy",
                other,
                &origin,
                "must be empty (no authentication) or keystone",
            ))
        }
    }
}

/// `[keystone_authtoken]`, used when `auth_strategy = keystone`.
pub(super) fn keystone(r: &Resolver<'_>) -> Result<KeystoneConfig, ConfigError> {
    const K: &str = "keystone_authtoken";
    let keystone_settings = KeystoneConfig {
        www_authenticate_uri: r.string(K, "www_authenticate_uri"),
        auth_url: r.string(K, "auth_url"),
        username: r.string(K, "username"),
        password: Secret(r.string(K, "password")),
        project_name: r.string(K, "project_name"),
        user_domain_name: r.string(K, "user_domain_name"),
        project_domain_name: r.string(K, "project_domain_name"),
        token_cache_time: r.int(K, "token_cache_time", 0, 86_400)? as u64,
        http_timeout: r.int(K, "http_connect_timeout", 1, 600)? as u64,
        cache_size: r.int(K, "token_cache_size", 1, 10_000_000)? as usize,
    };
    r.choice(K, "auth_type", &["password"])?;
    Ok(keystone_settings)
}

/// `[oslo_policy] policy_file` (empty: no policy file).
pub(super) fn policy_file(r: &Resolver<'_>) -> Option<PathBuf> {
    Some(r.string("oslo_policy", "policy_file"))
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from)
}

/// `[cors]`.
pub(super) fn cors(r: &Resolver<'_>) -> Result<CorsConfig, ConfigError> {
    Ok(CorsConfig {
        allowed_origin: r.list("cors", "allowed_origin"),
        allow_credentials: r.bool("cors", "allow_credentials")?,
        max_age: r.int("cors", "max_age", 0, 86_400 * 365)? as u64,
        expose_headers: r.list("cors", "expose_headers"),
        allow_methods: r.list("cors", "allow_methods"),
        allow_headers: r.list("cors", "allow_headers"),
    })
}

/// `[signed_url] secret_key` (empty: no key).
pub(super) fn signed_url_key(r: &Resolver<'_>) -> Option<Secret> {
    Some(r.string("signed_url", "secret_key"))
        .filter(|k| !k.is_empty())
        .map(Secret)
}

/// The keys of encrypted queues: `[transport] message_encryption_key` and `[encryption]`.
pub(super) fn encryption(r: &Resolver<'_>) -> Result<EncryptionConfig, ConfigError> {
    const T: &str = "transport";
    r.choice(T, "message_encryption_algorithms", &["aes256"])?;
    let non_empty = |v: String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    Ok(EncryptionConfig {
        passphrase: non_empty(r.string(T, "message_encryption_key")).map(Secret),
        key_file: non_empty(r.string("encryption", "key_file")).map(PathBuf::from),
        current_key: non_empty(r.string("encryption", "current_key")),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

    #[test]
    fn auth_strategy_values() {
        let (c, _) = load("[DEFAULT]\nauth_strategy = keystone\n[keystone_authtoken]\nauth_url = http://k:5000/v3\npassword = pw\n").unwrap();
        assert_eq!(c.auth_strategy, "keystone");
        assert_eq!(c.keystone.auth_url, "http://k:5000/v3");
        assert_eq!(format!("{:?}", c.keystone.password), "<redacted>");
        assert_eq!(c.keystone.token_cache_time, 300);
        let e = load("[DEFAULT]\nauth_strategy = basic\n").unwrap_err();
        assert!(e.0.contains("auth_strategy"));
    }
}
