//! Many target expressions — from the command line and from `-iL` files — checked up front and
//! then streamed one address at a time, minus the exclusions.
//!
//! Checking happens before anything is scanned so a typo on line 90 000 of a target file stops the
//! run at once instead of half-way. Files are read twice (check, then stream) rather than held in
//! memory, so a 100k-line file costs a few kilobytes. Standard input cannot be read twice, so its
//! parsed expressions are kept.

use crate::spec::{SpecAddrs, TargetSpec, TargetSpecError};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors building a target list.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TargetListError {
    /// An expression on the command line.
    #[error("{0}")]
    Spec(#[from] TargetSpecError),
    /// An expression in a file.
    #[error("{path}:{line}: {source}")]
    InFile {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        source: TargetSpecError,
    },
    /// A file that cannot be read.
    #[error("cannot read target file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// Where target expressions come from.
#[derive(Debug, Clone)]
pub enum TargetSource {
    /// Expressions already parsed (command line, standard input).
    Specs(Vec<TargetSpec>),
    /// A file of whitespace-separated expressions, `#` comments; streamed.
    File(PathBuf),
}

/// One thing to scan, before name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetItem {
    /// An address.
    Addr(IpAddr),
    /// A name to resolve (with an optional prefix to apply to its address).
    Name {
        /// The name.
        name: String,
        /// `/N` after the name.
        prefix: Option<u8>,
    },
}

/// Addresses and blocks to leave out.
#[derive(Debug, Clone, Default)]
pub struct ExcludeSet {
    specs: Vec<TargetSpec>,
}

impl ExcludeSet {
    /// Parse comma-separated expressions (`--exclude`). Names are kept for the caller to resolve.
    pub fn parse_list(list: &str) -> Result<ExcludeSet, TargetSpecError> {
        let mut set = ExcludeSet::default();
        for part in list.split(',').filter(|p| !p.trim().is_empty()) {
            set.specs.push(TargetSpec::parse(part)?);
        }
        Ok(set)
    }

    /// Read expressions from a file (`--excludefile`), one or more per line, `#` comments.
    pub fn read_file(path: &Path) -> Result<ExcludeSet, TargetListError> {
        let mut set = ExcludeSet::default();
        for_each_token(path, |tok, line| {
            set.specs.push(TargetSpec::parse(tok).map_err(|source| TargetListError::InFile {
                path: path.display().to_string(),
                line,
                source,
            })?);
            Ok(())
        })?;
        Ok(set)
    }

    /// Add every expression of another set.
    pub fn extend(&mut self, other: ExcludeSet) {
        self.specs.extend(other.specs);
    }

    /// Add one address (e.g. a resolved excluded name).
    pub fn add_addr(&mut self, ip: IpAddr) {
        self.specs.push(TargetSpec::Addr(ip));
    }

    /// Names in the set, which the caller should resolve and [`add_addr`](Self::add_addr).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.iter().filter_map(|s| match s {
            TargetSpec::Name { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Is the address excluded?
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.specs.iter().any(|s| s.contains(ip))
    }

    /// True when nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

fn for_each_token(
    path: &Path,
    mut f: impl FnMut(&str, usize) -> Result<(), TargetListError>,
) -> Result<(), TargetListError> {
    let io_err = |source| TargetListError::Io { path: path.display().to_string(), source };
    let file = File::open(path).map_err(io_err)?;
    scan_lines(BufReader::new(file), &mut f).map_err(|e| match e {
        ScanErr::Io(source) => io_err(source),
        ScanErr::Other(e) => e,
    })
}

enum ScanErr {
    Io(io::Error),
    Other(TargetListError),
}

fn scan_lines(
    mut reader: impl BufRead,
    f: &mut impl FnMut(&str, usize) -> Result<(), TargetListError>,
) -> Result<(), ScanErr> {
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        // Lines longer than this are not target lists; bound the buffer.
        let read = io::Read::take(&mut reader, 64 * 1024).read_line(&mut line).map_err(ScanErr::Io)?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        let content = line.split('#').next().unwrap_or("");
        for tok in content.split_whitespace() {
            f(tok, n).map_err(ScanErr::Other)?;
        }
    }
}

/// Every target source of a scan, plus exclusions.
#[derive(Debug, Clone, Default)]
pub struct TargetList {
    sources: Vec<TargetSource>,
    exclude: ExcludeSet,
}

impl TargetList {
    /// An empty list.
    pub fn new() -> TargetList {
        TargetList::default()
    }

    /// Add command-line expressions (each may hold several, separated by whitespace).
    pub fn add_args<S: AsRef<str>>(&mut self, args: &[S]) -> Result<(), TargetListError> {
        let mut specs = Vec::new();
        for arg in args {
            for tok in arg.as_ref().split_whitespace() {
                specs.push(TargetSpec::parse(tok)?);
            }
        }
        if !specs.is_empty() {
            self.sources.push(TargetSource::Specs(specs));
        }
        Ok(())
    }

    /// Add an `-iL` source; `-` reads standard input. The file is checked completely now.
    pub fn add_input_file(&mut self, path: &Path) -> Result<(), TargetListError> {
        if path == Path::new("-") {
            return self.add_reader("<stdin>", io::stdin().lock());
        }
        for_each_token(path, |tok, line| {
            TargetSpec::parse(tok).map(|_| ()).map_err(|source| TargetListError::InFile {
                path: path.display().to_string(),
                line,
                source,
            })
        })?;
        self.sources.push(TargetSource::File(path.to_path_buf()));
        Ok(())
    }

    /// Add expressions read from any reader (kept in memory).
    pub fn add_reader(&mut self, label: &str, reader: impl BufRead) -> Result<(), TargetListError> {
        let mut specs = Vec::new();
        scan_lines(reader, &mut |tok, line| {
            specs.push(TargetSpec::parse(tok).map_err(|source| TargetListError::InFile {
                path: label.to_string(),
                line,
                source,
            })?);
            Ok(())
        })
        .map_err(|e| match e {
            ScanErr::Io(source) => TargetListError::Io { path: label.to_string(), source },
            ScanErr::Other(e) => e,
        })?;
        self.sources.push(TargetSource::Specs(specs));
        Ok(())
    }

    /// Set the exclusions.
    pub fn set_exclude(&mut self, exclude: ExcludeSet) {
        self.exclude = exclude;
    }

    /// The exclusions.
    pub fn exclude(&self) -> &ExcludeSet {
        &self.exclude
    }

    /// Number of addresses given on the command line and standard input (files are not counted,
    /// names count as one). For progress estimates only.
    pub fn len_hint(&self) -> u128 {
        self.sources
            .iter()
            .map(|s| match s {
                TargetSource::Specs(v) => v.iter().map(TargetSpec::len).fold(0u128, u128::saturating_add),
                TargetSource::File(_) => 0,
            })
            .fold(0, u128::saturating_add)
    }

    /// True when no source was added.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Stream every target in order, exclusions applied to addresses. Names come out unresolved.
    pub fn iter(&self) -> TargetIter<'_> {
        TargetIter { list: self, source: 0, spec: 0, file: None, pending: Vec::new(), current: None }
    }
}

/// Streaming iterator over a [`TargetList`]. Yields `Err` only if a file became unreadable since it
/// was checked.
pub struct TargetIter<'a> {
    list: &'a TargetList,
    source: usize,
    spec: usize,
    file: Option<(BufReader<File>, String)>,
    pending: Vec<TargetSpec>,
    current: Option<SpecAddrs>,
}

impl TargetIter<'_> {
    fn next_spec(&mut self) -> Option<Result<TargetSpec, TargetListError>> {
        loop {
            if let Some(s) = self.pending.pop() {
                return Some(Ok(s));
            }
            let source = self.list.sources.get(self.source)?;
            match source {
                TargetSource::Specs(specs) => {
                    if let Some(s) = specs.get(self.spec) {
                        self.spec += 1;
                        return Some(Ok(s.clone()));
                    }
                    self.source += 1;
                    self.spec = 0;
                }
                TargetSource::File(path) => {
                    if self.file.is_none() {
                        match File::open(path) {
                            Ok(f) => self.file = Some((BufReader::new(f), String::new())),
                            Err(source) => {
                                self.source += 1;
                                return Some(Err(TargetListError::Io { path: path.display().to_string(), source }));
                            }
                        }
                    }
                    let Some((reader, line)) = self.file.as_mut() else { continue };
                    line.clear();
                    match io::Read::take(&mut *reader, 64 * 1024).read_line(line) {
                        Ok(0) | Err(_) => {
                            self.file = None;
                            self.source += 1;
                        }
                        Ok(_) => {
                            let content = line.split('#').next().unwrap_or("");
                            // Already validated; anything unparsable now (file edited meanwhile) is skipped.
                            let mut specs: Vec<TargetSpec> =
                                content.split_whitespace().filter_map(|t| TargetSpec::parse(t).ok()).collect();
                            specs.reverse();
                            self.pending = specs;
                        }
                    }
                }
            }
        }
    }
}

impl Iterator for TargetIter<'_> {
    type Item = Result<TargetItem, TargetListError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(cur) = self.current.as_mut() {
                for ip in cur.by_ref() {
                    if !self.list.exclude.contains(ip) {
                        return Some(Ok(TargetItem::Addr(ip)));
                    }
                }
                self.current = None;
            }
            match self.next_spec()? {
                Err(e) => return Some(Err(e)),
                Ok(TargetSpec::Name { name, prefix }) => return Some(Ok(TargetItem::Name { name, prefix })),
                Ok(spec) => self.current = Some(spec.addrs()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn addrs(list: &TargetList) -> Vec<String> {
        list.iter()
            .map(|t| match t.unwrap() {
                TargetItem::Addr(a) => a.to_string(),
                TargetItem::Name { name, .. } => name,
            })
            .collect()
    }

    #[test]
    fn args_and_exclusions() {
        let mut l = TargetList::new();
        l.add_args(&["192.0.2.0/30", "host.example 192.0.2.9"]).unwrap();
        l.set_exclude(ExcludeSet::parse_list("192.0.2.1,192.0.2.2").unwrap());
        assert_eq!(addrs(&l), ["192.0.2.0", "192.0.2.3", "host.example", "192.0.2.9"]);
    }

    #[test]
    fn input_file_is_streamed_and_checked() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "# lab hosts\n198.18.0.10 198.18.0.11  # two\n\n198.18.0.12-13").unwrap();
        let mut l = TargetList::new();
        l.add_input_file(f.path()).unwrap();
        assert_eq!(addrs(&l), ["198.18.0.10", "198.18.0.11", "198.18.0.12", "198.18.0.13"]);
    }

    #[test]
    fn bad_line_in_file_names_file_and_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "198.18.0.10\n198.18.0.0/40").unwrap();
        let err = TargetList::new().add_input_file(f.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(":2:") && msg.contains("/40"), "{msg}");
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let err = TargetList::new().add_input_file(Path::new("/nonexistent/targets.txt")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/targets.txt"));
    }

    #[test]
    fn huge_ranges_are_lazy() {
        let mut l = TargetList::new();
        l.add_args(&["10.0.0.0/8"]).unwrap();
        l.set_exclude(ExcludeSet::parse_list("10.0.0.0/16").unwrap());
        let mut it = l.iter();
        // The first address after the excluded /16; reaching it walks 65536 excluded ones, no allocation.
        assert_eq!(it.next().unwrap().unwrap(), TargetItem::Addr("10.1.0.0".parse().unwrap()));
    }

    #[test]
    fn reader_source() {
        let mut l = TargetList::new();
        l.add_reader("<stdin>", "198.18.0.1\n198.18.0.2 # c\n".as_bytes()).unwrap();
        assert_eq!(addrs(&l), ["198.18.0.1", "198.18.0.2"]);
        let err = TargetList::new().add_reader("<stdin>", "999.1.1.1\n".as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("<stdin>:1:"), "{err}");
    }
}
