//! Black-box robustness tests of the WebSocket transport: size limits, malformed frames,
//! slow readers, keep-alive and idle timeout, the connection limit and graceful shutdown.
//!
//! Keep-alive and idle timeouts are wall-clock transport timers (not the service's clock), so
//! those tests run with 1-2 second settings.

use zaqar_testkit as common;

use std::time::Duration;

use common::ws::{envelope, Ended, WsClient};
use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

const WS: &str = "drivers:transport:websocket";

#[tokio::test]
async fn messages_over_the_size_limit_close_with_1009() {
    let s = TestServer::start_with(&[(WS, "max_message_size", "4096")]).await;
    let mut c = WsClient::to(&s).await;
    // Under the limit: fine.
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
    let big = "x".repeat(8192);
    c.send_json(&envelope(
        "message_post",
        json!({"queue_name": "q", "messages": [{"body": big}]}),
    ))
    .await;
    assert_eq!(
        c.ended().await,
        Ended::Closed {
            code: 1009,
            reason: "Message too big.".into()
        }
    );
    // The server is fine.
    let mut c = WsClient::to(&s).await;
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
}

#[tokio::test]
async fn frames_over_the_size_limit_close_with_1009() {
    let s = TestServer::start_with(&[
        (WS, "max_frame_size", "2048"),
        (WS, "max_message_size", "65536"),
    ])
    .await;
    let mut c = WsClient::to(&s).await;
    c.send(Message::binary(vec![0x90; 4096])).await;
    assert!(matches!(c.ended().await, Ended::Closed { code: 1009, .. }));
}

#[tokio::test]
async fn a_message_too_big_for_the_service_is_a_400_not_a_disconnect() {
    // Within the frame limits but over max_messages_post_size: the service's 400.
    let s = TestServer::start_with(&[("transport", "max_messages_post_size", "1024")]).await;
    let mut c = WsClient::to(&s).await;
    let r = c
        .call(
            "message_post",
            json!({"queue_name": "q", "messages": [{"body": "x".repeat(2000)}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["exception"]
        .as_str()
        .unwrap()
        .contains("Message collection size is too large"));
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let s = TestServer::start().await;
    let mut c = WsClient::to(&s).await;
    let frame = Frame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
    c.send(Message::Frame(frame)).await;
    assert!(matches!(c.ended().await, Ended::Closed { code: 1007, .. }));
}

/// Posts ten messages of 60 KB: each listing of them is a 600 KB response.
async fn ten_big_messages(c: &mut WsClient) -> String {
    for _ in 0..10 {
        let r = c
            .call(
                "message_post",
                json!({"queue_name": "big", "messages": [{"body": "x".repeat(60_000)}]}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    envelope(
        "message_list",
        json!({"queue_name": "big", "echo": true, "limit": 10}),
    )
    .to_string()
}

#[tokio::test]
async fn a_client_that_does_not_read_its_responses_is_disconnected() {
    let s = TestServer::start_with(&[(WS, "send_buffer_size", "65536"), (WS, "send_timeout", "1")])
        .await;
    let mut c = WsClient::to(&s).await;
    let list = ten_big_messages(&mut c).await;
    // Ask for 400 listings (240 MB of responses) and read none of them for a while. The
    // server stops reading requests once max_requests_in_flight of them are pending (and its
    // writes block), so it never holds more than those.
    let writer = async {
        for _ in 0..400 {
            if c.try_send(Message::text(list.clone())).await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("the server stops reading instead of buffering");
    // Longer than send_timeout: a write to this client makes no progress, so it is dropped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut answered = 0;
    let ended = loop {
        match c.next_frame().await {
            Ok(_) => answered += 1,
            Err(e) => break e,
        }
    };
    assert!(answered < 400, "the server buffered every response");
    assert_eq!(ended, Ended::Dropped);
    // Others are unaffected.
    let mut other = WsClient::to(&s).await;
    assert_eq!(other.call("ping_node", json!({})).await.status, 204);
}

#[tokio::test]
async fn a_client_that_pipelines_large_responses_gets_all_of_them() {
    // Write batches are far smaller than the responses, and the client reads only after
    // sending everything: back pressure, not a disconnect.
    let s = TestServer::start_with(&[(WS, "send_buffer_size", "65536")]).await;
    let mut c = WsClient::to(&s).await;
    let list = ten_big_messages(&mut c).await;
    const N: usize = 40;
    for _ in 0..N {
        c.send(Message::text(list.clone())).await;
    }
    for _ in 0..N {
        let r = c.recv().await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["messages"].as_array().unwrap().len(), 10);
    }
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
}

#[tokio::test]
async fn the_server_pings_and_closes_idle_connections() {
    let s = TestServer::start_with(&[(WS, "ping_interval", "1"), (WS, "idle_timeout", "2")]).await;
    // A client that never reads never answers a ping: it will be closed after the idle timeout.
    let mut idle = WsClient::to(&s).await;
    // Meanwhile a client that reads (and so answers pings) stays connected past the timeout.
    let url = format!("{}/", s.ws_base);
    let (mut live, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    while let Ok(frame) = tokio::time::timeout_at(deadline, live.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 2, "pings: {pings}");
    live.send(Message::text(envelope("ping_node", json!({})).to_string()))
        .await
        .unwrap();
    assert_eq!(
        idle.ended().await,
        Ended::Closed {
            code: 1000,
            reason: "Idle timeout.".into()
        }
    );
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_with_503() {
    let s = TestServer::start_with(&[(WS, "max_connections", "2")]).await;
    let url = format!("{}/", s.ws_base);
    let mut a = WsClient::connect(&url).await;
    let b = WsClient::connect(&url).await;
    assert_eq!(a.call("ping_node", json!({})).await.status, 204);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503)
        }
        other => panic!("expected a 503 handshake, got {other:?}"),
    }
    b.close().await;
    // The slot is released once the server has seen the close.
    let mut connected = None;
    for _ in 0..100 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(&url).await {
            connected = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        connected.is_some(),
        "the closed connection's slot was not released"
    );
}

#[tokio::test]
async fn shutdown_answers_in_flight_requests_and_closes_with_1001() {
    let s = TestServer::start().await;
    let mut c = WsClient::to(&s).await;
    assert_eq!(c.call("ping_node", json!({})).await.status, 204);
    c.send_json(&envelope(
        "message_post",
        json!({"queue_name": "q", "messages": [{"body": 1}]}),
    ))
    .await;
    let stopping = tokio::spawn(s.stop());
    let mut statuses = Vec::new();
    let ended = loop {
        match c.next_frame().await {
            Ok(r) => statuses.push(r.status),
            Err(e) => break e,
        }
    };
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(
        ended,
        Ended::Closed {
            code: 1001,
            reason: "Server shutting down.".into()
        }
    );
    stopping.await.unwrap();
}
