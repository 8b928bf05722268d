//! The `admission.k8s.io/v1` AdmissionReview wire format, reduced to what the webhook reads
//! and writes.
//!
//! The objects stay `serde_json::Value`: the webhook edits JSON and answers with a JSON patch, so
//! parsing them into typed objects and back would only cost time (kube's generic review type
//! goes through a flattened `DynamicObject` and serialises the patch as an array of numbers,
//! four times the size of the base64 the apiserver also accepts).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An incoming review.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIn {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub request: Option<RequestIn>,
}

/// The request of a review.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIn {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub operation: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub old_object: Option<Value>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub kind: String,
}

/// An answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOut {
    pub api_version: String,
    pub kind: &'static str,
    pub response: ResponseOut,
}

/// The response of an answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseOut {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// The JSON patch, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why a request was refused (a `metav1.Status`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub status: &'static str,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

pub const API_VERSION_V1: &str = "admission.k8s.io/v1";

impl ReviewOut {
    /// Allowed, no patch.
    pub fn allow(api_version: &str, uid: &str) -> ReviewOut {
        ReviewOut {
            api_version: api_version.to_string(),
            kind: "AdmissionReview",
            response: ResponseOut {
                uid: uid.to_string(),
                allowed: true,
                status: None,
                patch: None,
                patch_type: None,
                warnings: Vec::new(),
            },
        }
    }

    /// Refused, with a message for the user.
    pub fn deny(api_version: &str, uid: &str, message: String) -> ReviewOut {
        let mut out = ReviewOut::allow(api_version, uid);
        out.response.allowed = false;
        out.response.status = Some(Status {
            status: "Failure",
            code: 403,
            reason: "Forbidden",
            message,
        });
        out
    }

    /// The request could not be read: refused, no uid to echo.
    pub fn invalid(message: String) -> ReviewOut {
        let mut out = ReviewOut::deny(API_VERSION_V1, "", message);
        if let Some(s) = out.response.status.as_mut() {
            s.code = 400;
            s.reason = "BadRequest";
        }
        out
    }

    pub fn with_patch(mut self, patch: &json_patch::Patch) -> Result<ReviewOut, serde_json::Error> {
        let bytes = serde_json::to_vec(patch)?;
        self.response.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.response.patch_type = Some("JSONPatch");
        Ok(self)
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> ReviewOut {
        self.response.warnings = warnings;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_an_apiserver_sends_and_ignores_the_rest() {
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"u1","kind":{"group":"serving.knative.dev","version":"v1","kind":"Service"},
            "resource":{"group":"serving.knative.dev","version":"v1","resource":"services"},
            "operation":"CREATE","namespace":"ns","name":"f","userInfo":{"username":"a"},
            "object":{"metadata":{"name":"f"}},"oldObject":null,"dryRun":false,"options":{}}}"#;
        let r: ReviewIn = serde_json::from_str(body).unwrap();
        let req = r.request.unwrap();
        assert_eq!(req.kind.kind, "Service");
        assert_eq!(req.object.unwrap()["metadata"]["name"], "f");
        assert!(req.old_object.is_none());
    }

    #[test]
    fn answers_carry_a_base64_patch_and_a_status_only_when_refused() {
        let patch: json_patch::Patch =
            serde_json::from_str(r#"[{"op":"add","path":"/a","value":1}]"#).unwrap();
        let out = ReviewOut::allow(API_VERSION_V1, "u1")
            .with_patch(&patch)
            .unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["response"]["uid"], "u1");
        assert!(v["response"].get("status").is_none());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, br#"[{"op":"add","path":"/a","value":1}]"#);
        let denied =
            serde_json::to_value(ReviewOut::deny(API_VERSION_V1, "u2", "no".into())).unwrap();
        assert_eq!(denied["response"]["allowed"], false);
        assert_eq!(denied["response"]["status"]["code"], 403);
    }
}
