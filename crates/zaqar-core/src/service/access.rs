//! Access control of the service layer: the policy decision for an [`Operation`].

use super::Service;
use crate::error::Result;
use crate::operation::{Access, Operation};

impl Service {
    /// Enforces the access policy for `op` with the caller's `roles` (403 when refused).
    /// Public operations pass; every other one is decided by its policy rule.
    pub fn authorize(&self, op: Operation, roles: &[String]) -> Result<()> {
        match op.access() {
            Access::Public => Ok(()),
            Access::Rule(name) => self.options.policy.enforce(name, roles),
        }
    }
}
