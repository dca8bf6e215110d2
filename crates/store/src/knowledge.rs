//! What past scans know about hosts, for the scans that use it: `--predict-ports` (ports seen
//! open on a host, or on its neighbours, are scanned first) and learned timing (round trips
//! measured before). Read from the newest stored scans only, so the cost stays bounded however
//! long the history grows.

use crate::{Store, StoreError};
use rusqlite::params;
use rustmap_model::Protocol;
use std::collections::HashMap;
use std::net::IpAddr;

/// One host as past scans saw it up.
#[derive(Debug, Clone, PartialEq)]
pub struct PastHost {
    /// Its address.
    pub addr: IpAddr,
    /// Names it had (the user's and reverse DNS), from its newest scan.
    pub names: Vec<String>,
    /// Start of the newest scan that found it up (Unix seconds).
    pub last_up: i64,
    /// Its smoothed round trip in the newest scan that measured one, in microseconds.
    pub srtt_us: Option<u64>,
    /// Ports found open on it, with how many of the scans read found each open.
    pub open: Vec<(Protocol, u16, u32)>,
}

fn protocol(s: &str) -> Option<Protocol> {
    match s {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "sctp" => Some(Protocol::Sctp),
        _ => None,
    }
}

impl Store {
    /// The hosts found up by the newest `scans` stored scans (of any status: an interrupted
    /// scan's finished hosts are as good as any), newest knowledge first.
    pub fn past_hosts(&self, scans: usize) -> Result<Vec<PastHost>, StoreError> {
        let limit = i64::try_from(scans).unwrap_or(i64::MAX);
        let mut hosts: HashMap<String, PastHost> = HashMap::new();
        let mut st = self.conn.prepare(
            "WITH recent AS (SELECT seq, started FROM scans ORDER BY started DESC, id DESC LIMIT ?1)
             SELECT h.addr, h.hostnames, r.started, json_extract(h.result, '$.srtt_us')
             FROM hosts h JOIN recent r ON r.seq = h.scan WHERE h.status = 'up'
             ORDER BY r.started DESC",
        )?;
        let mut rows = st.query(params![limit])?;
        while let Some(r) = rows.next()? {
            let addr: String = r.get(0)?;
            let Ok(ip) = addr.parse::<IpAddr>() else { continue };
            let names: String = r.get(1)?;
            let started: i64 = r.get(2)?;
            let srtt: Option<i64> = r.get(3)?;
            let srtt = srtt.and_then(|s| u64::try_from(s).ok());
            // Newest first: the first row of an address is its newest scan.
            let h = hosts.entry(addr).or_insert_with(|| PastHost {
                addr: ip,
                names: serde_json::from_str(&names).unwrap_or_default(),
                last_up: started,
                srtt_us: None,
                open: Vec::new(),
            });
            h.srtt_us = h.srtt_us.or(srtt);
        }
        let mut st = self.conn.prepare(
            "WITH recent AS (SELECT seq FROM scans ORDER BY started DESC, id DESC LIMIT ?1)
             SELECT p.addr, p.proto, p.port, count(*) FROM ports p JOIN recent r ON r.seq = p.scan
             WHERE p.state = 'open' GROUP BY p.addr, p.proto, p.port",
        )?;
        let mut rows = st.query(params![limit])?;
        while let Some(r) = rows.next()? {
            let addr: String = r.get(0)?;
            let proto: String = r.get(1)?;
            let (Some(h), Some(proto)) = (hosts.get_mut(&addr), protocol(&proto)) else { continue };
            let port: i64 = r.get(2)?;
            let seen: i64 = r.get(3)?;
            if let Ok(port) = u16::try_from(port) {
                h.open.push((proto, port, u32::try_from(seen).unwrap_or(u32::MAX)));
            }
        }
        let mut out: Vec<PastHost> = hosts.into_values().collect();
        out.sort_by(|a, b| b.last_up.cmp(&a.last_up).then(a.addr.cmp(&b.addr)));
        Ok(out)
    }
}
