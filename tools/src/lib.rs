//! jol-tools: what the tests, the benchmarks and the demo need beside the node. The node (the
//! `jol` package: its library and `jol-node`, the binary a member deploys) never links any of
//! it; this crate builds on the node's library and adds:
//!
//! | module | owns |
//! |---|---|
//! | [`synthetic`] | the synthetic returnee population, its events, and the load generator |
//! | [`federation`] | laying out a federation on disk (authority, members' keys, certificates, grants, configs, operator tokens), on a throwaway PostgreSQL cluster if asked |
//! | [`standin`] | a **stand-in** X-Road security server (r1 protocol; not X-Road) |
//! | [`behind_xroad`] | putting a laid-out federation behind stand-in security servers |
//! | [`demo`] | `jol demo`: the three-agency federation on this machine, end to end |
//! | [`bench`] | `jol bench`: the measurements of BENCHMARKS.md |
//! | [`cli`] | the `jol` command line: the node's commands and `demo`, `bench`, `xroad-standin` |
//!
//! The throwaway PostgreSQL cluster is a crate of its own, `throwaway-pg`, because the node's
//! unit tests use it too.

#![forbid(unsafe_code)]

pub mod behind_xroad;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod demo_credential;
pub mod federation;
pub mod standin;
pub mod synthetic;
