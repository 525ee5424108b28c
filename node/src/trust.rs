//! Whom an HTTPS client believes: the TLS client configuration of every outgoing `https://` /
//! `wss://` connection — `muttr` to its pod, a pod fetching another pod's keys (P-A3).
//!
//! Trust roots are, together: the Mozilla root store compiled in (`webpki-roots`, so a fresh
//! container with no CA bundle still reaches public pods), the operating system's store
//! (`rustls-native-certs`: what an operator installed with `update-ca-certificates`), and any
//! PEM files given with `--ca-file` — the way to federate pods whose certificates come from a
//! private CA or are self-signed. A certificate is checked against the name dialled, as usual.
//!
//! [`describe`] turns a connection error into one line that keeps the reason TLS gave
//! ("invalid peer certificate: UnknownIssuer"), which generic HTTP errors hide.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why trust roots could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A `--ca-file` could not be read or parsed.
    #[error("{path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// A `--ca-file` holds no certificate (a key, an empty file, DER instead of PEM).
    #[error("{0}: no PEM certificate in the file")]
    Empty(PathBuf),
}

/// The certificates of one PEM file (a CA, a chain, or a self-signed server certificate).
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let bad = |why: String| TrustError::CaFile {
        path: path.to_path_buf(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(TrustError::Empty(path.to_path_buf()));
    }
    Ok(certs)
}

/// The roots: webpki's, the system's, and those of `ca_files`.
pub fn roots(ca_files: &[PathBuf]) -> Result<RootCertStore, TrustError> {
    let mut store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "a system certificate could not be loaded");
    }
    let (added, ignored) = store.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system trust roots");
    for path in ca_files {
        for cert in read_pem_certs(path)? {
            store.add(cert).map_err(|e| TrustError::CaFile {
                path: path.clone(),
                why: format!("not a usable CA certificate: {e}"),
            })?;
        }
    }
    Ok(store)
}

/// A client configuration trusting [`roots`] of `ca_files`, speaking HTTP/1.1 (WebSocket
/// upgrades need it).
pub fn client_config(ca_files: &[PathBuf]) -> Result<Arc<rustls::ClientConfig>, TrustError> {
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots(ca_files)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The configuration without extra CA files, built once per process.
pub fn default_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| client_config(&[]).expect("no CA file to fail on"))
        .clone()
}

/// One line for an error and its causes (`a: b: c`), without repeating a cause that its
/// parent already printed. HTTP client errors say "client error (Connect)" and keep the TLS
/// reason in their sources; this keeps it.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The TLS error somewhere in `e`'s chain of causes, if the failure was TLS's (an untrusted
/// certificate, a name mismatch, an expired certificate).
pub fn tls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // tokio-rustls reports TLS failures as an io::Error wrapping the rustls::Error, and
        // connectors may wrap that io::Error in another; an io::Error's `source()` skips the
        // error it wraps, so look inside it.
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = tls_cause(inner)
        {
            return Some(tls);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_adds_to_the_default_roots() {
        let base = roots(&[]).unwrap().len();
        assert!(base >= webpki_roots::TLS_SERVER_ROOTS.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        // Any self-signed certificate serves as a root.
        let ca = rcgen::generate_simple_self_signed(vec!["pod.test".into()]).unwrap();
        std::fs::write(&path, ca.cert.pem()).unwrap();
        assert_eq!(roots(std::slice::from_ref(&path)).unwrap().len(), base + 1);
    }

    #[test]
    fn unreadable_or_empty_ca_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = roots(std::slice::from_ref(&missing)).unwrap_err();
        assert!(matches!(e, TrustError::CaFile { .. }), "{e:?}");
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = roots(std::slice::from_ref(&empty)).unwrap_err();
        assert!(matches!(e, TrustError::Empty(_)), "{e:?}");
    }

    #[test]
    fn tls_causes_are_found_through_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls.clone());
        assert_eq!(tls_cause(&io), Some(&tls));
        let twice = std::io::Error::other(io);
        assert_eq!(tls_cause(&twice), Some(&tls));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls_cause(&plain), None);
        assert!(
            describe(&twice).contains("UnknownIssuer"),
            "{}",
            describe(&twice)
        );
    }
}
