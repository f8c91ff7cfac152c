//! TLS (feature `tls`): rustls with the ring provider, trusting Mozilla's roots and any CA
//! certificates you add (a private CA, a self-signed server).

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use strata_core::StoreError;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Which servers a TLS connection trusts. With TLS configured, the URL's `sslmode` decides
/// whether TLS is tried (`prefer`, the default) or required (`require`); certificates are
/// always verified against these roots and the host name.
#[derive(Clone)]
pub struct TlsOptions {
    mozilla_roots: bool,
    extra_roots_pem: Vec<Vec<u8>>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("mozilla_roots", &self.mozilla_roots)
            .field("extra_root_files", &self.extra_roots_pem.len())
            .finish()
    }
}

impl TlsOptions {
    /// Trust Mozilla's root certificates (the `webpki-roots` set).
    pub fn new() -> Self {
        Self { mozilla_roots: true, extra_roots_pem: Vec::new() }
    }

    /// Also trust the certificates in `pem` (one or more PEM `CERTIFICATE` blocks).
    pub fn with_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }

    /// Trust only the certificates added with [`Self::with_root_certificates_pem`].
    pub fn without_mozilla_roots(mut self) -> Self {
        self.mozilla_roots = false;
        self
    }

    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let invalid = |what: &str, error: &dyn fmt::Display| {
            StoreError::InvalidInput(format!("TLS configuration: {what}: {error}"))
        };
        let mut roots = rustls::RootCertStore::empty();
        if self.mozilla_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &self.extra_roots_pem {
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate = certificate.map_err(|error| invalid("root PEM", &error))?;
                roots.add(certificate).map_err(|error| invalid("root certificate", &error))?;
            }
        }
        if roots.is_empty() {
            return Err(StoreError::InvalidInput("TLS configuration trusts no root".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| invalid("protocol versions", &error))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}
