//! Self-managed webhook TLS: a CA and a serving certificate kept in a Secret, and the
//! MutatingWebhookConfiguration's `caBundle` kept in step, with no cert-manager.
//!
//! Every replica runs the same loop; the Secret is the single source of truth, so replicas
//! agree on one certificate:
//!
//! 1. read the Secret; if it is missing, unreadable, or past two thirds of its validity, write a
//!    new CA and certificate with an optimistic-concurrency create/replace. A replica that loses
//!    the race gets a conflict, re-reads, and uses the winner's certificate;
//! 2. make every webhook of the configuration whose clientConfig names our Service trust the CA
//!    bundle (the new CA, plus the previous one while it may still be in use, so a rotation
//!    never breaks a review in flight);
//! 3. serve the Secret's certificate, reloading when it changes.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tracing::{info, warn};

use crate::Error;

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
/// Annotation on the Secret: when the serving certificate expires (RFC 3339).
pub const NOT_AFTER: &str = "gaia.dev/not-after";
/// Annotation on the Secret: when the certificate was issued (RFC 3339).
pub const NOT_BEFORE: &str = "gaia.dev/not-before";

/// What to manage.
#[derive(Debug, Clone)]
pub struct ManagedTls {
    pub namespace: String,
    pub secret: String,
    /// The webhook's Service: the certificate is issued for its DNS names.
    pub service: String,
    /// The MutatingWebhookConfiguration whose caBundle is kept in step.
    pub webhook_configuration: String,
    pub validity: Duration,
    /// How often the Secret and the caBundle are checked.
    pub check_every: Duration,
}

/// A certificate and key to serve, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingPair {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_bundle_pem: String,
}

/// A freshly issued CA and serving certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

impl ManagedTls {
    /// The DNS names the apiserver uses to reach the Service.
    pub fn dns_names(&self) -> Vec<String> {
        let (s, n) = (&self.service, &self.namespace);
        vec![
            s.clone(),
            format!("{s}.{n}"),
            format!("{s}.{n}.svc"),
            format!("{s}.{n}.svc.cluster.local"),
        ]
    }
}

/// Issues a new CA and a serving certificate for `dns_names`, valid from `now` for `validity`.
pub fn issue(dns_names: &[String], now: Timestamp, validity: Duration) -> Result<Issued, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let tls = |e: rcgen::Error| Error::Tls(format!("issuing the webhook certificate: {e}"));
    let not_before = now - jiff::SignedDuration::from_secs(300); // clock skew
    let not_after =
        now + jiff::SignedDuration::try_from(validity).map_err(|e| Error::Tls(e.to_string()))?;
    let to_time = |t: Timestamp| {
        time::OffsetDateTime::from_unix_timestamp(t.as_second())
            .map_err(|e| Error::Tls(format!("certificate time: {e}")))
    };

    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("gaia-webhook CA {}", now.as_second()),
    );
    ca.not_before = to_time(not_before)?;
    ca.not_after = to_time(not_after)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(tls)?;
    let ca_cert_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(tls)?;
    let mut leaf = CertificateParams::new(dns_names.to_vec()).map_err(tls)?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns_names.get(2).cloned().unwrap_or_default(),
    );
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = to_time(not_before)?;
    leaf.not_after = to_time(not_after)?;
    let cert = leaf.signed_by(&key, &issuer).map_err(tls)?;
    Ok(Issued {
        ca_cert_pem,
        ca_key_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_before,
        not_after,
    })
}

/// Whether the Secret's certificate must be replaced: missing fields, unreadable dates, or less
/// than a third of its validity left.
pub fn needs_renewal(secret: &Secret, now: Timestamp) -> bool {
    let data = secret.data.clone().unwrap_or_default();
    if [CA_CERT, TLS_CERT, TLS_KEY]
        .iter()
        .any(|k| data.get(*k).is_none_or(|v| v.0.is_empty()))
    {
        return true;
    }
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let parse = |k: &str| annotations.get(k).and_then(|v| v.parse::<Timestamp>().ok());
    let (Some(not_before), Some(not_after)) = (parse(NOT_BEFORE), parse(NOT_AFTER)) else {
        return true;
    };
    if not_after <= not_before {
        return true;
    }
    let lifetime = not_after.as_second() - not_before.as_second();
    let left = not_after.as_second() - now.as_second();
    left * 3 < lifetime
}

/// The serving pair stored in a Secret.
pub fn serving_pair(secret: &Secret) -> Option<ServingPair> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(ServingPair {
        cert_pem: text(TLS_CERT)?,
        key_pem: text(TLS_KEY)?,
        ca_bundle_pem: text(CA_CERT)?,
    })
}

/// The Secret holding `issued`; the CA bundle keeps the previous CA so that reviews signed with
/// the old certificate still verify while the rotation spreads.
pub fn secret_for(managed: &ManagedTls, issued: &Issued, previous_ca: Option<&str>) -> Secret {
    let mut bundle = issued.ca_cert_pem.clone();
    if let Some(prev) = previous_ca {
        // keep only the newest previous CA (the first PEM block of the old bundle)
        if let Some(end) = prev.find("-----END CERTIFICATE-----") {
            let first = &prev[..end + "-----END CERTIFICATE-----".len()];
            if !bundle.contains(first) {
                bundle.push('\n');
                bundle.push_str(first.trim());
                bundle.push('\n');
            }
        }
    }
    let data: BTreeMap<String, ByteString> = [
        (CA_CERT, bundle),
        (CA_KEY, issued.ca_key_pem.clone()),
        (TLS_CERT, issued.cert_pem.clone()),
        (TLS_KEY, issued.key_pem.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(managed.secret.clone()),
            namespace: Some(managed.namespace.clone()),
            annotations: Some(BTreeMap::from([
                (NOT_BEFORE.to_string(), issued.not_before.to_string()),
                (NOT_AFTER.to_string(), issued.not_after.to_string()),
            ])),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "gaia-webhook".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Makes sure the Secret holds a valid certificate and returns it. Safe to call from several
/// replicas at once: exactly one write wins; the others read the winner's certificate.
pub async fn ensure_certificate(
    client: &Client,
    managed: &ManagedTls,
) -> Result<ServingPair, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &managed.namespace);
    for _attempt in 0..CONFLICT_ATTEMPTS {
        let now = Timestamp::now();
        let existing = api.get_opt(&managed.secret).await?;
        if let Some(secret) = &existing {
            if !needs_renewal(secret, now) {
                if let Some(pair) = serving_pair(secret) {
                    return Ok(pair);
                }
            }
        }
        let issued = issue(&managed.dns_names(), now, managed.validity)?;
        let previous_ca = existing
            .as_ref()
            .and_then(serving_pair)
            .map(|p| p.ca_bundle_pem);
        let mut wanted = secret_for(managed, &issued, previous_ca.as_deref());
        let written = match &existing {
            None => api.create(&PostParams::default(), &wanted).await,
            Some(old) => {
                // replace with the resourceVersion we read: a concurrent writer makes this fail
                wanted.metadata.resource_version = old.metadata.resource_version.clone();
                api.replace(&managed.secret, &PostParams::default(), &wanted)
                    .await
            }
        };
        match written {
            Ok(secret) => {
                info!(secret = %managed.secret, not_after = %issued.not_after, "issued a new webhook certificate");
                if let Some(pair) = serving_pair(&secret) {
                    return Ok(pair);
                }
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                info!(secret = %managed.secret, "another replica wrote the certificate first; using theirs");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Tls(format!(
        "could not settle the certificate in Secret {}/{} after {CONFLICT_ATTEMPTS} attempts",
        managed.namespace, managed.secret
    )))
}

/// Sets `caBundle` on every webhook of the configuration that points at our Service.
/// Returns whether anything changed. Safe to call from several replicas at once: the write is
/// conditional on the resourceVersion read, and a conflict (another replica, or an operator,
/// wrote first) re-reads the configuration and tries again.
pub async fn sync_ca_bundle(
    client: &Client,
    managed: &ManagedTls,
    ca_bundle_pem: &str,
) -> Result<bool, Error> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    for _attempt in 0..CONFLICT_ATTEMPTS {
        let Some(config) = api.get_opt(&managed.webhook_configuration).await? else {
            warn!(name = %managed.webhook_configuration, "MutatingWebhookConfiguration not found; caBundle not set");
            return Ok(false);
        };
        let Some(webhooks) = with_ca_bundle(&config, managed, ca_bundle_pem) else {
            return Ok(false);
        };
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": config.metadata.resource_version},
            "webhooks": webhooks,
        });
        // a merge patch replaces the webhooks list; the resourceVersion makes it conditional
        match api
            .patch(
                &managed.webhook_configuration,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                info!(name = %managed.webhook_configuration, "caBundle updated");
                return Ok(true);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                info!(name = %managed.webhook_configuration, "the configuration changed while the caBundle was written; reading it again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Tls(format!(
        "could not set the caBundle of MutatingWebhookConfiguration {} after {CONFLICT_ATTEMPTS} attempts (conflicting writers)",
        managed.webhook_configuration
    )))
}

/// How many times a conditional write is tried against concurrent writers.
const CONFLICT_ATTEMPTS: usize = 5;

/// The configuration's webhooks with `caBundle` set on those that point at our Service, or
/// `None` when every one of them already carries it.
fn with_ca_bundle(
    config: &MutatingWebhookConfiguration,
    managed: &ManagedTls,
    ca_bundle_pem: &str,
) -> Option<Vec<MutatingWebhook>> {
    let wanted = ByteString(ca_bundle_pem.as_bytes().to_vec());
    let mut changed = false;
    let mut webhooks = config.webhooks.clone().unwrap_or_default();
    for w in &mut webhooks {
        let ours = w
            .client_config
            .service
            .as_ref()
            .is_some_and(|s| s.name == managed.service && s.namespace == managed.namespace);
        if ours && w.client_config.ca_bundle.as_ref() != Some(&wanted) {
            w.client_config.ca_bundle = Some(wanted.clone());
            changed = true;
        }
    }
    changed.then_some(webhooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed() -> ManagedTls {
        ManagedTls {
            namespace: "gaia-system".into(),
            secret: "gaia-webhook-tls".into(),
            service: "gaia-webhook".into(),
            webhook_configuration: "gaia-webhook".into(),
            validity: Duration::from_secs(365 * 86_400),
            check_every: Duration::from_secs(3600),
        }
    }

    #[test]
    fn issues_a_pair_rustls_accepts_for_the_service_names() {
        let m = managed();
        let now = Timestamp::now();
        let issued = issue(&m.dns_names(), now, m.validity).unwrap();
        assert!(issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(m
            .dns_names()
            .contains(&"gaia-webhook.gaia-system.svc".to_string()));
        let secret = secret_for(&m, &issued, None);
        assert!(!needs_renewal(&secret, now));
        let pair = serving_pair(&secret).unwrap();
        // the pair loads as a rustls server config
        crate::server::install_crypto_provider();
        let certs: Vec<_> =
            rustls::pki_types::pem::PemObject::pem_slice_iter(pair.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key =
            rustls::pki_types::pem::PemObject::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    }

    #[test]
    fn renews_after_two_thirds_of_the_validity_or_when_broken() {
        let m = managed();
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let issued = issue(&m.dns_names(), start, Duration::from_secs(300 * 86_400)).unwrap();
        let secret = secret_for(&m, &issued, None);
        let day = |d: i64| start + jiff::SignedDuration::from_secs(d * 86_400);
        assert!(!needs_renewal(&secret, day(150)));
        assert!(needs_renewal(&secret, day(201)));
        let mut broken = secret.clone();
        broken.data.as_mut().unwrap().remove(TLS_KEY);
        assert!(needs_renewal(&broken, day(1)));
        let mut undated = secret.clone();
        undated.metadata.annotations = None;
        assert!(needs_renewal(&undated, day(1)));
        assert!(needs_renewal(&Secret::default(), day(1)));
    }

    #[test]
    fn a_rotation_keeps_the_previous_ca_in_the_bundle_once() {
        let m = managed();
        let now = Timestamp::now();
        let first = issue(&m.dns_names(), now, m.validity).unwrap();
        let second = issue(&m.dns_names(), now, m.validity).unwrap();
        let s1 = secret_for(&m, &first, None);
        let b1 = serving_pair(&s1).unwrap().ca_bundle_pem;
        let s2 = secret_for(&m, &second, Some(&b1));
        let b2 = serving_pair(&s2).unwrap().ca_bundle_pem;
        assert!(b2.starts_with(second.ca_cert_pem.trim_end()));
        assert!(b2.contains(first.ca_cert_pem.trim()));
        assert_eq!(b2.matches("BEGIN CERTIFICATE").count(), 2);
        // a third rotation drops the oldest CA
        let third = issue(&m.dns_names(), now, m.validity).unwrap();
        let b3 = serving_pair(&secret_for(&m, &third, Some(&b2)))
            .unwrap()
            .ca_bundle_pem;
        assert_eq!(b3.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(!b3.contains(first.ca_cert_pem.trim()));
    }

    #[test]
    fn the_ca_bundle_goes_only_on_webhooks_of_our_service_and_only_when_it_differs() {
        use k8s_openapi::api::admissionregistration::v1::{ServiceReference, WebhookClientConfig};
        let m = managed();
        let hook = |name: &str, service: &str, bundle: Option<&str>| MutatingWebhook {
            name: name.into(),
            client_config: WebhookClientConfig {
                service: Some(ServiceReference {
                    name: service.into(),
                    namespace: "gaia-system".into(),
                    ..ServiceReference::default()
                }),
                ca_bundle: bundle.map(|b| ByteString(b.as_bytes().to_vec())),
                ..WebhookClientConfig::default()
            },
            ..MutatingWebhook::default()
        };
        let config = MutatingWebhookConfiguration {
            webhooks: Some(vec![
                hook("services.gaia.dev", "gaia-webhook", None),
                hook("other.example.com", "someone-else", Some("THEIRS")),
            ]),
            ..MutatingWebhookConfiguration::default()
        };
        let updated = with_ca_bundle(&config, &m, "OURS").expect("a change");
        let bundle = |w: &MutatingWebhook| w.client_config.ca_bundle.clone().map(|b| b.0);
        assert_eq!(bundle(&updated[0]), Some(b"OURS".to_vec()));
        assert_eq!(bundle(&updated[1]), Some(b"THEIRS".to_vec()));
        // a replica that reads the configuration after another one wrote it changes nothing
        let written = MutatingWebhookConfiguration {
            webhooks: Some(updated),
            ..MutatingWebhookConfiguration::default()
        };
        assert!(with_ca_bundle(&written, &m, "OURS").is_none());
    }
}
