//! Target and port specifications: everything the user types to say *what* to scan, parsed and
//! validated before anything is sent, then expanded lazily so a `/8` costs no more memory than a
//! single address.
//!
//! - [`spec`]: one target expression (`10.0.0.1`, `10.0.0.0/8`, `10.0-2.1,3.5-9`, `fd00::/120`, a name).
//! - [`list`]: many expressions from the command line and `-iL` files, with exclusions.
//! - [`ports`]: `-p` expressions and the ranked port table (`--top-ports`, `-F`, service names).
//!
//! This crate is pure: no sockets, no DNS. Host names are passed through for the caller to resolve.

#![forbid(unsafe_code)]

pub mod list;
pub mod ports;
pub mod spec;

pub use list::{ExcludeSet, TargetItem, TargetList, TargetSource};
pub use ports::{PortList, PortTable, PortTableError};
pub use spec::{TargetSpec, TargetSpecError};
