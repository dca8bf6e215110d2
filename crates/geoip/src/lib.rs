//! GeoIP enrichment (`--geoip`): where an address is and which autonomous system announces it,
//! from MaxMind DB files (GeoLite2 / GeoIP2 City and ASN, or any database in their layout).
//!
//! This crate owns finding the database files ([`GeoDb::discover`]), opening them, telling
//! private and special-use addresses apart ([`special_use`]), and turning a record into a
//! [`GeoInfo`]. Every string read from a database is sanitized: the files are data from outside.
//!
//! # Where the databases are looked for
//! In order: the `--geoip-db DIR` given, `$RUSTMAP_GEOIP_DIR`, `~/.rustmap/geoip/`, the current
//! directory. The first directory holding a City or an ASN database is used (both are taken from
//! it). A directory given with `--geoip-db` must hold one: RustMap does not look further then.
//! The file names are MaxMind's: `GeoLite2-City.mmdb` or `GeoIP2-City.mmdb`, and
//! `GeoLite2-ASN.mmdb` or `GeoIP2-ASN.mmdb`.
//!
//! # Private and special-use addresses
//! Public databases have nothing for them, so a lookup would only say "not found": such an
//! address gets `special` (`private`, `loopback`, `benchmarking`, ...) and is not looked up in
//! MaxMind's own databases (whose `database_type` starts with `GeoLite2` or `GeoIP2`). A database
//! built for one's own ranges (any other `database_type`) is asked about them too.

use maxminddb::{geoip2, MaxMindDbError, Reader};
use rustmap_model::{sanitize, GeoInfo};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[cfg(feature = "fixture")]
pub mod fixture;
mod special;
pub use special::special_use;

/// The largest database file read (GeoLite2 City is about 60 MB): a bound on what a bad
/// directory can make RustMap load into memory.
const MAX_FILE: u64 = 512 << 20;

/// City database file names, in order of preference.
const CITY_FILES: [&str; 2] = ["GeoLite2-City.mmdb", "GeoIP2-City.mmdb"];
/// ASN database file names, in order of preference.
const ASN_FILES: [&str; 2] = ["GeoLite2-ASN.mmdb", "GeoIP2-ASN.mmdb"];

/// Why the databases could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// No directory searched holds a database.
    #[error("no GeoIP database found: looked for {files} in {places}")]
    NotFound {
        /// The file names looked for.
        files: String,
        /// The directories searched, in order.
        places: String,
    },
    /// A database file could not be read or is not a valid MaxMind DB.
    #[error("GeoIP database {path}: {reason}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A record could not be decoded (a damaged file).
    #[error("GeoIP database {path}: bad record for {addr}: {reason}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The address looked up.
        addr: IpAddr,
        /// What is wrong.
        reason: String,
    },
}

/// One opened database file.
struct Db {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
    /// MaxMind's own data: never asked about special-use addresses.
    public: bool,
}

impl Db {
    fn open(path: &Path) -> Result<Db, GeoError> {
        let bad = |reason: String| GeoError::Bad { path: path.to_path_buf(), reason };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        if meta.len() > MAX_FILE {
            return Err(bad(format!("{} bytes, more than the {} MiB RustMap reads", meta.len(), MAX_FILE >> 20)));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let reader = Reader::from_source(bytes).map_err(|e| bad(format!("not a MaxMind DB file ({e})")))?;
        let kind = &reader.metadata().database_type;
        let public = kind.starts_with("GeoLite2") || kind.starts_with("GeoIP2");
        Ok(Db { path: path.to_path_buf(), reader, public })
    }

    fn record_error(&self, addr: IpAddr, e: MaxMindDbError) -> GeoError {
        GeoError::Record { path: self.path.clone(), addr, reason: e.to_string() }
    }
}

/// The GeoIP databases of a scan: a City database, an ASN database, or both.
pub struct GeoDb {
    city: Option<Db>,
    asn: Option<Db>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("city", &self.city.as_ref().map(|d| &d.path))
            .field("asn", &self.asn.as_ref().map(|d| &d.path))
            .finish()
    }
}

/// The directories searched, in order: `dir` (`--geoip-db`), `$RUSTMAP_GEOIP_DIR`,
/// `~/.rustmap/geoip`, the current directory.
pub fn search_dirs(dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = dir.map(Path::to_path_buf).into_iter().collect();
    if dir.is_none() {
        dirs.extend(std::env::var_os("RUSTMAP_GEOIP_DIR").filter(|v| !v.is_empty()).map(PathBuf::from));
        dirs.extend(std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| Path::new(&h).join(".rustmap/geoip")));
        dirs.push(std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")));
    }
    dirs
}

/// The first of `names` present in `dir`.
fn find_in(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.exists())
}

impl GeoDb {
    /// Find and open the databases (see the crate docs for where). `dir` is `--geoip-db`.
    pub fn discover(dir: Option<&Path>) -> Result<GeoDb, GeoError> {
        let dirs = search_dirs(dir);
        for d in &dirs {
            let (city, asn) = (find_in(d, &CITY_FILES), find_in(d, &ASN_FILES));
            if city.is_some() || asn.is_some() {
                return GeoDb::open(city.as_deref(), asn.as_deref());
            }
        }
        Err(GeoError::NotFound {
            files: CITY_FILES.iter().chain(ASN_FILES.iter()).copied().collect::<Vec<_>>().join(", "),
            places: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Open the given files (at least one).
    pub fn open(city: Option<&Path>, asn: Option<&Path>) -> Result<GeoDb, GeoError> {
        Ok(GeoDb { city: city.map(Db::open).transpose()?, asn: asn.map(Db::open).transpose()? })
    }

    /// The files in use.
    pub fn files(&self) -> Vec<&Path> {
        self.city.iter().chain(self.asn.iter()).map(|d| d.path.as_path()).collect()
    }

    /// What the databases say of `addr` (`None` when they say nothing and it is not special),
    /// and the records they could not decode: a damaged City record does not lose the AS, nor
    /// the reverse.
    pub fn lookup(&self, addr: IpAddr) -> (Option<GeoInfo>, Vec<GeoError>) {
        let special = special_use(addr);
        let mut info = GeoInfo { special: special.map(str::to_string), ..GeoInfo::default() };
        let mut errors = Vec::new();
        let text = |s: Option<&str>| s.map(|v| sanitize(v).into_owned()).filter(|v| !v.is_empty());
        if let Some(db) = self.city.as_ref().filter(|d| special.is_none() || !d.public) {
            match db.reader.lookup(addr).and_then(|r| r.decode::<geoip2::City>()) {
                Ok(Some(c)) => {
                    info.country_code = text(c.country.iso_code);
                    info.country = text(c.country.names.english);
                    info.city = text(c.city.names.english);
                    info.latitude = c.location.latitude.filter(|v| v.is_finite() && v.abs() <= 90.0);
                    info.longitude = c.location.longitude.filter(|v| v.is_finite() && v.abs() <= 180.0);
                    info.timezone = text(c.location.time_zone);
                }
                Ok(None) => {}
                Err(e) => errors.push(db.record_error(addr, e)),
            }
        }
        if let Some(db) = self.asn.as_ref().filter(|d| special.is_none() || !d.public) {
            match db.reader.lookup(addr).and_then(|r| r.decode::<AsnRecord>()) {
                Ok(Some(a)) => {
                    info.asn = a.autonomous_system_number;
                    info.as_org = text(a.autonomous_system_organization);
                }
                Ok(None) => {}
                Err(e) => errors.push(db.record_error(addr, e)),
            }
        }
        ((!info.is_empty() || info.special.is_some()).then_some(info), errors)
    }
}

/// An ASN record. MaxMind writes the number as a 32-bit unsigned integer; other writers (and
/// other vendors' databases in the same layout) use the smallest type that holds it, so any
/// unsigned width up to 32 bits is taken.
#[derive(serde::Deserialize)]
struct AsnRecord<'a> {
    #[serde(default, deserialize_with = "any_u32")]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

fn any_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an AS number")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<u32>, E> {
            u32::try_from(v).map(Some).map_err(|_| E::custom(format!("AS number {v} is over 32 bits")))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Option<u32>, E> {
            u32::try_from(v).map(Some).map_err(|_| E::custom(format!("AS number {v} is out of range")))
        }
        fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Option<u32>, E> {
            u32::try_from(v).map(Some).map_err(|_| E::custom(format!("AS number {v} is over 32 bits")))
        }
    }
    d.deserialize_any(V)
}

/// The one-line summary of a place (see [`GeoInfo::summary`]).
pub fn summary(g: &GeoInfo) -> String {
    g.summary()
}
