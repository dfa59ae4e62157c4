//! The signed KPI reports of closed months, kept as they were signed (see
//! `registry::monthly`): one per month, never rewritten, so an erasure after the month closed
//! does not silently change what was reported for it.

use super::keys::{self, Space};
use super::{Store, StoreError, WriteBatch};

impl Store {
    /// Keep the signed KPI report of `month` (`YYYY-MM`), durably.
    pub(crate) fn put_kpi_report(&self, month: &str, jws: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put(keys::kpi_report(month), jws);
        self.apply_other(batch)?;
        self.flush()
    }

    /// The signed KPI report of `month`, if one is kept.
    pub(crate) fn kpi_report(&self, month: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(&keys::kpi_report(month))
    }

    /// Every signed KPI report kept, oldest month first.
    pub(crate) fn kpi_reports(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(&Space::KpiReport.all())
            .map(|entry| {
                let (key, value) = entry?;
                let month = String::from_utf8(key[1..].to_vec())
                    .map_err(|_| StoreError::Corrupt("KPI report key"))?;
                Ok((month, value))
            })
            .collect()
    }
}
