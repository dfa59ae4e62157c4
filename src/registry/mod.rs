//! The unified registry: consent state per person, the person view assembled from every event
//! this node may see, the projector that keeps views up to date with the log, and the KPIs
//! computed from the views, and what of it this node serves its own users (`serve`: the one
//! consent decision of `consent::may_serve` applied to what the store holds).
//!
//! Owns: what a person's record *means*. Reads the log; writes only views, the person index and
//! consent (consent through the writer's batch, views through the projector's).

pub mod access;
pub mod consent;
pub mod kpi;
pub mod projector;
pub mod serve;
pub mod view;
