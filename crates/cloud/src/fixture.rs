//! A test fixture (cargo feature `fixture`): a loopback HTTP/1.1 server that answers as Azure
//! (sign-in, Resource Manager locations, VMs, network interfaces, public IPs) and GCP (token
//! endpoint, metadata server, Compute regions and `aggregated/instances`) do, in their
//! documented JSON shapes, with a small made-up inventory, so that `--cloud azure` and
//! `--cloud gcp` can be tested without the providers. Listings are paged ([`PAGE`] items per
//! page), and every address is inside the lab range 198.18.0.0/15.
//!
//! It also answers EC2's query API (`POST /` with `Action=DescribeRegions` or
//! `DescribeInstances`, XML), for the paging the AWS emulator moto does not do:
//! [`EC2_INSTANCES`] running instances tagged `env=bulk` in us-east-1 (198.18.4.1 and up),
//! `MaxResults` honoured with `NextToken`; regions us-east-1 and us-west-2 (empty) are enabled,
//! ap-east-1 is not opted in. Signatures are not checked; the region is read from the
//! `Authorization` header's credential scope.
//!
//! Tokens: Azure's service principal signs in with the secret [`AZURE_SECRET`] and gets
//! [`AZURE_TOKEN`]; [`DENIED_TOKEN`] (from the secret `denied`) is refused every listing with
//! ARM's `AuthorizationFailed`. GCP's token endpoint (`/token`) answers any JWT bearer
//! assertion of three dot-separated parts, or the refresh token [`GCP_REFRESH`], with
//! [`GCP_TOKEN`]; the metadata server (`/computeMetadata/v1/...`, with `Metadata-Flavor:
//! Google`) gives the same token and the project [`GCP_PROJECT`]. Other tokens get 401.
//!
//! Azure (subscription [`AZURE_SUBSCRIPTION`]; locations eastus, westus2):
//! vm-web eastus running env=lab (198.18.0.10, public 198.18.5.10); vm-db eastus deallocated
//! env=lab (198.18.0.13); vm-west westus2 running env=lab (198.18.2.10); vm-prod eastus running
//! env=prod (198.18.0.14).
//!
//! GCP (project [`GCP_PROJECT`]; regions us-central1, europe-west1): web us-central1-a RUNNING
//! env=lab (198.18.0.10, nat 198.18.5.10); old us-central1-b TERMINATED env=lab (198.18.0.13);
//! eu europe-west1-b RUNNING env=lab (198.18.2.10); prod us-central1-a RUNNING env=prod
//! (198.18.0.14).

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Items per page of every listing.
pub const PAGE: usize = 2;
/// The service principal's secret that signs in.
pub const AZURE_SECRET: &str = "fixture-secret";
/// The token Azure sign-in gives.
pub const AZURE_TOKEN: &str = "azure-fixture-token";
/// The token refused every listing (403).
pub const DENIED_TOKEN: &str = "denied-fixture-token";
/// The Azure subscription.
pub const AZURE_SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000000aa";
/// The token GCP's endpoints give.
pub const GCP_TOKEN: &str = "gcp-fixture-token";
/// The refresh token of an `authorized_user` credentials file.
pub const GCP_REFRESH: &str = "fixture-refresh";
/// The GCP project.
pub const GCP_PROJECT: &str = "rustmap-lab";
/// Instances of the EC2 answers.
pub const EC2_INSTANCES: usize = 12;

/// A running fixture server; stops when dropped.
#[derive(Debug)]
pub struct FixtureServer {
    /// `http://127.0.0.1:PORT`: Azure's authority host and Resource Manager URL, GCP's
    /// `token_uri` base, and (without the scheme) its metadata host.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FixtureServer {
    /// Start a server on `127.0.0.1`, on a free port.
    pub fn start() -> std::io::Result<FixtureServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let (log, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (l, s, b) = (log.clone(), stop.clone(), base.clone());
        let thread = std::thread::Builder::new().name("cloud-fixture".into()).spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &b, &l),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })?;
        Ok(FixtureServer { base, log, stop, thread: Some(thread) })
    }

    /// The requests so far: method, path and query, in order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn param(&self, name: &str) -> Option<&str> {
        param(&self.query, name)
    }
    fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

fn read(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn serve(mut stream: TcpStream, base: &str, log: &Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Some(req) = read(&mut stream) else { return };
    let (status, kind, body) = if req.method == "POST" && req.path == "/" {
        let (status, xml) = ec2(&req);
        log.lock().unwrap_or_else(|e| e.into_inner()).push(format!("POST / {}", req.body));
        (status, "text/xml", xml)
    } else {
        log.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{} {}?{}", req.method, req.path, req.query));
        let (status, body) = answer(&req, base);
        (status, "application/json", body.to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes());
    let _ = stream.flush();
}

fn unauthorized() -> (&'static str, Value) {
    (
        "401 Unauthorized",
        json!({"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}}),
    )
}

fn answer(req: &Request, base: &str) -> (&'static str, Value) {
    let form = |k: &str| param(&req.body, k).map(|v| v.replace("%2F", "/").replace("%3A", ":")).unwrap_or_default();
    // Azure sign-in.
    if req.method == "POST" && req.path.ends_with("/oauth2/v2.0/token") {
        return match form("client_secret").as_str() {
            AZURE_SECRET => {
                ("200 OK", json!({"token_type": "Bearer", "expires_in": 3599, "access_token": AZURE_TOKEN}))
            }
            "denied" => ("200 OK", json!({"token_type": "Bearer", "expires_in": 3599, "access_token": DENIED_TOKEN})),
            _ => (
                "401 Unauthorized",
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
            ),
        };
    }
    // GCP token endpoint.
    if req.method == "POST" && req.path == "/token" {
        let ok = match form("grant_type").as_str() {
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => form("assertion").split('.').count() == 3,
            "refresh_token" => form("refresh_token") == GCP_REFRESH,
            _ => false,
        };
        return if ok {
            ("200 OK", json!({"access_token": GCP_TOKEN, "expires_in": 3599, "token_type": "Bearer"}))
        } else {
            ("400 Bad Request", json!({"error": "invalid_grant", "error_description": "Invalid grant"}))
        };
    }
    if let Some(rest) = req.path.strip_prefix("/computeMetadata/v1/") {
        if req.header("metadata-flavor") != Some("Google") {
            return ("403 Forbidden", json!("Missing Metadata-Flavor:Google header."));
        }
        return match rest {
            "instance/service-accounts/default/token" => {
                ("200 OK", json!({"access_token": GCP_TOKEN, "expires_in": 3599, "token_type": "Bearer"}))
            }
            "project/project-id" => ("200 OK", json!(GCP_PROJECT)),
            _ => ("404 Not Found", json!("not found")),
        };
    }
    if let Some(rest) = req.path.strip_prefix(&format!("/subscriptions/{AZURE_SUBSCRIPTION}")) {
        return match req.bearer() {
            Some(AZURE_TOKEN) => azure(rest, req, base),
            Some(DENIED_TOKEN) => (
                "403 Forbidden",
                json!({"error": {"code": "AuthorizationFailed", "message": format!(
                "The client 'fixture' with object id 'fixture' does not have authorization to perform action \
                 'Microsoft.Compute/virtualMachines/read' over scope '/subscriptions/{AZURE_SUBSCRIPTION}' or the scope is invalid.")}}),
            ),
            _ => unauthorized(),
        };
    }
    if let Some(rest) = req.path.strip_prefix(&format!("/compute/v1/projects/{GCP_PROJECT}/")) {
        return match req.bearer() {
            Some(GCP_TOKEN) => gcp(rest, req),
            _ => unauthorized(),
        };
    }
    ("404 Not Found", json!({"error": {"code": "NotFound", "message": format!("no {}", req.path)}}))
}

/// One page of `items` (ARM: `value` and `nextLink`).
fn arm_page(items: Vec<Value>, req: &Request, base: &str) -> (&'static str, Value) {
    let skip: usize = req.param("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = items.iter().skip(skip).take(PAGE).cloned().collect();
    let mut body = json!({"value": page});
    if skip + PAGE < items.len() {
        let api = req.param("api-version").unwrap_or("");
        body["nextLink"] = json!(format!("{base}{}?api-version={api}&$skiptoken={}", req.path, skip + PAGE));
    }
    ("200 OK", body)
}

/// An Azure VM: name, location, power state, tag env, private and public address.
type AzVm = (&'static str, &'static str, &'static str, &'static str, &'static str, Option<&'static str>);

const AZ: [AzVm; 4] = [
    ("vm-web", "eastus", "running", "lab", "198.18.0.10", Some("198.18.5.10")),
    ("vm-db", "eastus", "deallocated", "lab", "198.18.0.13", None),
    ("vm-west", "westus2", "running", "lab", "198.18.2.10", None),
    ("vm-prod", "eastus", "running", "prod", "198.18.0.14", None),
];

fn azure(rest: &str, req: &Request, base: &str) -> (&'static str, Value) {
    let sub = format!("/subscriptions/{AZURE_SUBSCRIPTION}");
    let rg = format!("{sub}/resourceGroups/lab");
    let items: Vec<Value> = match rest {
        "/locations" => ["eastus", "westus2"].iter().map(|l| json!({"name": l, "displayName": l})).collect(),
        "/providers/Microsoft.Compute/virtualMachines" => AZ
            .iter()
            .map(|(name, loc, state, env, _, _)| {
                json!({
                    "id": format!("{rg}/providers/Microsoft.Compute/virtualMachines/{name}"),
                    "name": name, "location": loc, "tags": {"env": env},
                    "properties": {
                        "hardwareProfile": {"vmSize": "Standard_B1s"},
                        // ARM writes resource ids in varying case: joins must not care.
                        "networkProfile": {"networkInterfaces": [{"id": format!("{rg}/providers/Microsoft.Network/networkInterfaces/{}-NIC", name.to_uppercase())}]},
                        "instanceView": {"statuses": [
                            {"code": "ProvisioningState/succeeded"}, {"code": format!("PowerState/{state}")}
                        ]}
                    }
                })
            })
            .collect(),
        "/providers/Microsoft.Network/networkInterfaces" => AZ
            .iter()
            .map(|(name, _, _, _, private, public)| {
                let mut props = json!({"privateIPAddress": private});
                if public.is_some() {
                    props["publicIPAddress"] = json!({"id": format!("{rg}/providers/Microsoft.Network/publicIPAddresses/{name}-ip")});
                }
                json!({"id": format!("{rg}/providers/Microsoft.Network/networkInterfaces/{name}-nic"),
                       "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": props}]}})
            })
            .collect(),
        "/providers/Microsoft.Network/publicIPAddresses" => AZ
            .iter()
            .filter_map(|(name, _, _, _, _, public)| {
                Some(json!({"id": format!("{rg}/providers/Microsoft.Network/publicIPAddresses/{name}-ip"),
                            "properties": {"ipAddress": (*public)?}}))
            })
            .collect(),
        _ => return ("404 Not Found", json!({"error": {"code": "NotFound", "message": "no such resource"}})),
    };
    arm_page(items, req, base)
}

/// A Compute instance: name, id, zone, status, label env, network IP and NAT IP.
type GceVm = (&'static str, u64, &'static str, &'static str, &'static str, &'static str, Option<&'static str>);

const GCE: [GceVm; 4] = [
    ("web", 1001, "us-central1-a", "RUNNING", "lab", "198.18.0.10", Some("198.18.5.10")),
    ("old", 1002, "us-central1-b", "TERMINATED", "lab", "198.18.0.13", None),
    ("eu", 1003, "europe-west1-b", "RUNNING", "lab", "198.18.2.10", None),
    ("prod", 1004, "us-central1-a", "RUNNING", "prod", "198.18.0.14", None),
];

fn gcp(rest: &str, req: &Request) -> (&'static str, Value) {
    let proj = format!("https://www.googleapis.com/compute/v1/projects/{GCP_PROJECT}");
    match rest {
        "regions" => (
            "200 OK",
            json!({"kind": "compute#regionList", "items": [{"name": "us-central1"}, {"name": "europe-west1"}]}),
        ),
        "aggregated/instances" => {
            let max: usize = req.param("maxResults").and_then(|s| s.parse().ok()).unwrap_or(500).clamp(1, PAGE);
            let skip: usize =
                req.param("pageToken").and_then(|s| s.strip_prefix("p")).and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut items = serde_json::Map::new();
            for (name, id, zone, status, env, ip, nat) in GCE.iter().skip(skip).take(max) {
                let mut nic = json!({"network": format!("{proj}/global/networks/default"), "networkIP": ip});
                if let Some(nat) = nat {
                    nic["accessConfigs"] = json!([{"type": "ONE_TO_ONE_NAT", "natIP": nat}]);
                }
                let instance = json!({
                    "id": id.to_string(), "name": name, "status": status, "labels": {"env": env},
                    "zone": format!("{proj}/zones/{zone}"),
                    "machineType": format!("{proj}/zones/{zone}/machineTypes/e2-micro"),
                    "networkInterfaces": [nic]
                });
                let scope = items.entry(format!("zones/{zone}")).or_insert_with(|| json!({"instances": []}));
                if let Some(list) = scope["instances"].as_array_mut() {
                    list.push(instance);
                }
            }
            let mut body = json!({"kind": "compute#instanceAggregatedList", "items": items});
            if skip + max < GCE.len() {
                body["nextPageToken"] = json!(format!("p{}", skip + max));
            }
            ("200 OK", body)
        }
        _ => ("404 Not Found", json!({"error": {"code": 404, "message": "not found"}})),
    }
}

/// EC2's query API: `DescribeRegions` and `DescribeInstances`, paged.
fn ec2(req: &Request) -> (&'static str, String) {
    const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
    // "AWS4-HMAC-SHA256 Credential=AKID/20261207/us-east-1/ec2/aws4_request, ..."
    let region = req
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("")
        .to_string();
    match param(&req.body, "Action") {
        Some("DescribeRegions") => {
            let items: String = [("us-east-1", "opt-in-not-required"), ("us-west-2", "opt-in-not-required"), ("ap-east-1", "not-opted-in")]
                .iter()
                .map(|(r, opt)| format!("<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint><optInStatus>{opt}</optInStatus></item>"))
                .collect();
            (
                "200 OK",
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><DescribeRegionsResponse xmlns="{NS}"><requestId>fixture</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>"#
                ),
            )
        }
        Some("DescribeInstances") => {
            let total = if region == "us-east-1" { EC2_INSTANCES } else { 0 };
            let max: usize = param(&req.body, "MaxResults").and_then(|s| s.parse().ok()).unwrap_or(1000).max(1);
            let skip: usize = param(&req.body, "NextToken")
                .and_then(|s| s.strip_prefix('p'))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let items: String = (skip..total.min(skip + max))
                .map(|n| {
                    format!(
                        "<item><reservationId>r-{n:017x}</reservationId><ownerId>123456789012</ownerId><instancesSet><item>\
                         <instanceId>i-{n:017x}</instanceId><instanceState><code>16</code><name>running</name></instanceState>\
                         <privateIpAddress>198.18.4.{}</privateIpAddress><instanceType>t3.micro</instanceType>\
                         <placement><availabilityZone>us-east-1a</availabilityZone></placement>\
                         <tagSet><item><key>env</key><value>bulk</value></item></tagSet></item></instancesSet></item>",
                        n + 1
                    )
                })
                .collect();
            let next =
                if skip + max < total { format!("<nextToken>p{}</nextToken>", skip + max) } else { String::new() };
            (
                "200 OK",
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse xmlns="{NS}"><requestId>fixture</requestId><reservationSet>{items}</reservationSet>{next}</DescribeInstancesResponse>"#
                ),
            )
        }
        _ => (
            "400 Bad Request",
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidAction</Code><Message>not in the fixture</Message></Error></Errors><RequestID>fixture</RequestID></Response>"#
                .to_string(),
        ),
    }
}
