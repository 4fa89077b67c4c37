//! TLS for the PostgreSQL driver: a rustls client configuration for each `sslmode`, with libpq's
//! meaning. rustls with the ring provider needs no system library (no libssl-dev), so a fresh machine
//! builds it with nothing but a C compiler. (The MySQL driver brings its own rustls connector; see
//! `mysql.rs`.)

use super::url::{RootCerts, Tls, TlsMode};
use super::{DbError, DbResult, ErrorKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn config_error(message: impl Into<String>) -> DbError {
    DbError::new(ErrorKind::Config, message)
}

/// The one crypto provider of this binary. Also installed as the process default, for the mysql
/// crate's own rustls connector.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let _ = CryptoProvider::install_default((*provider).clone());
    provider
}

/// The rustls configuration for a PostgreSQL `sslmode`; `None` for `disable`.
pub(crate) fn pg_client_config(tls: &Tls) -> DbResult<Option<ClientConfig>> {
    let provider = provider();
    // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
    let mode = match (tls.mode, &tls.roots) {
        (TlsMode::Require, Some(_)) => TlsMode::VerifyCa,
        (mode, _) => mode,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::Disable => return Ok(None),
        TlsMode::Prefer | TlsMode::Require => Arc::new(AnyCertificate(provider.clone())),
        TlsMode::VerifyCa => Arc::new(AnyHostName(webpki(tls, &provider)?)),
        TlsMode::VerifyFull => webpki(tls, &provider)?,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(config))
}

/// libpq's default root certificate file, used by verify-ca/verify-full without `sslrootcert`.
fn default_root_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt"))
}

fn webpki(tls: &Tls, provider: &Arc<CryptoProvider>) -> DbResult<Arc<WebPkiServerVerifier>> {
    let mut roots = RootCertStore::empty();
    let file = match &tls.roots {
        Some(RootCerts::System) => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            None
        }
        Some(RootCerts::File(path)) => Some(path.clone()),
        None => match default_root_file().filter(|p| p.is_file()) {
            Some(path) => Some(path),
            None => {
                return Err(config_error(
                    "sslmode=verify-ca/verify-full needs the CA that signed the server's certificate: add sslrootcert=/path/to/ca.pem (or sslrootcert=system for a public CA)",
                ))
            }
        },
    };
    if let Some(path) = file {
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                config_error(format!(
                    "cannot read sslrootcert {}: {e}; give a PEM file of CA certificates",
                    path.display()
                ))
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(config_error(format!(
                "sslrootcert {} holds no usable CA certificate; give a PEM file",
                path.display()
            )));
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| config_error(format!("TLS setup failed: {e}")))
}

/// `prefer`/`require`: encrypt, trust any certificate (libpq's meaning of these modes). The
/// handshake signatures are still checked, so the server must hold the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the host name is not checked.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // The name is checked last, after the chain: this error means the chain was good.
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
