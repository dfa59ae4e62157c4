//! Matching: from a returnee's competency profile to a job or a course, explained.
//!
//! - [`esco`]: the curated ESCO subset shipped with Jol (skills and occupations with real URIs,
//!   labels in en, ru, ky) and the ISCO-08 hierarchy, for labels and for the demo's generator;
//! - [`profile`]: a person's competency profile, derived from their registry view (each skill
//!   with where it came from and when);
//! - [`score`]: the transparent score and the rankings (a person's matches, a vacancy's
//!   candidates, courses that close a person's gap), and what counts as a match;
//! - [`market`]: aggregates of open demand against the returnees held: who has a match (for
//!   the pathway KPIs) and each region's skills gap.
//!
//! Owns: what a match is and how it is scored. Reads the registry's views and offers
//! ([`crate::registry::offers`]); writes nothing. Person-level answers are consent-checked and
//! access-logged by the API.

pub mod esco;
pub(crate) mod market;
pub mod profile;
pub mod score;
