//! The HTTP side of the providers RustMap asks through their documented REST APIs (Azure
//! Resource Manager, GCP Compute): bounded bodies and times, JSON, bearer tokens, and paging
//! links that may not leave the API's origin (a hostile or broken answer cannot send the token
//! elsewhere). Blocking (ureq): callers run it on a blocking thread.

use crate::CloudError;
use rustmap_model::CloudProvider;
use serde_json::Value;
use std::time::Duration;

/// The largest answer read (one page of an inventory, a token).
pub(crate) const MAX_BODY: u64 = 32 << 20;

/// One request's time limit, connection to last byte.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// The most pages followed in one listing.
pub(crate) const MAX_PAGES: usize = 10_000;

pub(crate) struct Http {
    agent: ureq::Agent,
    pub(crate) provider: CloudProvider,
}

/// What a call answered: its status and JSON body (`Null` when the body is not JSON).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Http {
    pub(crate) fn new(provider: CloudProvider) -> Http {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            // Redirects are not followed: an API that redirects is misconfigured or hostile.
            .max_redirects(0)
            .user_agent(concat!("rustmap/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http { agent, provider }
    }

    fn api(&self, message: String) -> CloudError {
        CloudError::Api { provider: self.provider, region: None, message }
    }

    fn answer(
        &self,
        url: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, CloudError> {
        let mut r = r.map_err(|e| self.api(format!("{}: {e}", shown(url))))?;
        let status = r.status().as_u16();
        let bytes = r
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.api(format!("{}: reading the answer: {e}", shown(url))))?;
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
    }

    /// GET `url` with a bearer token (and extra headers).
    pub(crate) fn get(&self, url: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Result<Answer, CloudError> {
        let mut req = self.agent.get(url);
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.answer(url, req.call())
    }

    /// POST a form to `url`.
    pub(crate) fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Answer, CloudError> {
        let r = self.agent.post(url).send_form(form.iter().copied());
        self.answer(url, r)
    }
}

/// A URL as errors show it: without its query (page tokens, filters).
pub(crate) fn shown(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// `scheme://host[:port]` of `url`.
pub(crate) fn origin(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find('/').map_or(url.len(), |i| url.len() - rest.len() + i);
    Some(&url[..end])
}

/// Whether `next` (a paging link the API returned) stays on `base`'s origin.
pub(crate) fn same_origin(base: &str, next: &str) -> bool {
    matches!((origin(base), origin(next)), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// What [`encode`] leaves as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode a query value or path segment (every byte but the unreserved ones).
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The string values of a JSON object (tags, labels); other values are left out.
pub(crate) fn string_map(v: &Value) -> std::collections::BTreeMap<String, String> {
    v.as_object().into_iter().flatten().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
}

/// A string field of a JSON object, by path.
pub(crate) fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(origin("https://management.azure.com/subscriptions/x?a=1"), Some("https://management.azure.com"));
        assert_eq!(origin("http://127.0.0.1:8080"), Some("http://127.0.0.1:8080"));
        assert!(same_origin("http://127.0.0.1:8080/", "http://127.0.0.1:8080/x?page=2"));
        assert!(!same_origin("http://127.0.0.1:8080/", "http://127.0.0.1:8081/x"));
        assert!(!same_origin("https://management.azure.com/", "https://evil.example/x"));
        assert!(!same_origin("https://management.azure.com/", "not a url"));
        assert_eq!(encode("a b/c=d"), "a%20b%2Fc%3Dd");
        assert_eq!(string_map(&serde_json::json!({"a": "b", "n": 1})).len(), 1);
    }
}
