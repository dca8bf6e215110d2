//! The HTML report (`-oH`): one self-contained file a person would rather read than the XML.
//!
//! Layout: a header (command line, scan id, start, duration), summary cards (hosts up / down /
//! scanned, open ports, services, and known CVEs with `--vuln-check`), two charts as inline SVG (open ports per host, top services),
//! then a table of hosts and their open ports that can be filtered (a text box matching any
//! column), sorted (click a column title) and paged (100 rows a page, so 10,000 hosts stay
//! responsive); clicking a host shows its detail: every listed port with reason, service,
//! version, TLS version and certificate, OS guesses and script output when present. A port
//! with known CVEs says how many and the highest score in its chip; a host's place (`--geoip`)
//! is under its name. Printing
//! shows every row.
//!
//! Written from the whole scan, at its end: the hosts are collected as they finish (in a compact
//! form: strings only, folded ports as a summary line) and the file is written at
//! `ScanFinished`. Nothing is fetched when the report is viewed: styles, script and charts are
//! inline, and the report works offline.
//!
//! **No script from the scan can run.** Every string read from the network is sanitized as in
//! every format, then either HTML-escaped (the summary and charts, written here) or carried in a
//! JSON data block whose `<`, `>`, `&` and line separators are written as `\uXXXX` escapes, so it
//! can neither close its `<script type="application/json">` element nor be parsed as markup; the
//! page's own script reads it with `JSON.parse` and puts text into the page only through
//! `textContent`, never as HTML. A Content-Security-Policy meta tag allows only the report's own
//! script and style (by a nonce drawn for each report), no other source, no network.

use crate::common::{cleaned_host, host_listed, is_openish, Options};
use crate::{Control, Sink, SinkError};
use rustmap_model::{neutralize, CertInfo, HostResult, ScanEvent, ScanInfo, ScanStats};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;

/// Hosts in the open-ports chart, at most (the busiest ones).
const CHART_HOSTS: usize = 20;
/// Services in the services chart, at most.
const CHART_SERVICES: usize = 12;

/// Collects the scan and writes the report at its end.
pub struct HtmlWriter<W: Write + Send> {
    out: W,
    opts: Options,
    info: Option<ScanInfo>,
    /// Each listed host's compact form, already serialized for the data block: a sweep of 65,536
    /// hosts keeps about 300 bytes each, not a tree of values.
    hosts: Vec<String>,
    /// (address, open ports) of the busiest hosts so far, for the chart.
    busiest: Vec<(String, usize)>,
    /// Open ports by service name, for the chart and the summary.
    services: BTreeMap<String, usize>,
    open_total: usize,
    /// CVEs found on the listed hosts' ports (`--vuln-check`), and how many scored 9 or more.
    cves: (usize, usize),
    warnings: Vec<String>,
}

impl<W: Write + Send> HtmlWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W, opts: Options) -> HtmlWriter<W> {
        HtmlWriter {
            out,
            opts,
            info: None,
            hosts: Vec::new(),
            busiest: Vec::new(),
            services: BTreeMap::new(),
            open_total: 0,
            cves: (0, 0),
            warnings: Vec::new(),
        }
    }
}

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that can sit inside a `<script type="application/json">` element: nothing in it can end
/// the element or start markup, and the line separators JavaScript once treated as newlines are
/// escaped too.
pub fn json_for_script(v: &Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The compact form of a host kept until the end: what the table and the detail view show.
fn compact(h: &HostResult) -> Value {
    let ports: Vec<Value> = h
        .ports
        .iter()
        .map(|p| {
            let s = p.service.as_ref();
            let tls = p.tls.as_ref().map(|t| {
                let cert = t.certs.first();
                json!({
                    "version": t.version,
                    "cipher": t.cipher,
                    "subject": cert.map(|c| CertInfo::name_line(&c.subject)).unwrap_or_default(),
                    "issuer": cert.map(|c| CertInfo::name_line(&c.issuer)).unwrap_or_default(),
                    "not_after": cert.map(|c| c.not_after.clone()).unwrap_or_default(),
                })
            });
            json!({
                "proto": p.protocol.as_str(),
                "port": p.port,
                "state": p.state.as_str(),
                "reason": p.reason.as_str(),
                "service": s.map(|s| s.display_name()).unwrap_or_default(),
                "version": s.map(|s| s.version_line()).unwrap_or_default(),
                "tls": tls,
                "scripts": p.scripts.iter().map(|sc| json!([sc.id, sc.output])).collect::<Vec<_>>(),
                "cves": p.vulnerabilities.len(),
                "max_cvss": p.vulnerabilities.iter().map(|v| v.cvss).max().map(|c| c.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    let extra: Vec<String> = h.extraports.iter().map(|e| format!("{} {}", e.count, e.state.as_str())).collect();
    json!({
        "addr": h.addr.to_string(),
        "name": h.display_name().unwrap_or_default(),
        "status": h.status.as_str(),
        "reason": h.reason.as_str(),
        "mac": h.mac.clone().unwrap_or_default(),
        "ports": ports,
        "extra": extra.join(", "),
        "os": h.os.iter().map(|o| format!("{} ({}%)", o.name, o.accuracy)).collect::<Vec<_>>(),
        "scripts": host_blocks(h),
        "geo": h.geoip.as_ref().map(crate::common::geo_line).unwrap_or_default(),
        "cloud": h.cloud.as_ref().map(|c| c.summary()).unwrap_or_default(),
    })
}

/// The host's script output, then its path MTU and traceroute as blocks of their own.
fn host_blocks(h: &HostResult) -> Vec<Value> {
    let mut v: Vec<Value> = h.scripts.iter().map(|sc| json!([sc.id, sc.output])).collect();
    if let Some(mtu) = h.path_mtu {
        v.push(json!(["path-mtu", format!("Path MTU: {mtu}")]));
    }
    let trace = crate::common::traceroute_lines(h);
    if !trace.is_empty() {
        v.push(json!(["traceroute", trace.join("\n")]));
    }
    v
}

fn open_ports(h: &Value) -> usize {
    h["ports"].as_array().map_or(0, |p| p.iter().filter(|p| p["state"] == "open").count())
}

/// A horizontal bar chart as inline SVG: one bar per (label, value), labels escaped.
fn bar_chart(title: &str, bars: &[(String, usize)]) -> String {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let row = 22;
    let height = (bars.len().max(1) * row + 10) as u32;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg class=\"chart\" viewBox=\"0 0 600 {height}\" role=\"img\" \
         aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    if bars.is_empty() {
        svg.push_str("<text x=\"10\" y=\"20\">none</text>");
    }
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = i * row + 4;
        let w = (*v as f64 / max as f64 * 380.0).max(2.0);
        svg.push_str(&format!(
            "<text x=\"190\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"200\" y=\"{y}\" width=\"{w:.1}\" \
             height=\"16\" rx=\"2\"></rect><text x=\"{:.1}\" y=\"{}\">{v}</text>",
            y + 13,
            escape(label),
            200.0 + w + 6.0,
            y + 13
        ));
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Seconds as `1m 02.5s` / `3.20s`.
fn duration(secs: f64) -> String {
    if secs >= 60.0 {
        format!("{}m {:04.1}s", (secs / 60.0).floor(), secs % 60.0)
    } else {
        format!("{secs:.2}s")
    }
}

impl<W: Write + Send> HtmlWriter<W> {
    fn write_report(&mut self, stats: &ScanStats) -> std::io::Result<()> {
        let info = self.info.clone();
        let args = info.as_ref().map(|i| neutralize(&i.args).into_owned()).unwrap_or_default();
        let scan_id = info.as_ref().map(|i| neutralize(&i.scan_id).into_owned()).unwrap_or_default();
        let version = info.as_ref().map(|i| neutralize(&i.version).into_owned()).unwrap_or_default();
        let start = info.as_ref().map(|i| crate::common::ctime(i.start_unix)).unwrap_or_default();
        let open_total = self.open_total;
        let mut top: Vec<(String, usize)> = self.services.iter().map(|(k, v)| (k.clone(), *v)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut busiest = self.busiest.clone();
        busiest.sort_by_key(|b| std::cmp::Reverse(b.1));
        busiest.truncate(CHART_HOSTS);
        let top_services: Vec<(String, usize)> = top.iter().take(CHART_SERVICES).cloned().collect();
        let outcome = stats.outcome.as_str();
        let nonce = format!("{:016x}", rand_nonce());
        let warnings = json_for_script(&json!(self.warnings));
        let o = &mut self.out;
        write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'nonce-{nonce}'; \
             style-src 'nonce-{nonce}'; img-src data:; base-uri 'none'; form-action 'none'\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>RustMap report: {}</title><style nonce=\"{nonce}\">{STYLE}</style></head><body>",
            escape(&args)
        )?;
        write!(
            o,
            "<header><h1>RustMap scan report</h1><p class=\"cmd\"><code>{}</code></p><p class=\"meta\">RustMap {} · \
             scan {} · started {} · {} · <span class=\"outcome {outcome}\">{outcome}</span></p></header>",
            escape(&args),
            escape(&version),
            escape(&scan_id),
            escape(&start),
            duration(stats.elapsed_secs),
        )?;
        write!(
            o,
            "<section class=\"cards\"><div class=\"card\"><b>{}</b><span>hosts up</span></div>\
             <div class=\"card\"><b>{}</b><span>hosts down</span></div><div class=\"card\"><b>{}</b><span>hosts \
             scanned</span></div><div class=\"card\"><b>{open_total}</b><span>open ports</span></div>\
             <div class=\"card\"><b>{}</b><span>services</span></div>{}</section>",
            stats.hosts_up,
            stats.hosts_down,
            stats.hosts_total,
            top.len(),
            if self.cves.0 > 0 {
                format!(
                    "<div class=\"card vuln\"><b>{}</b><span>known CVEs ({} with CVSS ≥ 9)</span></div>",
                    self.cves.0, self.cves.1
                )
            } else {
                String::new()
            }
        )?;
        write!(
            o,
            "<section class=\"charts\">{}{}</section>",
            bar_chart("Open ports per host (busiest)", &busiest),
            bar_chart("Top services", &top_services)
        )?;
        write!(
            o,
            "<section><h2>Hosts and open ports</h2><div class=\"tools\"><input id=\"filter\" type=\"search\" \
             placeholder=\"Filter: address, name, port, service, version\" aria-label=\"filter\">\
             <span id=\"count\"></span><button id=\"prev\">‹ previous</button><span id=\"page\"></span>\
             <button id=\"next\">next ›</button></div><table id=\"hosts\"><thead><tr><th data-k=\"addr\">Address\
             </th><th data-k=\"name\">Name</th><th data-k=\"status\">Status</th><th data-k=\"open\">Open</th>\
             <th data-k=\"ports\">Open ports and services</th></tr></thead><tbody></tbody></table>\
             <noscript><p>The table needs JavaScript; the data is in the JSON block of this file.</p></noscript>\
             </section><section id=\"detail\" hidden><h2 id=\"detail-title\"></h2><p id=\"detail-meta\"></p>\
             <table><thead><tr><th>Port</th><th>State</th><th>Reason</th><th>Service</th><th>Version</th>\
             <th>TLS</th></tr></thead><tbody id=\"detail-ports\"></tbody></table><div id=\"detail-more\"></div>\
             </section>"
        )?;
        if !self.warnings.is_empty() {
            write!(o, "<section><h2>Warnings</h2><ul>")?;
            for w in &self.warnings {
                write!(o, "<li>{}</li>", escape(w))?;
            }
            write!(o, "</ul></section>")?;
        }
        write!(o, "<script type=\"application/json\" id=\"data\">{{\"hosts\":[")?;
        for (i, h) in self.hosts.iter().enumerate() {
            if i > 0 {
                o.write_all(b",")?;
            }
            o.write_all(h.as_bytes())?;
        }
        writeln!(o, "],\"warnings\":{warnings}}}</script><script nonce=\"{nonce}\">{SCRIPT}</script></body></html>")?;
        o.flush()
    }
}

/// A nonce for the report's Content-Security-Policy, different for each report: from the clock
/// and the process (no cryptographic strength is needed: the data block cannot carry a script
/// element anyway; the nonce only keeps any other script from running).
fn rand_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

impl<W: Write + Send> Sink for HtmlWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => self.info = Some(info.clone()),
            ScanEvent::HostDone(h) if host_listed(h, &self.opts) => {
                let mut h = cleaned_host(h, &self.opts);
                // The table lists open ports; the detail view every port shown in other formats.
                h.ports.sort_by_key(|p| (!is_openish(p.state), p.protocol, p.port));
                let c = compact(&h);
                let open = open_ports(&c);
                self.open_total += open;
                for p in &h.ports {
                    self.cves.0 += p.vulnerabilities.len();
                    self.cves.1 += p.vulnerabilities.iter().filter(|v| v.cvss.tenths() >= 90).count();
                }
                for p in c["ports"].as_array().into_iter().flatten().filter(|p| p["state"] == "open") {
                    let name = p["service"].as_str().filter(|s| !s.is_empty()).unwrap_or("unknown");
                    *self.services.entry(name.to_string()).or_default() += 1;
                }
                if open > 0 {
                    self.busiest.push((h.addr.to_string(), open));
                    if self.busiest.len() >= CHART_HOSTS * 8 {
                        self.busiest.sort_by_key(|b| std::cmp::Reverse(b.1));
                        self.busiest.truncate(CHART_HOSTS);
                    }
                }
                self.hosts.push(json_for_script(&c));
            }
            ScanEvent::Warning { message } => self.warnings.push(neutralize(message).into_owned()),
            ScanEvent::ScanFinished(stats) => self.write_report(stats)?,
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}

const STYLE: &str = r#"
:root{--fg:#1d2330;--muted:#5d6676;--line:#dde2ea;--bg:#f6f8fb;--accent:#2f6fdf;--ok:#1f8a4c;--bad:#b3261e}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 6px;font-size:20px}
.cmd code{background:#2c3445;padding:3px 6px;border-radius:4px;word-break:break-all}.meta{margin:6px 0 0;color:#c5cbd6}
.outcome{padding:1px 6px;border-radius:8px;background:#3b4659}.outcome.completed{background:var(--ok)}.outcome.failed{background:var(--bad)}
section{margin:18px 28px}h2{font-size:16px;margin:0 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 18px;min-width:130px}
.card b{display:block;font-size:24px}.card span{color:var(--muted)}.card.vuln b{color:#b42318}
.tag.vuln{background:#fde8e8;color:#8a1c1c}.geo{color:var(--muted);font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;align-items:start}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px}figcaption{font-weight:600;margin-bottom:6px}
svg.chart{width:100%;height:auto;font-size:12px}svg.chart rect{fill:var(--accent)}svg.chart text{fill:var(--fg)}
.tools{display:flex;gap:8px;align-items:center;margin-bottom:8px}#filter{flex:1;max-width:420px;padding:6px 8px;border:1px solid var(--line);border-radius:6px}
button{padding:5px 10px;border:1px solid var(--line);background:#fff;border-radius:6px;cursor:pointer}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef2f8;cursor:pointer;user-select:none;white-space:nowrap}th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}
#hosts tbody tr{cursor:pointer}#hosts tbody tr:hover{background:#f0f5ff}.tag{display:inline-block;margin:1px 4px 1px 0;padding:0 6px;border-radius:4px;background:#e8eefb}
.st-up{color:var(--ok)}.st-down{color:var(--bad)}pre{white-space:pre-wrap;background:#f3f5f9;padding:8px;border-radius:6px}
@media print{header{background:#fff;color:#000}.tools,button{display:none}#hosts tbody tr{display:table-row!important}}
"#;

const SCRIPT: &str = r##"
(function(){
"use strict";
var data=JSON.parse(document.getElementById("data").textContent);
var hosts=data.hosts.map(function(h){
  var open=h.ports.filter(function(p){return p.state==="open";});
  var text=[h.addr,h.name,h.status,h.geo,h.cloud].concat(open.map(function(p){return p.port+"/"+p.proto+" "+p.service+" "+p.version;})).join(" ").toLowerCase();
  return {h:h,open:open,text:text};
});
var PAGE=100,page=0,sortKey=null,sortDir=1,shown=hosts;
function el(tag,text,cls){var e=document.createElement(tag);if(text!==undefined&&text!==null)e.textContent=String(text);if(cls)e.className=cls;return e;}
function addrKey(a){return a.indexOf(":")<0?a.split(".").map(function(x){return ("00"+x).slice(-3);}).join("."):a;}
function key(r,k){if(k==="addr")return addrKey(r.h.addr);if(k==="open")return r.open.length;if(k==="ports")return r.open.length?r.open[0].port:1e9;return r.h[k]||"";}
function apply(){
  var q=document.getElementById("filter").value.trim().toLowerCase();
  shown=hosts.filter(function(r){return !q||r.text.indexOf(q)>=0;});
  if(sortKey){shown=shown.slice().sort(function(a,b){var x=key(a,sortKey),y=key(b,sortKey);return (x<y?-1:x>y?1:0)*sortDir;});}
  page=Math.min(page,Math.max(0,Math.ceil(shown.length/PAGE)-1));render();
}
function render(){
  var body=document.querySelector("#hosts tbody");body.textContent="";
  shown.slice(page*PAGE,(page+1)*PAGE).forEach(function(r){
    var tr=el("tr");tr.appendChild(el("td",r.h.addr));
    var nm=el("td",r.h.name);if(r.h.geo){nm.appendChild(el("div",r.h.geo,"geo"));}if(r.h.cloud){nm.appendChild(el("div",r.h.cloud,"geo"));}tr.appendChild(nm);
    tr.appendChild(el("td",r.h.status,"st-"+r.h.status));tr.appendChild(el("td",r.open.length));
    var td=el("td");r.open.forEach(function(p){td.appendChild(el("span",p.port+"/"+p.proto+" "+(p.service||"")+(p.version?" · "+p.version:"")+(p.cves?" · "+p.cves+" CVE"+(p.cves>1?"s":"")+" (max "+p.max_cvss+")":""),p.cves&&parseFloat(p.max_cvss)>=7?"tag vuln":"tag"));});
    tr.appendChild(td);tr.addEventListener("click",function(){detail(r.h);});body.appendChild(tr);
  });
  var pages=Math.max(1,Math.ceil(shown.length/PAGE));
  document.getElementById("count").textContent=shown.length+" of "+hosts.length+" hosts";
  document.getElementById("page").textContent="page "+(page+1)+" of "+pages;
  document.getElementById("prev").disabled=page===0;document.getElementById("next").disabled=page>=pages-1;
}
function detail(h){
  var d=document.getElementById("detail");d.hidden=false;
  document.getElementById("detail-title").textContent=h.addr+(h.name?" ("+h.name+")":"");
  document.getElementById("detail-meta").textContent="Host is "+h.status+" ("+h.reason+")"+(h.geo?" · "+h.geo:"")+(h.cloud?" · "+h.cloud:"")+(h.mac?" · MAC "+h.mac:"")+(h.extra?" · not shown: "+h.extra:"")+(h.os.length?" · OS: "+h.os.join(", "):"");
  var body=document.getElementById("detail-ports");body.textContent="";
  h.ports.forEach(function(p){
    var tr=el("tr");[p.port+"/"+p.proto,p.state,p.reason,p.service,p.version].forEach(function(v){tr.appendChild(el("td",v));});
    var tls=p.tls?(p.tls.version+" "+p.tls.cipher+(p.tls.subject?" · subject "+p.tls.subject:"")+(p.tls.issuer?" · issuer "+p.tls.issuer:"")+(p.tls.not_after?" · until "+p.tls.not_after:"")):"";
    tr.appendChild(el("td",tls));body.appendChild(tr);
  });
  var more=document.getElementById("detail-more");more.textContent="";
  var scripts=h.scripts.slice();h.ports.forEach(function(p){p.scripts.forEach(function(s){scripts.push([p.port+"/"+p.proto+" "+s[0],s[1]]);});});
  scripts.forEach(function(s){more.appendChild(el("h3",s[0]));more.appendChild(el("pre",s[1]));});
  d.scrollIntoView();
}
document.getElementById("filter").addEventListener("input",function(){page=0;apply();});
document.getElementById("prev").addEventListener("click",function(){if(page>0){page--;render();}});
document.getElementById("next").addEventListener("click",function(){page++;render();});
Array.prototype.forEach.call(document.querySelectorAll("#hosts th"),function(th){
  th.addEventListener("click",function(){
    var k=th.getAttribute("data-k");sortDir=sortKey===k?-sortDir:1;sortKey=k;
    Array.prototype.forEach.call(document.querySelectorAll("#hosts th"),function(o){o.className="";});
    th.className=sortDir>0?"asc":"desc";apply();
  });
});
window.addEventListener("beforeprint",function(){PAGE=shown.length||1;page=0;render();});
document.body.setAttribute("data-ready",String(hosts.length));
apply();
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape("<img src=x onerror=alert(1)>&\"'"), "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;");
        let v = json!({"banner": "</script><script>alert(1)</script>\u{2028}&"});
        let s = json_for_script(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&') && !s.contains('\u{2028}'), "{s}");
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v, "still the same JSON");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(3.2), "3.20s");
        assert_eq!(duration(62.5), "1m 02.5s");
    }
}
