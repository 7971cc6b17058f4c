//! Encryption of message bodies at rest (`_enable_encrypt_messages`), with AES-256-GCM.
//!
//! Stored form of an encrypted body: the JSON string
//! `"zqenc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>"`, where the plaintext is the body's
//! JSON text, the nonce is 12 random bytes, and the project id is the associated data (a
//! ciphertext copied into another project does not decrypt). New bodies use the current key;
//! any configured key decrypts, so keys can be rotated. See `docs/adr/0003-message-lifecycle.md`.

use std::collections::HashMap;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const PREFIX: &str = "zqenc:v1:";

/// The reference implementation's built-in key; never accepted.
pub const REFERENCE_DEFAULT_KEY: &str = "AES256";

pub struct Encryptor {
    keys: HashMap<String, Aes256Gcm>,
    current: String,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Encryptor")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        B64.decode(text).ok()?
    };
    bytes.try_into().ok()
}

impl Encryptor {
    /// Builds the key ring from configuration: a passphrase (`[transport]
    /// message_encryption_key`, hashed with SHA-256 as the reference does) and/or a key file
    /// (`id = <64 hex digits or base64 of 32 bytes>` per line). `Ok(None)` when no key is
    /// configured at all.
    pub fn from_config(
        passphrase: Option<&str>,
        key_file: Option<&Path>,
        current: Option<&str>,
    ) -> std::result::Result<Option<Encryptor>, String> {
        let mut keys = HashMap::new();
        let mut order = Vec::new();
        if let Some(pass) = passphrase.filter(|p| !p.is_empty()) {
            if pass == REFERENCE_DEFAULT_KEY {
                return Err(format!(
                    "[transport] message_encryption_key is the reference implementation's \
                     built-in default ({REFERENCE_DEFAULT_KEY:?}); set a secret of your own"
                ));
            }
            let key: [u8; 32] = Sha256::digest(pass.as_bytes()).into();
            let id = format!("p{}", &hex(&Sha256::digest(key))[..8]);
            keys.insert(
                id.clone(),
                Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
            );
            order.push(id);
        }
        if let Some(path) = key_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (id, value) = line
                    .split_once('=')
                    .ok_or_else(|| format!("{}:{}: expected `id = key`", path.display(), n + 1))?;
                let id = id.trim();
                if id.is_empty()
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(format!(
                        "{}:{}: invalid key id {id:?}",
                        path.display(),
                        n + 1
                    ));
                }
                let key = parse_key(value).ok_or_else(|| {
                    format!(
                        "{}:{}: key {id:?} must be 32 bytes, as 64 hex digits or base64",
                        path.display(),
                        n + 1
                    )
                })?;
                keys.insert(
                    id.to_string(),
                    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
                );
                order.push(id.to_string());
            }
        }
        if keys.is_empty() {
            if current.is_some_and(|c| !c.is_empty()) {
                return Err("[encryption] current_key names a key but no key is configured".into());
            }
            return Ok(None);
        }
        let current = match current.filter(|c| !c.is_empty()) {
            Some(c) if keys.contains_key(c) => c.to_string(),
            Some(c) => {
                return Err(format!(
                    "[encryption] current_key {c:?} is not a configured key"
                ))
            }
            None if order.len() == 1 => order[0].clone(),
            None => {
                return Err(
                    "several encryption keys are configured: set [encryption] current_key".into(),
                )
            }
        };
        Ok(Some(Encryptor { keys, current }))
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Encrypts a body's JSON text; returns the stored token (to be stored as a JSON string).
    pub fn encrypt(&self, project: &str, body_json: &str) -> Result<String> {
        let cipher = &self.keys[&self.current];
        let nonce_bytes: [u8; 12] = rand::random();
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: body_json.as_bytes(),
                    aad: project.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("message encryption failed".into()))?;
        let mut blob = Vec::with_capacity(12 + ct.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}:{}", self.current, B64.encode(blob)))
    }

    /// Decrypts a stored token back to the body's JSON text.
    pub fn decrypt(&self, project: &str, token: &str) -> Result<String> {
        let bad = || Error::Internal("an encrypted message could not be decrypted".into());
        let rest = token.strip_prefix(PREFIX).ok_or_else(bad)?;
        let (id, data) = rest.split_once(':').ok_or_else(bad)?;
        let cipher = self.keys.get(id).ok_or_else(|| {
            Error::Internal(format!(
                "a message is encrypted with key {id:?}, which is not configured"
            ))
        })?;
        let blob = B64.decode(data).map_err(|_| bad())?;
        if blob.len() < 12 {
            return Err(bad());
        }
        let (nonce, ct) = blob.split_at(12);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: project.as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trip_and_project_binding() {
        let e = Encryptor::from_config(Some("s3cret"), None, None)
            .unwrap()
            .unwrap();
        let token = e.encrypt("p1", r#"{"a": [1, "é"]}"#).unwrap();
        assert!(token.starts_with("zqenc:v1:p"));
        assert!(!token.contains("é"));
        assert_eq!(e.decrypt("p1", &token).unwrap(), r#"{"a": [1, "é"]}"#);
        assert!(e.decrypt("p2", &token).is_err(), "bound to its project");
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(e.decrypt("p1", &tampered).is_err());
        // Two encryptions of the same body differ (random nonce).
        assert_ne!(token, e.encrypt("p1", r#"{"a": [1, "é"]}"#).unwrap());
    }

    #[test]
    fn refuses_the_reference_default_and_bad_files() {
        assert!(Encryptor::from_config(Some("AES256"), None, None).is_err());
        assert!(Encryptor::from_config(None, None, None).unwrap().is_none());
        assert!(Encryptor::from_config(None, None, Some("k1")).is_err());
        assert!(Encryptor::from_config(None, Some(Path::new("/nonexistent/keys")), None).is_err());
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "k1 = tooshort").unwrap();
        assert!(Encryptor::from_config(None, Some(f.path()), None).is_err());
    }

    #[test]
    fn rotation_keeps_old_messages_readable() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "# keys").unwrap();
        writeln!(f, "old = {}", "11".repeat(32)).unwrap();
        let old = Encryptor::from_config(None, Some(f.path()), None)
            .unwrap()
            .unwrap();
        let token = old.encrypt("p", "\"hello\"").unwrap();
        writeln!(f, "new = {}", B64.encode([7u8; 32])).unwrap();
        assert!(
            Encryptor::from_config(None, Some(f.path()), None).is_err(),
            "ambiguous"
        );
        let both = Encryptor::from_config(None, Some(f.path()), Some("new"))
            .unwrap()
            .unwrap();
        assert_eq!(both.current_key_id(), "new");
        assert_eq!(both.decrypt("p", &token).unwrap(), "\"hello\"");
        let fresh = both.encrypt("p", "1").unwrap();
        assert!(fresh.starts_with("zqenc:v1:new:"));
        assert!(
            old.decrypt("p", &fresh).is_err(),
            "the old ring lacks the new key"
        );
    }
}
