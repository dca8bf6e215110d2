//! Who may call the API: with `--api-key`, every route but `/api/system/health` (and the
//! OpenAPI document and its page) needs `Authorization: Bearer TOKEN`; WebSocket clients, which
//! browsers cannot give headers, may pass `?token=TOKEN` instead, and then their `Origin`, when
//! they send one, must be the server's own (so a page elsewhere cannot use a leaked URL).
//!
//! Tokens are compared as SHA-256 digests in constant time: neither the comparison's duration nor
//! an early exit tells how much of a guess was right, whatever the lengths.

use crate::error::ApiError;
use axum::http::{header, HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The digest of the configured key.
#[derive(Clone)]
pub(crate) struct Key([u8; 32]);

impl Key {
    pub(crate) fn new(token: &str) -> Key {
        Key(Sha256::digest(token.as_bytes()).into())
    }

    fn matches(&self, given: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(self.0.ct_eq(&d))
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// Check a request's credentials: the Bearer header, or for WebSocket upgrades a `token` query
/// value with a same-origin (or absent) `Origin`.
pub(crate) fn check(
    key: Option<&Key>,
    headers: &HeaderMap,
    query_token: Option<&str>,
    websocket: bool,
) -> Result<(), ApiError> {
    let Some(key) = key else { return Ok(()) };
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be \"Bearer TOKEN\""))?;
        return if key.matches(token.trim()) { Ok(()) } else { Err(unauthorized("wrong API key")) };
    }
    match query_token {
        Some(token) if websocket => {
            if !same_origin(headers) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden_origin",
                    "?token= is accepted from the server's own origin only; send an Authorization header instead",
                ));
            }
            if key.matches(token) {
                Ok(())
            } else {
                Err(unauthorized("wrong API key"))
            }
        }
        Some(_) => Err(unauthorized("?token= is for WebSocket clients; send \"Authorization: Bearer TOKEN\"")),
        None => Err(unauthorized("this route needs \"Authorization: Bearer TOKEN\"")),
    }
}

/// No `Origin` (a command-line client), or one whose host and port are the `Host` asked for.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest).trim_end_matches('/');
    authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens_and_websocket_query_tokens() {
        let key = Key::new("s3cret");
        let k = Some(&key);
        assert!(check(None, &HeaderMap::new(), None, false).is_ok(), "no key configured: open");
        assert!(check(k, &headers(&[(header::AUTHORIZATION, "Bearer s3cret")]), None, false).is_ok());
        for bad in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret", "Bearer "] {
            let e = check(k, &headers(&[(header::AUTHORIZATION, bad)]), None, false).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{bad}");
        }
        assert_eq!(check(k, &HeaderMap::new(), None, false).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert_eq!(check(k, &HeaderMap::new(), Some("s3cret"), false).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert!(check(k, &HeaderMap::new(), Some("s3cret"), true).is_ok());
        assert!(check(k, &HeaderMap::new(), Some("nope"), true).is_err());
        let same = headers(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, "http://127.0.0.1:8080")]);
        assert!(check(k, &same, Some("s3cret"), true).is_ok());
        let other = headers(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, "https://evil.example")]);
        assert_eq!(check(k, &other, Some("s3cret"), true).unwrap_err().status, StatusCode::FORBIDDEN);
    }
}
