//! `rustmap --os-entry FILE...`: captured OS fingerprints → a database entry, as a whole
//! database file (docs/os-detection.md § Adding an entry). This module owns the file reading and
//! the request's checks; `rustmap_os::capture` reads and merges the fingerprints.

use rustmap_os::capture::{self, Capture, CaptureError, EntryInfo};
use rustmap_os::db::Class;
use rustmap_os::Database;
use std::path::PathBuf;

/// The largest capture file read (a `-oJ` report of many hosts).
const CAPTURE_BYTES: u64 = 64 << 20;

/// What to turn into an entry, and what to call it.
#[derive(Debug, Clone, Default)]
pub struct OsEntryRequest {
    /// RustMap JSON reports (`-oJ`) or printed fingerprints; all their fingerprints merge.
    pub files: Vec<PathBuf>,
    /// Only these hosts' fingerprints (addresses as the reports write them); all when empty.
    pub hosts: Vec<String>,
    /// The entry's id; made from the name when `None`.
    pub id: Option<String>,
    /// The entry's name ("lwIP 2.1").
    pub name: Option<String>,
    /// Its class, `VENDOR|FAMILY|GENERATION|DEVICE TYPE` (generation may be empty).
    pub class: Option<String>,
    /// CPE names for the class.
    pub cpe: Vec<String>,
}

/// Why no entry was made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OsEntryError {
    /// A file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The request itself is incomplete or wrong.
    #[error("{0}")]
    Request(String),
    /// A file is not a capture, or the entry fails the database's checks.
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

/// The database file (JSON text) holding the one entry `req` describes.
pub fn os_entry(req: &OsEntryRequest) -> Result<String, OsEntryError> {
    let usage = |m: &str| OsEntryError::Request(m.to_string());
    if req.files.is_empty() {
        return Err(usage("--os-entry needs at least one file (a -oJ report of a -O scan, or a printed fingerprint)"));
    }
    let name = req.name.as_deref().ok_or_else(|| usage("--os-entry needs --os-entry-name NAME"))?;
    let class_text = req
        .class
        .as_deref()
        .ok_or_else(|| usage("--os-entry needs --os-entry-class 'VENDOR|FAMILY|GENERATION|DEVICE TYPE'"))?;
    let class = parse_class(class_text, &req.cpe)?;
    let id = req.id.clone().unwrap_or_else(|| slug(name));
    let mut captures: Vec<Capture> = Vec::new();
    let mut sources = Vec::new();
    for path in &req.files {
        let shown = path.display().to_string();
        let text =
            read_bounded(path, CAPTURE_BYTES).map_err(|message| OsEntryError::Read { path: shown.clone(), message })?;
        let got = capture::read(&text, &shown)?;
        let kept: Vec<Capture> = if req.hosts.is_empty() {
            got
        } else {
            got.into_iter().filter(|c| c.host.as_ref().is_some_and(|h| req.hosts.contains(h))).collect()
        };
        sources.push(format!("{shown} ({} fingerprint{})", kept.len(), if kept.len() == 1 { "" } else { "s" }));
        captures.extend(kept);
    }
    if captures.is_empty() {
        return Err(usage(&format!("no fingerprint of host {} in the files given", req.hosts.join(", "))));
    }
    let source = format!("captured with rustmap --os-entry from {}", sources.join(", "));
    let source = if source.len() > 1000 {
        format!("captured with rustmap --os-entry from {} files", req.files.len())
    } else {
        source
    };
    let entry = capture::entry(&captures, EntryInfo { id, name: name.to_string(), class, source })?;
    let db = Database::with_entries(vec![entry], "the new entry").map_err(CaptureError::from)?;
    Ok(db.to_json() + "\n")
}

/// `VENDOR|FAMILY|GENERATION|DEVICE TYPE`, nmap's order for a class line.
fn parse_class(text: &str, cpe: &[String]) -> Result<Class, OsEntryError> {
    let parts: Vec<&str> = text.split('|').map(str::trim).collect();
    let [vendor, family, generation, device_type] = parts[..] else {
        return Err(OsEntryError::Request(format!(
            "--os-entry-class {text:?}: give four fields, VENDOR|FAMILY|GENERATION|DEVICE TYPE (GENERATION may be empty)"
        )));
    };
    Ok(Class {
        vendor: vendor.into(),
        family: family.into(),
        generation: (!generation.is_empty()).then(|| generation.to_string()),
        device_type: device_type.into(),
        cpe: cpe.to_vec(),
    })
}

/// An id from a name: lower-case letters and digits, other runs as one `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    out.chars().take(64).collect()
}

/// A file's text, refused when it is not a regular file (a device or a FIFO has no length to
/// check and may never end) or holds more than `limit` bytes. The error does not name the file.
pub(crate) fn read_bounded(path: &std::path::Path, limit: u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > limit {
        return Err(format!("{} bytes, more than the {limit} read", meta.len()));
    }
    let mut text = String::new();
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    std::io::Read::read_to_string(&mut std::io::Read::take(file, limit + 1), &mut text).map_err(|e| e.to_string())?;
    if text.len() as u64 > limit {
        return Err(format!("more than the {limit} bytes read"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_ids() {
        let c = parse_class("lwIP | embedded | 2.X | specialized", &["cpe:/a:lwip_project:lwip:2".into()]).unwrap();
        assert_eq!(
            (c.vendor.as_str(), c.generation.as_deref(), c.device_type.as_str()),
            ("lwIP", Some("2.X"), "specialized")
        );
        assert!(parse_class("Linux|Linux||general purpose", &[]).unwrap().generation.is_none());
        assert!(parse_class("Linux|Linux", &[]).unwrap_err().to_string().contains("four fields"));
        assert_eq!(slug("lwIP 2.1 (Debian's liblwip)"), "lwip-2.1-debian-s-liblwip");
    }

    #[test]
    fn requests_are_checked_before_files_are_read() {
        let mut r = OsEntryRequest { files: vec!["/nonexistent/x.json".into()], ..Default::default() };
        assert!(os_entry(&r).unwrap_err().to_string().contains("--os-entry-name"));
        r.name = Some("X".into());
        assert!(os_entry(&r).unwrap_err().to_string().contains("--os-entry-class"));
        r.class = Some("V|F||specialized".into());
        let e = os_entry(&r).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/x.json:"), "{e}");
    }
}
