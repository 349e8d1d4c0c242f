//! A throwaway PKI for TLS tests: a CA made at run time and a server
//! certificate it signs for `localhost` and `127.0.0.1` (rcgen), and the
//! client side as rustls configures it.

use crate::{HarnessError, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The server name the certificate is issued for.
pub const SERVER_NAME: &str = "localhost";

/// A CA and one server certificate it signed, all in memory.
pub struct TestPki {
    ca_der: Vec<u8>,
    server_cert_pem: String,
    server_key_pem: String,
}

fn tls_err(what: &str) -> impl Fn(rcgen::Error) -> HarnessError + '_ {
    move |e| HarnessError(format!("test PKI: {what}: {e}"))
}

impl TestPki {
    /// Makes a new CA and a server certificate for [`SERVER_NAME`] and
    /// 127.0.0.1.
    pub fn new() -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err("CA"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "envoy-harness test CA");
        let ca_key = KeyPair::generate().map_err(tls_err("CA key"))?;
        let ca = ca_params.self_signed(&ca_key).map_err(tls_err("CA"))?;
        let mut params =
            CertificateParams::new(vec![SERVER_NAME.to_string()]).map_err(tls_err("server"))?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let key = KeyPair::generate().map_err(tls_err("server key"))?;
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(tls_err("server"))?;
        Ok(TestPki {
            ca_der: ca.der().to_vec(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        })
    }

    /// The server certificate (PEM), for Envoy's `DownstreamTlsContext`.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// The server's private key (PEM).
    pub fn server_key_pem(&self) -> &str {
        &self.server_key_pem
    }

    /// A rustls client configuration trusting only this CA and offering
    /// these ALPN protocols (e.g. `h2`).
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(self.ca_der.clone()))
            .map_err(|e| HarnessError(format!("test PKI: root: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HarnessError(format!("rustls: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}
