//! Keystone: token validation with a bounded cache, trusts and trust-scoped tokens (the
//! [`crate::identity::IdentityProvider`] of `auth_strategy = keystone`).

pub mod keystone;
