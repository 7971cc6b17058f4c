//! The transports: the Zaqar v2 HTTP API (`http`) and the WebSocket API (`ws`), both rendering
//! from one set of wire shapes (`wire`) and calling the service layer of `zaqar-core`; and
//! Keystone (`auth`), the identity provider of `auth_strategy = keystone`.

pub mod auth;
pub mod http;
pub mod wire;
pub mod ws;
