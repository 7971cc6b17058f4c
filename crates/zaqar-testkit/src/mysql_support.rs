//! Shared by the MySQL / MariaDB tests: the server under test and fresh databases that are
//! dropped at the end.
//!
//! The server is `ZAQAR_TEST_MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306/test`). Without it
//! the tests print a notice and pass, unless `ZAQAR_TEST_REQUIRE_BACKENDS=1`, in which case
//! they fail; a server that is named but unreachable always fails them.

use std::sync::Mutex;

use sqlx::{Connection, Executor};

pub const URL_VAR: &str = "ZAQAR_TEST_MYSQL_URL";

/// The server URL, or `None` (after a notice) when the tests should be skipped.
pub fn backend() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            if std::env::var("ZAQAR_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") {
                panic!("{URL_VAR} is not set but ZAQAR_TEST_REQUIRE_BACKENDS=1");
            }
            eprintln!("skipped: {URL_VAR} is not set (MySQL tests need a server)");
            None
        }
    }
}

/// `url` with its database replaced by `db` (any `+driver` of the scheme kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = head.split_once("://").expect("a URL");
    let host = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(q) => format!("{scheme}://{host}/{db}?{q}"),
        None => format!("{scheme}://{host}/{db}"),
    }
}

/// Fresh databases on the server, dropped when this is dropped.
pub struct Databases {
    url: String,
    made: Mutex<Vec<String>>,
}

impl Databases {
    pub fn new(url: String) -> Databases {
        Databases {
            url,
            made: Mutex::new(Vec::new()),
        }
    }

    /// Creates a database no other test uses; returns its URL.
    pub async fn fresh(&self) -> String {
        let name = format!("zaqar_test_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::MySqlConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"));
        c.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        self.made.lock().unwrap().push(name.clone());
        with_database(&self.url, &name)
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.made.lock().unwrap());
        if names.is_empty() {
            return;
        }
        let url = self.url.clone();
        // Outside whatever runtime the test is in.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&url).await {
                    for n in names {
                        let _ = c
                            .execute(format!("DROP DATABASE IF EXISTS {n}").as_str())
                            .await;
                    }
                }
            });
        })
        .join();
    }
}
