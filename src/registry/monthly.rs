//! Signed monthly KPI reports: what this node's KPIs were when a month closed, kept as they
//! were.
//!
//! An erasure or a late correction changes the views, and so every KPI computed from them
//! afterwards, including those of past periods. A report of a closed period must not change
//! silently: within the first sweep after a month ends (`[sync] kpi_report_secs`) whose views
//! hold the log its latest checkpoint signs (a later one while they are projected again after
//! a power loss), the node computes the KPI report as of the month's last day (small cells
//! suppressed), names the
//! latest signed checkpoint of its log (the events it was computed from), signs it with its
//! event key as a `jol-kpi-report+jws` and keeps it, once, never rewritten
//! (`GET /api/v1/kpi/reports`). A month that closed before the node had signed a checkpoint
//! has no report: there was nothing to report on.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use tokio::sync::watch;

use crate::event::identifiers::{KeyName, MemberId};
use crate::event::jws::{self, Typ};
use crate::log::checkpoint::{self, Checkpoint};
use crate::registry::kpi::{self, KpiParams, KpiReport};
use crate::store::{Store, StoreError};

/// What a monthly report says, as signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MonthlyReport {
    /// The node whose KPIs these are.
    pub member: MemberId,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The reference date: the month's last day.
    pub as_of: String,
    /// When it was computed and signed.
    #[serde(with = "time::serde::rfc3339")]
    pub computed_at: OffsetDateTime,
    /// The signed checkpoint of the log it was computed from: its size and root.
    pub checkpoint_size: u64,
    /// See `checkpoint_size`.
    pub checkpoint_root: String,
    /// The KPIs, small cells suppressed.
    pub report: KpiReport,
}

/// Who signs the reports, and who counts as the employment service.
#[derive(Clone)]
pub(crate) struct Reporter {
    /// This node.
    pub member: MemberId,
    /// Its event key's name.
    pub kid: KeyName,
    /// Its event key.
    pub key: SigningKey,
    /// The member whose registrations the KPIs count.
    pub employment_service: MemberId,
}

/// The month before the one `today` is in: `YYYY-MM` and its last day.
pub(crate) fn last_closed_month(today: Date) -> (String, Date) {
    let first = today.replace_day(1).unwrap_or(today);
    let last_day = first.previous_day().unwrap_or(first);
    (
        format!("{}-{:02}", last_day.year(), u8::from(last_day.month())),
        last_day,
    )
}

/// Sign and keep the report of the last month closed before `today`, unless one is kept, the
/// log has no checkpoint yet, or the views do not yet hold the log the latest checkpoint signs;
/// returns the month reported, if any.
pub(crate) fn report_closed_month(
    store: &Store,
    who: &Reporter,
    today: Date,
) -> Result<Option<String>, StoreError> {
    let (month, as_of) = last_closed_month(today);
    if store.kpi_report(&month)?.is_some() {
        return Ok(None);
    }
    let Some((_, bytes)) = store.latest_checkpoint()? else {
        return Ok(None);
    };
    let signed: Checkpoint = checkpoint::read(&bytes)
        .map_err(|_| StoreError::Corrupt("checkpoint"))?
        .checkpoint;
    // The report names the checkpoint as what it was computed from, and is kept once: views
    // not yet holding that log (projected again after a power loss) wait for the next sweep.
    if !crate::registry::projector::holds(store, signed.size)? {
        return Ok(None);
    }
    let views = crate::registry::projector::all(store)?;
    let params = KpiParams {
        as_of,
        employment_service: who.employment_service.clone(),
        from: None,
        to: None,
        structure_at: None,
        with_a_match: None,
    };
    let report = MonthlyReport {
        member: who.member.clone(),
        month: month.clone(),
        as_of: as_of.to_string(),
        computed_at: OffsetDateTime::now_utc(),
        checkpoint_size: signed.size,
        checkpoint_root: checkpoint::encode_std(&signed.root),
        report: kpi::compute(&views, &params, true),
    };
    let payload = serde_json::to_vec(&report).map_err(|_| StoreError::Corrupt("KPI report"))?;
    let jws = jws::sign(&who.key, &who.kid, Typ::KpiReport, &payload);
    store.put_kpi_report(&month, &jws)?;
    Ok(Some(month))
}

/// Report each month as it closes: at start, then every `every`, until `stop`.
pub(crate) async fn run(
    store: Store,
    who: Reporter,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (s, w) = (store.clone(), who.clone());
        let today = OffsetDateTime::now_utc().date();
        match tokio::task::spawn_blocking(move || report_closed_month(&s, &w, today)).await {
            Ok(Ok(Some(month))) => {
                tracing::info!(%month, "signed the KPI report of a closed month")
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "monthly KPI report failed; will retry"),
            Err(e) => tracing::error!(error = %e, "monthly KPI report task failed"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::schema::EventType;
    use crate::federation::fixture::{returnee, Federation};
    use crate::registry::projector;
    use time::macros::date;

    /// A month's report waits for views holding the log its checkpoint signs (after a power
    /// loss sent the projector back to the start of the log, say): none is signed from views
    /// that miss events, and once the views hold them the report is signed.
    #[tokio::test]
    async fn a_report_waits_for_views_holding_the_log_its_checkpoint_signs() {
        let f = Federation::new();
        let node = f.node(&f.migration);
        node.publish(
            EventType::ReturneeRecord,
            returnee("21503199012345", &[&f.employment]),
        )
        .await;
        let size = node.store.last_position().unwrap();
        checkpoint::sign_if_grown(&node.store, &node.member, &node.key, size).unwrap();
        let who = Reporter {
            member: node.member.clone(),
            kid: Federation::kid(&node.member),
            key: node.key.clone(),
            employment_service: f.employment.clone(),
        };
        let today = date!(2026 - 12 - 04);
        assert_eq!(projector::cursor(&node.store).unwrap(), 0);
        assert_eq!(report_closed_month(&node.store, &who, today).unwrap(), None);

        projector::catch_up(&node.store).unwrap();
        assert_eq!(
            report_closed_month(&node.store, &who, today).unwrap(),
            Some("2026-11".to_string())
        );
    }

    #[test]
    fn the_last_closed_month_is_the_one_before_today_s() {
        assert_eq!(
            last_closed_month(date!(2026 - 12 - 04)),
            ("2026-11".into(), date!(2026 - 11 - 30))
        );
        assert_eq!(
            last_closed_month(date!(2026 - 01 - 01)),
            ("2025-12".into(), date!(2025 - 12 - 31))
        );
        assert_eq!(
            last_closed_month(date!(2024 - 03 - 15)),
            ("2024-02".into(), date!(2024 - 02 - 29))
        );
    }
}
