//! The registry reads: a person's view, their access log, and the KPI report. Every read of a
//! person's data is written to their access log before it is answered.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use time::OffsetDateTime;

use super::tokens::Scope;
use super::{Caller, LocalApi};
use crate::event::identifiers::{MemberId, Pin};
use crate::event::schema::EventType;
use crate::net::http::{self, storage_problem, Problem, ProblemKind, Response};
use crate::policy::access::{self, AccessRecord, Reader};
use crate::registry::serve;
use crate::store::Store;

impl LocalApi {
    pub(super) fn get_person(
        &self,
        req: &Request<Incoming>,
        pin: &str,
        who: &Reader,
    ) -> Result<Response, Problem> {
        let as_of = date_param(req.uri().query(), "asOf")?.unwrap_or_else(today);
        let view = self.served_view(pin, who, "registry view")?;
        let derived = view.derive(as_of);
        let mut body = serde_json::to_value(&view).unwrap_or_default();
        body["derived"] = serde_json::to_value(derived).unwrap_or_default();
        body["competencyProfile"] =
            serde_json::to_value(self.attested_profile(&view)?).unwrap_or_default();
        body["hidden"] =
            serde_json::to_value(Hidden::of(&view, &self.member, who)).unwrap_or_default();
        Ok(http::json(StatusCode::OK, &body))
    }

    /// The person's view as this node serves it to `who` (the consent decision of
    /// `registry::serve`), for a read described by `what`, logged first. A person this node
    /// holds nothing about and one it holds nothing about that this token may read get the same
    /// answer, and both are logged: a refusal does not tell who is held.
    pub(super) fn served_view(
        &self,
        pin: &str,
        who: &Reader,
        what: &str,
    ) -> Result<crate::registry::view::PersonView, Problem> {
        let pin = valid_pin(pin)?;
        match serve::person_read(&self.store, &pin, self.user(who), who, what)
            .map_err(storage_problem)?
        {
            serve::Read::Served(view) => Ok(*view),
            serve::Read::Refused => Err(nothing_to_serve()),
            serve::Read::ViewsRebuilding => Err(views_rebuilding()),
        }
    }

    /// Who read the person's data, when and why, newest first (reading it is itself logged).
    /// Served to a token that may read the person, without the officials of other agencies
    /// ([`AccessRecord::for_desk`]), and whole to an `admin` token (the data protection officer
    /// answering the person); else refused as a person lookup is.
    pub(super) fn get_access_log(&self, pin: &str, caller: &Caller) -> Result<Response, Problem> {
        let who = caller.reader();
        let what = "the person's access log";
        let admin = caller.allows(Scope::Admin);
        let pin = match admin {
            true => valid_pin(pin)?,
            // Logged as this read by the person lookup that decides it.
            false => self.served_view(pin, &who, what)?.pin,
        };
        let mut records = access::log_of(&self.store, &pin, 1000).map_err(storage_problem)?;
        if admin {
            access::record_reads(&self.store, &who, what, [&pin]).map_err(storage_problem)?;
        } else {
            records = records.into_iter().map(AccessRecord::for_desk).collect();
        }
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"records": records}),
        ))
    }

    /// The KPIs, small cells suppressed; `suppress=false` only for an `admin` token, and then
    /// every person counted has the read in their access log.
    pub(super) fn get_kpi(
        &self,
        req: &Request<Incoming>,
        caller: &Caller,
    ) -> Result<Response, Problem> {
        let cells = self.suppression(
            req.uri().query(),
            caller,
            "the KPI report with small cells shown",
        )?;
        kpi_answer(
            &self.store,
            self.trust.as_deref(),
            &self.member,
            req,
            &cells,
        )
    }

    /// Every closed month's signed KPI report kept: month, reference date, checkpoint.
    pub(super) fn kpi_reports(&self) -> Result<Response, Problem> {
        let reports: Vec<serde_json::Value> = self
            .store
            .kpi_reports()
            .map_err(storage_problem)?
            .into_iter()
            .filter_map(|(_, jws)| {
                let r = signed_report(&jws).ok()?;
                Some(serde_json::json!({"month": r.month, "asOf": r.as_of,
                    "computedAt": r.computed_at.format(&time::format_description::well_known::Rfc3339).ok(),
                    "checkpointSize": r.checkpoint_size, "checkpointRoot": r.checkpoint_root}))
            })
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"reports": reports}),
        ))
    }

    /// One closed month's signed KPI report, with its JWS.
    pub(super) fn kpi_report(&self, month: &str) -> Result<Response, Problem> {
        let well_formed = month.len() == 7
            && month.as_bytes()[4] == b'-'
            && month
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 4 || b.is_ascii_digit());
        if !well_formed {
            return Err(Problem::new(ProblemKind::BadQuery, "a month is YYYY-MM"));
        }
        let Some(jws) = self.store.kpi_report(month).map_err(storage_problem)? else {
            return Err(Problem::new(
                ProblemKind::NotFound,
                "no signed KPI report of that month: it has not closed, or closed before this node signed a checkpoint",
            ));
        };
        let report = signed_report(&jws)?;
        let raw: serde_json::Value = serde_json::from_slice(&jws).unwrap_or_default();
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"report": report, "jws": raw}),
        ))
    }

    /// Whether small cells are suppressed for this request: always, unless an `admin` token
    /// asks otherwise (`suppress=false`); that read is logged under every person counted
    /// ([`Cells::record`]), since an unsuppressed aggregate can single one out.
    pub(super) fn suppression(
        &self,
        query: Option<&str>,
        caller: &Caller,
        what: &'static str,
    ) -> Result<Cells, Problem> {
        if http::query_param(query, "suppress") != Some("false") {
            return Ok(Cells::Suppressed);
        }
        if !caller.allows(Scope::Admin) {
            return Err(Problem::new(
                ProblemKind::SuppressionNeedsAdmin,
                "suppress=false shows counts that can single out a person: it takes an admin token, and the read is logged in every counted person's access log",
            )
            .with("scope", Scope::Admin.as_str().into()));
        }
        Ok(Cells::Shown {
            reader: caller.reader(),
            what,
        })
    }
}

/// How an aggregate over persons shows its small cells.
pub(crate) enum Cells {
    /// Cells under 5 suppressed: no person can be singled out, no read is logged.
    Suppressed,
    /// Every cell shown, to an `admin` token: a read of every person counted.
    Shown { reader: Reader, what: &'static str },
}

impl Cells {
    /// Whether small cells are suppressed.
    pub(crate) fn suppressed(&self) -> bool {
        matches!(self, Cells::Suppressed)
    }

    /// Log the read of every person in `views` when cells are shown: the very views the
    /// answer is computed from (read once, so nobody counted is missing from the log).
    pub(crate) fn record(
        &self,
        store: &Store,
        views: &[crate::registry::view::PersonView],
    ) -> Result<(), Problem> {
        match self {
            Cells::Suppressed => Ok(()),
            Cells::Shown { reader, what } => {
                access::record_reads(store, reader, what, views.iter().map(|v| &v.pin))
                    .map_err(storage_problem)
            }
        }
    }
}

/// What of a person this node's user is not shown, and why: only that something is, and the
/// reason's class, never what it is. `None` when the consent in force names this node for the
/// user's purpose (nothing is kept from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Hidden {
    pub reason: HiddenReason,
    /// Events other members sent about the person are held here but left out of this answer
    /// (`registry::serve` decided so: the view's `receivedDataWithheld`).
    pub received_left_out: bool,
}

/// Why the consent in force keeps the person's data from this node's user. Other members'
/// nodes decide by the same consent, so for the same reason they send this node nothing new
/// about the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum HiddenReason {
    /// The node holds no consent of the person.
    NoConsent,
    /// The consent in force is a withdrawal.
    ConsentWithdrawn,
    /// The consent in force does not name this node.
    NodeNotNamed,
    /// It names this node, but not for the purpose of the user's token.
    PurposeNotNamed,
}

impl Hidden {
    /// What `view` (as served to `who`) keeps from `who`, reading at node `node`.
    pub(super) fn of(
        view: &crate::registry::view::PersonView,
        node: &MemberId,
        who: &Reader,
    ) -> Option<Hidden> {
        let purpose = [who.purpose.clone().unwrap_or_default()];
        let reason = match &view.consent {
            None => HiddenReason::NoConsent,
            Some(c) if c.names(node, &purpose) => return None,
            Some(c) if !c.granted => HiddenReason::ConsentWithdrawn,
            Some(c) if !c.recipients.contains(node) => HiddenReason::NodeNotNamed,
            Some(_) => HiddenReason::PurposeNotNamed,
        };
        Some(Hidden {
            reason,
            received_left_out: view.received_data_withheld,
        })
    }
}

/// The one answer to a person this node may not serve, whether or not it holds them.
fn nothing_to_serve() -> Problem {
    Problem::new(
                ProblemKind::PersonNotFound,
                "this node holds nothing about that person that this token may read; the request is in the access log",
    )
}

/// The KPI report asked for by `req`'s query (`asOf`, `from`, `to`, `structureAt`, `cohort`,
/// `breakdown`), as JSON or, with `Accept: text/csv`, CSV; cells under 5 suppressed unless
/// `cells` shows them (and then every person counted has the read logged). Served by the local
/// API and by X-Road's `jol-kpi` service.
pub(crate) fn kpi_answer(
    store: &crate::store::Store,
    trust: Option<&crate::trust::manifest::Trust>,
    me: &MemberId,
    req: &Request<Incoming>,
    cells: &Cells,
) -> Result<Response, Problem> {
    let q = req.uri().query();
    let as_of = date_param(q, "asOf")?.unwrap_or_else(today);
    // What the report is computed from is read before the views, which hold at least that.
    let basis = Basis::now(store, me)?;
    let views = all_views(store)?;
    cells.record(store, &views)?;
    let params = crate::registry::kpi::KpiParams {
        as_of,
        employment_service: employment_service(trust, me),
        from: date_param(q, "from")?,
        to: date_param(q, "to")?,
        structure_at: date_param(q, "structureAt")?,
        with_a_match: crate::matching::market::persons_with_a_match_held(store, &views)
            .map_err(storage_problem)?,
    };
    let mut report = crate::registry::kpi::compute(&views, &params, cells.suppressed());
    if let Some(c) = http::query_param(q, "cohort").filter(|c| !c.is_empty()) {
        report.cohorts.retain(|k, _| k == c);
    }
    if let Some(b) = http::query_param(q, "breakdown") {
        let wanted: Vec<&str> = b.split(',').collect();
        report
            .breakdowns
            .retain(|k, _| wanted.contains(&k.as_str()));
    }
    let wants_csv = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        return Ok(http::with_type(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            crate::registry::kpi::to_csv(&report),
        ));
    }
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    body["basis"] = serde_json::to_value(basis).unwrap_or_default();
    Ok(http::json(StatusCode::OK, &body))
}

/// What a KPI report was computed from, for a report taken to a meeting: the node, its latest
/// signed checkpoint (none before the first is signed), and the last log position the views
/// include.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Basis {
    node: MemberId,
    checkpoint: Option<CheckpointRef>,
    views_through: u64,
}

/// A signed checkpoint, named by what it commits to.
#[derive(Debug, serde::Serialize)]
struct CheckpointRef {
    size: u64,
    /// Standard base64, as the checkpoint note writes it.
    root: String,
}

impl Basis {
    fn now(store: &crate::store::Store, node: &MemberId) -> Result<Basis, Problem> {
        let checkpoint = match store.latest_checkpoint().map_err(storage_problem)? {
            None => None,
            Some((_, bytes)) => {
                let c = crate::log::checkpoint::read(&bytes)
                    .map_err(|_| storage_problem(crate::store::StoreError::Corrupt("checkpoint")))?
                    .checkpoint;
                Some(CheckpointRef {
                    size: c.size,
                    root: crate::log::checkpoint::encode_std(&c.root),
                })
            }
        };
        Ok(Basis {
            node: node.clone(),
            checkpoint,
            views_through: crate::registry::projector::cursor(store).map_err(storage_problem)?,
        })
    }
}

/// The employment service: the publisher of employment-status in the manifest, or this node.
fn employment_service(trust: Option<&crate::trust::manifest::Trust>, me: &MemberId) -> MemberId {
    trust
        .and_then(|t| {
            t.held()
                .policy(EventType::EmploymentStatus)
                .and_then(|p| p.publishers.first().cloned())
        })
        .unwrap_or_else(|| me.clone())
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// The PIN a caller named in a path, or the problem naming what is wrong with it (never the
/// value).
pub(crate) fn valid_pin(pin: &str) -> Result<Pin, Problem> {
    pin.parse()
        .map_err(|e: crate::event::identifiers::IdError| {
            Problem::new(ProblemKind::BadPin, e.to_string())
        })
}

pub(crate) fn date_param(query: Option<&str>, name: &str) -> Result<Option<time::Date>, Problem> {
    match http::query_param(query, name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => crate::registry::view::date(v).map(Some).ok_or_else(|| {
            Problem::new(
                ProblemKind::BadQuery,
                format!("`{name}` must be a date YYYY-MM-DD"),
            )
        }),
    }
}

/// The report a stored KPI-report JWS says (its signature is the node's own, checked by whoever
/// reads the JWS with the node's key).
fn signed_report(jws: &[u8]) -> Result<crate::registry::monthly::MonthlyReport, Problem> {
    let parsed = crate::event::jws::Jws::parse(jws, crate::event::jws::Typ::KpiReport)
        .map_err(|_| storage_problem(crate::store::StoreError::Corrupt("KPI report")))?;
    serde_json::from_slice(parsed.payload())
        .map_err(|_| storage_problem(crate::store::StoreError::Corrupt("KPI report")))
}

/// Every person's view, for an answer computed over them all; refused while the views are
/// being projected again from the start of the log ([`views_whole`]).
pub(crate) fn all_views(store: &Store) -> Result<Vec<crate::registry::view::PersonView>, Problem> {
    views_whole(store)?;
    crate::registry::projector::all(store).map_err(storage_problem)
}

/// Nothing about persons is answered from views being projected again from the start of the
/// log (`projector::whole`): a person not reached yet would read as unknown, a figure as
/// smaller than it is. 503 `views-behind`, said alike of everyone.
pub(crate) fn views_whole(store: &Store) -> Result<(), Problem> {
    match crate::registry::projector::whole(store) {
        Ok(true) => Ok(()),
        Ok(false) => Err(views_rebuilding()),
        Err(e) => Err(storage_problem(e)),
    }
}

fn views_rebuilding() -> Problem {
    Problem::new(
        ProblemKind::ViewsBehind,
        "the registry views are being projected again from the log (their file was found damaged or cut short at start); nothing is answered from them until they hold it: retry in a moment",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::access::ReaderId;
    use crate::policy::consent::Consent;
    use crate::registry::view::PersonView;

    fn member(name: &str) -> MemberId {
        format!("central-server/GOV/70000001/{name}")
            .parse()
            .unwrap()
    }

    fn desk(purpose: &str) -> Reader {
        Reader::local(
            ReaderId::Console {
                command: "test".into(),
            },
            None,
            Some(purpose.to_string()),
        )
    }

    fn consent(granted: bool, to: &str, purpose: &str) -> Consent {
        Consent {
            granted,
            purposes: vec![purpose.to_string()],
            recipients: vec![member(to)],
            time: OffsetDateTime::UNIX_EPOCH,
            method: None,
        }
    }

    #[test]
    fn what_is_hidden_is_said_by_reason_class_only() {
        let node = member("employment");
        let mut view = PersonView::new("21503199012345".parse().unwrap());
        let who = desk("EMPLOYMENT_SERVICES");
        let reason = |v: &PersonView| Hidden::of(v, &node, &who).map(|h| h.reason);
        assert_eq!(reason(&view), Some(HiddenReason::NoConsent));
        view.consent = Some(consent(true, "employment", "EMPLOYMENT_SERVICES"));
        assert_eq!(reason(&view), None, "the consent in force names the node");
        view.consent = Some(consent(false, "employment", "EMPLOYMENT_SERVICES"));
        assert_eq!(reason(&view), Some(HiddenReason::ConsentWithdrawn));
        view.consent = Some(consent(true, "education", "EMPLOYMENT_SERVICES"));
        assert_eq!(reason(&view), Some(HiddenReason::NodeNotNamed));
        view.consent = Some(consent(true, "employment", "STATISTICS"));
        view.received_data_withheld = true;
        let hidden = Hidden::of(&view, &node, &who).unwrap();
        assert_eq!(hidden.reason, HiddenReason::PurposeNotNamed);
        assert!(hidden.received_left_out);
        assert_eq!(
            serde_json::to_value(hidden).unwrap(),
            serde_json::json!({"reason": "purpose-not-named", "receivedLeftOut": true})
        );
    }
}
