//! Read access to the verifiable log, served on every face: the latest checkpoint note with its
//! witnesses' co-signatures, hash tiles (c2sp.org/tlog-tiles) of the tree it covers, inclusion
//! proofs and consistency proofs.

use hyper::StatusCode;
use serde_json::json;

use crate::log::checkpoint::{self, encode_hash};
use crate::log::tiles::{TileError, TilePath};
use crate::merkle;
use crate::net::http::{self, Problem, ProblemKind, Response};
use crate::store::{SideLogTree, Store, StoreError};

/// A store failure as a peer is told it: the cause is logged, not sent.
fn storage(e: StoreError) -> Problem {
    http::storage_problem_for_peer(e)
}

fn bad(detail: String) -> Problem {
    Problem::new(ProblemKind::BadProofRequest, detail)
}

/// The size the latest checkpoint covers (proofs are served up to it).
fn checkpointed(store: &Store) -> Result<u64, Problem> {
    Ok(store
        .latest_checkpoint()
        .map_err(storage)?
        .map_or(0, |(s, _)| s))
}

/// `GET …/log/checkpoint`: the latest checkpoint note, its log signature and then every
/// co-signature this node holds for it.
pub(crate) fn checkpoint(store: &Store) -> Result<Response, Problem> {
    match crate::log::checkpoint::latest_cosigned(store).map_err(storage)? {
        Some(note) => {
            let answer = http::with_type(StatusCode::OK, "text/plain; charset=utf-8", note);
            // Mutable: not cached beyond a few seconds (c2sp.org/tlog-tiles).
            Ok(cached(answer, "max-age=2"))
        }
        None => Err(Problem::new(
            ProblemKind::NoCheckpoint,
            "the log has no signed checkpoint yet",
        )),
    }
}

/// `GET …/log/tile/<L>/<N>[.p/<W>]`: a hash tile of the tree the latest checkpoint covers
/// (`path` is what follows `tile/`).
pub(crate) fn tile(store: &Store, path: &str) -> Result<Response, Problem> {
    let segments: Vec<&str> = path.split('/').collect();
    let tile = TilePath::parse(&segments).map_err(tile_problem)?;
    let size = checkpointed(store)?;
    let hashes = tile
        .hashes(store, size)
        .map_err(storage)?
        .map_err(tile_problem)?;
    let answer = http::with_type(StatusCode::OK, "application/octet-stream", hashes.concat());
    // A tile of a given width never changes.
    Ok(cached(answer, "max-age=31536000, immutable"))
}

fn cached(mut answer: Response, policy: &'static str) -> Response {
    answer.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static(policy),
    );
    answer
}

fn tile_problem(e: TileError) -> Problem {
    let kind = match e {
        TileError::Entries => ProblemKind::EntriesNotServed,
        TileError::Path(_) => ProblemKind::BadTilePath,
        TileError::NotCovered(_) => ProblemKind::TileNotCovered,
    };
    Problem::new(kind, e.to_string())
}

/// `GET …/proof/inclusion?leaf=I&size=N`.
pub(crate) fn inclusion(store: &Store, query: Option<&str>) -> Result<Response, Problem> {
    let limit = checkpointed(store)?;
    let size = http::query_u64(query, "size", limit)?;
    let leaf = http::query_u64(query, "leaf", u64::MAX)?;
    if size == 0 || size > limit || leaf >= size {
        return Err(bad(format!(
            "need leaf < size <= {limit} (the latest checkpoint's size)"
        )));
    }
    let proof = merkle::inclusion_proof(store, leaf, size).map_err(storage)?;
    let leaf_hash = store.perfect_leaf(leaf).map_err(storage)?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"leafIndex": leaf, "treeSize": size, "leafHash": encode_hash(&leaf_hash),
        "proof": proof.iter().map(encode_hash).collect::<Vec<_>>()}),
    ))
}

/// `GET /peer/v1/proof/event?sequence=S&size=N`: where this node's own event of sequence `S`
/// sits in its log, and its inclusion proof in the tree of size `N` (default: the latest
/// checkpoint's). Witnesses use it to check that what a feed served them is in the log the
/// checkpoint commits to.
pub(crate) fn event_inclusion(
    store: &Store,
    member: &crate::event::identifiers::MemberId,
    query: Option<&str>,
) -> Result<Response, Problem> {
    let limit = checkpointed(store)?;
    let size = http::query_u64(query, "size", limit)?;
    let sequence = http::query_u64(query, "sequence", 0)?;
    if size == 0 || size > limit {
        return Err(bad(format!(
            "need 0 < size <= {limit} (the latest checkpoint's size)"
        )));
    }
    let position = store
        .position_of_sequence(member, sequence)
        .map_err(storage)?
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::EventNotInLog,
                "this node's log holds no own event with that sequence",
            )
        })?;
    let leaf = position - 1;
    if leaf >= size {
        return Err(Problem::new(
            ProblemKind::NotYetCovered,
            "the event is after the tree size asked for; ask again after a newer checkpoint",
        ));
    }
    let proof = merkle::inclusion_proof(store, leaf, size).map_err(storage)?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"sequence": sequence, "leafIndex": leaf, "treeSize": size,
        "proof": proof.iter().map(encode_hash).collect::<Vec<_>>()}),
    ))
}

/// `GET …/proof/consistency?from=M&to=N[&log=jol-quarantine|jol-access]`: of the event log, or
/// of the side log `log` names (a witness proves with it that a side log's new head extends
/// the one it saw; `add-checkpoint` carries a proof for the event log alone). The answer names
/// the side log it proves, so a node from before side-log proofs, which would answer for the
/// event log, is not taken for a log whose side log forked.
pub(crate) fn consistency(store: &Store, query: Option<&str>) -> Result<Response, Problem> {
    let side = match http::query_param(query, "log") {
        None => None,
        Some(name) => Some(
            checkpoint::side_log_named(name)
                .ok_or_else(|| bad("log must be jol-quarantine or jol-access".into()))?,
        ),
    };
    let limit = match side {
        None => checkpointed(store)?,
        Some(log) => checkpoint::latest(store)
            .map_err(storage)?
            .map_or(0, |c| c.side(log).size),
    };
    let from = http::query_u64(query, "from", 0)?;
    let to = http::query_u64(query, "to", limit)?;
    if from > to || to > limit {
        return Err(bad(format!(
            "need from <= to <= {limit} (the latest checkpoint's size)"
        )));
    }
    let proof = match side {
        None => merkle::consistency_proof(store, from, to),
        Some(log) => merkle::consistency_proof(&SideLogTree(store, log), from, to),
    }
    .map_err(storage)?;
    let proof: Vec<String> = proof.iter().map(encode_hash).collect();
    let answer = match side {
        None => json!({"from": from, "to": to, "proof": proof}),
        Some(log) => {
            json!({"log": checkpoint::side_log_name(log), "from": from, "to": to, "proof": proof})
        }
    };
    Ok(http::json(StatusCode::OK, &answer))
}
