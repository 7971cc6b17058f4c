//! Keystone v3 token validation, as keystonemiddleware's `auth_token` does it: a service login
//! with configured credentials, `GET /v3/auth/tokens` per new user token, and a bounded cache of
//! valid results keyed by a hash of the token, whose expiry is re-checked on every use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex as AsyncMutex;

use zaqar_core::clock::{Millis, SharedClock};
use zaqar_core::error::Error;
use zaqar_core::identity::IdentityProvider;
pub use zaqar_core::identity::{TokenInfo, TrustTokenError, UserToken};
use zaqar_core::secret::Secret;

/// `[keystone_authtoken]` settings.
#[derive(Debug, Clone)]
pub struct KeystoneConfig {
    /// Advertised in `WWW-Authenticate` on 401.
    pub www_authenticate_uri: String,
    /// Where tokens are validated (with or without a trailing `/v3`).
    pub auth_url: String,
    pub username: String,
    pub password: Secret,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    /// Seconds a validated token stays cached (never past its expiry).
    pub token_cache_time: u64,
    /// Seconds allowed for each call to Keystone.
    pub http_timeout: u64,
    /// Most cached tokens.
    pub cache_size: usize,
}

struct Cached {
    info: TokenInfo,
    until: Millis,
}

struct ServiceToken {
    token: String,
    expires_at: Millis,
    /// The service user's id (the trustee of trusts).
    user_id: String,
}

pub struct Keystone {
    cfg: KeystoneConfig,
    base: String,
    http: reqwest::Client,
    clock: SharedClock,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    service_token: AsyncMutex<Option<ServiceToken>>,
    /// Trust-scoped tokens of the service user, by trust id.
    trust_tokens: Mutex<HashMap<String, ServiceToken>>,
}

/// Renew the service token this long before it expires.
const RENEW_MARGIN_MS: Millis = 120_000;

fn parse_time(text: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.fZ")
                .ok()
                .map(|t| t.and_utc().timestamp_millis())
        })
}

impl Keystone {
    pub fn new(cfg: KeystoneConfig, clock: SharedClock) -> Result<Keystone, String> {
        if cfg.auth_url.trim().is_empty() {
            return Err(
                "[keystone_authtoken] auth_url is required with auth_strategy = keystone".into(),
            );
        }
        if cfg.username.is_empty() || cfg.password.0.is_empty() || cfg.project_name.is_empty() {
            return Err(
                "[keystone_authtoken] username, password and project_name are required with auth_strategy = keystone"
                    .into(),
            );
        }
        let base = cfg
            .auth_url
            .trim()
            .trim_end_matches('/')
            .trim_end_matches("/v3")
            .to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.http_timeout))
            .connect_timeout(Duration::from_secs(cfg.http_timeout))
            .build()
            .map_err(|e| format!("cannot build the Keystone client: {e}"))?;
        Ok(Keystone {
            cfg,
            base,
            http,
            clock,
            cache: Mutex::new(HashMap::new()),
            service_token: AsyncMutex::new(None),
            trust_tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The 401 for a missing or invalid token.
    pub fn unauthorized(&self, why: &str) -> Error {
        Error::Unauthorized {
            description: why.to_string(),
            www_authenticate: Some(format!(
                "Keystone uri=\"{}\"",
                if self.cfg.www_authenticate_uri.is_empty() {
                    &self.cfg.auth_url
                } else {
                    &self.cfg.www_authenticate_uri
                }
            )),
        }
    }

    fn unreachable(e: impl std::fmt::Display) -> Error {
        tracing::warn!(error = %e, "Keystone is unreachable");
        Error::Unavailable(
            "The identity service (Keystone) could not be reached to validate the token. Please try again in a few seconds."
                .into(),
        )
    }

    /// Validates a user token: from the cache when possible, else with Keystone.
    pub async fn validate(&self, token: &str) -> Result<TokenInfo, Error> {
        if token.is_empty() {
            return Err(self
                .unauthorized("Authentication required: send a Keystone token in X-Auth-Token."));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = self.clock.now();
        {
            let mut cache = self.cache.lock().unwrap();
            if let Some(c) = cache.get(&key) {
                if c.info.expires_at <= now {
                    cache.remove(&key);
                    return Err(self.unauthorized("The token has expired."));
                }
                if c.until > now {
                    return Ok(c.info.clone());
                }
                cache.remove(&key);
            }
        }
        let info = self.fetch(token).await?;
        if info.expires_at <= now {
            return Err(self.unauthorized("The token has expired."));
        }
        let until = (now + self.cfg.token_cache_time as Millis * 1000).min(info.expires_at);
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= self.cfg.cache_size {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= self.cfg.cache_size {
                // Still full of live entries: drop the one that would leave soonest.
                if let Some(k) = cache.iter().min_by_key(|(_, c)| c.until).map(|(k, _)| *k) {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(
            key,
            Cached {
                info: info.clone(),
                until,
            },
        );
        Ok(info)
    }

    /// Number of cached tokens (for tests and metrics).
    pub fn cached_tokens(&self) -> usize {
        self.cache.lock().unwrap().len()
    }

    async fn fetch(&self, token: &str) -> Result<TokenInfo, Error> {
        for attempt in 0..2 {
            let service = self.service_token(attempt > 0).await?;
            let resp = self
                .http
                .get(format!("{}/v3/auth/tokens?nocatalog", self.base))
                .header("X-Auth-Token", service)
                .header("X-Subject-Token", token)
                .send()
                .await
                .map_err(Self::unreachable)?;
            match resp.status().as_u16() {
                200 => {
                    let body: Value = resp.json().await.map_err(Self::unreachable)?;
                    return Self::parse_token(&body).ok_or_else(|| {
                        Self::unreachable("Keystone returned a token document we cannot read")
                    });
                }
                404 | 400 => {
                    return Err(self.unauthorized("The token is invalid or has been revoked."))
                }
                // Our service token was refused: log in again once.
                401 if attempt == 0 => continue,
                s => return Err(Self::unreachable(format!("token validation answered {s}"))),
            }
        }
        Err(Self::unreachable("the service credentials were refused"))
    }

    fn parse_token(body: &Value) -> Option<TokenInfo> {
        let t = &body["token"];
        Some(TokenInfo {
            project_id: t["project"]["id"].as_str()?.to_string(),
            user_id: t["user"]["id"].as_str().unwrap_or_default().to_string(),
            roles: t["roles"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            expires_at: parse_time(t["expires_at"].as_str()?)?,
        })
    }

    /// The service's own token, logging in when there is none, it is about to expire, or
    /// `renew` is asked.
    async fn service_token(&self, renew: bool) -> Result<String, Error> {
        Ok(self.service_login(renew).await?.0)
    }

    /// The service's token and user id, logging in when needed.
    async fn service_login(&self, renew: bool) -> Result<(String, String), Error> {
        let mut slot = self.service_token.lock().await;
        let now = self.clock.now();
        if let Some(t) = slot.as_ref() {
            if !renew && t.expires_at - RENEW_MARGIN_MS > now {
                return Ok((t.token.clone(), t.user_id.clone()));
            }
        }
        let scope = json!({"project": {
            "name": self.cfg.project_name,
            "domain": {"name": self.cfg.project_domain_name},
        }});
        let (status, login) = self
            .password_login(scope)
            .await
            .map_err(Self::unreachable)?;
        let Some(login) = login else {
            return Err(Self::unreachable(format!(
                "the service login answered {status}"
            )));
        };
        let ids = (login.token.clone(), login.user_id.clone());
        *slot = Some(login);
        Ok(ids)
    }

    /// `POST /v3/auth/tokens` as the service user with the given scope: the HTTP status, and the
    /// token when it is 201.
    async fn password_login(
        &self,
        scope: Value,
    ) -> Result<(u16, Option<ServiceToken>), reqwest::Error> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.cfg.username,
                "domain": {"name": self.cfg.user_domain_name},
                "password": self.cfg.password.0,
            }}},
            "scope": scope,
        }});
        let resp = self
            .http
            .post(format!("{}/v3/auth/tokens?nocatalog", self.base))
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        if status != 201 {
            return Ok((status, None));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let doc: Value = resp.json().await?;
        let expires_at = doc["token"]["expires_at"]
            .as_str()
            .and_then(parse_time)
            .unwrap_or(self.clock.now() + 3_600_000);
        let user_id = doc["token"]["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok((
            status,
            token.map(|token| ServiceToken {
                token,
                expires_at,
                user_id,
            }),
        ))
    }

    /// Creates a trust from the token's user (trustor) to this service's user (trustee) on the
    /// token's project with the token's roles, impersonating the trustor, so notifications can
    /// later be sent with a token acting for that user (`trust+http(s)` subscribers). The trust
    /// ends at `expires_at` when given. Returns the trust id.
    pub async fn create_trust(
        &self,
        user: &UserToken,
        expires_at: Option<Millis>,
    ) -> Result<String, Error> {
        let (_, trustee) = self.service_login(false).await?;
        let mut trust = json!({
            "trustor_user_id": user.info.user_id,
            "trustee_user_id": trustee,
            "project_id": user.info.project_id,
            "impersonation": true,
            "roles": user.info.roles.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        });
        if let Some(t) = expires_at.and_then(chrono::DateTime::from_timestamp_millis) {
            trust["expires_at"] = json!(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
        let resp = self
            .http
            .post(format!("{}/v3/OS-TRUST/trusts", self.base))
            .header("X-Auth-Token", &user.token)
            .json(&json!({ "trust": trust }))
            .send()
            .await
            .map_err(Self::unreachable)?;
        match resp.status().as_u16() {
            200 | 201 => {
                let doc: Value = resp.json().await.map_err(Self::unreachable)?;
                doc["trust"]["id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Self::unreachable("Keystone returned a trust without an id"))
            }
            401 => Err(self.unauthorized("The token is invalid or has been revoked.")),
            403 => Err(Error::Forbidden(
                "Keystone refused to create a trust for this subscription.".into(),
            )),
            s if s < 500 => {
                let doc: Value = resp.json().await.unwrap_or_default();
                let why = doc["error"]["message"]
                    .as_str()
                    .unwrap_or("no reason given");
                Err(Error::invalid(format!(
                    "Keystone refused to create a trust for this subscription ({s}: {why})."
                )))
            }
            s => Err(Self::unreachable(format!("trust creation answered {s}"))),
        }
    }

    /// A token of the service user scoped to the trust, acting for its trustor; cached until
    /// shortly before it expires.
    pub async fn trust_token(&self, trust_id: &str) -> Result<String, TrustTokenError> {
        let now = self.clock.now();
        if let Some(t) = self.trust_tokens.lock().unwrap().get(trust_id) {
            if t.expires_at - RENEW_MARGIN_MS > now {
                return Ok(t.token.clone());
            }
        }
        let scope = json!({"OS-TRUST:trust": {"id": trust_id}});
        let (status, login) = self
            .password_login(scope)
            .await
            .map_err(|e| TrustTokenError {
                message: format!("Keystone is unreachable: {e}"),
                retry: true,
            })?;
        let Some(login) = login else {
            return Err(TrustTokenError {
                message: format!("Keystone refused a token for trust {trust_id} ({status})"),
                retry: status >= 500,
            });
        };
        let token = login.token.clone();
        let mut cache = self.trust_tokens.lock().unwrap();
        if cache.len() >= self.cfg.cache_size {
            cache.retain(|_, t| t.expires_at - RENEW_MARGIN_MS > now);
        }
        cache.insert(trust_id.to_string(), login);
        Ok(token)
    }
}

#[async_trait::async_trait]
impl IdentityProvider for Keystone {
    async fn validate(&self, token: &str) -> Result<TokenInfo, Error> {
        Keystone::validate(self, token).await
    }

    async fn create_trust(
        &self,
        user: &UserToken,
        expires_at: Option<Millis>,
    ) -> Result<String, Error> {
        Keystone::create_trust(self, user, expires_at).await
    }

    async fn trust_token(&self, trust_id: &str) -> Result<String, TrustTokenError> {
        Keystone::trust_token(self, trust_id).await
    }
}
