//! Pre-signed URLs (spec §1.12): the reference's HMAC-SHA256 recipe, byte for byte, with a
//! constant-time check and a stricter notion of which paths a signature covers.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Millis;

type HmacSha256 = Hmac<Sha256>;

/// Format of `expires` in signatures: UTC, no zone, no fraction.
pub const EXPIRES_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The paths a share may grant, relative to the queue.
pub const SHAREABLE: [&str; 3] = ["messages", "subscriptions", "claims"];

/// The signed message: paths, methods, project (or `None`), expiry, joined by the two characters
/// backslash and `n` (not a newline), as the reference does.
fn message(paths: &[String], methods: &[String], project: Option<&str>, expires: &str) -> String {
    let mut paths = paths.to_vec();
    paths.sort();
    let mut methods = methods.to_vec();
    methods.sort();
    format!(
        "{}\\n{}\\n{}\\n{}",
        paths.join(","),
        methods.join(","),
        project.unwrap_or("None"),
        expires
    )
}

fn mac(
    key: &[u8],
    paths: &[String],
    methods: &[String],
    project: Option<&str>,
    expires: &str,
) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(message(paths, methods, project, expires).as_bytes());
    m
}

/// The lowercase hex signature.
pub fn sign(
    key: &[u8],
    paths: &[String],
    methods: &[String],
    project: Option<&str>,
    expires: &str,
) -> String {
    mac(key, paths, methods, project, expires)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time check of a hex signature.
pub fn verify(
    key: &[u8],
    paths: &[String],
    methods: &[String],
    project: Option<&str>,
    expires: &str,
    signature_hex: &str,
) -> bool {
    let sig = signature_hex.trim();
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    mac(key, paths, methods, project, expires)
        .verify_slice(&bytes)
        .is_ok()
}

/// Parses an ISO-8601 expiry (with or without zone; offsets converted to UTC). Purely numeric
/// input is refused, as in the reference.
pub fn parse_expires(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() || t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(n.and_utc());
        }
    }
    if let Ok(dt) = DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

/// Re-formats an expiry the way it is signed.
pub fn format_expires(t: DateTime<Utc>) -> String {
    t.format(EXPIRES_FORMAT).to_string()
}

pub fn millis(t: DateTime<Utc>) -> Millis {
    t.timestamp_millis()
}

/// Whether a signed path covers a request path. Unlike the reference (a regular-expression
/// search anywhere in the path), a signed path covers itself and what lies below it, on segment
/// boundaries: `/v2/queues/q/messages` covers `/v2/queues/q/messages/123` but neither
/// `/v2/queues/q/messages2` nor `/v2/queues/other/v2/queues/q/messages`.
pub fn path_covers(signed: &str, request: &str) -> bool {
    let signed = signed.trim().trim_end_matches('/');
    if signed.is_empty() {
        return false;
    }
    request == signed
        || request
            .strip_prefix(signed)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spec_test_vectors() {
        assert_eq!(
            sign(
                b"test",
                &v(&["/v2/queues/shared/messages"]),
                &v(&["POST", "GET"]),
                Some("my-project"),
                "2100-01-01T00:00:00"
            ),
            "39014fbacf169dee519de5fa69d12b60aeea72229e9f605c3abbab1ddfbdd933"
        );
        assert_eq!(
            sign(
                b"test",
                &v(&["/v2/queues/shared/messages"]),
                &v(&["GET"]),
                None,
                "2100-01-01T00:00:00"
            ),
            "577db0deec35a888d2b21cd40114001b77c3e9c9f7da0bc99a8bffa47677d57d"
        );
    }

    #[test]
    fn verification() {
        let (p, m) = (v(&["/v2/queues/q/messages"]), v(&["GET"]));
        let sig = sign(b"k", &p, &m, Some("proj"), "2100-01-01T00:00:00");
        assert!(verify(
            b"k",
            &p,
            &m,
            Some("proj"),
            "2100-01-01T00:00:00",
            &sig
        ));
        assert!(!verify(
            b"k",
            &p,
            &m,
            Some("other"),
            "2100-01-01T00:00:00",
            &sig
        ));
        assert!(!verify(
            b"x",
            &p,
            &m,
            Some("proj"),
            "2100-01-01T00:00:00",
            &sig
        ));
        assert!(!verify(
            b"k",
            &p,
            &v(&["GET", "POST"]),
            Some("proj"),
            "2100-01-01T00:00:00",
            &sig
        ));
        assert!(!verify(
            b"k",
            &p,
            &m,
            Some("proj"),
            "2100-01-01T00:00:01",
            &sig
        ));
        assert!(!verify(
            b"k",
            &p,
            &m,
            Some("proj"),
            "2100-01-01T00:00:00",
            "zz"
        ));
        let mut tampered = sig.clone();
        tampered.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
        assert!(!verify(
            b"k",
            &p,
            &m,
            Some("proj"),
            "2100-01-01T00:00:00",
            &tampered
        ));
    }

    #[test]
    fn expiry_forms() {
        let want = "2016-09-01T00:00:00";
        for input in [
            "2016-09-01T00:00:00",
            "2016-09-01T00:00:00Z",
            "2016-09-01T02:00:00+02:00",
            "2016-09-01T00:00:00.000000",
            "2016-09-01",
        ] {
            assert_eq!(
                parse_expires(input).map(format_expires).as_deref(),
                Some(want),
                "{input}"
            );
        }
        for bad in ["", "1234567890", "12.5", "yesterday", "2016-13-01T00:00:00"] {
            assert_eq!(parse_expires(bad), None, "{bad}");
        }
    }

    #[test]
    fn coverage_is_by_segment() {
        let s = "/v2/queues/q/messages";
        assert!(path_covers(s, "/v2/queues/q/messages"));
        assert!(path_covers(s, "/v2/queues/q/messages/abc"));
        assert!(!path_covers(s, "/v2/queues/q/messages2"));
        assert!(!path_covers(s, "/v2/queues/q/claims"));
        assert!(!path_covers(s, "/v2/queues/other/v2/queues/q/messages"));
        assert!(!path_covers("", "/v2/queues/q"));
    }
}
