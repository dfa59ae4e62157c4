//! TLS between an information system and its X-Road security server, the way X-Road does it:
//! each side's certificate (usually self-signed) is exchanged out of band and pinned; a peer is
//! accepted when its certificate's key is the pinned one, whoever issued it. TLS 1.2 and 1.3
//! (security servers speak both), handshake signatures checked as usual.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

use super::tls::{provider, spki_sha256, Identity, TlsError};

/// A new self-signed certificate and its key (PEM), for an information system's or a security
/// server's internal TLS.
pub(crate) fn self_signed(name: &str) -> Result<(String, String), TlsError> {
    let key = rcgen::KeyPair::generate().map_err(TlsError::config)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string(), "localhost".into()])
        .map_err(TlsError::config)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(730);
    let cert = params.self_signed(&key).map_err(TlsError::config)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Write a new self-signed certificate for `name`: the key to `key_path` (mode 0600), the
/// certificate beside it (`….cert.pem`); returns the certificate's path.
pub fn write_self_signed(name: &str, key_path: &Path) -> Result<PathBuf, TlsError> {
    let (cert, key) = self_signed(name)?;
    let cert_path = key_path.with_extension("cert.pem");
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), TlsError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let failed = |source: std::io::Error| TlsError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(failed)
    };
    write(key_path, &key, 0o600)?;
    write(&cert_path, &cert, 0o644)?;
    Ok(cert_path)
}

/// The key a pinned certificate (PEM) stands for: SHA-256 of its SubjectPublicKeyInfo, hex.
pub fn pin_of(pem: &str) -> Result<String, TlsError> {
    spki_sha256(&super::tls::certificate_from_pem(pem)?)
}

/// A server that requires a client certificate whose key is `pinned` (the security server's).
pub fn server_config(identity: Identity, pinned: String) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_any(identity, vec![pinned])
}

/// A server that requires a client certificate whose key is one of `pins`.
pub fn server_config_any(
    identity: Identity,
    pins: Vec<String>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(Pinned {
        pins,
        algorithms: provider.signature_verification_algorithms,
    });
    super::tls::server_with(provider, rustls::DEFAULT_VERSIONS, verifier, identity)
}

/// A client that accepts only a server whose certificate key is `pinned`, presenting
/// `identity` when it has one.
pub fn client_config(
    identity: Option<Identity>,
    pinned: String,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(Pinned {
        pins: vec![pinned],
        algorithms: provider.signature_verification_algorithms,
    });
    super::tls::client_with(provider, rustls::DEFAULT_VERSIONS, verifier, identity)
}

/// The server name a client sends; the peer is checked by its pinned key, not by name.
pub(crate) fn server_name() -> ServerName<'static> {
    super::tls::peer_server_name()
}

/// Accepts exactly the pinned keys, in either direction.
struct Pinned {
    pins: Vec<String>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for Pinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pinned")
    }
}

impl Pinned {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let spki = spki_sha256(cert).map_err(|e| rustls::Error::General(e.to_string()))?;
        if self.pins.contains(&spki) {
            Ok(())
        } else {
            tracing::warn!(key = %spki, "refused at the TLS handshake: not the pinned certificate");
            Err(rustls::Error::General(
                "the certificate is not the pinned one".into(),
            ))
        }
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_pins_to_its_key() {
        let (cert, key) = self_signed("ss-employment").unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let pin = pin_of(&cert).unwrap();
        assert_eq!(pin.len(), 64);
        let (other, _) = self_signed("ss-employment").unwrap();
        assert_ne!(pin_of(&other).unwrap(), pin, "a new key, a new pin");
        let verifier = Pinned {
            pins: vec![pin],
            algorithms: provider().signature_verification_algorithms,
        };
        let der = super::super::tls::certificate_from_pem(&cert).unwrap();
        assert!(verifier.check(&der).is_ok());
        let der = super::super::tls::certificate_from_pem(&other).unwrap();
        assert!(verifier.check(&der).is_err());
    }
}
