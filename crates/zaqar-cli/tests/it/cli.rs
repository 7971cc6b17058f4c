//! Black-box tests of the `zaqar` command-line client: the built binary against a real server
//! started in-process.

use zaqar_testkit as common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{TestServer, PROJECT};
use serde_json::{json, Value};

/// Runs `zaqar` with `args` against `server` (no Keystone), feeding `stdin`.
async fn zaqar_in(server: &TestServer, args: &[&str], stdin: Option<&str>) -> Output {
    let env = [
        ("ZAQAR_URL", server.base.as_str()),
        ("ZAQAR_PROJECT_ID", PROJECT),
    ];
    run_zaqar(&env, args, stdin).await
}

/// Runs `zaqar` with only the given client variables set (`ZAQAR_*`, `OS_*`).
async fn run_zaqar(env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zaqar"));
        cmd.args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_") || k.starts_with("ZAQAR_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("run zaqar");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("zaqar output")
    })
    .await
    .unwrap()
}

/// Runs `zaqar`, asserts success, returns standard output.
async fn zaqar(server: &TestServer, args: &[&str]) -> String {
    let out = zaqar_in(server, args, None).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "zaqar {args:?} failed ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `zaqar -f json ...` and parses its output.
async fn zaqar_json(server: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["-f", "json"];
    all.extend_from_slice(args);
    let text = zaqar(server, &all).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_create_list_show_metadata_stats_delete() {
    let s = TestServer::start().await;
    let out = zaqar(&s, &["queue", "create", "jobs"]).await;
    assert!(out.contains("| Name    | jobs  |"), "{out}");
    assert!(out.contains("| Created | true  |"), "{out}");
    let again = zaqar_json(&s, &["queue", "create", "jobs"]).await;
    assert_eq!(again, json!({"name": "jobs", "created": false}));
    zaqar(
        &s,
        &[
            "queue",
            "create",
            "other",
            "--metadata",
            r#"{"color": "red"}"#,
        ],
    )
    .await;

    let table = zaqar(&s, &["queue", "list"]).await;
    assert!(
        table.contains("| jobs  |") && table.contains("| other |"),
        "{table}"
    );
    // Lists are JSON arrays, as the help says; the next page's marker is noted on stderr.
    let out = zaqar_in(&s, &["-f", "json", "queue", "list", "--limit", "1"], None).await;
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list, json!([{"name": "jobs"}]));
    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(notes.contains("next marker: jobs"), "{notes}");
    // --all follows the pages.
    let all = zaqar_json(&s, &["queue", "list", "--limit", "1", "--all"]).await;
    assert_eq!(all, json!([{"name": "jobs"}, {"name": "other"}]));
    let out = zaqar_in(
        &s,
        &["-f", "json", "queue", "list", "--detailed", "--with-count"],
        None,
    )
    .await;
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("count: 2"));
    assert_eq!(list[1]["name"], "other");
    assert_eq!(list[1]["metadata"]["color"], "red");
    let values = zaqar(&s, &["-f", "value", "queue", "list"]).await;
    assert_eq!(values, "jobs\nother\n");

    let shown = zaqar_json(&s, &["queue", "show", "other"]).await;
    assert_eq!(shown["metadata"]["color"], "red");
    let set = zaqar_json(
        &s,
        &[
            "queue",
            "set-metadata",
            "other",
            r#"{"size": 3, "_default_message_ttl": 120}"#,
        ],
    )
    .await;
    assert_eq!(set["metadata"]["size"], 3);
    assert_eq!(set["metadata"]["_default_message_ttl"], 120);
    assert!(set["metadata"].get("color").is_none(), "{set}");

    let stats = zaqar_json(&s, &["queue", "stats", "jobs"]).await;
    assert_eq!(stats["total"], 0);
    assert_eq!(stats["claimed"], 0);

    let out = zaqar(&s, &["queue", "delete", "other"]).await;
    assert!(out.is_empty(), "{out}");
    let list = zaqar_json(&s, &["queue", "list"]).await;
    assert_eq!(list, json!([{"name": "jobs"}]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_post_list_get_delete_pop() {
    let s = TestServer::start().await;
    let ids = zaqar_json(
        &s,
        &[
            "message",
            "post",
            "jobs",
            "--messages",
            r#"[{"body": {"task": "resize"}, "ttl": 300}, {"body": "second"}]"#,
        ],
    )
    .await;
    let ids: Vec<String> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);

    // Each invocation has a Client-ID of its own: messages are listed without --echo.
    let listed = zaqar_json(&s, &["message", "list", "jobs"]).await;
    let items = listed.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], ids[0].as_str());
    assert_eq!(items[0]["body"], json!({"task": "resize"}));
    assert_eq!(items[0]["ttl"], 300);
    assert_eq!(items[1]["body"], "second");
    assert_eq!(items[1]["claim_id"], Value::Null);
    let table = zaqar(&s, &["message", "list", "jobs"]).await;
    assert!(
        table.contains("| ID ") && table.contains("{\"task\":\"resize\"}"),
        "{table}"
    );

    let one = zaqar_json(&s, &["message", "get", "jobs", &ids[1]]).await;
    assert_eq!(one["body"], "second");
    let both = zaqar_json(&s, &["message", "get", "jobs", &ids[0], &ids[1]]).await;
    assert_eq!(both.as_array().unwrap().len(), 2);

    zaqar(&s, &["message", "delete", "jobs", &ids[0]]).await;
    let stats = zaqar_json(&s, &["queue", "stats", "jobs"]).await;
    assert_eq!(stats["total"], 1);

    // A single --body, with defaults for ttl.
    let posted = zaqar_json(
        &s,
        &[
            "message",
            "post",
            "jobs",
            "--body",
            r#"{"body": "inner"}"#,
            "--ttl",
            "120",
        ],
    )
    .await;
    let id = posted[0]["id"].as_str().unwrap().to_string();
    let got = zaqar_json(&s, &["message", "get", "jobs", &id]).await;
    assert_eq!(got["body"], json!({"body": "inner"}));
    assert_eq!(got["ttl"], 120);

    let popped = zaqar_json(&s, &["message", "pop", "jobs", "--count", "5"]).await;
    assert_eq!(popped.as_array().unwrap().len(), 2);
    let stats = zaqar_json(&s, &["queue", "stats", "jobs"]).await;
    assert_eq!(stats["total"], 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_post_from_count_file_and_stdin_then_drain() {
    let s = TestServer::start().await;
    let out = zaqar_json(
        &s,
        &["message", "post", "bulk", "--count", "45", "--batch", "10"],
    )
    .await;
    assert_eq!(out["posted"], 45);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.jsonl");
    let mut lines = String::new();
    for i in 0..30 {
        lines.push_str(&format!("{{\"body\": {{\"line\": {i}}}, \"ttl\": 600}}\n"));
    }
    lines.push_str("\"a bare body\"\n");
    std::fs::write(&file, &lines).unwrap();
    let out = zaqar_json(
        &s,
        &[
            "message",
            "post",
            "bulk",
            "--file",
            file.to_str().unwrap(),
            "--parallel",
            "3",
        ],
    )
    .await;
    assert_eq!(out["posted"], 31);

    let out = zaqar_in(
        &s,
        &["-f", "json", "message", "post", "bulk", "--ttl", "90"],
        Some(r#"{"messages": [{"body": 1}, {"body": 2}]}"#),
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["posted"], 2);

    let stats = zaqar_json(&s, &["queue", "stats", "bulk"]).await;
    assert_eq!(stats["total"], 78);

    let out = zaqar_json(&s, &["message", "drain", "bulk", "--max", "25"]).await;
    assert_eq!(out["drained"], 25);
    let out = zaqar_json(&s, &["message", "drain", "bulk", "--batch", "20"]).await;
    assert_eq!(out["drained"], 53);
    let stats = zaqar_json(&s, &["queue", "stats", "bulk"]).await;
    assert_eq!(stats["total"], 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_create_query_renew_release() {
    let s = TestServer::start().await;
    zaqar(&s, &["message", "post", "work", "--count", "5"]).await;
    let claimed = zaqar_json(
        &s,
        &[
            "claim", "create", "work", "--ttl", "120", "--grace", "60", "--limit", "3",
        ],
    )
    .await;
    let claimed = claimed.as_array().unwrap();
    assert_eq!(claimed.len(), 3);
    let claim_id = claimed[0]["claim_id"].as_str().unwrap().to_string();
    assert!(claimed.iter().all(|m| m["claim_id"] == claim_id.as_str()));

    let q = zaqar_json(&s, &["claim", "query", "work", &claim_id]).await;
    assert_eq!(q["id"], claim_id.as_str());
    assert_eq!(q["ttl"], 120);
    assert_eq!(q["messages"].as_array().unwrap().len(), 3);

    let r = zaqar_json(&s, &["claim", "renew", "work", &claim_id, "--ttl", "600"]).await;
    assert_eq!(r["ttl"], 600);

    let stats = zaqar_json(&s, &["queue", "stats", "work"]).await;
    assert_eq!(stats["claimed"], 3);
    // A claimed message is deleted with its claim id.
    let id = claimed[0]["id"].as_str().unwrap();
    let out = zaqar_in(&s, &["message", "delete", "work", id], None).await;
    assert_eq!(out.status.code(), Some(1));
    zaqar(
        &s,
        &["message", "delete", "work", id, "--claim-id", &claim_id],
    )
    .await;

    zaqar(&s, &["claim", "release", "work", &claim_id]).await;
    let stats = zaqar_json(&s, &["queue", "stats", "work"]).await;
    assert_eq!(stats["claimed"], 0);
    assert_eq!(stats["total"], 4);
    // Nothing to claim: an empty list.
    zaqar(&s, &["message", "drain", "work"]).await;
    let none = zaqar_json(&s, &["claim", "create", "work"]).await;
    assert_eq!(none, json!([]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_ping_and_completion() {
    let s = TestServer::start().await;
    let out = zaqar_json(&s, &["ping"]).await;
    assert_eq!(out, json!({"pingable": true}));

    // An API error: exit status 1, the server's title and description on stderr.
    let out = zaqar_in(&s, &["queue", "create", "bad name!"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ERROR: "), "{err}");
    assert!(err.contains("(HTTP 400)"), "{err}");
    let out = zaqar_in(
        &s,
        &[
            "claim",
            "query",
            "nothing",
            "0123456789abcdef0123456789abcdef",
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 404"));

    // Bad input: exit status 2, nothing sent.
    let out = zaqar_in(
        &s,
        &["message", "post", "q", "--messages", "not json"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let out = zaqar_in(&s, &["--os-project-id", "", "queue", "list"], None).await;
    assert!(!out.status.success());

    // No credentials at all.
    let out = run_zaqar(
        &[("ZAQAR_URL", "http://127.0.0.1:9")],
        &["queue", "list"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--os-project-id"));

    for shell in ["bash", "zsh", "fish"] {
        let out = zaqar(&s, &["completion", shell]).await;
        assert!(out.contains("zaqar") && out.contains("queue"), "{shell}");
    }

    // A connection failure names the address and what happened.
    let out = run_zaqar(
        &[
            ("ZAQAR_URL", "http://127.0.0.1:9"),
            ("ZAQAR_PROJECT_ID", "p"),
        ],
        &["queue", "list"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to http://127.0.0.1:9: connection refused"),
        "{err}"
    );
    s.stop().await;
}

/// `zaqar ... | head -0`: the reader is gone before the program writes anything, so every
/// write it makes meets a closed pipe (EPIPE).
fn reader_gone(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zaqar"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") || k.starts_with("ZAQAR_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_output_quietly() {
    let out = reader_gone(&["completion", "bash"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = TestServer::start().await;
    s.req(reqwest::Method::PUT, "/v2/queues/q1")
        .send()
        .await
        .unwrap();
    let url = s.base.clone();
    for format in ["table", "json", "value"] {
        let url = url.clone();
        let out = tokio::task::spawn_blocking(move || {
            reader_gone(
                &["-f", format, "queue", "list"],
                &[("ZAQAR_URL", &url), ("ZAQAR_PROJECT_ID", PROJECT)],
            )
        })
        .await
        .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_keeps_order_by_default_and_warns_about_ignored_delays() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backlog.jsonl");
    let lines: String = (0..60).map(|i| format!("{{\"body\": {i}}}\n")).collect();
    std::fs::write(&file, lines).unwrap();
    let out = zaqar_json(
        &s,
        &[
            "message",
            "post",
            "ordered",
            "--file",
            file.to_str().unwrap(),
            "--batch",
            "5",
        ],
    )
    .await;
    assert_eq!(out["posted"], 60);
    let listed = zaqar_json(&s, &["message", "list", "ordered", "--echo", "--all"]).await;
    let bodies: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_i64().unwrap())
        .collect();
    assert_eq!(bodies, (0..60).collect::<Vec<i64>>(), "in the file's order");

    // A delay on a queue that is not a delayed one is ignored by the API: the CLI says so.
    let out = zaqar_in(
        &s,
        &["message", "post", "plain", "--body", "1", "--delay", "30"],
        None,
    )
    .await;
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plain is not a delayed queue"), "{err}");
    zaqar(
        &s,
        &[
            "queue",
            "create",
            "later",
            "--metadata",
            r#"{"_default_message_delay": 10}"#,
        ],
    )
    .await;
    let out = zaqar_in(
        &s,
        &["message", "post", "later", "--body", "1", "--delay", "30"],
        None,
    )
    .await;
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_topics() {
    let s = TestServer::start().await;
    // A local subscriber that nothing is posted to: no notification leaves the machine.
    let hook = "http://127.0.0.1:9/hook";
    let created = zaqar_json(
        &s,
        &[
            "subscription",
            "create",
            "events",
            hook,
            "--ttl",
            "600",
            "--options",
            r#"{"name": "cli"}"#,
        ],
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let listed = zaqar_json(&s, &["subscription", "list", "events"]).await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["subscriber"], hook);
    let shown = zaqar_json(&s, &["subscription", "show", "events", &id]).await;
    assert_eq!(shown["ttl"], 600);
    assert_eq!(shown["options"], json!({"name": "cli"}));
    assert_eq!(shown["confirmed"], false);
    let updated = zaqar_json(
        &s,
        &["subscription", "update", "events", &id, "--ttl", "900"],
    )
    .await;
    assert_eq!(updated["ttl"], 900);
    zaqar(&s, &["subscription", "confirm", "events", &id]).await;
    let shown = zaqar_json(&s, &["subscription", "show", "events", &id]).await;
    assert_eq!(shown["confirmed"], true);
    zaqar(&s, &["subscription", "delete", "events", &id]).await;
    let listed = zaqar_json(&s, &["subscription", "list", "events"]).await;
    assert_eq!(listed, json!([]));

    // Topics: their own namespace, messages without claims.
    zaqar(&s, &["topic", "create", "news"]).await;
    let topics = zaqar_json(&s, &["topic", "list"]).await;
    assert_eq!(topics, json!([{"name": "news"}]));
    let posted = zaqar_json(
        &s,
        &[
            "topic",
            "post",
            "news",
            "--messages",
            r#"[{"body": "hello"}]"#,
        ],
    )
    .await;
    assert_eq!(posted.as_array().unwrap().len(), 1);
    let messages = zaqar_json(&s, &["topic", "messages", "news"]).await;
    assert_eq!(messages[0]["body"], "hello");
    let stats = zaqar_json(&s, &["topic", "stats", "news"]).await;
    assert_eq!(stats["total"], 1);
    zaqar(&s, &["topic", "delete", "news"]).await;
    s.stop().await;
}

/// A stand-in for Keystone v3: password logins (with a catalog naming the Zaqar endpoint) and
/// token validation, enough for both the server and the client.
mod fake_keystone {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    pub(super) const PROJECT_ID: &str = "p-keystone-demo";
    const EXPIRES: &str = "2999-01-01T00:00:00.000000Z";

    #[derive(Clone, Default)]
    pub(super) struct Catalog(pub Arc<Mutex<String>>);

    pub(super) async fn start(catalog: Catalog) -> String {
        let app = Router::new()
            .route("/v3/auth/tokens", post(login).get(validate))
            .with_state(catalog);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v3", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        url
    }

    async fn login(State(catalog): State<Catalog>, Json(body): Json<Value>) -> Response {
        let user = &body["auth"]["identity"]["password"]["user"];
        let token = match (user["name"].as_str(), user["password"].as_str()) {
            (Some("zaqar"), Some("service-pw")) => "service-token",
            (Some("alice"), Some("secret"))
                if body["auth"]["scope"]["project"]["name"] == "demo"
                    && user["domain"]["name"] == "Default" =>
            {
                "alice-token"
            }
            _ => {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"message": "The request you have made requires authentication."}})),
                )
                    .into_response()
            }
        };
        let url = catalog.0.lock().unwrap().clone();
        let doc = json!({"token": {
            "expires_at": EXPIRES,
            "project": {"id": PROJECT_ID, "name": "demo"},
            "user": {"id": "u-1"},
            "roles": [{"name": "member"}],
            "catalog": [{"type": "messaging", "endpoints": [
                {"interface": "internal", "url": "http://127.0.0.1:9", "region_id": "RegionOne"},
                {"interface": "public", "url": url, "region_id": "RegionOne"}
            ]}]
        }});
        (StatusCode::CREATED, [("x-subject-token", token)], Json(doc)).into_response()
    }

    async fn validate(headers: HeaderMap) -> Response {
        let subject = headers.get("x-subject-token").and_then(|v| v.to_str().ok());
        if subject != Some("alice-token") {
            return StatusCode::NOT_FOUND.into_response();
        }
        Json(json!({"token": {
            "expires_at": EXPIRES,
            "project": {"id": PROJECT_ID},
            "user": {"id": "u-1"},
            "roles": [{"name": "member"}]
        }}))
        .into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_password_authentication_and_catalog() {
    let catalog = fake_keystone::Catalog::default();
    let auth_url = fake_keystone::start(catalog.clone()).await;
    let s = TestServer::start_with(&[
        ("DEFAULT", "auth_strategy", "keystone"),
        ("keystone_authtoken", "auth_url", &auth_url),
        ("keystone_authtoken", "username", "zaqar"),
        ("keystone_authtoken", "password", "service-pw"),
        ("keystone_authtoken", "project_name", "service"),
    ])
    .await;
    *catalog.0.lock().unwrap() = format!("{}/v2", s.base);
    let alice = |password: &'static str| {
        vec![
            ("OS_AUTH_URL", auth_url.clone()),
            ("OS_USERNAME", "alice".to_string()),
            ("OS_PASSWORD", password.to_string()),
            ("OS_PROJECT_NAME", "demo".to_string()),
            ("OS_USER_DOMAIN_NAME", "Default".to_string()),
            ("OS_PROJECT_DOMAIN_NAME", "Default".to_string()),
        ]
    };
    let env = alice("secret");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The endpoint comes from the catalog (public interface), the project from the token.
    let out = run_zaqar(&env, &["queue", "create", "from-keystone"], None).await;
    assert!(out.status.success(), "{out:?}");
    let out = run_zaqar(&env, &["-f", "value", "queue", "list"], None).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-keystone\n");
    let resp = s
        .http
        .get(s.url("/v2/queues"))
        .header("Client-ID", common::CLIENT)
        .header("X-Auth-Token", "alice-token")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["queues"][0]["name"], "from-keystone");

    let env = alice("wrong");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run_zaqar(&env, &["queue", "list"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Keystone authentication failed") && err.contains("HTTP 401"),
        "{err}"
    );
    s.stop().await;
}
