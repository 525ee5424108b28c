//! Federation: finding the key of a user of another pod (`href` identities, P-A3, and the
//! `from` of `POST /inboxes/:alias`, P-A4).
//!
//! `alias@host[:port]` resolves to `https://host[:port]/aliases/alias` (plain `http://` only in
//! insecure-federation mode). Fetching goes through the [`KeyFetcher`] trait, so the simulator
//! can route it over its own sockets; [`HttpFetcher`] is the real one (hyper + rustls trusting
//! the Mozilla and system roots plus the pod's `--ca-file`s, see [`muttr_node::trust`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
pub use muttr_node::trust::TrustError;

/// Why a key could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The user ID is not `alias@host[:port]`.
    #[error("not a user ID (alias@host[:port]): {0}")]
    BadUserId(String),
    /// The other pod could not be reached or took too long.
    #[error("could not reach {url}: {why}")]
    Unreachable {
        /// What was fetched.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// The other pod answered, but not with a key (404 for an unknown alias, …).
    #[error("{url} answered {status}")]
    Status {
        /// What was fetched.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The answer was too large.
    #[error("{0} answered more than the size limit")]
    TooLarge(String),
    /// The other pod's TLS certificate is not trusted (unknown issuer, wrong name, expired).
    #[error(
        "could not reach {url}: the certificate of {host} is not trusted ({why}); if its CA is \
         private, give it to this pod with --ca-file"
    )]
    Untrusted {
        /// What was fetched.
        url: String,
        /// The host whose certificate failed.
        host: String,
        /// What TLS said.
        why: String,
    },
}

pub use muttr_node::client::UserId;

/// Parses a user ID with the client library's strict parser (one grammar for clients and
/// pods), as a federation error.
pub fn parse_user_id(text: &str) -> Result<UserId, FetchError> {
    UserId::parse(text).map_err(|_| FetchError::BadUserId(text.to_string()))
}

/// Boxed future of a fetch.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<String, FetchError>> + Send + 'a>>;

/// Fetches a URL's body as text.
pub trait KeyFetcher: Send + Sync + 'static {
    /// GETs `url` and returns its body (at most `limit` bytes) when the status is 200.
    fn fetch<'a>(&'a self, url: &'a str, limit: usize, timeout: Duration) -> FetchFuture<'a>;
}

/// The real fetcher: hyper over TCP, TLS by rustls.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpFetcher {
    /// A fetcher for `https://` URLs (and, for insecure federation, `http://` ones) trusting
    /// the default roots ([`muttr_node::trust::default_config`]).
    pub fn new() -> HttpFetcher {
        HttpFetcher::with_tls(muttr_node::trust::default_config())
    }

    /// A fetcher trusting the default roots and the CA certificates of `ca_files` (PEM).
    pub fn trusting(ca_files: &[std::path::PathBuf]) -> Result<HttpFetcher, TrustError> {
        Ok(HttpFetcher::with_tls(muttr_node::trust::client_config(
            ca_files,
        )?))
    }

    /// A fetcher with this TLS client configuration.
    pub fn with_tls(tls: std::sync::Arc<rustls::ClientConfig>) -> HttpFetcher {
        // hyper-rustls sets ALPN itself from the enabled HTTP versions.
        let mut tls = (*tls).clone();
        tls.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        HttpFetcher {
            client: Client::builder(TokioExecutor::new()).build(https),
        }
    }
}

impl Default for HttpFetcher {
    fn default() -> HttpFetcher {
        HttpFetcher::new()
    }
}

impl KeyFetcher for HttpFetcher {
    fn fetch<'a>(&'a self, url: &'a str, limit: usize, timeout: Duration) -> FetchFuture<'a> {
        Box::pin(async move {
            let unreachable = |why: String| FetchError::Unreachable {
                url: url.to_string(),
                why,
            };
            let uri: hyper::Uri = url.parse().map_err(|e| unreachable(format!("{e}")))?;
            let work = async {
                let response = self.client.get(uri.clone()).await.map_err(|e| {
                    let why = muttr_node::trust::describe(&e);
                    match muttr_node::trust::tls_cause(&e) {
                        Some(tls) => FetchError::Untrusted {
                            url: url.to_string(),
                            host: uri.host().unwrap_or_default().to_string(),
                            why: tls.to_string(),
                        },
                        None => unreachable(why),
                    }
                })?;
                if response.status() != hyper::StatusCode::OK {
                    return Err(FetchError::Status {
                        url: url.to_string(),
                        status: response.status().as_u16(),
                    });
                }
                let body = Limited::new(response.into_body(), limit)
                    .collect()
                    .await
                    .map_err(|_| FetchError::TooLarge(url.to_string()))?
                    .to_bytes();
                String::from_utf8(body.to_vec()).map_err(|_| unreachable("not text".into()))
            };
            tokio::time::timeout(timeout, work)
                .await
                .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The grammar itself is tested in node::client::userid; here, that the pod uses it and
    // reports a refusal as a federation error naming the text.
    #[test]
    fn user_ids_use_the_client_grammar_and_fail_as_federation_errors() {
        let u = parse_user_id("bob@127.0.0.1:8080").unwrap();
        assert_eq!(u.key_url(true), "http://127.0.0.1:8080/aliases/bob");
        for bad in ["Alice@host", "alice@host/path", "alice@host:0"] {
            match parse_user_id(bad) {
                Err(FetchError::BadUserId(t)) => assert_eq!(t, bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
