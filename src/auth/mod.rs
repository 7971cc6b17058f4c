//! Identity and access: Keystone token validation (`keystone`), the access policy (`policy`),
//! pre-signed URLs (`signing`).

pub mod keystone;
pub mod policy;
pub mod signing;
