//! The registry side, through `oci-client`: tag resolution, manifests, the config, and layer
//! blobs as byte streams. One client per credential, so a token obtained with one Service's
//! pull secret is never used for another's pulls.

use std::future::Future;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lru::LruCache;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::debug;

use crate::credentials::{credentials_for, Credential, PullSecret};
use crate::Error;

/// How to reach registries: plain HTTP for some, extra CAs for the others.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`, as in image references) spoken to over plain HTTP.
    pub plain_http: Vec<String>,
    /// PEM files of certificate authorities trusted for registries, besides the system's.
    pub ca_files: Vec<PathBuf>,
    /// Time to connect to a registry.
    #[serde(with = "gaia_contract::duration::serde_duration")]
    pub connect_timeout: Duration,
    /// Time a registry may stay silent on an open connection.
    #[serde(with = "gaia_contract::duration::serde_duration")]
    pub read_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            plain_http: Vec::new(),
            ca_files: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(5),
        }
    }
}

/// The registry (`host[:port]`) of an image reference; `None` when it does not parse.
pub fn registry_of(image: &str) -> Option<String> {
    image
        .parse::<Reference>()
        .ok()
        .map(|r| r.registry().to_string())
}

/// Installs ring as rustls' process-wide provider, unless one is installed already (reqwest is
/// built without a provider of its own, like the rest of Gaia).
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Clients by credential (anonymous is `None`), bounded.
type Clients = LruCache<Option<(String, String)>, Arc<Client>>;

/// The registries, with the configured options.
pub struct Registries {
    config_base: RegistryOptions,
    certificates: Vec<Certificate>,
    clients: Mutex<Clients>,
}

/// An image whose manifest digest is known, with the credential that reads it.
#[derive(Clone)]
pub struct Resolved {
    /// As written in the Service (`registry/repo:tag`).
    pub reference: String,
    /// `sha256:...` of the manifest (the platform's, for an index).
    pub digest: String,
    /// The reference pinned to the digest.
    pub pinned: Reference,
    client: Arc<Client>,
    auth: RegistryAuth,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} ({:?})", self.reference, self.digest, self.auth)
    }
}

fn registry_error(registry: &str, e: OciDistributionError) -> Error {
    Error::Registry {
        registry: registry.to_string(),
        message: match e {
            OciDistributionError::RequestError(r) => {
                // reqwest's Display hides the cause (connection refused, timeout).
                let mut msg = r.to_string();
                let mut src = std::error::Error::source(&r);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                msg
            }
            other => other.to_string(),
        },
    }
}

fn is_unauthorised(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown
            )
        }),
        _ => false,
    }
}

impl Registries {
    /// Reads the CA files; an unreadable one is a configuration error.
    pub fn new(options: RegistryOptions) -> Result<Registries, Error> {
        ensure_crypto_provider();
        let mut certificates = Vec::new();
        for path in &options.ca_files {
            let data = std::fs::read(path)
                .map_err(|e| Error::Client(format!("CA file {}: {e}", path.display())))?;
            if !data
                .windows(27)
                .any(|w| w == b"-----BEGIN CERTIFICATE-----")
            {
                return Err(Error::Client(format!(
                    "CA file {}: no PEM certificate in it",
                    path.display()
                )));
            }
            certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let registries = Registries {
            config_base: options,
            certificates,
            clients: Mutex::new(LruCache::new(NonZeroUsize::MIN.saturating_add(63))),
        };
        // Building a client loads the system's CA roots (hundreds of milliseconds in a debug
        // build): the anonymous one is made now, not in the first review.
        registries.client(None);
        Ok(registries)
    }

    fn client(&self, credential: Option<&Credential>) -> Arc<Client> {
        let key = credential.map(|c| (c.username.clone(), c.password.clone()));
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Arc::clone(c);
        }
        let o = &self.config_base;
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(o.plain_http.clone()),
            extra_root_certificates: self.certificates.clone(),
            connect_timeout: Some(o.connect_timeout),
            read_timeout: Some(o.read_timeout),
            ..ClientConfig::default()
        };
        let client = Arc::new(Client::new(config));
        clients.put(key, Arc::clone(&client));
        client
    }

    /// Tries each credential for `registry/repository` (the pull secrets', then anonymous) until
    /// one is not refused.
    async fn with_credentials<T, F, Fut>(
        &self,
        reference: &Reference,
        secrets: &[PullSecret],
        mut call: F,
    ) -> Result<(T, Arc<Client>, RegistryAuth), Error>
    where
        F: FnMut(Arc<Client>, RegistryAuth) -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let creds = credentials_for(secrets, reference.registry(), reference.repository());
        let attempts: Vec<Option<&Credential>> = creds
            .iter()
            .map(Some)
            .chain(std::iter::once(None))
            .collect();
        let mut refused = Vec::new();
        for cred in attempts {
            let client = self.client(cred);
            let auth = match cred {
                Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
                None => RegistryAuth::Anonymous,
            };
            match call(Arc::clone(&client), auth.clone()).await {
                Ok(v) => return Ok((v, client, auth)),
                Err(e) if is_unauthorised(&e) => {
                    debug!(credential = ?cred, "refused");
                    refused
                        .push(cred.map_or_else(|| "anonymous".to_string(), |c| c.origin.clone()));
                }
                Err(e) if is_not_found(&e) => {
                    return Err(Error::NotFound {
                        reference: reference.whole(),
                    })
                }
                Err(e) => return Err(registry_error(reference.registry(), e)),
            }
        }
        Err(Error::Registry {
            registry: reference.registry().to_string(),
            message: format!(
                "access to {} refused (tried {})",
                reference.repository(),
                refused.join(", ")
            ),
        })
    }

    /// The manifest digest of `image` (a HEAD request for a tag; nothing for a digest).
    pub async fn resolve(&self, image: &str, secrets: &[PullSecret]) -> Result<Resolved, Error> {
        let reference: Reference =
            image
                .parse()
                .map_err(|e: oci_client::ParseError| Error::Reference {
                    reference: image.to_string(),
                    message: e.to_string(),
                })?;
        let (digest, client, auth) = self
            .with_credentials(&reference, secrets, |client, auth| {
                let r = reference.clone();
                async move {
                    match r.digest() {
                        // Pinned: no round trip, but the credential is checked on the first pull.
                        Some(d) => Ok(d.to_string()),
                        None => client.fetch_manifest_digest(&r, &auth).await,
                    }
                }
            })
            .await?;
        let pinned = Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            digest.clone(),
        );
        Ok(Resolved {
            reference: image.to_string(),
            digest,
            pinned,
            client,
            auth,
        })
    }

    /// Re-tries the credentials for a pinned image whose first choice was never checked.
    pub async fn manifest(
        &self,
        resolved: &mut Resolved,
        secrets: &[PullSecret],
    ) -> Result<(OciImageManifest, String), Error> {
        let first = resolved
            .client
            .pull_image_manifest(&resolved.pinned, &resolved.auth)
            .await;
        match first {
            Ok(m) => Ok(m),
            Err(e) if is_unauthorised(&e) => {
                let pinned = resolved.pinned.clone();
                let (m, client, auth) = self
                    .with_credentials(&pinned, secrets, |client, auth| {
                        let r = pinned.clone();
                        async move { client.pull_image_manifest(&r, &auth).await }
                    })
                    .await?;
                resolved.client = client;
                resolved.auth = auth;
                Ok(m)
            }
            Err(e) if is_not_found(&e) => Err(Error::NotFound {
                reference: resolved.reference.clone(),
            }),
            Err(e) => Err(registry_error(resolved.pinned.registry(), e)),
        }
    }

    /// A blob (config or layer) as a stream of chunks sent into `tx`, at most `limit` bytes;
    /// stops when the receiver goes away.
    pub async fn stream_blob(
        resolved: &Resolved,
        descriptor: &OciDescriptor,
        tx: mpsc::Sender<std::io::Result<bytes::Bytes>>,
        downloaded: Arc<std::sync::atomic::AtomicU64>,
        limit: u64,
    ) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        // Authentication happened on the manifest; blobs reuse the client's token.
        let sized = resolved
            .client
            .pull_blob_stream(&resolved.pinned, descriptor)
            .await
            .map_err(|e| registry_error(resolved.pinned.registry(), e))?;
        let mut stream = sized.stream;
        while let Some(chunk) = stream.next().await {
            let item = match chunk {
                Ok(b) => {
                    let total =
                        downloaded.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
                    if total > limit {
                        let _ = tx
                            .send(Err(std::io::Error::other("download budget spent")))
                            .await;
                        return Ok(());
                    }
                    Ok(b)
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The receiving end of [`Registries::stream_blob`] as a blocking `Read`, for the tar walk on a
/// blocking thread.
pub struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<std::io::Result<bytes::Bytes>>) -> ChannelReader {
        ChannelReader {
            rx,
            current: bytes::Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
