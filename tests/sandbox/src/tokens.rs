//! Service-account tokens as kube-apiserver issues and reviews them: `serviceaccounts/{name}/token`
//! (TokenRequest) signs an ES256 JWT with the claims of a real projected token, and
//! `tokenreviews` authenticates it, so OpenBao's Kubernetes auth logs in through the sandbox.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The cluster CA certificate a plain-http sandbox publishes (as `kube-root-ca.crt` would be).
/// Nothing verifies against it. It exists because OpenBao's Kubernetes auth, running outside
/// a pod, refuses a config without `kubernetes_ca_cert` (it would read the pod's
/// `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt` otherwise). A sandbox served over
/// HTTPS (`tls: true`) publishes its own CA instead: `ServerState::cluster_ca_pem`.
pub const CLUSTER_CA_PEM: &str = include_str!("cluster_ca.pem");

/// The issuer and default audience of a kubeadm cluster's service-account tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// A TokenRequest the API server refuses, with its message (kube-apiserver's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRequestError {
    #[error(
        "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"
    )]
    TooShort { name: String, seconds: i64 },
    #[error(
        "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"
    )]
    TooLong { name: String, seconds: i64 },
    #[error("TokenRequest.authentication.k8s.io \"{name}\" is invalid: {reason}")]
    Malformed { name: String, reason: String },
}

/// A TokenReview body that is not a TokenReview (400 from the API server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TokenReview is invalid: {0}")]
pub struct TokenReviewError(String);

/// The service account a token speaks for, as the claims carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountIdentity {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl ServiceAccountIdentity {
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    iss: String,
    jti: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: KubernetesClaims,
    nbf: i64,
    sub: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct KubernetesClaims {
    namespace: String,
    serviceaccount: ObjectRef,
}

#[derive(Debug, Serialize, Deserialize)]
struct ObjectRef {
    name: String,
    uid: String,
}

/// A token that passed review: whose it is and which requested audiences it is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedToken {
    pub identity: ServiceAccountIdentity,
    pub audiences: Vec<String>,
    pub jti: String,
}

/// The sandbox's service-account token signer (one key per sandbox run).
pub struct TokenAuthority {
    key: EcdsaKeyPair,
    key_id: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Default for TokenAuthority {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenAuthority {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system random source works");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("a generated key parses");
        // kube-apiserver's kid is the SHA-256 of the public key, base64url.
        let key_id = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            key.public_key().as_ref(),
        ));
        Self { key, key_id, rng }
    }

    /// The verification key as PEM (SubjectPublicKeyInfo), for OpenBao's `pem_keys`.
    pub fn public_key_pem(&self) -> String {
        // The DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
        const SPKI_PREFIX: [u8; 26] = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.key.public_key().as_ref());
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// Signs a token for `identity`, valid for `audiences` (the API server's own when empty).
    pub fn issue(
        &self,
        identity: &ServiceAccountIdentity,
        audiences: &[String],
        expiration_seconds: i64,
        now: DateTime<Utc>,
    ) -> String {
        let audiences = if audiences.is_empty() {
            vec![ISSUER.to_owned()]
        } else {
            audiences.to_vec()
        };
        let claims = Claims {
            aud: audiences,
            exp: now.timestamp() + expiration_seconds,
            iat: now.timestamp(),
            iss: ISSUER.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubernetesClaims {
                namespace: identity.namespace.clone(),
                serviceaccount: ObjectRef {
                    name: identity.name.clone(),
                    uid: identity.uid.clone(),
                },
            },
            nbf: now.timestamp(),
            sub: identity.username(),
        };
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"))
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("ECDSA signing works");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    /// Checks a token's signature, lifetime and audiences; the error is the text the API
    /// server puts in `status.error`. Whether the service account still exists is the caller's
    /// to check (see [`TokenAuthority::token_review`]).
    pub fn review(
        &self,
        token: &str,
        audiences: &[String],
        now: DateTime<Utc>,
    ) -> Result<ReviewedToken, String> {
        let invalid = |why: &str| format!("[invalid bearer token, {why}]");
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(invalid(
                "square/go-jose: compact JWS format must have three parts",
            ));
        };
        let header: Value = decode_json(header).ok_or_else(|| invalid("malformed token header"))?;
        if header["alg"] != "ES256" || header["kid"] != self.key_id.as_str() {
            return Err(invalid("token signed by an unknown key"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| invalid("malformed token signature"))?;
        let public_key = ring::signature::UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        );
        let signing_input = &token[..token.len() - parts[2].len() - 1];
        public_key
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| invalid("square/go-jose: error in cryptographic primitive"))?;
        let claims: Claims =
            decode_json(payload).ok_or_else(|| invalid("malformed token claims"))?;
        if claims.exp <= now.timestamp() {
            return Err(invalid("service account token has expired"));
        }
        if claims.nbf > now.timestamp() + 60 {
            return Err(invalid("service account token is not valid yet"));
        }
        let wanted = if audiences.is_empty() {
            vec![ISSUER.to_owned()]
        } else {
            audiences.to_vec()
        };
        let valid_for: Vec<String> = wanted
            .iter()
            .filter(|a| claims.aud.contains(a))
            .cloned()
            .collect();
        if valid_for.is_empty() {
            return Err(invalid(&format!(
                "token audiences {:?} is invalid for the target audiences {:?}",
                claims.aud, wanted
            )));
        }
        Ok(ReviewedToken {
            identity: ServiceAccountIdentity {
                namespace: claims.kubernetes.namespace,
                name: claims.kubernetes.serviceaccount.name,
                uid: claims.kubernetes.serviceaccount.uid,
            },
            audiences: valid_for,
            jti: claims.jti,
        })
    }

    /// Answers `POST serviceaccounts/{name}/token` for an existing service account: the
    /// TokenRequest object with `status.token` and `status.expirationTimestamp`.
    pub fn token_request(
        &self,
        identity: &ServiceAccountIdentity,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Value, TokenRequestError> {
        let name = identity.name.clone();
        let spec = body.get("spec").cloned().unwrap_or(Value::Null);
        let audiences: Vec<String> = match spec.get("audiences") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => {
                serde_json::from_value(value.clone()).map_err(|e| TokenRequestError::Malformed {
                    name: name.clone(),
                    reason: format!("spec.audiences: {e}"),
                })?
            }
        };
        let seconds = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(value) => value.as_i64().ok_or_else(|| TokenRequestError::Malformed {
                name: name.clone(),
                reason: "spec.expirationSeconds: must be an integer".into(),
            })?,
        };
        if seconds < MIN_EXPIRATION_SECONDS {
            return Err(TokenRequestError::TooShort { name, seconds });
        }
        if seconds > MAX_EXPIRATION_SECONDS {
            return Err(TokenRequestError::TooLong { name, seconds });
        }
        let audiences = if audiences.is_empty() {
            vec![ISSUER.to_owned()]
        } else {
            audiences
        };
        let token = self.issue(identity, &audiences, seconds, now);
        let expires =
            (now + chrono::Duration::seconds(seconds)).to_rfc3339_opts(SecondsFormat::Secs, true);
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": identity.name,
                "namespace": identity.namespace,
                "creationTimestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
            "spec": {
                "audiences": audiences,
                "expirationSeconds": seconds,
                "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null),
            },
            "status": { "token": token, "expirationTimestamp": expires },
        }))
    }

    /// Answers `POST tokenreviews`. `service_account_uid(ns, name)` is the store's current uid
    /// of that service account: a token outlives neither its account nor a re-creation.
    pub fn token_review(
        &self,
        body: &Value,
        service_account_uid: impl Fn(&str, &str) -> Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Value, TokenReviewError> {
        let spec = body
            .get("spec")
            .ok_or_else(|| TokenReviewError("spec: Required value".into()))?;
        let token = spec
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(TokenReviewError("spec.token: Required value".into()));
        }
        let audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let reviewed = self.review(token, &audiences, now).and_then(|reviewed| {
            let identity = &reviewed.identity;
            match service_account_uid(&identity.namespace, &identity.name) {
                None => Err(
                    "[invalid bearer token, service account token has been invalidated]".to_owned(),
                ),
                Some(uid) if uid != identity.uid => Err(format!(
                    "[invalid bearer token, service account UID ({uid}) does not match claim ({})]",
                    identity.uid
                )),
                Some(_) => Ok(reviewed),
            }
        });
        let status = match reviewed {
            Ok(reviewed) => {
                let identity = &reviewed.identity;
                json!({
                    "authenticated": true,
                    "user": {
                        "username": identity.username(),
                        "uid": identity.uid,
                        "groups": [
                            "system:serviceaccounts",
                            format!("system:serviceaccounts:{}", identity.namespace),
                            "system:authenticated",
                        ],
                        "extra": { "authentication.kubernetes.io/credential-id": [format!("JTI={}", reviewed.jti)] },
                    },
                    "audiences": reviewed.audiences,
                })
            }
            Err(error) => json!({ "user": {}, "error": error }),
        };
        Ok(json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": { "creationTimestamp": null },
            "spec": spec,
            "status": status,
        }))
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ServiceAccountIdentity {
        ServiceAccountIdentity {
            namespace: "external-secrets".into(),
            name: "external-secrets".into(),
            uid: "7d3c1e0a-0000-4000-8000-000000000001".into(),
        }
    }

    fn uid_of(ns: &str, name: &str) -> Option<String> {
        (ns == "external-secrets" && name == "external-secrets").then(|| identity().uid)
    }

    #[test]
    fn a_requested_token_reviews_as_its_service_account() {
        let authority = TokenAuthority::new();
        let now = Utc::now();
        let request = authority
            .token_request(
                &identity(),
                &json!({"spec": {"audiences": ["vault"], "expirationSeconds": 600}}),
                now,
            )
            .unwrap();
        assert_eq!(request["spec"]["expirationSeconds"], 600);
        let token = request["status"]["token"].as_str().unwrap();
        let review = authority
            .token_review(
                &json!({"spec": {"token": token, "audiences": ["vault"]}}),
                uid_of,
                now,
            )
            .unwrap();
        let status = &review["status"];
        assert_eq!(status["authenticated"], true);
        assert_eq!(
            status["user"]["username"],
            "system:serviceaccount:external-secrets:external-secrets"
        );
        assert_eq!(status["user"]["uid"], identity().uid);
        assert_eq!(status["audiences"], json!(["vault"]));
        assert_eq!(
            status["user"]["groups"][1],
            "system:serviceaccounts:external-secrets"
        );
    }

    #[test]
    fn review_refuses_other_audiences_tampering_expiry_and_deleted_accounts() {
        let authority = TokenAuthority::new();
        let now = Utc::now();
        let token = authority.issue(&identity(), &[], 3600, now);
        let error =
            |body: Value, at| authority.token_review(&body, uid_of, at).unwrap()["status"].clone();

        let status = error(
            json!({"spec": {"token": token, "audiences": ["vault"]}}),
            now,
        );
        assert!(status["authenticated"].is_null());
        assert!(
            status["error"]
                .as_str()
                .unwrap()
                .contains("is invalid for the target audiences")
        );

        let mut forged = token.clone();
        forged.insert(forged.len() - 5, 'A');
        forged.truncate(token.len());
        let status = error(json!({"spec": {"token": forged}}), now);
        assert!(
            status["error"]
                .as_str()
                .unwrap()
                .starts_with("[invalid bearer token"),
            "{status}"
        );

        let later = now + chrono::Duration::seconds(3601);
        assert!(
            error(json!({"spec": {"token": token}}), later)["error"]
                .as_str()
                .unwrap()
                .contains("expired")
        );

        let other = TokenAuthority::new();
        let status = other
            .token_review(&json!({"spec": {"token": token}}), uid_of, now)
            .unwrap()["status"]
            .clone();
        assert!(
            status["error"].is_string(),
            "another sandbox's key does not verify"
        );

        let status = authority
            .token_review(&json!({"spec": {"token": token}}), |_, _| None, now)
            .unwrap();
        assert_eq!(
            status["status"]["error"],
            "[invalid bearer token, service account token has been invalidated]"
        );
        let status = authority
            .token_review(
                &json!({"spec": {"token": token}}),
                |_, _| Some("x".into()),
                now,
            )
            .unwrap();
        assert!(
            status["status"]["error"]
                .as_str()
                .unwrap()
                .contains("does not match claim")
        );
    }

    #[test]
    fn token_request_validates_the_lifetime_like_the_api_server() {
        let authority = TokenAuthority::new();
        let too_short = authority.token_request(
            &identity(),
            &json!({"spec": {"expirationSeconds": 10}}),
            Utc::now(),
        );
        assert_eq!(
            too_short.unwrap_err().to_string(),
            "TokenRequest.authentication.k8s.io \"external-secrets\" is invalid: spec.expirationSeconds: Invalid value: 10: may not specify a duration less than 10 minutes"
        );
        let defaulted = authority
            .token_request(&identity(), &json!({"spec": {}}), Utc::now())
            .unwrap();
        assert_eq!(defaulted["spec"]["expirationSeconds"], 3600);
        assert_eq!(defaulted["spec"]["audiences"], json!([ISSUER]));
    }

    #[test]
    fn public_key_pem_is_a_p256_subject_public_key_info() {
        let pem = TokenAuthority::new().public_key_pem();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"),
            "{pem}"
        );
    }
}
