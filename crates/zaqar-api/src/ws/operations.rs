//! The [`Operation`] of each WebSocket action: the policy rule, the metrics label and the
//! rate limit of an action are those of its operation, as over HTTP. An action that maps to
//! no operation is refused before it runs.

use zaqar_core::operation::Operation;

/// The operation an action performs; `None` for a name that is no action.
pub fn operation_of(action: &str) -> Option<Operation> {
    use Operation as Op;
    Some(match action {
        "get_home_doc" => Op::Home,
        "authenticate" => Op::Authenticate,
        "ping_node" => Op::Ping,
        "check_node_health" => Op::Health,
        "queue_list" => Op::QueueList,
        "queue_create" => Op::QueueCreate,
        "queue_get" => Op::QueueGet,
        "queue_delete" => Op::QueueDelete,
        "queue_get_stats" => Op::QueueStats,
        "queue_purge" => Op::QueuePurge,
        "message_list" | "message_get_many" => Op::MessageList,
        "message_get" => Op::MessageGet,
        "message_post" => Op::MessagePost,
        "message_delete" => Op::MessageDelete,
        "message_delete_many" => Op::MessageDeleteMany,
        "claim_create" => Op::ClaimCreate,
        "claim_get" => Op::ClaimGet,
        "claim_update" => Op::ClaimUpdate,
        "claim_delete" => Op::ClaimDelete,
        "subscription_create" => Op::SubscriptionCreate,
        "subscription_list" => Op::SubscriptionList,
        "subscription_get" => Op::SubscriptionGet,
        "subscription_delete" => Op::SubscriptionDelete,
        "pool_list" => Op::PoolList,
        "pool_create" => Op::PoolCreate,
        "pool_get" | "pool_get_detail" => Op::PoolGet,
        "pool_update" => Op::PoolUpdate,
        "pool_delete" => Op::PoolDelete,
        "flavor_list" => Op::FlavorList,
        "flavor_create" => Op::FlavorCreate,
        "flavor_get" => Op::FlavorGet,
        "flavor_update" => Op::FlavorUpdate,
        "flavor_delete" => Op::FlavorDelete,
        "quota_list" => Op::QuotaList,
        "quota_get" => Op::QuotaGet,
        "quota_set" => Op::QuotaUpdate,
        "quota_delete" => Op::QuotaDelete,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::protocol::ACTIONS;

    #[test]
    fn every_action_of_the_protocol_has_an_operation() {
        let unmapped: Vec<&str> = ACTIONS
            .iter()
            .map(|a| a.name)
            .filter(|name| operation_of(name).is_none())
            .collect();
        assert!(
            unmapped.is_empty(),
            "actions without an operation: {unmapped:?}"
        );
        assert_eq!(operation_of("queue_frobnicate"), None);
    }
}
