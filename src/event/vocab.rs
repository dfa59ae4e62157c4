//! The closed vocabularies of the event data that code reads as types: dates as the schemas
//! write them (`YYYY-MM-DD`), a job's formality, contract duration and ICSE-18 status, a
//! person's labour-force status and profiling segment, how a consent was given, and what each
//! type's `event` names. Each enum has exactly the values
//! of its list in `schemas/` (the schemas allow nothing outside them, so there is no "other"
//! variant), and serializes as the schema writes it, so what was stored as text reads back.

use serde::{Deserialize, Serialize};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::Date;

/// A date as the schemas write it (`common.v1.json#/$defs/date`).
const DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

time::serde::format_description!(pub iso_date, Date, DATE);

/// A `YYYY-MM-DD` date from the data, as [`iso_date`] reads it, without the sign `[year]` also
/// reads (`+2026-11-30`): the schemas write four digits.
pub(crate) fn date(text: &str) -> Option<Date> {
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Date::parse(text, DATE).ok()
}

/// How formal a job is (`common.v1.json#/$defs/formality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Formality {
    Formal,
    Informal,
    Unknown,
}

/// A person's labour-force status (`employment-status.v1.json`, `labourForceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum LabourForceStatus {
    Employed,
    Unemployed,
    OutsideLabourForce,
}

/// A job's contract duration (`common.v1.json#/$defs/contractDuration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ContractDuration {
    Permanent,
    FixedTerm,
    Seasonal,
    Casual,
    None,
}

/// Status in employment, ICSE-18 (`common.v1.json#/$defs/icse18`), written as its code; the
/// order is the codes' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Icse18 {
    #[serde(rename = "11")]
    EmployerInCorporation,
    #[serde(rename = "12")]
    EmployerInHouseholdEnterprise,
    #[serde(rename = "21")]
    OwnerOperatorOfCorporation,
    #[serde(rename = "22")]
    OwnAccountWorker,
    #[serde(rename = "30")]
    DependentContractor,
    #[serde(rename = "41")]
    PermanentEmployee,
    #[serde(rename = "42")]
    FixedTermEmployee,
    #[serde(rename = "43")]
    ShortTermEmployee,
    #[serde(rename = "44")]
    PaidTrainee,
    #[serde(rename = "51")]
    ContributingFamilyWorker,
}

impl Icse18 {
    /// ICSE-18's independent workers: employers (11, 12) and independent workers without
    /// employees (21, 22).
    pub(crate) fn is_independent(self) -> bool {
        matches!(
            self,
            Icse18::EmployerInCorporation
                | Icse18::EmployerInHouseholdEnterprise
                | Icse18::OwnerOperatorOfCorporation
                | Icse18::OwnAccountWorker
        )
    }
}

/// How a consent was given (`common.v1.json#/$defs/consent`, `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ConsentMethod {
    WrittenSigned,
    ElectronicSignature,
    InPersonRecorded,
    OnlinePortal,
}

/// The employment service's profiling segment, the person's distance from the labour market
/// (`employment-status.v1.json`, `profiling.segment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Segment {
    #[serde(rename = "A_READY")]
    Ready,
    #[serde(rename = "B_SUPPORT")]
    Support,
    #[serde(rename = "C_INTENSIVE")]
    Intensive,
}

/// What an employment-status event says happened (`employment-status.v1.json`, `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum EmploymentEvent {
    JobseekerRegistered,
    Profiled,
    ReferredToTraining,
    ReferredToVacancy,
    EmploymentStarted,
    EmploymentEnded,
    StatusObserved,
    Deregistered,
    RecordCorrected,
}

/// What a training-enrolment event says happened (`training-enrolment.v1.json`, `event`); an
/// enrolment's status is the last of these that is not a correction (at first `Enrolled`, the
/// default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum TrainingEvent {
    #[default]
    Enrolled,
    Completed,
    DroppedOut,
    Failed,
    Certified,
    RecordCorrected,
}

/// What a vacancy event says happened (`vacancy.v1.json`, `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum VacancyEvent {
    #[serde(rename = "VACANCY_OPENED")]
    Opened,
    #[serde(rename = "VACANCY_UPDATED")]
    Updated,
    #[serde(rename = "VACANCY_FILLED")]
    Filled,
    #[serde(rename = "VACANCY_WITHDRAWN")]
    Withdrawn,
}

/// What a course-offer event says happened (`course-offer.v1.json`, `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum CourseEvent {
    #[serde(rename = "COURSE_OFFERED")]
    Offered,
    #[serde(rename = "COURSE_UPDATED")]
    Updated,
    #[serde(rename = "COURSE_CLOSED")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    #[test]
    fn a_date_is_four_digits_of_year_without_a_sign() {
        // Found by fuzz/fuzz_targets/xroad_face.rs: `from=+8927-01-01` was read as a date.
        assert!(date("2026-11-30").is_some());
        for signed in ["+2026-11-30", "-2026-11-30", "+8927-01-01", " 2026-11-30"] {
            assert_eq!(date(signed), None, "{signed}");
        }
    }

    fn schema(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// Every value of the schema's list reads as a variant and writes back as itself, and the
    /// enum has no variant the list lacks.
    fn same_list<T: DeserializeOwned + Serialize>(list: &Value, variants: usize) {
        let values = list.as_array().unwrap();
        for v in values {
            let typed: T = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(&serde_json::to_value(typed).unwrap(), v);
        }
        assert_eq!(values.len(), variants, "{list}");
    }

    #[test]
    fn each_enum_is_its_schema_list() {
        let common = schema(include_str!("../../schemas/common.v1.json"));
        let defs = &common["$defs"];
        let status = schema(include_str!("../../schemas/employment-status.v1.json"));
        same_list::<Formality>(&defs["formality"]["enum"], 3);
        same_list::<ContractDuration>(&defs["contractDuration"]["enum"], 5);
        same_list::<Icse18>(&defs["icse18"]["enum"], 10);
        same_list::<ConsentMethod>(&defs["consent"]["properties"]["method"]["enum"], 4);
        same_list::<LabourForceStatus>(&status["properties"]["labourForceStatus"]["enum"], 3);
        same_list::<Segment>(
            &status["properties"]["profiling"]["properties"]["segment"]["enum"],
            3,
        );
    }

    #[test]
    fn each_event_enum_is_its_schema_s_event_list() {
        let event = |text: &str| schema(text)["properties"]["event"]["enum"].clone();
        let employment = event(include_str!("../../schemas/employment-status.v1.json"));
        let training = event(include_str!("../../schemas/training-enrolment.v1.json"));
        let vacancy = event(include_str!("../../schemas/vacancy.v1.json"));
        let course = event(include_str!("../../schemas/course-offer.v1.json"));
        same_list::<EmploymentEvent>(&employment, 9);
        same_list::<TrainingEvent>(&training, 6);
        same_list::<VacancyEvent>(&vacancy, 4);
        same_list::<CourseEvent>(&course, 3);
        assert!(serde_json::from_value::<Formality>("formal".into()).is_err());
    }

    #[test]
    fn dates_are_written_and_read_as_the_schemas_write_them() {
        #[derive(Serialize, Deserialize)]
        struct Dated {
            #[serde(with = "iso_date")]
            on: Date,
        }
        let d: Dated = serde_json::from_str(r#"{"on":"2024-02-29"}"#).unwrap();
        assert_eq!(date("2024-02-29"), Some(d.on));
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"on":"2024-02-29"}"#);
        assert!(serde_json::from_str::<Dated>(r#"{"on":"2023-02-29"}"#).is_err());
        assert_eq!(date("20240229"), None);
    }
}
