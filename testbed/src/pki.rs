//! [`Pki`]: the private certificate authority of an HTTPS scenario (`https = true`), made
//! fresh for each run — the situation of pods whose operators run their own CA. Each pod gets
//! a server certificate for its IP address, signed by the CA; pods and clients are given the
//! CA's certificate with `--ca-file` and trust nothing else for each other.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA: its key (in memory) and certificate (on disk, for `--ca-file`).
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub ca_file: PathBuf,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// A new CA; its certificate is written in `dir` as `ca.pem`.
    pub fn new(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "muttr testbed CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).with_context(|| ca_file.display().to_string())?;
        Ok(Pki {
            issuer: Issuer::new(params, key),
            ca_file,
        })
    }

    /// A server certificate for `host` (an IP address or a name) signed by the CA, written in
    /// `dir` as `cert.pem` and `key.pem`; answers their paths.
    pub fn server(&self, host: &str, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![host.to_string()])?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, cert.pem())?;
        std::fs::write(&key_file, key.serialize_pem())?;
        Ok((cert_file, key_file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_certificates_chain_to_the_ca_for_their_address() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path()).unwrap();
        let (cert, _) = pki.server("10.77.0.9", dir.path()).unwrap();
        // rustls' own verifier: valid for the pod's address, and not for another.
        let mut store = rustls::RootCertStore::empty();
        store
            .add(CertificateDer::from_pem_file(&pki.ca_file).unwrap())
            .unwrap();
        let v = rustls::client::WebPkiServerVerifier::builder(std::sync::Arc::new(store))
            .build()
            .unwrap();
        let leaf = CertificateDer::from_pem_file(&cert).unwrap();
        let now = UnixTime::now();
        let ok = ServerName::try_from("10.77.0.9").unwrap();
        assert!(v.verify_server_cert(&leaf, &[], &ok, &[], now).is_ok());
        let other = ServerName::try_from("10.77.0.10").unwrap();
        assert!(v.verify_server_cert(&leaf, &[], &other, &[], now).is_err());
    }
}
