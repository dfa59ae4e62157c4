//! The dashboard at `/` of the local listener: one self-contained page (no external CDN) that
//! draws the KPIs from `/api/v1/kpi` and looks up a person by PIN. Labels in ru, ky and en.

/// The page, built into the binary.
pub const PAGE: &str = include_str!("dashboard_page/index.html");
