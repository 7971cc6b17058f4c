//! The HTTP side of the client: Keystone password authentication (or none), the endpoint, and
//! one function that sends a request and turns Zaqar's error bodies into [`CliError::Api`].

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The media type of a v2 JSON-patch body.
const PATCH_MEDIA_TYPE: &str = "application/openstack-messaging-v2.0-json-patch";

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or input (exit status 2).
    Usage(String),
    /// The server answered with an error.
    Api {
        status: u16,
        title: String,
        description: String,
    },
    /// The server could not be reached, or answered something unreadable.
    Transport(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Api {
                status,
                title,
                description,
            } => {
                if description.is_empty() {
                    write!(f, "{title} (HTTP {status})")
                } else {
                    write!(f, "{title}: {description} (HTTP {status})")
                }
            }
            CliError::Transport(m) => write!(f, "{m}"),
        }
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

pub fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// How to reach and authenticate to the service (from options and environment).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Base URL of the Zaqar API (without `/v2`); from the catalog when unset with Keystone.
    pub url: Option<String>,
    pub client_id: Option<String>,
    /// No-auth mode: the `X-Project-ID` header.
    pub project_id: Option<String>,
    /// No-auth mode: the `X-Roles` header (e.g. `admin` for pools and flavors).
    pub roles: Option<String>,
    pub token: Option<String>,
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
    pub user_domain_name: String,
    pub project_domain_name: String,
    pub interface: String,
    pub region: Option<String>,
    pub timeout: Duration,
}

/// A response that was not an error.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body, `Value::Null` when empty.
    pub body: Value,
}

/// An authenticated client of one Zaqar endpoint.
pub struct Client {
    http: reqwest::Client,
    base: String,
    headers: HeaderMap,
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let v = HeaderValue::from_str(value)
        .map_err(|_| usage(format!("invalid value for the {name} header")))?;
    Ok((HeaderName::from_static(name), v))
}

/// What went wrong on the way to the server, in words that say what to check: the address,
/// and whether the connection was refused, timed out or failed otherwise.
fn transport(e: reqwest::Error) -> CliError {
    let target = e
        .url()
        .map(|u| {
            let host = u.host_str().unwrap_or("?");
            match u.port_or_known_default() {
                Some(port) => format!("{}://{host}:{port}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        })
        .unwrap_or_else(|| "the server".into());
    let io_kind = {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut kind = None;
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                kind = Some(io.kind());
                break;
            }
            source = s.source();
        }
        kind
    };
    use std::io::ErrorKind as K;
    let why = match io_kind {
        Some(K::ConnectionRefused) => format!(
            "cannot connect to {target}: connection refused (is the server running there?              set --url or ZAQAR_URL)"
        ),
        Some(K::TimedOut) => format!("cannot connect to {target}: the connection timed out"),
        Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe) => {
            format!("the connection to {target} was closed by the server")
        }
        _ if e.is_timeout() => format!("no answer from {target} in time (request timed out)"),
        _ if e.is_connect() => format!("cannot connect to {target}: {}", root_cause(&e)),
        _ => format!("request to {target} failed: {}", root_cause(&e)),
    };
    CliError::Transport(why)
}

/// The innermost error of a chain (the one that says what actually happened).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The Keystone v3 URL of `OS_AUTH_URL` (which may or may not end with `/v3`).
pub fn keystone_v3(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        base.to_string()
    } else {
        format!("{base}/v3")
    }
}

/// The password-method token request of `s`, scoped to the project.
pub fn token_request(s: &Settings) -> Result<Value> {
    let need = |v: &Option<String>, what: &str| {
        v.clone()
            .ok_or_else(|| usage(format!("Keystone authentication needs {what}")))
    };
    let user = need(&s.username, "--os-username (OS_USERNAME)")?;
    let password = need(&s.password, "--os-password (OS_PASSWORD)")?;
    let project = match (&s.project_name, &s.project_id) {
        (Some(name), _) => json!({"name": name, "domain": {"name": s.project_domain_name}}),
        (None, Some(id)) => json!({"id": id}),
        (None, None) => {
            return Err(usage(
                "Keystone authentication needs --os-project-name (OS_PROJECT_NAME) or \
                 --os-project-id (OS_PROJECT_ID)",
            ))
        }
    };
    Ok(json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": s.user_domain_name}, "password": password}}},
        "scope": {"project": project}
    }}))
}

/// The messaging endpoint of a Keystone token's catalog.
pub fn messaging_endpoint(token: &Value, interface: &str, region: Option<&str>) -> Option<String> {
    let catalog = token.pointer("/token/catalog")?.as_array()?;
    let service = catalog
        .iter()
        .find(|s| s.get("type").and_then(Value::as_str) == Some("messaging"))?;
    service
        .get("endpoints")?
        .as_array()?
        .iter()
        .filter(|e| e.get("interface").and_then(Value::as_str) == Some(interface))
        .find(|e| {
            region.is_none_or(|r| {
                e.get("region_id").and_then(Value::as_str) == Some(r)
                    || e.get("region").and_then(Value::as_str) == Some(r)
            })
        })
        .and_then(|e| e.get("url")?.as_str())
        .map(str::to_string)
}

/// The API base without a trailing `/` or `/v2`.
fn api_base(url: &str) -> String {
    let u = url.trim_end_matches('/');
    u.strip_suffix("/v2").unwrap_or(u).to_string()
}

impl Client {
    /// Authenticates (Keystone password, a given token, or none) and finds the endpoint.
    pub async fn connect(s: &Settings) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(s.timeout)
            .build()
            .map_err(transport)?;
        let client_id = s
            .client_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut headers = HeaderMap::new();
        let (k, v) = header("client-id", &client_id)?;
        headers.insert(k, v);
        let mut url = s.url.clone();
        if let Some(token) = &s.token {
            let (k, v) = header("x-auth-token", token)?;
            headers.insert(k, v);
        } else if let Some(auth_url) = &s.auth_url {
            let body = token_request(s)?;
            let resp = http
                .post(format!("{}/auth/tokens", keystone_v3(auth_url)))
                .json(&body)
                .send()
                .await
                .map_err(|e| CliError::Transport(format!("cannot reach Keystone: {e}")))?;
            let status = resp.status();
            let token = resp
                .headers()
                .get("x-subject-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let doc: Value = resp.json().await.unwrap_or(Value::Null);
            let Some(token) = token.filter(|_| status.is_success()) else {
                let msg = doc
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no token returned");
                return Err(CliError::Api {
                    status: status.as_u16(),
                    title: "Keystone authentication failed".into(),
                    description: msg.to_string(),
                });
            };
            let (k, v) = header("x-auth-token", &token)?;
            headers.insert(k, v);
            if url.is_none() {
                url = messaging_endpoint(&doc, &s.interface, s.region.as_deref());
                if url.is_none() {
                    return Err(usage(format!(
                        "the Keystone catalog has no {} messaging endpoint; give --url",
                        s.interface
                    )));
                }
            }
        }
        // Without a token, and also alongside one (the server checks it matches the token).
        if let Some(p) = &s.project_id {
            let (k, v) = header("x-project-id", p)?;
            headers.insert(k, v);
        } else if s.token.is_none() && s.auth_url.is_none() {
            return Err(usage(
                "no credentials: give --os-project-id (ZAQAR_PROJECT_ID) for a server without \
                 authentication, or OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME \
                 for Keystone",
            ));
        }
        if let Some(r) = &s.roles {
            let (k, v) = header("x-roles", r)?;
            headers.insert(k, v);
        }
        let base = api_base(url.as_deref().unwrap_or("http://127.0.0.1:8888"));
        Ok(Client {
            http,
            base,
            headers,
        })
    }

    /// Sends a request to `path` (which starts with `/v2`). Error statuses become
    /// [`CliError::Api`] with the server's title and description.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> Result<Reply> {
        let mut url = format!("{}{path}", self.base);
        if !query.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        let mut req = self.http.request(method, url).headers(self.headers.clone());
        match body {
            None => {}
            Some(Body::Json(v)) => {
                req = req
                    .header("content-type", "application/json")
                    .body(v.to_string());
            }
            Some(Body::Patch(v)) => {
                req = req
                    .header("content-type", PATCH_MEDIA_TYPE)
                    .body(v.to_string());
            }
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_client_error() || status.is_server_error() {
            let text = |k: &str| {
                body.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let mut title = text("title");
            if title.is_empty() {
                title = status.canonical_reason().unwrap_or("Error").to_string();
            }
            return Err(CliError::Api {
                status: status.as_u16(),
                title,
                description: text("description"),
            });
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Reply> {
        self.send(Method::GET, path, query, None).await
    }
}

/// A request body.
pub enum Body {
    Json(Value),
    /// A JSON-patch document (queue metadata).
    Patch(Value),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_request_and_catalog() {
        let s = Settings {
            username: Some("u".into()),
            password: Some("p".into()),
            project_name: Some("demo".into()),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            ..Default::default()
        };
        let r = token_request(&s).unwrap();
        assert_eq!(r["auth"]["scope"]["project"]["name"], "demo");
        assert_eq!(r["auth"]["identity"]["password"]["user"]["password"], "p");
        assert_eq!(keystone_v3("http://k:5000/"), "http://k:5000/v3");
        assert_eq!(keystone_v3("http://k:5000/v3"), "http://k:5000/v3");
        let token = json!({"token": {"catalog": [
            {"type": "identity", "endpoints": [{"interface": "public", "url": "http://k"}]},
            {"type": "messaging", "endpoints": [
                {"interface": "internal", "url": "http://internal:8888", "region_id": "R1"},
                {"interface": "public", "url": "http://public:8888/v2", "region_id": "R1"}]}]}});
        let url = messaging_endpoint(&token, "public", Some("R1")).unwrap();
        assert_eq!(api_base(&url), "http://public:8888");
        assert!(messaging_endpoint(&token, "admin", None).is_none());
    }
}
