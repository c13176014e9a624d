//! TLS termination (`VIDI_TLS_CERT`, `VIDI_TLS_KEY`): browsers' uploaders (api.video's
//! `@api.video/video-uploader` hard-codes `https://`) and players on https pages need Vidi on
//! https, and a self-hoster should not need a proxy for it. Plain HTTP stays the default.
//!
//! rustls with the ring provider (the one the rest of the binary uses), TLS 1.2 and 1.3, and ALPN
//! offering only `http/1.1`: the accept loop serves HTTP/1.1 alone (see `http.rs` for why), and a
//! client that negotiated h2 would speak a protocol nobody answers.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Reads the certificate chain and the private key (PEM files) and builds the acceptor. Errors
/// name the file and what is wrong with it, so a misconfigured node fails at start, not at the
/// first handshake.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("VIDI_TLS_CERT: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("VIDI_TLS_CERT: {} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        bail!("VIDI_TLS_CERT: {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("VIDI_TLS_KEY: {} holds no readable PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("VIDI_TLS_CERT and VIDI_TLS_KEY do not make a usable pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
