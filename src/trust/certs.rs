//! X.509 with rcgen: the federation CA, a node's TLS key and certificate signing request, and
//! the CA issuing a node certificate from that request (the node's private key never leaves it).

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::event::identifiers::MemberId;

/// Why certificate work failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate work failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the certificate signing request is not valid: {0}")]
    Request(#[source] rcgen::Error),
}

/// A key and its certificate, both PEM.
pub(crate) struct Issued {
    pub(crate) key_pem: String,
    pub(crate) cert_pem: String,
}

/// Create the federation CA (Ed25519), valid for `days`.
pub(crate) fn new_ca(instance: &str, days: i64) -> Result<Issued, CertError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("Jol federation CA ({instance})"),
    );
    dn.push(DnType::OrganizationName, instance);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
    })
}

/// A node's new TLS key (Ed25519, PKCS#8 PEM) and a CSR naming its member id.
pub(crate) fn new_node_key(member: &MemberId) -> Result<(String, String), CertError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = member_dn(member);
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

fn member_dn(member: &MemberId) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, member.as_str());
    dn
}

/// The subject common name of a DER certificate (a node certificate names its member there).
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Issue a node certificate for `member` from its CSR, signed by the CA, valid from
/// `not_before` for `days`.
pub(crate) fn issue_node_cert(
    csr_pem: &str,
    member: &MemberId,
    ca_cert_pem: &str,
    ca_key_pem: &str,
    not_before: OffsetDateTime,
    days: i64,
) -> Result<String, CertError> {
    let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(CertError::Request)?;
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = member_dn(member);
    params.subject_alt_names = vec![SanType::DnsName("jol-node".try_into()?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.is_ca = IsCa::NoCa;
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(days);
    let cert = params.signed_by(&csr.public_key, &issuer)?;
    Ok(cert.pem())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::tls;
    use rcgen::PublicKeyData;

    #[test]
    fn a_node_certificate_is_issued_from_its_request_and_keeps_its_key() {
        let ca = new_ca("central-server", 365).unwrap();
        let member: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let (key_pem, csr) = new_node_key(&member).unwrap();
        let cert = issue_node_cert(
            &csr,
            &member,
            &ca.cert_pem,
            &ca.key_pem,
            OffsetDateTime::now_utc(),
            30,
        )
        .unwrap();
        let der = tls::certificate_from_pem(&cert).unwrap();
        let key = KeyPair::from_pem(&key_pem).unwrap();
        let spki_of_key = crate::event::schema::hex(&<sha2::Sha256 as sha2::Digest>::digest(
            key.subject_public_key_info(),
        ));
        assert_eq!(tls::spki_sha256(&der).unwrap(), spki_of_key);
        assert_eq!(common_name(&der).as_deref(), Some(member.as_str()));
        assert!(issue_node_cert(
            "not a csr",
            &member,
            &ca.cert_pem,
            &ca.key_pem,
            OffsetDateTime::now_utc(),
            30
        )
        .is_err());
    }
}
