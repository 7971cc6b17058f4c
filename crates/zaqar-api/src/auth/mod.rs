//! Keystone: token validation with a bounded cache, trusts and trust-scoped tokens (the
//! [`zaqar_core::identity::IdentityProvider`] of `auth_strategy = keystone`).

pub mod keystone;
