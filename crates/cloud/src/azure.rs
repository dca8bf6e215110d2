//! Azure: virtual machines through the Azure Resource Manager REST API (the VMs with their power
//! state, network interfaces and public IP addresses, joined by resource id).
//!
//! Credentials: a service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
//! `AZURE_CLIENT_SECRET` (the client-credentials grant at `AZURE_AUTHORITY_HOST`, default
//! `https://login.microsoftonline.com`), else the Azure CLI's login (`az account
//! get-access-token`). The subscription is `AZURE_SUBSCRIPTION_ID`, else the Azure CLI's.
//! `RUSTMAP_AZURE_ARM_URL` replaces `https://management.azure.com` (sovereign clouds, tests).

use crate::rest::{encode, same_origin, shown, string_map, text, Http, MAX_PAGES};
use crate::{CloudError, Filter, MAX_INSTANCES};
use rustmap_model::{CloudInstance, CloudProvider};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

const P: CloudProvider = CloudProvider::Azure;
const ARM: &str = "https://management.azure.com";
const LOGIN: &str = "https://login.microsoftonline.com";
const TRIED: &str = "a service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) and the Azure \
                     CLI's login (az account get-access-token; run `az login`)";

/// The API versions asked for (stable ones; the answers' shapes are documented per version).
const COMPUTE_API: &str = "2024-07-01";
const NETWORK_API: &str = "2024-05-01";
const LOCATIONS_API: &str = "2022-12-01";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

struct Login {
    token: String,
    subscription: Option<String>,
}

/// A token for ARM: the service principal of the environment, else the Azure CLI's.
fn login(http: &Http, arm: &str) -> Result<Login, CloudError> {
    if let (Some(tenant), Some(id), Some(secret)) =
        (env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID"), env("AZURE_CLIENT_SECRET"))
    {
        let authority = env("AZURE_AUTHORITY_HOST").unwrap_or_else(|| LOGIN.into());
        let url = format!("{}/{}/oauth2/v2.0/token", authority.trim_end_matches('/'), encode(&tenant));
        let scope = format!("{}/.default", arm.trim_end_matches('/'));
        let a = http.post_form(
            &url,
            &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret), ("scope", &scope)],
        )?;
        return match text(&a.body, &["access_token"]) {
            Some(t) if a.status == 200 => Ok(Login { token: t.to_string(), subscription: None }),
            _ => Err(CloudError::Api {
                provider: P,
                region: None,
                message: format!(
                    "the service principal's sign-in at {} failed (HTTP {}): {}",
                    shown(&url),
                    a.status,
                    text(&a.body, &["error_description"]).or(text(&a.body, &["error"])).unwrap_or("no reason given")
                ),
            }),
        };
    }
    let out = std::process::Command::new("az")
        .args([
            "account",
            "get-access-token",
            "--resource",
            &format!("{}/", arm.trim_end_matches('/')),
            "--output",
            "json",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            let token = text(&v, &["accessToken"]).ok_or_else(|| CloudError::Api {
                provider: P,
                region: None,
                message: "az account get-access-token gave no accessToken".into(),
            })?;
            Ok(Login { token: token.to_string(), subscription: text(&v, &["subscription"]).map(str::to_string) })
        }
        // No Azure CLI, or not logged in: no credentials from it.
        _ => Err(CloudError::NoCredentials { provider: P, tried: TRIED.into() }),
    }
}

/// An ARM error answer: a denied permission named from its message, else the code and message.
fn failure(status: u16, body: &Value, url: &str) -> CloudError {
    let code = text(body, &["error", "code"]).unwrap_or_default();
    let message = text(body, &["error", "message"]).unwrap_or("no message").to_string();
    if status == 403 || code == "AuthorizationFailed" {
        // "... does not have authorization to perform action 'Microsoft.Compute/virtualMachines/read' over scope ..."
        let permission = message.split("action '").nth(1).and_then(|s| s.split('\'').next()).unwrap_or("(not named)");
        return CloudError::Denied { provider: P, permission: permission.to_string(), region: None, message };
    }
    CloudError::Api {
        provider: P,
        region: None,
        message: format!(
            "{} (HTTP {status}{}): {message}",
            shown(url),
            if code.is_empty() { String::new() } else { format!(", {code}") }
        ),
    }
}

/// Every item of an ARM listing, following `nextLink` on the same origin.
fn list(http: &Http, token: &str, first: String) -> Result<Vec<Value>, CloudError> {
    let mut out = Vec::new();
    let mut url = first.clone();
    for _ in 0..MAX_PAGES {
        let a = http.get(&url, Some(token), &[])?;
        if a.status != 200 {
            return Err(failure(a.status, &a.body, &url));
        }
        if let Some(items) = a.body.get("value").and_then(Value::as_array) {
            out.extend(items.iter().cloned());
        }
        if out.len() > MAX_INSTANCES {
            return Err(CloudError::Api {
                provider: P,
                region: None,
                message: format!("more than {MAX_INSTANCES} items"),
            });
        }
        match text(&a.body, &["nextLink"]) {
            Some(next) if same_origin(&first, next) => url = next.to_string(),
            Some(next) => {
                return Err(CloudError::Api {
                    provider: P,
                    region: None,
                    message: format!("a paging link leaves {}: {}", shown(&first), shown(next)),
                })
            }
            None => return Ok(out),
        }
    }
    Err(CloudError::Api { provider: P, region: None, message: format!("more than {MAX_PAGES} pages") })
}

pub(crate) fn discover(filter: &Filter) -> Result<Vec<CloudInstance>, CloudError> {
    let http = Http::new(P);
    let arm = env("RUSTMAP_AZURE_ARM_URL").unwrap_or_else(|| ARM.into());
    let arm = arm.trim_end_matches('/');
    let login = login(&http, arm)?;
    let subscription = env("AZURE_SUBSCRIPTION_ID").or(login.subscription).ok_or_else(|| CloudError::Api {
        provider: P,
        region: None,
        message: "no subscription: set AZURE_SUBSCRIPTION_ID (or `az account set --subscription ...`)".into(),
    })?;
    let sub = format!("{arm}/subscriptions/{}", encode(&subscription));
    if !filter.regions.is_empty() {
        let known: Vec<String> = list(&http, &login.token, format!("{sub}/locations?api-version={LOCATIONS_API}"))?
            .iter()
            .filter_map(|l| text(l, &["name"]).map(str::to_string))
            .collect();
        if let Some(r) = filter.regions.iter().find(|r| !known.contains(r)) {
            return Err(CloudError::Region { provider: P, region: r.clone(), reason: "no such", known });
        }
    }
    let vms = list(
        &http,
        &login.token,
        format!("{sub}/providers/Microsoft.Compute/virtualMachines?api-version={COMPUTE_API}&statusOnly=true"),
    )?;
    let nics = list(
        &http,
        &login.token,
        format!("{sub}/providers/Microsoft.Network/networkInterfaces?api-version={NETWORK_API}"),
    )?;
    let public = list(
        &http,
        &login.token,
        format!("{sub}/providers/Microsoft.Network/publicIPAddresses?api-version={NETWORK_API}"),
    )?;
    Ok(join(&vms, &nics, &public))
}

/// Resource ids compare case-insensitively in ARM.
fn key(id: &str) -> String {
    id.to_ascii_lowercase()
}

/// VMs with the addresses of their network interfaces and public IPs.
pub(crate) fn join(vms: &[Value], nics: &[Value], public: &[Value]) -> Vec<CloudInstance> {
    let public: HashMap<String, IpAddr> = public
        .iter()
        .filter_map(|p| Some((key(text(p, &["id"])?), text(p, &["properties", "ipAddress"])?.parse().ok()?)))
        .collect();
    let nics: HashMap<String, &Value> = nics.iter().filter_map(|n| Some((key(text(n, &["id"])?), n))).collect();
    let mut out = Vec::new();
    for vm in vms {
        let (Some(id), Some(name), Some(location)) = (text(vm, &["id"]), text(vm, &["name"]), text(vm, &["location"]))
        else {
            continue;
        };
        let props = &vm["properties"];
        let state = props["instanceView"]["statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| text(s, &["code"])?.strip_prefix("PowerState/"))
            .next()
            .unwrap_or("unknown")
            .to_string();
        let tags = string_map(&vm["tags"]);
        let (mut public_ips, mut private_ips) = (Vec::new(), Vec::new());
        for nic in props["networkProfile"]["networkInterfaces"].as_array().into_iter().flatten() {
            let Some(nic) = text(nic, &["id"]).and_then(|id| nics.get(&key(id))) else { continue };
            for ip in nic["properties"]["ipConfigurations"].as_array().into_iter().flatten() {
                if let Some(a) = text(ip, &["properties", "privateIPAddress"]).and_then(|s| s.parse().ok()) {
                    private_ips.push(a);
                }
                if let Some(a) = text(ip, &["properties", "publicIPAddress", "id"]).and_then(|id| public.get(&key(id)))
                {
                    public_ips.push(*a);
                }
            }
        }
        out.push(CloudInstance {
            provider: P,
            id: id.to_string(),
            name: Some(name.to_string()),
            region: location.to_string(),
            zone: vm["zones"]
                .as_array()
                .and_then(|z| z.first())
                .and_then(Value::as_str)
                .map(|z| format!("{location}-{z}")),
            state,
            instance_type: text(props, &["hardwareProfile", "vmSize"]).map(str::to_string),
            tags,
            public_ips,
            private_ips,
        });
    }
    out
}
