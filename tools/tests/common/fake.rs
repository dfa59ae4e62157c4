//! Pieces for fake peers: a TLS acceptor holding a real member's certificate, and events
//! signed by hand.

use std::sync::Arc;

use jol::event::identifiers::{KeyName, MemberId};
use jol::event::schema::EventType;
use jol::event::Event;
use jol::trust::tls::{self, Identity, PeerDirectory};
use serde_json::Value;

use super::{Federation, EMPLOYMENT, MIGRATION};

/// A directory that takes every client with a federation certificate for employment.
pub struct AnyRegistered;

impl PeerDirectory for AnyRegistered {
    fn member_for_key(&self, _spki: &str) -> Option<MemberId> {
        EMPLOYMENT.parse().ok()
    }
}

/// A TLS acceptor with `agency`'s real certificate and key, requiring federation clients.
pub fn acceptor(fed: &Federation, agency: &str) -> tokio_rustls::TlsAcceptor {
    let identity = Identity::load(
        &fed.path(&format!("{agency}/keys/tls.cert.pem")),
        &fed.path(&format!("{agency}/keys/tls.pem")),
    )
    .unwrap();
    let ca =
        tls::certificate_from_pem(&std::fs::read_to_string(fed.path("authority/ca.pem")).unwrap())
            .unwrap();
    tokio_rustls::TlsAcceptor::from(
        tls::server_config(identity, &ca, Arc::new(AnyRegistered)).unwrap(),
    )
}

/// `event` signed with `key` under `kid` as the example federation's members sign: an SD-JWT
/// (flattened JWS JSON) concealing what its type's schema marks disclosable, every disclosure
/// beside it.
pub fn signed(event: &Event, key: &ed25519_dalek::SigningKey, kid: &str) -> Value {
    let kid: KeyName = kid.parse().unwrap();
    let schemas = jol::event::schema::Schemas::load().unwrap();
    let fields = schemas.disclosable(event.event_type);
    serde_json::from_slice(event.clone().sign_selective(key, &kid, fields).bytes()).unwrap()
}

/// An event from migration.
pub fn event(t: EventType, seq: u64, data: Value) -> Event {
    Event::new(MIGRATION.parse().unwrap(), t, seq, data)
}
