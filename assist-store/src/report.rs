//! Reports over call rows, and their CSV rendering. Pure functions over [`CallRow`]s, so any
//! store implementation can use them.

use crate::query::{CallRow, Report, ReportQuery};

/// Computes a report over rows (already filtered by the query's filter).
pub(crate) fn build_report<'a>(
    _query: &ReportQuery,
    _rows: impl Iterator<Item = &'a CallRow>,
) -> Report {
    todo!()
}

/// Renders a report as CSV: a header row, one row per group, then a `total` row.
pub fn report_csv(_report: &Report) -> String {
    todo!()
}
