//! Mutual TLS between nodes (TLS 1.3, rustls with ring), X-Road style.
//!
//! A certificate must chain to the federation CA, and its public key must be the one the
//! manifest registers for a member: the key, not a DNS name, is a node's identity. The server
//! side refuses at the handshake a client with no certificate, another CA's, or a key the manifest
//! does not know; the client side accepts only the server key registered for the member it meant
//! to reach.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use sha2::{Digest, Sha256};

use crate::event::identifiers::MemberId;
use crate::event::schema::hex;

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The PEM or I/O error.
        source: rustls::pki_types::pem::Error,
    },
    /// A PEM file holds no certificate.
    #[error("{0}: no certificate in the file")]
    NoCertificate(PathBuf),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A certificate could not be read or used.
    #[error("not an X.509 certificate: {0}")]
    Certificate(#[source] BadCertificate),
    /// A TLS configuration could not be built.
    #[error("TLS configuration failed: {0}")]
    Config(#[source] ConfigFailure),
}

/// What was wrong with a certificate, as the library that read it said.
#[derive(Debug, thiserror::Error)]
pub enum BadCertificate {
    /// Not PEM.
    #[error(transparent)]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// Not an X.509 certificate.
    #[error(transparent)]
    Der(#[from] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// Refused by rustls.
    #[error(transparent)]
    Rejected(#[from] rustls::Error),
}

/// Why a TLS configuration or a certificate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFailure {
    /// rustls's error.
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// The verifier could not be built.
    #[error(transparent)]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// rcgen's error, making a certificate.
    #[error(transparent)]
    Generate(#[from] rcgen::Error),
}

impl TlsError {
    /// A certificate that could not be read or used.
    pub(crate) fn certificate(e: impl Into<BadCertificate>) -> TlsError {
        TlsError::Certificate(e.into())
    }

    /// A configuration that could not be built.
    pub(crate) fn config(e: impl Into<ConfigFailure>) -> TlsError {
        TlsError::Config(e.into())
    }
}

/// Maps a certificate's public key to the member the manifest registers it for.
pub trait PeerDirectory: Send + Sync {
    /// The member whose TLS key hashes to `spki_sha256`, if any.
    fn member_for_key(&self, spki_sha256: &str) -> Option<MemberId>;
}

/// A node's own certificate chain and private key.
pub struct Identity {
    pub(crate) certs: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Read the certificate chain and the key from PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let read = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Read { path, source }
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(read(cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read(cert))?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate(cert.to_path_buf()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(read(key))?;
        Ok(Identity { certs, key })
    }
}

/// Read the first certificate of a PEM text.
pub fn certificate_from_pem(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(TlsError::certificate)
}

/// SHA-256 (hex) of a certificate's SubjectPublicKeyInfo: how the manifest names a TLS key.
pub fn spki_sha256(cert: &[u8]) -> Result<String, TlsError> {
    use x509_parser::prelude::FromDer;
    let (_, parsed) =
        x509_parser::certificate::X509Certificate::from_der(cert).map_err(TlsError::certificate)?;
    Ok(hex(&Sha256::digest(parsed.tbs_certificate.subject_pki.raw)))
}

/// The crypto provider every TLS config of the node uses (ring).
pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(TlsError::certificate)?;
    Ok(Arc::new(roots))
}

/// The peer listener's TLS: TLS 1.3 only, client certificate required and checked against the
/// CA and the manifest.
pub fn server_config(
    identity: Identity,
    ca: &CertificateDer<'static>,
    directory: Arc<dyn PeerDirectory>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider.clone())
        .build()
        .map_err(TlsError::config)?;
    let verifier = Arc::new(MemberClientVerifier { inner, directory });
    server_with(provider, &[&rustls::version::TLS13], verifier, identity)
}

/// A server config presenting `identity` that checks clients with `verifier`.
pub(super) fn server_with(
    provider: Arc<CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    verifier: Arc<dyn ClientCertVerifier>,
    identity: Identity,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(TlsError::config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.certs, identity.key)
        .map_err(TlsError::config)?;
    Ok(Arc::new(config))
}

/// A client TLS config that presents `identity` and accepts only a server certificate issued by
/// the CA whose key hashes to `expected_spki` (from the manifest).
pub fn client_config(
    identity: Option<Identity>,
    ca: &CertificateDer<'static>,
    expected_spki: String,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PinnedServerVerifier {
        roots: roots(ca)?,
        expected_spki,
        algorithms: provider.signature_verification_algorithms,
    });
    client_with(provider, &[&rustls::version::TLS13], verifier, identity)
}

/// A client config with `verifier` for the server, presenting `identity` when given.
pub(super) fn client_with(
    provider: Arc<CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(TlsError::config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.certs, id.key)
            .map_err(TlsError::config)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The server name a client puts in its hello; identity is checked by key, not by name.
pub fn peer_server_name() -> ServerName<'static> {
    ServerName::try_from("jol-node")
        .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}

struct MemberClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    directory: Arc<dyn PeerDirectory>,
}

impl fmt::Debug for MemberClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemberClientVerifier")
    }
}

impl ClientCertVerifier for MemberClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|e| tracing::warn!(error = %e, "peer refused at handshake: certificate does not chain to the federation CA"))?;
        let spki = spki_sha256(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        match self.directory.member_for_key(&spki) {
            Some(member) => match crate::trust::certs::common_name(end_entity) {
                Some(named) if named != member.as_str() => {
                    tracing::warn!(key = %spki, registered = %member, named = %named, "peer refused at handshake: its certificate names another member than the one its key is registered for");
                    Err(rustls::Error::General(format!(
                        "the certificate names {named} but its key is registered for {member}"
                    )))
                }
                _ => Ok(verified),
            },
            None => {
                tracing::warn!(key = %spki, "peer refused at handshake: its key is not registered for any member in the manifest");
                Err(rustls::Error::General(
                    "certificate key is not registered for any member in the manifest".into(),
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

struct PinnedServerVerifier {
    roots: Arc<RootCertStore>,
    expected_spki: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for PinnedServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinnedServerVerifier")
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let spki = spki_sha256(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        if spki != self.expected_spki {
            return Err(rustls::Error::General(
                "the server's key is not the one the manifest registers for that member".into(),
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    //! Real TLS 1.3 handshakes in memory: a `ClientConnection` and a `ServerConnection` pumped
    //! into each other, no sockets, with keys and certificates made by `trust::certs` the way a
    //! node and the authority make them.

    use std::collections::HashMap;

    use rustls::{ClientConnection, ConnectionCommon, ServerConnection};
    use time::OffsetDateTime;

    use super::*;
    use crate::trust::certs::{self, Issued};

    const MIGRATION: &str = "central-server/GOV/70000001/migration";
    const EMPLOYMENT: &str = "central-server/GOV/70000002/employment";

    fn member(id: &str) -> MemberId {
        id.parse().expect("a valid member id")
    }

    /// A certificate authority: the federation's, or another one.
    struct Authority(Issued);

    impl Authority {
        fn new(instance: &str) -> Authority {
            Authority(certs::new_ca(instance, 30).expect("a CA"))
        }

        fn cert(&self) -> CertificateDer<'static> {
            certificate_from_pem(&self.0.cert_pem).expect("the CA's certificate")
        }

        /// Certify the key behind `request` under the name `named` (whatever the request says),
        /// valid from an hour ago.
        fn issue(&self, request: &Request, named: &MemberId) -> Node {
            let an_hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
            self.issue_from(request, named, an_hour_ago)
        }

        fn issue_from(
            &self,
            request: &Request,
            named: &MemberId,
            not_before: OffsetDateTime,
        ) -> Node {
            let pem = certs::issue_node_cert(
                &request.csr_pem,
                named,
                &self.0.cert_pem,
                &self.0.key_pem,
                not_before,
                30,
            )
            .expect("a node certificate");
            Node {
                request: request.clone(),
                cert: certificate_from_pem(&pem).expect("the node's certificate"),
            }
        }
    }

    /// A node's own new key and its certificate signing request.
    #[derive(Clone)]
    struct Request {
        key_pem: String,
        csr_pem: String,
    }

    impl Request {
        fn new(member: &MemberId) -> Request {
            let (key_pem, csr_pem) = certs::new_node_key(member).expect("a node key");
            Request { key_pem, csr_pem }
        }
    }

    /// A node's key (with the request that asked for it) and the certificate it presents.
    struct Node {
        request: Request,
        cert: CertificateDer<'static>,
    }

    impl Node {
        fn identity(&self) -> Identity {
            Identity {
                certs: vec![self.cert.clone()],
                key: PrivateKeyDer::from_pem_slice(self.request.key_pem.as_bytes())
                    .expect("the key"),
            }
        }

        fn spki(&self) -> String {
            spki_sha256(&self.cert).expect("the certificate's key")
        }
    }

    /// The manifest's keys, as a test double: SPKI SHA-256 to the member it is registered for.
    #[derive(Default)]
    struct Directory(HashMap<String, MemberId>);

    impl Directory {
        fn register(mut self, node: &Node, member: &MemberId) -> Directory {
            self.0.insert(node.spki(), member.clone());
            self
        }
    }

    impl PeerDirectory for Directory {
        fn member_for_key(&self, spki_sha256: &str) -> Option<MemberId> {
            self.0.get(spki_sha256).cloned()
        }
    }

    /// The federation CA, the migration node serving its peer listener, the employment node
    /// calling it, both keys registered.
    struct Federation {
        ca: Authority,
        server: Node,
        client: Node,
        directory: Arc<Directory>,
    }

    impl Federation {
        fn new() -> Federation {
            let ca = Authority::new("central-server");
            let (migration, employment) = (member(MIGRATION), member(EMPLOYMENT));
            let server = ca.issue(&Request::new(&migration), &migration);
            let client = ca.issue(&Request::new(&employment), &employment);
            let directory = Directory::default()
                .register(&server, &migration)
                .register(&client, &employment);
            Federation {
                ca,
                server,
                client,
                directory: Arc::new(directory),
            }
        }

        /// The peer listener's config, presenting `server`, checking clients by the directory.
        fn server_config(&self, server: &Node) -> Arc<ServerConfig> {
            let directory = self.directory.clone();
            super::server_config(server.identity(), &self.ca.cert(), directory).expect("config")
        }

        /// A caller's config, presenting `client`, that means to reach the key `expected_spki`.
        fn client_config(&self, client: Option<&Node>, expected_spki: String) -> Arc<ClientConfig> {
            let identity = client.map(Node::identity);
            super::client_config(identity, &self.ca.cert(), expected_spki).expect("config")
        }

        /// The employment node calling `server` through the federation's own configs.
        fn call(&self, client: Option<&Node>, server: &Node) -> (Handshake, ServerConnection) {
            let expected = self.server.spki();
            handshake(
                self.client_config(client, expected),
                self.server_config(server),
            )
        }
    }

    /// How a handshake ended.
    #[derive(Debug)]
    enum Handshake {
        Completed,
        RefusedByServer(rustls::Error),
        RefusedByClient(rustls::Error),
    }

    impl Handshake {
        /// The server's refusal, or a panic naming how the handshake ended instead.
        fn server_refusal(self) -> rustls::Error {
            match self {
                Handshake::RefusedByServer(error) => error,
                other => panic!("expected the server to refuse, got {other:?}"),
            }
        }

        /// The client's refusal, or a panic naming how the handshake ended instead.
        fn client_refusal(self) -> rustls::Error {
            match self {
                Handshake::RefusedByClient(error) => error,
                other => panic!("expected the client to refuse, got {other:?}"),
            }
        }
    }

    const UNKNOWN_ISSUER: rustls::Error =
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);

    /// More flights than a TLS 1.3 handshake with client authentication needs.
    const ROUNDS: usize = 8;

    /// Run the handshake between the two configs; the server connection is returned to ask it
    /// what it learned.
    fn handshake(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
    ) -> (Handshake, ServerConnection) {
        let mut client = ClientConnection::new(client, peer_server_name()).expect("a client");
        let mut server = ServerConnection::new(server).expect("a server");
        for _ in 0..ROUNDS {
            if !client.is_handshaking() && !server.is_handshaking() {
                return (Handshake::Completed, server);
            }
            if let Err(e) = send(&mut client, &mut server) {
                return (Handshake::RefusedByServer(e), server);
            }
            if let Err(e) = send(&mut server, &mut client) {
                return (Handshake::RefusedByClient(e), server);
            }
        }
        panic!("the handshake did not end in {ROUNDS} rounds");
    }

    /// Carry everything `from` has to send to `to`, which reads and processes it.
    fn send<A, B>(
        from: &mut ConnectionCommon<A>,
        to: &mut ConnectionCommon<B>,
    ) -> Result<(), rustls::Error> {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).expect("writing to memory");
        }
        let mut wire = wire.as_slice();
        while !wire.is_empty() {
            to.read_tls(&mut wire).expect("reading from memory");
            to.process_new_packets()?;
        }
        Ok(())
    }

    /// Assert that `error` is a refusal the verifiers word themselves (`rustls::Error::General`)
    /// and that it says `why`.
    fn assert_says(error: rustls::Error, why: &str) {
        match error {
            rustls::Error::General(text) => assert!(text.contains(why), "{text:?}"),
            other => panic!("expected the verifier's own refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_member_with_its_registered_key_is_admitted_and_known_by_that_key() {
        let fed = Federation::new();
        let (outcome, server) = fed.call(Some(&fed.client), &fed.server);
        assert!(matches!(outcome, Handshake::Completed), "{outcome:?}");
        let presented = server
            .peer_certificates()
            .and_then(|certs| certs.first())
            .expect("the server holds the client's certificate");
        let key = spki_sha256(presented).expect("its key");
        assert_eq!(key, fed.client.spki());
        assert_eq!(fed.directory.member_for_key(&key), Some(member(EMPLOYMENT)));
    }

    #[test]
    fn a_client_without_a_certificate_is_refused() {
        let fed = Federation::new();
        let (outcome, _) = fed.call(None, &fed.server);
        assert_eq!(
            outcome.server_refusal(),
            rustls::Error::NoCertificatesPresented
        );
    }

    #[test]
    fn a_client_certified_by_another_ca_is_refused_though_its_key_is_registered() {
        let fed = Federation::new();
        let employment = member(EMPLOYMENT);
        let intruder = Authority::new("elsewhere").issue(&fed.client.request, &employment);
        assert_eq!(intruder.spki(), fed.client.spki(), "the registered key");
        let (outcome, _) = fed.call(Some(&intruder), &fed.server);
        assert_eq!(outcome.server_refusal(), UNKNOWN_ISSUER);
    }

    #[test]
    fn a_client_whose_key_is_registered_for_no_member_is_refused() {
        let fed = Federation::new();
        let employment = member(EMPLOYMENT);
        let unregistered = fed.ca.issue(&Request::new(&employment), &employment);
        let (outcome, _) = fed.call(Some(&unregistered), &fed.server);
        assert_says(outcome.server_refusal(), "not registered for any member");
    }

    #[test]
    fn a_client_whose_certificate_names_another_member_than_its_key_is_refused() {
        let fed = Federation::new();
        // The employment node's registered key, certified by the federation CA as migration.
        let impostor = fed.ca.issue(&fed.client.request, &member(MIGRATION));
        let (outcome, _) = fed.call(Some(&impostor), &fed.server);
        let why = format!("names {MIGRATION} but its key is registered for {EMPLOYMENT}");
        assert_says(outcome.server_refusal(), &why);
    }

    #[test]
    fn the_client_refuses_a_server_whose_key_is_not_the_one_registered_for_its_member() {
        let fed = Federation::new();
        let migration = member(MIGRATION);
        // Certified by the federation CA as migration, but not migration's registered key.
        let impostor = fed.ca.issue(&Request::new(&migration), &migration);
        let (outcome, _) = fed.call(Some(&fed.client), &impostor);
        assert_says(
            outcome.client_refusal(),
            "not the one the manifest registers",
        );
    }

    #[test]
    fn the_client_refuses_the_registered_server_key_certified_by_another_ca() {
        let fed = Federation::new();
        let impostor = Authority::new("elsewhere").issue(&fed.server.request, &member(MIGRATION));
        assert_eq!(impostor.spki(), fed.server.spki(), "the registered key");
        let (outcome, _) = fed.call(Some(&fed.client), &impostor);
        assert_eq!(outcome.client_refusal(), UNKNOWN_ISSUER);
    }

    /// The DER of an Ed25519 SubjectPublicKeyInfo before its 32 key bytes (RFC 8410, section 4):
    /// SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (no unused bits) }.
    const ED25519_SPKI_PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];

    #[test]
    fn spki_sha256_is_the_sha256_of_the_subject_public_key_info_whatever_the_certificate() {
        let fed = Federation::new();
        let (_, parsed) = x509_parser::parse_x509_certificate(&fed.client.cert).expect("X.509");
        let public_key = &parsed.tbs_certificate.subject_pki;
        assert_eq!(
            public_key.algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ED25519
        );
        let key_bytes: &[u8] = &public_key.subject_public_key.data;
        assert_eq!(key_bytes.len(), 32, "an Ed25519 public key");
        let spki = [ED25519_SPKI_PREFIX.as_slice(), key_bytes].concat();
        let expected = hex(&Sha256::digest(&spki));
        assert_eq!(spki_sha256(&fed.client.cert).expect("the key"), expected);

        let employment = member(EMPLOYMENT);
        let renewal = OffsetDateTime::now_utc() + time::Duration::days(1);
        let again = fed.ca.issue_from(&fed.client.request, &employment, renewal);
        assert_ne!(again.cert, fed.client.cert, "another certificate");
        assert_eq!(again.spki(), expected, "for the same key");
        let other_key = fed.ca.issue(&Request::new(&employment), &employment);
        assert_ne!(other_key.spki(), expected, "another key, another hash");
    }

    #[test]
    fn what_is_not_a_certificate_keeps_the_parser_s_error_as_its_source() {
        let not_pem = certificate_from_pem("no PEM here").unwrap_err();
        assert!(
            matches!(not_pem, TlsError::Certificate(BadCertificate::Pem(_))),
            "{not_pem}"
        );
        let not_der = spki_sha256(b"not DER").unwrap_err();
        let source = std::error::Error::source(&not_der).expect("a source");
        assert!(
            matches!(source.downcast_ref(), Some(BadCertificate::Der(_))),
            "{source}"
        );
        assert_eq!(
            not_der.to_string(),
            format!("not an X.509 certificate: {source}")
        );
    }
}
