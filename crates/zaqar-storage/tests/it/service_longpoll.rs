//! Long-poll timing at the service level, with tokio's paused clock: no real waiting.

use std::sync::Arc;
use std::time::Duration;

use zaqar_core::clock::ManualClock;
use zaqar_core::service::limits::Limits;
use zaqar_core::service::{Ctx, MessageListParams, Service, ServiceOptions};
use zaqar_storage::embedded::EmbeddedStore;
use zaqar_storage::embedded::EmbeddedStoreConfig;

const CTX: Ctx<'static> = Ctx {
    project: "p",
    client_id: "3381af92-2b9e-11e3-b191-71861300734c",
    user: None,
};

fn service(dir: &std::path::Path) -> Service {
    let clock = Arc::new(ManualClock::default());
    let store = EmbeddedStore::open(
        &EmbeddedStoreConfig {
            path: dir.to_path_buf(),
            shards: 1,
            cache_size_mb: 8,
            gc_interval_secs: 3600,
        },
        clock.clone(),
    )
    .unwrap();
    Service::new(Limits::default(), store, clock).with_options(ServiceOptions {
        max_wait: 20,
        ..Default::default()
    })
}

#[tokio::test(start_paused = true)]
async fn an_empty_wait_lasts_exactly_the_requested_time() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let start = tokio::time::Instant::now();
    let page = svc
        .list_messages_wait(CTX, "q", MessageListParams::default(), Some(7))
        .await
        .unwrap();
    assert!(page.messages.is_empty());
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    let start = tokio::time::Instant::now();
    let claim = svc
        .create_claim_wait(CTX, "q", None, b"", Some(3))
        .await
        .unwrap();
    assert!(claim.is_none());
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(svc.hub().watched_queues(), 0, "waiters are released");
}

#[tokio::test(start_paused = true)]
async fn no_wait_means_no_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let start = tokio::time::Instant::now();
    svc.list_messages_wait(CTX, "q", MessageListParams::default(), None)
        .await
        .unwrap();
    svc.list_messages_wait(CTX, "q", MessageListParams::default(), Some(0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}
