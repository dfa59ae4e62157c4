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
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("not an X.509 certificate: {0}")]
    Certificate(String),
    #[error("TLS configuration failed: {0}")]
    Config(String),
}

/// Maps a certificate's public key to the member the manifest registers it for.
pub trait PeerDirectory: Send + Sync {
    fn member_for_key(&self, spki_sha256: &str) -> Option<MemberId>;
}

/// A node's own certificate chain and private key.
pub struct Identity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let read = |path: &Path, detail: String| TlsError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| read(cert, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read(cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(read(cert, "no certificate in the file".into()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read(key, e.to_string()))?;
        Ok(Identity { certs, key })
    }
}

/// Read the first certificate of a PEM text.
pub fn certificate_from_pem(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::Certificate(e.to_string()))
}

/// SHA-256 (hex) of a certificate's SubjectPublicKeyInfo: how the manifest names a TLS key.
pub fn spki_sha256(cert: &[u8]) -> Result<String, TlsError> {
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    Ok(hex(&Sha256::digest(parsed.tbs_certificate.subject_pki.raw)))
}

/// The crypto provider every TLS config of the node uses (ring).
pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
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
        .map_err(|e| TlsError::Config(e.to_string()))?;
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
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.certs, identity.key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
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
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.certs, id.key)
            .map_err(|e| TlsError::Config(e.to_string()))?,
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
