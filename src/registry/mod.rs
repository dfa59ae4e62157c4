//! The read models: the person view assembled from every event this node may see ([`view`]),
//! vacancies and course offers as the node holds them ([`offers`]), which events a credential
//! attests ([`attestations`]), the projector that keeps
//! both up to date with the log ([`projector`]), the KPIs computed from the views ([`kpi`]),
//! and what of a person this node serves its own users ([`serve`]: the one consent decision of
//! [`crate::policy::consent::may_serve`] applied to what the store holds), and finishing an
//! erasure the writer committed ([`erasure`]: the person projected again, or forgotten), and
//! erasing what the manifest's retention no longer lets this node keep ([`retention`]), and the
//! signed KPI report of each closed month, kept as it was ([`monthly`]).
//!
//! Owns: what a person's record *means*. Reads the log; writes only views, offers,
//! attestations and the projector's cursor (through the projector's batch). Sits above [`crate::policy`] and below
//! [`crate::matching`], which scores what these models hold.

pub mod attestations;
pub mod erasure;
pub mod kpi;
pub(crate) mod monthly;
pub mod offers;
pub mod projector;
pub(crate) mod retention;
pub(crate) mod serve;
pub mod view;
