//! TLS for `wss://` servers (and the `https://` sign-in next to them): rustls with the ring
//! provider, trusting the system's certificate store plus, optionally, the certificates of a
//! PEM file (`--ca-cert`: a company CA, or a server's self-signed certificate).
//!
//! One configuration serves both the WebSocket and the REST calls, so the two always trust the
//! same servers. Plain `ws://` needs none: transcripts then travel unencrypted, which is only for
//! a server on the same machine or a lab.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA certificate file {path}: {error}")]
    CaFile { path: PathBuf, error: String },
    #[error(
        "the CA certificate file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    )]
    NoCertificate { path: PathBuf },
    #[error("certificate {index} of {path} cannot be trusted: {error}")]
    BadCertificate {
        path: PathBuf,
        index: usize,
        error: String,
    },
    #[error("no trusted certificate at all: the system store is empty or unreadable and no --ca-cert was given")]
    NoRoots,
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Whether a server address needs TLS (`wss://` or `https://`).
pub fn needs_tls(url: &str) -> bool {
    let url = url.trim_start().to_ascii_lowercase();
    url.starts_with("wss://") || url.starts_with("https://")
}

/// The client configuration: the system's roots, plus those of `extra_ca` (PEM).
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "a system certificate could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system certificates");
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::CaFile {
                path: path.to_path_buf(),
                error: e.to_string(),
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::CaFile {
                path: path.to_path_buf(),
                error: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                path: path.to_path_buf(),
            });
        }
        for (index, cert) in certs.into_iter().enumerate() {
            roots.add(cert).map_err(|e| TlsError::BadCertificate {
                path: path.to_path_buf(),
                index: index + 1,
                error: e.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_secure_schemes_need_tls() {
        assert!(needs_tls("wss://assist.example.com/ws"));
        assert!(needs_tls("WSS://host/ws"));
        assert!(needs_tls("https://host"));
        assert!(!needs_tls("ws://127.0.0.1:7700/ws"));
        assert!(!needs_tls("http://host"));
    }

    #[test]
    fn a_ca_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = client_config(Some(&empty)).expect_err("no certificate");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");

        let missing = dir.path().join("missing.pem");
        let err = client_config(Some(&missing)).expect_err("missing file");
        assert!(matches!(err, TlsError::CaFile { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }
}
