//! Conformance cases of queues: creation, metadata compare-and-set, listing and counting.

use serde_json::{json, Map};

use super::{all, env, post_n, q, Env, Harness};
use crate::error::Error;
use crate::model::QueueFilter;

pub async fn queue_create_get_delete(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "alpha");
    assert!(s.get_queue(qa).await.unwrap().is_none());
    let meta: Map<_, _> = json!({"k": "v"}).as_object().unwrap().clone();
    assert!(s.create_queue(qa, meta.clone()).await.unwrap());
    let other: Map<_, _> = json!({"k": "other"}).as_object().unwrap().clone();
    assert!(!s.create_queue(qa, other).await.unwrap(), "second create");
    let info = s.get_queue(qa).await.unwrap().unwrap();
    assert_eq!(info.metadata, meta, "existing metadata untouched");
    assert_eq!(info.name, "alpha");
    post_n(&s, qa, 3).await;
    s.delete_queue(qa).await.unwrap();
    assert!(s.get_queue(qa).await.unwrap().is_none());
    assert!(s.list_messages(qa, &all(10)).await.unwrap().is_empty());
    s.delete_queue(qa).await.unwrap(); // deleting a missing queue is fine
}

pub async fn queue_metadata_compare_and_set(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    let qa = q("p", "cas");
    let err = s
        .replace_queue_metadata(qa, 1, Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    s.create_queue(qa, Map::new()).await.unwrap();
    let v = s.get_queue(qa).await.unwrap().unwrap().version;
    let m1: Map<_, _> = json!({"a": 1}).as_object().unwrap().clone();
    assert!(s.replace_queue_metadata(qa, v, m1.clone()).await.unwrap());
    let m2: Map<_, _> = json!({"a": 2}).as_object().unwrap().clone();
    assert!(
        !s.replace_queue_metadata(qa, v, m2).await.unwrap(),
        "stale version"
    );
    let info = s.get_queue(qa).await.unwrap().unwrap();
    assert_eq!(info.metadata, m1);
    assert_ne!(info.version, v);
}

pub async fn queue_listing(h: &dyn Harness) {
    let Env { s, .. } = env(h).await;
    for name in ["b", "a", "c-1", "C", "a.b", "zz"] {
        let meta = json!({"len": name.len(), "tag": if name.starts_with('a') {"x"} else {"y"}});
        s.create_queue(q("p1", name), meta.as_object().unwrap().clone())
            .await
            .unwrap();
    }
    s.create_queue(q("p2", "a"), Map::new()).await.unwrap();
    s.create_queue(q("p", "a"), Map::new()).await.unwrap();
    let none = QueueFilter::default();
    let names = |v: Vec<crate::model::QueueInfo>| v.into_iter().map(|i| i.name).collect::<Vec<_>>();
    let all_p1 = names(s.list_queues("p1", None, 100, &none).await.unwrap());
    assert_eq!(
        all_p1,
        vec!["C", "a", "a.b", "b", "c-1", "zz"],
        "byte order, own project only"
    );
    let page1 = names(s.list_queues("p1", None, 2, &none).await.unwrap());
    assert_eq!(page1, vec!["C", "a"]);
    let page2 = names(s.list_queues("p1", Some("a"), 2, &none).await.unwrap());
    assert_eq!(page2, vec!["a.b", "b"]);
    let last = names(s.list_queues("p1", Some("zz"), 2, &none).await.unwrap());
    assert!(last.is_empty());
    let f = QueueFilter {
        name_contains: Some("a".into()),
        metadata: vec![],
    };
    assert_eq!(
        names(s.list_queues("p1", None, 10, &f).await.unwrap()),
        vec!["a", "a.b"]
    );
    let f = QueueFilter {
        name_contains: None,
        metadata: vec![("tag".into(), json!("y")), ("len".into(), json!(1))],
    };
    assert_eq!(
        names(s.list_queues("p1", None, 10, &f).await.unwrap()),
        vec!["C", "b"]
    );
    let f = QueueFilter {
        name_contains: None,
        metadata: vec![("tag".into(), json!("y"))],
    };
    // The limit applies after filtering.
    assert_eq!(
        names(s.list_queues("p1", None, 2, &f).await.unwrap()),
        vec!["C", "b"]
    );
    assert_eq!(s.count_queues("p1").await.unwrap(), 6);
    assert_eq!(s.count_queues("p2").await.unwrap(), 1);
    assert_eq!(s.count_queues("nobody").await.unwrap(), 0);
    // A project whose id is a prefix of another's sees only its own queues.
    assert_eq!(
        names(s.list_queues("p", None, 10, &none).await.unwrap()),
        vec!["a"]
    );
}
