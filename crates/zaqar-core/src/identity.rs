//! Who a request acts for: what a validated token says about its bearer, and the identity
//! service the service layer and the notifier ask ([`IdentityProvider`]). Keystone implements
//! it in the API crate; the service layer never speaks to Keystone directly.

use async_trait::async_trait;

use crate::clock::Millis;
use crate::error::Error;

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub project_id: String,
    pub user_id: String,
    pub roles: Vec<String>,
    pub expires_at: Millis,
}

/// A validated user token with what the identity service said of it: what a request needs to
/// act for its user later (creating a trust). `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct UserToken {
    pub token: String,
    pub info: TokenInfo,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("token", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

/// Why a trust-scoped token could not be had.
#[derive(Debug)]
pub struct TrustTokenError {
    pub message: String,
    /// Worth retrying later (the identity service unreachable or failing), as opposed to a
    /// refused trust.
    pub retry: bool,
}

/// The identity service (Keystone): token validation, trusts and trust-scoped tokens.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Validates a user token (401 invalid or expired, 503 the service is unreachable).
    async fn validate(&self, token: &str) -> Result<TokenInfo, Error>;

    /// Creates a trust from the token's user (trustor) to this service's user (trustee) on the
    /// token's project with the token's roles, ending at `expires_at` when given. Returns the
    /// trust id.
    async fn create_trust(
        &self,
        user: &UserToken,
        expires_at: Option<Millis>,
    ) -> Result<String, Error>;

    /// A token of the service user scoped to the trust, acting for its trustor.
    async fn trust_token(&self, trust_id: &str) -> Result<String, TrustTokenError>;
}

/// Roles of an `X-Roles`-style list: comma-separated, trimmed, empty items dropped (the HTTP
/// header without Keystone, and the WebSocket `X-Roles` header).
pub fn parse_roles(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
