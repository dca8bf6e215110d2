//! What a host's services and scripts say about its OS: the hints `-O` scores beside the stack's
//! own tests (docs/os-detection.md § Hints). This module owns where hints come from and their
//! weights; `rustmap_os::score` caps what they may add up to.
//!
//! - Each service `-sV` identified: its `ostype`, an OS CPE, or distribution and platform words in
//!   its product and extra info (an SSH banner's `Debian-5`, `Microsoft-IIS`). One per port, the
//!   database's `hint_weight`.
//! - `http-server-header` on a port without a service hint: the same words in the `Server` header.
//! - `smb-os-discovery`: the native OS an SMB server announces, weight [`SMB_WEIGHT`]. Samba
//!   answers `Windows 6.1` there whatever it runs on, so with `Samba` in the LAN manager string
//!   only a distribution word in it (`Samba 4.17.12-Debian`) counts, as Linux, with the default
//!   weight.
//!
//! The OS stage runs before the scripts (as nmap's does), so script hints are scored again after
//! them ([`crate::osdetect::OsStage::rescore`]).

use rustmap_model::{HostResult, ScriptResult, ServiceInfo};
use rustmap_os::observe::Hint;

/// Weight of an SMB server's own OS name (Windows names itself there, with its edition).
pub const SMB_WEIGHT: u32 = 30;

/// Every hint of `h` whose family is one of `families` (lower case), host scripts first.
pub(crate) fn hints(h: &HostResult, families: &[String]) -> Vec<Hint> {
    let known = |f: &str| families.contains(&f.to_ascii_lowercase());
    let mut out: Vec<Hint> = h.scripts.iter().filter_map(smb_hint).filter(|x| known(&x.family)).collect();
    for p in &h.ports {
        let source = format!("{}/{}", p.port, p.protocol.as_str());
        let from_service = p.service.as_ref().and_then(service_family).map(|f| (f, "service"));
        let from_header =
            || p.scripts.iter().find(|s| s.id == "http-server-header").and_then(|s| words_family(&s.output));
        let Some((family, what)) = from_service.or_else(|| from_header().map(|f| (f, "http-server-header"))) else {
            continue;
        };
        if known(family) {
            out.push(Hint { source: format!("{source} {what}"), family: family.into(), weight: 0 });
        }
    }
    out.truncate(rustmap_os::score::MAX_HINTS);
    out
}

/// The hints as the report lists them: `SOURCE: FAMILY`.
pub(crate) fn describe(hints: &[Hint]) -> Vec<String> {
    hints.iter().map(|h| format!("{}: {}", h.source, h.family)).collect()
}

/// `smb-os-discovery`'s `OS` element: `NATIVE OS (LAN MANAGER)`.
fn smb_hint(sc: &ScriptResult) -> Option<Hint> {
    if sc.id != "smb-os-discovery" {
        return None;
    }
    let os = sc.elements.iter().find(|(k, _)| k == "OS").map(|(_, v)| v.as_str())?;
    let lower = os.to_ascii_lowercase();
    let source = "smb-os-discovery".to_string();
    if lower.contains("samba") {
        // Samba's native OS is a fixed "Windows 6.1": only its own distribution word says more.
        let lanman = lower.split_once('(').map_or("", |(_, l)| l);
        return words_family(lanman).map(|f| Hint { source, family: f.into(), weight: 0 });
    }
    lower.starts_with("windows").then(|| Hint { source, family: "Windows".into(), weight: SMB_WEIGHT })
}

/// The OS family a service's detection names, in this order: its `ostype` (what the match rule
/// says: `OS: Linux`), an OS CPE (`cpe:/o:linux:linux_kernel`, `cpe:/o:microsoft:windows_10`),
/// then distribution or platform words in its product and extra info (an SSH banner's
/// `Debian-5`, an HTTP `Server: Microsoft-IIS/10.0`, `Win64`).
fn service_family(s: &ServiceInfo) -> Option<&'static str> {
    const CPES: [(&str, &str); 9] = [
        ("cpe:/o:linux:", "Linux"),
        ("cpe:/o:debian:", "Linux"),
        ("cpe:/o:canonical:", "Linux"),
        ("cpe:/o:redhat:", "Linux"),
        ("cpe:/o:microsoft:windows", "Windows"),
        ("cpe:/o:freebsd:", "FreeBSD"),
        ("cpe:/o:openbsd:", "OpenBSD"),
        ("cpe:/o:apple:mac", "macOS"),
        ("cpe:/o:cisco:ios", "IOS"),
    ];
    if let Some(os) = &s.ostype {
        let lower = os.to_ascii_lowercase();
        let known = ["Linux", "Windows", "FreeBSD", "OpenBSD", "macOS", "IOS"];
        if let Some(f) = known.into_iter().find(|k| k.to_ascii_lowercase() == lower) {
            return Some(f);
        }
    }
    if let Some(f) = s.cpe.iter().find_map(|c| CPES.iter().find(|(p, _)| c.starts_with(p)).map(|(_, f)| *f)) {
        return Some(f);
    }
    words_family(&format!("{} {}", s.product.as_deref().unwrap_or(""), s.extrainfo.as_deref().unwrap_or("")))
}

/// Distribution and platform words in free text (a banner, a `Server` header).
fn words_family(text: &str) -> Option<&'static str> {
    const WORDS: [(&str, &str); 12] = [
        ("debian", "Linux"),
        ("ubuntu", "Linux"),
        ("red hat", "Linux"),
        ("centos", "Linux"),
        ("fedora", "Linux"),
        ("raspbian", "Linux"),
        ("microsoft-iis", "Windows"),
        ("microsoft windows", "Windows"),
        ("win64", "Windows"),
        ("win32", "Windows"),
        ("for_windows", "Windows"),
        ("freebsd", "FreeBSD"),
    ];
    let text = text.to_ascii_lowercase();
    WORDS.iter().find(|(w, _)| text.contains(w)).map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::{HostStatus, PortResult, PortState, Protocol, Reason};

    #[test]
    fn services_hint_at_their_os() {
        let s = |product: &str, extra: &str, ostype: Option<&str>, cpe: &[&str]| ServiceInfo {
            product: Some(product.into()),
            extrainfo: Some(extra.into()),
            ostype: ostype.map(String::from),
            cpe: cpe.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(service_family(&s("OpenSSH", "protocol 2.0", Some("Linux"), &[])), Some("Linux"));
        assert_eq!(service_family(&s("OpenSSH", "Debian 5", None, &[])), Some("Linux"));
        assert_eq!(service_family(&s("httpd", "", None, &["cpe:/o:microsoft:windows_10"])), Some("Windows"));
        assert_eq!(service_family(&s("Microsoft-IIS httpd", "", None, &[])), Some("Windows"));
        assert_eq!(service_family(&s("nginx", "", None, &["cpe:/a:igor_sysoev:nginx:1.26"])), None);
        assert_eq!(service_family(&s("x", "", Some("Unix"), &[])), None, "not a family of the database");
    }

    fn script(id: &str, output: &str, elements: &[(&str, &str)]) -> ScriptResult {
        ScriptResult {
            id: id.into(),
            output: output.into(),
            elements: elements.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            table: Vec::new(),
        }
    }

    #[test]
    fn smb_names_windows_but_samba_only_its_distribution() {
        let win = script("smb-os-discovery", "", &[("OS", "Windows Server 2019 Standard 17763")]);
        assert_eq!(smb_hint(&win).map(|h| (h.family, h.weight)), Some(("Windows".into(), SMB_WEIGHT)));
        let debian = script("smb-os-discovery", "", &[("OS", "Windows 6.1 (Samba 4.17.12-Debian)")]);
        assert_eq!(smb_hint(&debian).map(|h| (h.family, h.weight)), Some(("Linux".into(), 0)));
        let plain = script("smb-os-discovery", "", &[("OS", "Windows 6.1 (Samba 4.19.0)")]);
        assert_eq!(smb_hint(&plain), None, "a bare Samba says nothing of its OS");
        assert_eq!(smb_hint(&script("smb-protocols", "", &[("OS", "Windows 10")])), None);
    }

    #[test]
    fn hosts_give_one_hint_per_port_and_the_smb_one_first() {
        let families = ["linux".to_string(), "windows".to_string()];
        let mut h = HostResult::new("198.18.0.14".parse().unwrap(), HostStatus::Up, Reason::SynAck);
        let mut http = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 64);
        http.scripts.push(script("http-server-header", "Apache/2.4.62 (Debian)", &[]));
        let mut ssh = PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 64);
        ssh.service = Some(ServiceInfo { ostype: Some("Linux".into()), ..Default::default() });
        ssh.scripts.push(script("http-server-header", "Microsoft-IIS/10.0", &[]));
        h.ports = vec![ssh, http];
        h.scripts.push(script("smb-os-discovery", "", &[("OS", "Windows 6.1 (Samba 4.17.12-Debian)")]));
        let got = describe(&hints(&h, &families));
        assert_eq!(got, ["smb-os-discovery: Linux", "22/tcp service: Linux", "80/tcp http-server-header: Linux"]);
        assert!(hints(&h, &["freebsd".to_string()]).is_empty(), "families the database lacks are dropped");
    }
}
