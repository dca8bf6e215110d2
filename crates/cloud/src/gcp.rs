//! GCP: Compute Engine instances through the Compute REST API (`aggregated/instances`, every
//! zone in one listing, paged).
//!
//! Credentials are application default credentials, looked for as Google's libraries do: the
//! JSON file named by `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
//! `~/.config/gcloud/application_default_credentials.json` (written by `gcloud auth
//! application-default login`), else the metadata server of a Compute Engine machine (only
//! asked on one: `GCE_METADATA_HOST` set, or a DMI product name of Google). A service-account
//! key signs a JWT (RS256) for its `token_uri`; a user login trades its refresh token. The
//! project is `GOOGLE_CLOUD_PROJECT`, `CLOUDSDK_CORE_PROJECT`, the key's `project_id` or
//! `quota_project_id`, else the metadata server's. `CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE`
//! (gcloud's own override) replaces `https://compute.googleapis.com/compute/v1/`.

use crate::rest::{encode, shown, string_map, text, Http, MAX_PAGES};
use crate::{CloudError, Filter, MAX_INSTANCES};
use rustmap_model::{CloudInstance, CloudProvider};
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;

const P: CloudProvider = CloudProvider::Gcp;
const COMPUTE: &str = "https://compute.googleapis.com/compute/v1/";
const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const SCOPE: &str = "https://www.googleapis.com/auth/compute.readonly";
const TRIED: &str = "GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials \
                     (~/.config/gcloud/application_default_credentials.json; run `gcloud auth \
                     application-default login`) and the Compute Engine metadata server (not on Compute Engine)";

/// The largest credentials file read.
const MAX_KEY_FILE: u64 = 1 << 20;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn api(message: String) -> CloudError {
    CloudError::Api { provider: P, region: None, message }
}

struct Login {
    token: String,
    project: Option<String>,
}

fn credentials_file() -> Option<PathBuf> {
    if let Some(p) = env("GOOGLE_APPLICATION_CREDENTIALS") {
        return Some(PathBuf::from(p));
    }
    let config = env("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    let p = config.join("application_default_credentials.json");
    p.exists().then_some(p)
}

fn on_compute_engine() -> bool {
    env("GCE_METADATA_HOST").is_some()
        || std::fs::read_to_string("/sys/class/dmi/id/product_name").is_ok_and(|s| s.contains("Google"))
}

fn token_answer(a: crate::rest::Answer, url: &str) -> Result<String, CloudError> {
    match text(&a.body, &["access_token"]) {
        Some(t) if a.status == 200 => Ok(t.to_string()),
        _ => Err(api(format!(
            "sign-in at {} failed (HTTP {}): {}",
            shown(url),
            a.status,
            text(&a.body, &["error_description"]).or(text(&a.body, &["error"])).unwrap_or("no reason given")
        ))),
    }
}

fn login(http: &Http) -> Result<Login, CloudError> {
    if let Some(path) = credentials_file() {
        let shown_path = path.display().to_string();
        let bytes = std::fs::File::open(&path)
            .and_then(|f| {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_KEY_FILE), &mut buf)?;
                Ok(buf)
            })
            .map_err(|e| api(format!("credentials file {shown_path}: {e}")))?;
        let key: Value =
            serde_json::from_slice(&bytes).map_err(|e| api(format!("credentials file {shown_path}: not JSON: {e}")))?;
        let project = text(&key, &["project_id"]).or(text(&key, &["quota_project_id"])).map(str::to_string);
        let token_uri = text(&key, &["token_uri"]).unwrap_or(TOKEN_URI).to_string();
        let token = match text(&key, &["type"]) {
            Some("service_account") => {
                let (Some(email), Some(pem)) = (text(&key, &["client_email"]), text(&key, &["private_key"])) else {
                    return Err(api(format!(
                        "credentials file {shown_path}: a service account key without client_email or private_key"
                    )));
                };
                let assertion =
                    jwt(email, pem, &token_uri).map_err(|e| api(format!("credentials file {shown_path}: {e}")))?;
                let a = http.post_form(
                    &token_uri,
                    &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)],
                )?;
                token_answer(a, &token_uri)?
            }
            Some("authorized_user") => {
                let field = |k| text(&key, &[k]).unwrap_or_default();
                let a = http.post_form(
                    &token_uri,
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", field("client_id")),
                        ("client_secret", field("client_secret")),
                        ("refresh_token", field("refresh_token")),
                    ],
                )?;
                token_answer(a, &token_uri)?
            }
            other => {
                return Err(api(format!(
                    "credentials file {shown_path}: type {:?} is not supported (service_account or authorized_user)",
                    other.unwrap_or("")
                )))
            }
        };
        return Ok(Login { token, project });
    }
    if on_compute_engine() {
        let host = env("GCE_METADATA_HOST").unwrap_or_else(|| "metadata.google.internal".into());
        let base = format!("http://{host}/computeMetadata/v1");
        let flavor = [("Metadata-Flavor", "Google")];
        let url = format!("{base}/instance/service-accounts/default/token");
        let token = token_answer(http.get(&url, None, &flavor)?, &url)?;
        let a = http.get(&format!("{base}/project/project-id"), None, &flavor)?;
        let project = match a.body {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        return Ok(Login { token, project });
    }
    Err(CloudError::NoCredentials { provider: P, tried: TRIED.into() })
}

/// The signed JWT a service account trades for a token.
fn jwt(email: &str, pem: &str, audience: &str) -> Result<String, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = serde_json::json!({"iss": email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("private_key: {e}"))?;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key)
        .map_err(|e| format!("signing: {e}"))
}

/// A Compute error answer: a denied permission named from its message.
fn failure(status: u16, body: &Value, url: &str) -> CloudError {
    let message = text(body, &["error", "message"]).unwrap_or("no message").to_string();
    if status == 403 {
        // "Required 'compute.instances.list' permission for 'projects/p'"
        let permission = message.split("Required '").nth(1).and_then(|s| s.split('\'').next()).unwrap_or("(not named)");
        return CloudError::Denied { provider: P, permission: permission.to_string(), region: None, message };
    }
    api(format!("{} (HTTP {status}): {message}", shown(url)))
}

/// Every page of a Compute listing (`pageToken`), each page's JSON.
fn pages(http: &Http, token: &str, first: &str) -> Result<Vec<Value>, CloudError> {
    let mut out = Vec::new();
    let mut url = first.to_string();
    for _ in 0..MAX_PAGES {
        let a = http.get(&url, Some(token), &[])?;
        if a.status != 200 {
            return Err(failure(a.status, &a.body, &url));
        }
        let next = text(&a.body, &["nextPageToken"]).map(str::to_string);
        out.push(a.body);
        match next {
            Some(t) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                // The token goes percent-encoded into the query of the first URL: the next page
                // is on the API's origin whatever the token says.
                url = format!("{first}{sep}pageToken={}", encode(&t));
            }
            None => return Ok(out),
        }
    }
    Err(api(format!("more than {MAX_PAGES} pages")))
}

/// The last path segment of a resource URL (`.../zones/us-central1-a` → `us-central1-a`).
fn last(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

pub(crate) fn discover(filter: &Filter, page_size: u32) -> Result<Vec<CloudInstance>, CloudError> {
    let http = Http::new(P);
    let login = login(&http)?;
    let project = env("GOOGLE_CLOUD_PROJECT")
        .or_else(|| env("CLOUDSDK_CORE_PROJECT"))
        .or(login.project)
        .ok_or_else(|| api("no project: set GOOGLE_CLOUD_PROJECT".into()))?;
    let base = env("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE").unwrap_or_else(|| COMPUTE.into());
    let base = format!("{}/projects/{}", base.trim_end_matches('/'), encode(&project));
    if !filter.regions.is_empty() {
        let known: Vec<String> = pages(&http, &login.token, &format!("{base}/regions"))?
            .iter()
            .flat_map(|p| p["items"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| text(&r, &["name"]).map(str::to_string))
            .collect();
        if let Some(r) = filter.regions.iter().find(|r| !known.contains(r)) {
            return Err(CloudError::Region { provider: P, region: r.clone(), reason: "no such", known });
        }
    }
    let first = format!("{base}/aggregated/instances?maxResults={}", page_size.clamp(1, 500));
    let mut out = Vec::new();
    for page in pages(&http, &login.token, &first)? {
        out.extend(page_instances(&page));
        if out.len() > MAX_INSTANCES {
            return Err(api(format!("more than {MAX_INSTANCES} instances")));
        }
    }
    Ok(out)
}

/// The instances of one `aggregated/instances` page (every zone's).
pub(crate) fn page_instances(page: &Value) -> Vec<CloudInstance> {
    let mut out = Vec::new();
    for (_, scope) in page["items"].as_object().into_iter().flatten() {
        out.extend(scope["instances"].as_array().into_iter().flatten().filter_map(instance));
    }
    out
}

/// One instance of an `aggregated/instances` answer.
fn instance(i: &Value) -> Option<CloudInstance> {
    let id = match &i["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let zone = last(text(i, &["zone"])?).to_string();
    // A zone is its region and a letter: us-central1-a.
    let region = zone.rsplit_once('-').map_or(zone.as_str(), |(r, _)| r).to_string();
    let tags = string_map(&i["labels"]);
    let (mut public_ips, mut private_ips) = (Vec::new(), Vec::new());
    for nic in i["networkInterfaces"].as_array().into_iter().flatten() {
        private_ips.extend(text(nic, &["networkIP"]).and_then(|s| s.parse::<IpAddr>().ok()));
        for ac in nic["accessConfigs"].as_array().into_iter().chain(nic["ipv6AccessConfigs"].as_array()).flatten() {
            public_ips
                .extend(text(ac, &["natIP"]).or(text(ac, &["externalIpv6"])).and_then(|s| s.parse::<IpAddr>().ok()));
        }
    }
    let status = text(i, &["status"]).unwrap_or("UNKNOWN");
    Some(CloudInstance {
        provider: P,
        id,
        name: text(i, &["name"]).map(str::to_string),
        region,
        zone: Some(zone),
        // Compute's RUNNING is the other providers' running.
        state: status.to_ascii_lowercase(),
        instance_type: text(i, &["machineType"]).map(|m| last(m).to_string()),
        tags,
        public_ips,
        private_ips,
    })
}
