//! `zaqar-bench` against the real server: every scenario completes without errors and writes
//! its JSON report and SVG plot. (Only that it works: figures are measured by running the
//! tool, never asserted here.)

use zaqar_testkit as common;

use common::TestServer;
use serde_json::Value;

/// Runs zaqar-bench with `args` for a short fixed duration; returns the JSON report.
async fn bench(server: &TestServer, dir: &std::path::Path, name: &str, args: &[&str]) -> Value {
    let json = dir.join(format!("{name}.json"));
    let svg = dir.join(format!("{name}.svg"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_zaqar-bench"))
        .args([
            "--url",
            &server.base,
            "--connections",
            "4",
            // No warmup: a fast machine drains a small prefill before a warmup ends, and the
            // measured window would then see only empty claims.
            "--warmup",
            "0",
        ])
        .args(["--queue-prefix", name, "--quiet", "--threads", "2"])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .args(args)
        .output()
        .await
        .expect("zaqar-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SUMMARY"), "{name}: {stdout}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).expect("JSON report")).unwrap();
    assert_eq!(doc["passed"], true, "{name}: {doc}");
    assert_eq!(doc["totals"]["errors"], 0, "{name}: {doc}");
    let plot = std::fs::read_to_string(&svg).expect("SVG plot");
    assert!(
        plot.starts_with("<svg") && plot.contains("<polyline"),
        "{name}"
    );
    doc
}

fn requests(doc: &Value, op: &str) -> u64 {
    doc["operations"][op]["requests"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let doc = bench(&server, d, "post", &["-s", "post", "-d", "1"]).await;
    assert!(requests(&doc, "post") > 0);

    let doc = bench(&server, d, "batch", &["-s", "post", "-b", "10", "-n", "50"]).await;
    assert_eq!(requests(&doc, "post"), 50, "fixed count: {doc}");
    assert_eq!(doc["operations"]["post"]["messages"], 500);

    let doc = bench(
        &server,
        d,
        "claim",
        &["-s", "claim", "--prefill", "200", "-d", "1"],
    )
    .await;
    assert!(
        requests(&doc, "claim") > 0 && requests(&doc, "delete") > 0,
        "{doc}"
    );

    let doc = bench(
        &server,
        d,
        "list",
        &["-s", "list", "--prefill", "30", "-d", "1"],
    )
    .await;
    assert!(
        doc["operations"]["list"]["messages"].as_u64().unwrap() > 0,
        "{doc}"
    );

    let doc = bench(
        &server,
        d,
        "mixed",
        &["-s", "mixed", "--prefill", "50", "-d", "1"],
    )
    .await;
    for op in ["post", "claim", "list"] {
        assert!(requests(&doc, op) > 0, "{op}: {doc}");
    }

    // Long-poll consumers receive what the producers post.
    let doc = bench(
        &server,
        d,
        "longpoll",
        &[
            "-s", "longpoll", "--mix", "1:1:0", "--wait", "1", "-d", "1.5",
        ],
    )
    .await;
    assert!(requests(&doc, "post") > 0, "{doc}");
    assert!(
        doc["operations"]["poll"]["messages"].as_u64().unwrap() > 0,
        "{doc}"
    );

    // Topic posts, fanned out to a (here unreachable) webhook subscriber.
    let doc = bench(
        &server,
        d,
        "topic",
        &[
            "-s",
            "topic",
            "--subscriber",
            "http://127.0.0.1:9/hook",
            "-d",
            "1",
        ],
    )
    .await;
    assert!(requests(&doc, "post") > 0, "{doc}");
    let subs = server
        .req(reqwest::Method::GET, "/v2/topics/topic-0/subscriptions")
        .send()
        .await
        .unwrap();
    assert_eq!(subs.status(), 200);

    // WebSocket producers, on the WebSocket listener and on the HTTP port's upgrade.
    for (name, url) in [
        ("ws", Some(server.ws_base.clone())),
        ("wsup", None::<String>),
    ] {
        let mut args = vec!["-s", "ws", "-b", "2", "-d", "1"];
        if let Some(u) = &url {
            args.extend(["--ws-url", u.as_str()]);
        }
        let doc = bench(&server, d, name, &args).await;
        assert!(requests(&doc, "post") > 0, "{name}: {doc}");
        assert!(doc["settings"]["ws_url"].is_string(), "{doc}");
    }
    server.stop().await;
}

#[test]
fn help_documents_every_scenario() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zaqar-bench"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "post",
        "claim",
        "list",
        "mixed",
        "longpoll",
        "topic",
        "ws",
        "--svg",
        "--json",
        "--requests",
        "--duration",
        "--batch",
        "--message-size",
        "--wait",
        "--subscriber",
        "--ws-url",
        "--rss-pid",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}
