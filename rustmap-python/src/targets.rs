//! `parse_targets`: target expressions expanded to the addresses (and names) a scan would
//! visit, with the library's [`TargetList`], bounded so that a `/8` cannot build 16 million
//! Python strings unless the caller asks for that.

use crate::errors;
use pyo3::prelude::*;
use rustmap_targets::{ExcludeSet, TargetItem, TargetList};

/// The default bound of [`parse_targets`]: a /16.
pub(crate) const DEFAULT_LIMIT: usize = 65_536;

/// Expand `targets` (minus `exclude`) to a list of strings, in scan order. Names are returned
/// as given (unresolved), with their `/prefix` if any. More than `limit` entries is an error
/// (`None`: no bound).
#[pyfunction]
#[pyo3(signature = (targets, exclude = Vec::new(), limit = Some(DEFAULT_LIMIT)))]
pub(crate) fn parse_targets(
    py: Python<'_>,
    targets: Vec<String>,
    exclude: Vec<String>,
    limit: Option<usize>,
) -> PyResult<Vec<String>> {
    let mut list = TargetList::new();
    list.add_args(&targets).map_err(|e| errors::invalid(py, "targets", &targets.join(" "), &e.to_string()))?;
    if !exclude.is_empty() {
        let joined = exclude.join(",");
        let set = ExcludeSet::parse_list(&joined)
            .map_err(|e| errors::invalid(py, "exclude", &joined, &format!("exclude {joined:?}: {e}")))?;
        list.set_exclude(set);
    }
    // Expanding a large block takes a while: without the GIL, so other threads run meanwhile.
    py.detach(|| {
        let mut out = Vec::new();
        for item in list.iter() {
            let item = item.map_err(|e| ("targets", e.to_string()))?;
            if limit.is_some_and(|l| out.len() >= l) {
                let l = limit.unwrap_or_default();
                return Err((
                    "targets",
                    format!(
                        "the targets expand to more than {l} entries; pass limit=None (or a larger limit) \
                         to expand them anyway"
                    ),
                ));
            }
            out.push(match item {
                TargetItem::Addr(a) => a.to_string(),
                TargetItem::Name { name, prefix: Some(p) } => format!("{name}/{p}"),
                TargetItem::Name { name, prefix: None } => name,
            });
        }
        Ok(out)
    })
    .map_err(|(field, message)| errors::invalid(py, field, &targets.join(" "), &message))
}
