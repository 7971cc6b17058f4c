//! Every operation of the API, whatever transport carries it, and the access rule that
//! guards it. Transports map each request to one [`Operation`] before anything else runs; a
//! request that maps to none is refused. The rule of an operation comes from an exhaustive
//! `match`, so an operation added without deciding its rule does not compile.

/// How an operation is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open to every caller (documents that describe the API; the authentication step).
    Public,
    /// The access-policy rule of that name (spec §2.4 names, overridable by the policy file).
    Rule(&'static str),
}

/// Declares [`Operation`] and [`Operation::ALL`] from one list, so the list is complete by
/// construction.
macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// An API operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $($(#[$doc])* $variant,)*
        }

        impl Operation {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];
        }
    };
}

operations! {
/// `GET /`: the versions document.
Versions,
/// `GET /v2/`, `get_home_doc`: the JSON-home document.
Home,
/// The WebSocket `authenticate` action (it establishes the identity the rest is checked
/// against).
Authenticate,
Ping,
Health,
QueueList,
QueueCreate,
QueueGet,
QueueUpdate,
QueueDelete,
QueueStats,
QueuePurge,
QueueShare,
QueueRedrive,
TopicList,
TopicCreate,
TopicGet,
TopicUpdate,
TopicDelete,
TopicStats,
TopicPurge,
MessagePost,
MessageList,
MessageGet,
MessageDelete,
MessageDeleteMany,
ClaimCreate,
ClaimGet,
ClaimUpdate,
ClaimDelete,
SubscriptionList,
SubscriptionCreate,
SubscriptionGet,
SubscriptionUpdate,
SubscriptionDelete,
SubscriptionConfirm,
PoolList,
PoolCreate,
PoolGet,
PoolUpdate,
PoolDelete,
FlavorList,
FlavorCreate,
FlavorGet,
FlavorUpdate,
FlavorDelete,
QuotaList,
QuotaGet,
QuotaUpdate,
QuotaDelete,}

impl Operation {
    /// The access rule of the operation. No wildcard arm: a new operation must be given one.
    pub fn access(self) -> Access {
        use Operation::*;
        let rule = match self {
            // Documents that describe the API, and the step that establishes an identity:
            // the reference checks no policy for them either.
            Versions | Home | Authenticate => return Access::Public,
            Ping => "ping:get",
            Health => "health:get",
            QueueList => "queues:get_all",
            QueueCreate => "queues:create",
            QueueGet => "queues:get",
            QueueUpdate => "queues:update",
            QueueDelete => "queues:delete",
            QueueStats => "queues:stats",
            QueuePurge => "queues:purge",
            QueueShare => "queues:share",
            QueueRedrive => "queues:redrive",
            TopicList => "topics:get_all",
            TopicCreate => "topics:create",
            TopicGet => "topics:get",
            TopicUpdate => "topics:update",
            TopicDelete => "topics:delete",
            TopicStats => "topics:stats",
            TopicPurge => "topics:purge",
            MessagePost => "messages:create",
            MessageList => "messages:get_all",
            MessageGet => "messages:get",
            MessageDelete => "messages:delete",
            MessageDeleteMany => "messages:delete_all",
            ClaimCreate => "claims:create",
            ClaimGet => "claims:get",
            ClaimUpdate => "claims:update",
            ClaimDelete => "claims:delete",
            SubscriptionList => "subscription:get_all",
            SubscriptionCreate => "subscription:create",
            SubscriptionGet => "subscription:get",
            SubscriptionUpdate => "subscription:update",
            SubscriptionDelete => "subscription:delete",
            SubscriptionConfirm => "subscription:confirm",
            PoolList => "pools:get_all",
            PoolCreate => "pools:create",
            PoolGet => "pools:get",
            PoolUpdate => "pools:update",
            PoolDelete => "pools:delete",
            FlavorList => "flavors:get_all",
            FlavorCreate => "flavors:create",
            FlavorGet => "flavors:get",
            FlavorUpdate => "flavors:update",
            FlavorDelete => "flavors:delete",
            QuotaList => "quotas:get_all",
            QuotaGet => "quotas:get",
            QuotaUpdate => "quotas:update",
            QuotaDelete => "quotas:delete",
        };
        Access::Rule(rule)
    }

    /// The policy rule's name, or `None` for a public operation.
    pub fn rule(self) -> Option<&'static str> {
        match self.access() {
            Access::Public => None,
            Access::Rule(name) => Some(name),
        }
    }

    /// A label for metrics and logs: the rule name, or the operation for public ones.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Versions => "versions",
            Operation::Home => "home",
            Operation::Authenticate => "authenticate",
            other => other.rule().unwrap_or("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for op in Operation::ALL {
            if let Some(rule) = op.rule() {
                assert!(seen.insert(rule), "{rule} guards two operations");
            }
        }
        assert_eq!(seen.len() + 3, Operation::ALL.len());
    }

    #[test]
    fn only_documents_and_authentication_are_public() {
        let public: Vec<Operation> = Operation::ALL
            .iter()
            .copied()
            .filter(|op| op.access() == Access::Public)
            .collect();
        assert_eq!(
            public,
            vec![
                Operation::Versions,
                Operation::Home,
                Operation::Authenticate
            ]
        );
    }
}
