//! Policy every path that hands out or writes personal data obeys, below the writer and every
//! face: a person's consent and **the one decision** of what may be served to whom
//! ([`consent::may_serve`]), and the access log every read is written to first ([`access`]).
//!
//! Owns: who may have which event about a person, and the record that they had it. Knows
//! nothing of views, KPIs or HTTP; the writer, the feed, the faces and the read models ask it.

pub(crate) mod access;
pub(crate) mod consent;
