//! The keys that sign okrhub tokens, and the one check every token passes ([`Verifier`]).
//!
//! Two sources, usable together:
//!
//! - a shared **secret** (HS256, at least 32 bytes), which is also what `okrhub token` mints
//!   with;
//! - a **keys file** of public keys: PEM (`-----BEGIN PUBLIC KEY-----` blocks, RSA → RS256 and
//!   EC P-256 → ES256; `BEGIN RSA PUBLIC KEY` too) or a JWKS document (`{"keys": [...]}`, RSA
//!   and EC P-256 keys, usually with a `kid`). The file is re-read when its (mtime, length)
//!   changes — checked at most once a second, lazily, by [`Verifier::verify`]; a change that
//!   does not parse keeps the previous keys (and logs why).
//!
//! Only HS256, RS256 and ES256 are accepted. A token's `alg` picks the kind of key; it never
//! lets a public key act as an HMAC secret (HS256 with only public keys configured is refused:
//! the classic key-confusion attack), and `none` is refused like any other algorithm.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};

use super::token::{Claims, TokenError, Verified, MIN_SECRET_LEN};

/// Longest token accepted, in bytes; longer ones are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The keys file is checked for changes at most this often.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Default tolerance for `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Largest keys file read, in bytes.
const MAX_KEYS_FILE_LEN: u64 = 1024 * 1024;

/// A token without a `kid` is tried against at most this many keys of its algorithm.
const MAX_KIDLESS_TRIES: usize = 4;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// What verifies tokens: from the command line / environment. Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The HS256 shared secret (at least 32 bytes). An empty string counts as not configured.
    pub secret: Option<String>,
    /// A PEM or JWKS file of public keys. An empty path counts as not configured.
    pub keys_file: Option<PathBuf>,
    /// When set, tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud` (or an `aud` array holding it).
    pub audience: Option<String>,
    /// Tolerance for `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            secret: None,
            keys_file: None,
            issuer: None,
            audience: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("keys_file", &self.keys_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

/// Why the configured keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the keys file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the keys file {} holds no usable key (RSA or EC P-256 public keys, as PEM or JWKS)", .0.display())]
    NoKeys(PathBuf),
    #[error("invalid keys: {0}")]
    Invalid(String),
    #[error("the HS256 secret must be at least {MIN_SECRET_LEN} bytes")]
    ShortSecret,
}

/// Verifies okrhub tokens. Cheap to clone; clones share the keys (and their reloads).
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

struct Inner {
    secret: Option<DecodingKey>,
    file: Option<KeyFile>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

/// One public key of the keys file.
struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// What a file looked like when last read: (mtime, length).
type Stamp = (SystemTime, u64);

struct KeyFile {
    path: PathBuf,
    keys: RwLock<Arc<Vec<PublicKey>>>,
    reload: Mutex<ReloadState>,
}

struct ReloadState {
    last_check: Instant,
    /// `None` while the file cannot be read (so that is logged once, not every second).
    stamp: Option<Stamp>,
}

impl Verifier {
    /// `None` when neither a secret nor a keys file is configured. Err when the file cannot be
    /// read or holds no usable key, or the secret is shorter than 32 bytes.
    pub fn new(config: VerifierConfig) -> Result<Option<Verifier>, KeyError> {
        let secret = config.secret.filter(|s| !s.is_empty());
        let keys_file = config.keys_file.filter(|p| !p.as_os_str().is_empty());
        if secret.is_none() && keys_file.is_none() {
            return Ok(None);
        }
        let secret = match secret {
            None => None,
            Some(s) if s.len() < MIN_SECRET_LEN => return Err(KeyError::ShortSecret),
            Some(s) => Some(
                DecodingKey::from_secret(s.as_bytes())
                    .map_err(|e| KeyError::Invalid(format!("HS256 secret: {e}")))?,
            ),
        };
        let file = match keys_file {
            None => None,
            Some(path) => {
                let stamp = file_stamp(&path).map_err(|source| KeyError::Io {
                    path: path.clone(),
                    source,
                })?;
                let keys = read_keys(&path)?;
                Some(KeyFile {
                    path,
                    keys: RwLock::new(Arc::new(keys)),
                    reload: Mutex::new(ReloadState {
                        last_check: Instant::now(),
                        stamp: Some(stamp),
                    }),
                })
            }
        };
        Ok(Some(Verifier(Arc::new(Inner {
            secret,
            file,
            issuer: config.issuer.filter(|s| !s.is_empty()),
            audience: config.audience.filter(|s| !s.is_empty()),
            leeway: config.leeway_secs,
        }))))
    }

    /// Checks `token`: its size, algorithm and key, its signature, `exp` and `nbf` (with the
    /// leeway), `iss` and `aud` when configured, then its claims ([`Verified::from_claims`]).
    ///
    /// Key choice: HS256 uses the secret. RS256/ES256 with a `kid` use the key of that kid
    /// (a kid that names no key falls back to the file's keys without a kid, such as PEM
    /// keys; failing those, [`TokenError::UnknownKey`]); without a `kid`, each key of the
    /// token's algorithm is tried (at most a handful).
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed(format!(
                "token is longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        self.maybe_reload();
        let (alg, kid) = peek_header(token)?;
        let file_keys = self.file_keys();
        let candidates = self.candidates(alg, kid.as_deref(), &file_keys)?;
        let validation = self.validation(alg);
        for key in candidates {
            match jsonwebtoken::decode::<serde_json::Value>(token, key, &validation) {
                Ok(data) => return self.claims(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) if is_key_error(e.kind()) => {
                    tracing::warn!(error = %e, alg = ?alg, "a configured key cannot verify tokens");
                    continue;
                }
                Err(e) => return Err(map_jwt_error(&e)),
            }
        }
        Err(TokenError::BadSignature)
    }

    /// What is configured, for the startup log: e.g. `HS256 secret` or
    /// `2 keys from /etc/okrhub/jwks.json (RS256, ES256)`, then the `iss`/`aud` required.
    pub fn describe(&self) -> String {
        let mut sources = Vec::new();
        if self.0.secret.is_some() {
            sources.push("HS256 secret".to_owned());
        }
        if let Some(file) = &self.0.file {
            let keys = self.file_keys();
            let mut algs: Vec<String> = Vec::new();
            for k in keys.iter() {
                let a = format!("{:?}", k.alg);
                if !algs.contains(&a) {
                    algs.push(a);
                }
            }
            sources.push(format!(
                "{} key{} from {} ({})",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" },
                file.path.display(),
                algs.join(", ")
            ));
        }
        let mut out = sources.join(" + ");
        let mut required = Vec::new();
        if let Some(iss) = &self.0.issuer {
            required.push(format!("iss {iss:?}"));
        }
        if let Some(aud) = &self.0.audience {
            required.push(format!("aud {aud:?}"));
        }
        if !required.is_empty() {
            out.push_str("; requires ");
            out.push_str(&required.join(", "));
        }
        out
    }

    /// Re-reads the keys file if its (mtime, length) changed since it was last read. `Ok(true)`
    /// when new keys are in use, `Ok(false)` when nothing changed (or no file is configured);
    /// on an error the previous keys stay, and the error is logged once per change.
    ///
    /// [`Verifier::verify`] calls this by itself at most once per [`RELOAD_INTERVAL`]; call it
    /// directly to look now (a SIGHUP handler, tests).
    pub fn reload_if_changed(&self) -> Result<bool, KeyError> {
        let Some(file) = &self.0.file else {
            return Ok(false);
        };
        let mut state = lock(&file.reload);
        file.reload_locked(&mut state)
    }

    /// The lazy check of [`Verifier::verify`]: at most once per [`RELOAD_INTERVAL`], and never
    /// waiting on a check another request is already doing.
    fn maybe_reload(&self) {
        let Some(file) = &self.0.file else {
            return;
        };
        let mut state = match file.reload.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if state.last_check.elapsed() < RELOAD_INTERVAL {
            return;
        }
        // Errors are logged inside; the previous keys stay.
        let _ = file.reload_locked(&mut state);
    }

    fn file_keys(&self) -> Arc<Vec<PublicKey>> {
        match &self.0.file {
            None => Arc::new(Vec::new()),
            Some(file) => file.keys.read().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// The keys to try for a token of `alg` naming `kid`.
    fn candidates<'k>(
        &'k self,
        alg: Algorithm,
        kid: Option<&str>,
        file_keys: &'k [PublicKey],
    ) -> Result<Vec<&'k DecodingKey>, TokenError> {
        if alg == Algorithm::HS256 {
            return match &self.0.secret {
                Some(secret) => Ok(vec![secret]),
                None => Err(TokenError::Algorithm(
                    "HS256 tokens are not accepted: no shared secret is configured, only public keys"
                        .into(),
                )),
            };
        }
        let of_alg: Vec<&PublicKey> = file_keys.iter().filter(|k| k.alg == alg).collect();
        if of_alg.is_empty() {
            return Err(TokenError::Algorithm(format!(
                "{alg:?} tokens are not accepted: no {alg:?} key is configured"
            )));
        }
        let picked: Vec<&PublicKey> = match kid {
            Some(kid) => {
                if let Some(named) = file_keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                    if named.alg != alg {
                        return Err(TokenError::Algorithm(format!(
                            "key {kid:?} is a {:?} key but the token says {alg:?}",
                            named.alg
                        )));
                    }
                    return Ok(vec![&named.key]);
                }
                let unnamed: Vec<&PublicKey> =
                    of_alg.into_iter().filter(|k| k.kid.is_none()).collect();
                if unnamed.is_empty() {
                    return Err(TokenError::UnknownKey);
                }
                unnamed
            }
            None => of_alg,
        };
        if picked.len() > MAX_KIDLESS_TRIES {
            tracing::debug!(
                alg = ?alg,
                keys = picked.len(),
                "token names no known kid and too many keys could sign it"
            );
            return Err(TokenError::UnknownKey);
        }
        Ok(picked.into_iter().map(|k| &k.key).collect())
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.0.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = &self.0.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.0.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// The signed, time-checked payload → [`Verified`].
    fn claims(&self, mut payload: serde_json::Value) -> Result<Verified, TokenError> {
        // An `aud` array has been checked (when an audience is configured); [`Claims`] keeps
        // one string: the configured audience, or nothing.
        if let Some(obj) = payload.as_object_mut() {
            if obj.get("aud").is_some_and(|a| a.is_array()) {
                match &self.0.audience {
                    Some(aud) => obj.insert("aud".into(), aud.clone().into()),
                    None => obj.remove("aud"),
                };
            }
        }
        let claims: Claims = serde_json::from_value(payload)
            .map_err(|e| TokenError::InvalidClaims(e.to_string()))?;
        Verified::from_claims(claims)
    }

    /// Tests move the clock of the lazy check instead of sleeping.
    #[cfg(test)]
    fn set_last_check(&self, at: Instant) {
        if let Some(file) = &self.0.file {
            lock(&file.reload).last_check = at;
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Verifier").field(&self.describe()).finish()
    }
}

impl KeyFile {
    fn reload_locked(&self, state: &mut ReloadState) -> Result<bool, KeyError> {
        state.last_check = Instant::now();
        let stamp = match file_stamp(&self.path) {
            Ok(stamp) => stamp,
            Err(source) => {
                if state.stamp.take().is_some() {
                    tracing::error!(
                        path = %self.path.display(),
                        error = %source,
                        "keys file cannot be read; keeping the previous keys"
                    );
                }
                return Err(KeyError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if state.stamp == Some(stamp) {
            return Ok(false);
        }
        state.stamp = Some(stamp);
        match read_keys(&self.path) {
            Ok(keys) => {
                let count = keys.len();
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                tracing::info!(path = %self.path.display(), keys = count, "keys file reloaded");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(
                    path = %self.path.display(),
                    error = %e,
                    "keys file changed but cannot be used; keeping the previous keys"
                );
                Err(e)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn file_stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified()?, meta.len()))
}

/// Reads and parses a keys file: JWKS when it starts with `{`, else PEM.
fn read_keys(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_KEYS_FILE_LEN {
        return Err(KeyError::Invalid(format!(
            "{}: larger than {MAX_KEYS_FILE_LEN} bytes",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| KeyError::Invalid(format!("{}: not UTF-8 text", path.display())))?;
    let keys =
        parse_keys(&text).map_err(|why| KeyError::Invalid(format!("{}: {why}", path.display())))?;
    if keys.is_empty() {
        return Err(KeyError::NoKeys(path.to_owned()));
    }
    let mut kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
    kids.sort_unstable();
    if let Some(w) = kids.windows(2).find(|w| w[0] == w[1]) {
        return Err(KeyError::Invalid(format!(
            "{}: two keys have the kid {:?}",
            path.display(),
            w[0]
        )));
    }
    Ok(keys)
}

fn parse_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        parse_jwks(trimmed)
    } else if text.contains("-----BEGIN ") {
        parse_pem(text)
    } else {
        Err("neither PEM public keys nor a JWKS document ({\"keys\": [...]})".into())
    }
}

/// Every `-----BEGIN PUBLIC KEY-----` / `-----BEGIN RSA PUBLIC KEY-----` block. A private key
/// is an error (the file is for public keys); other blocks (certificates...) are skipped.
fn parse_pem(text: &str) -> Result<Vec<PublicKey>, String> {
    const BEGIN: &str = "-----BEGIN ";
    let mut keys = Vec::new();
    let mut rest = text;
    let mut n = 0;
    while let Some(start) = rest.find(BEGIN) {
        n += 1;
        let after = &rest[start + BEGIN.len()..];
        let label_len = after
            .find("-----")
            .filter(|&l| !after[..l].contains('\n'))
            .ok_or_else(|| format!("PEM block {n}: broken BEGIN line"))?;
        let label = &after[..label_len];
        let end_marker = format!("-----END {label}-----");
        let end = rest[start..]
            .find(&end_marker)
            .ok_or_else(|| format!("PEM block {n} ({label}) has no END line"))?;
        let block_end = start + end + end_marker.len();
        let block = &rest[start..block_end];
        rest = &rest[block_end..];
        match label {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                keys.push(pem_key(block, label).map_err(|why| format!("PEM block {n}: {why}"))?)
            }
            l if l.ends_with("PRIVATE KEY") => {
                return Err(format!(
                    "PEM block {n} is a private key; the keys file takes public keys only \
                     (openssl pkey -pubout)"
                ))
            }
            other => tracing::warn!(block = n, label = other, "keys file: PEM block skipped"),
        }
    }
    Ok(keys)
}

fn pem_key(block: &str, label: &str) -> Result<PublicKey, String> {
    if let Ok(key) = DecodingKey::from_rsa_pem(block.as_bytes()) {
        check_rsa(&key)?;
        return Ok(PublicKey {
            kid: None,
            alg: Algorithm::RS256,
            key,
        });
    }
    if label == "PUBLIC KEY" {
        if let Ok(key) = DecodingKey::from_ec_pem(block.as_bytes()) {
            check_p256(&key)?;
            return Ok(PublicKey {
                kid: None,
                alg: Algorithm::ES256,
                key,
            });
        }
    }
    Err("not an RSA or EC public key".into())
}

/// `{"keys": [...]}`: RSA keys (RS256) and EC P-256 keys (ES256) are used; other keys (other
/// curves and algorithms, encryption keys, symmetric keys) are skipped with a warning.
fn parse_jwks(text: &str) -> Result<Vec<PublicKey>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet =
        serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::new();
    for (i, raw) in set.keys.into_iter().enumerate() {
        let used = serde_json::from_value::<Jwk>(raw)
            .map_err(|e| e.to_string())
            .and_then(|jwk| jwk_key(&jwk));
        match used {
            Ok(key) => keys.push(key),
            Err(why) => tracing::warn!(index = i, reason = %why, "keys file: JWK skipped"),
        }
    }
    Ok(keys)
}

fn jwk_key(jwk: &Jwk) -> Result<PublicKey, String> {
    let kid = jwk.common.key_id.clone();
    if let Some(usage) = &jwk.common.public_key_use {
        if *usage != PublicKeyUse::Signature {
            return Err(format!("kid {kid:?}: not a signing key"));
        }
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::EllipticCurve(p) => {
            return Err(format!(
                "kid {kid:?}: curve {:?} (only P-256 is accepted)",
                p.curve
            ))
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(format!(
                "kid {kid:?}: symmetric keys are not taken from a keys file (use the secret)"
            ))
        }
        _ => return Err(format!("kid {kid:?}: key type not accepted")),
    };
    if let Some(declared) = &jwk.common.key_algorithm {
        if declared.to_string() != format!("{alg:?}") {
            return Err(format!(
                "kid {kid:?}: algorithm {declared} (only RS256 and ES256 are accepted)"
            ));
        }
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("kid {kid:?}: {e}"))?;
    match alg {
        Algorithm::RS256 => check_rsa(&key),
        _ => check_p256(&key),
    }
    .map_err(|why| format!("kid {kid:?}: {why}"))?;
    Ok(PublicKey { kid, alg, key })
}

/// The key parses as an RSA public key of at least [`MIN_RSA_BITS`] bits.
fn check_rsa(key: &DecodingKey) -> Result<(), String> {
    let n = match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => {
            let provider =
                CryptoProvider::try_get_default().ok_or("no jsonwebtoken crypto provider")?;
            (provider.key_utils.rsa_pub_components_from_public_key)(der)
                .map_err(|e| format!("RSA key does not parse: {e}"))?
                .0
        }
        DecodingKeyKind::RsaModulusExponent { n, .. } => n.clone(),
    };
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    let bits = match n.get(first) {
        None => 0,
        Some(&top) => (n.len() - first) * 8 - top.leading_zeros() as usize,
    };
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(())
}

/// The key is a point on P-256 (what ES256 verifies with).
fn check_p256(key: &DecodingKey) -> Result<(), String> {
    // Building a verifier parses the point; an empty signature then simply does not verify.
    jsonwebtoken::crypto::verify("", b"okrhub key check", key, Algorithm::ES256)
        .map(|_| ())
        .map_err(|_| "EC key is not a P-256 public key (only ES256 is accepted)".to_owned())
}

/// The header's `alg` (one of the three accepted) and `kid`, read before anything is verified.
fn peek_header(token: &str) -> Result<(Algorithm, Option<String>), TokenError> {
    let malformed = |why: &str| TokenError::Malformed(why.to_owned());
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a token is three base64url parts separated by '.'",
        ));
    };
    let bytes = b64url_decode(header).ok_or_else(|| malformed("the header is not base64url"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("the header is not JSON"))?;
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or_else(|| malformed("the header has no alg"))?;
    let alg = match alg {
        "HS256" => Algorithm::HS256,
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        other => {
            let shown: String = other.chars().take(20).collect();
            return Err(TokenError::Algorithm(format!(
                "{shown:?} is not accepted (only HS256, RS256 and ES256)"
            )));
        }
    };
    let kid = match header.get("kid") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(malformed("the header's kid is not a string")),
    };
    Ok((alg, kid))
}

/// Unpadded base64url, as in JWTs.
fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// An error that says a configured key cannot do the job (not that the token is bad).
fn is_key_error(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidEddsaKey
    )
}

/// jsonwebtoken's errors, in okrhub's terms.
fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        ErrorKind::InvalidToken => TokenError::Malformed("not a valid JWT".into()),
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => match c.as_str() {
            "iss" => TokenError::WrongIssuer,
            "aud" => TokenError::WrongAudience,
            other => TokenError::InvalidClaims(format!("the {other} claim is required")),
        },
        ErrorKind::InvalidClaimFormat(c) => {
            TokenError::InvalidClaims(format!("the {c} claim has the wrong type"))
        }
        ErrorKind::InvalidSubject => TokenError::InvalidClaims("unexpected sub".into()),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm(e.to_string()),
        ErrorKind::Base64(_) => TokenError::Malformed("a part is not base64url".into()),
        ErrorKind::Json(_) => {
            TokenError::Malformed("the header or payload is not a JSON object".into())
        }
        ErrorKind::Utf8(_) => TokenError::Malformed("not UTF-8".into()),
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidEddsaKey => TokenError::BadSignature,
        _ => TokenError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::{mint_hs256, RoomPattern};
    use crate::identity::Role;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use std::process::Command;
    use std::sync::OnceLock;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    /// A key pair made by the openssl CLI: private PKCS#8 PEM, public SPKI PEM.
    struct Pair {
        private: String,
        public: String,
    }

    fn openssl(args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn generate(keygen: &[&str]) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.pem");
        let private_s = private.to_str().unwrap();
        let mut args = vec!["genpkey"];
        args.extend_from_slice(keygen);
        args.extend_from_slice(&["-out", private_s]);
        openssl(&args);
        let public = openssl(&["pkey", "-in", private_s, "-pubout"]);
        Pair {
            private: std::fs::read_to_string(&private).unwrap(),
            public,
        }
    }

    fn rsa(i: usize) -> &'static Pair {
        static KEYS: [OnceLock<Pair>; 2] = [OnceLock::new(), OnceLock::new()];
        KEYS[i].get_or_init(|| generate(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]))
    }

    fn ec(i: usize) -> &'static Pair {
        static KEYS: [OnceLock<Pair>; 2] = [OnceLock::new(), OnceLock::new()];
        KEYS[i]
            .get_or_init(|| generate(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]))
    }

    fn rsa_signer(i: usize) -> EncodingKey {
        EncodingKey::from_rsa_pem(rsa(i).private.as_bytes()).unwrap()
    }

    fn ec_signer(i: usize) -> EncodingKey {
        EncodingKey::from_ec_pem(ec(i).private.as_bytes()).unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims() -> serde_json::Value {
        json!({
            "sub": "ann",
            "name": "Ann Lee",
            "org": "acme",
            "roles": {"acme.sales.*": "editor", "acme.*.*": "viewer"},
            "exp": now() + 600,
        })
    }

    fn with(mut c: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
        c[key] = value;
        c
    }

    fn sign(
        alg: Algorithm,
        kid: Option<&str>,
        key: &EncodingKey,
        claims: &serde_json::Value,
    ) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn hs256(claims: &serde_json::Value) -> String {
        sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            claims,
        )
    }

    fn secret_config() -> VerifierConfig {
        VerifierConfig {
            secret: Some(SECRET.into()),
            ..VerifierConfig::default()
        }
    }

    fn verifier(config: VerifierConfig) -> Verifier {
        Verifier::new(config).unwrap().expect("configured")
    }

    fn file_config(path: &Path) -> VerifierConfig {
        VerifierConfig {
            keys_file: Some(path.to_owned()),
            ..VerifierConfig::default()
        }
    }

    /// A verifier over a keys file holding `content`; the tempdir must outlive it.
    fn file_verifier(content: &str) -> (tempfile::TempDir, PathBuf, Verifier) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, content).unwrap();
        let v = verifier(file_config(&path));
        (dir, path, v)
    }

    fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk
    }

    fn jwks(keys: Vec<Jwk>) -> String {
        serde_json::to_string(&JwkSet { keys }).unwrap()
    }

    fn b64url(bytes: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    /// Overwrites the file and moves its mtime, so the change shows even within one clock tick.
    fn overwrite(path: &Path, content: &str, seconds_later: u64) {
        std::fs::write(path, content).unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(seconds_later))
            .unwrap();
    }

    #[test]
    fn nothing_configured_is_none() {
        assert!(Verifier::new(VerifierConfig::default()).unwrap().is_none());
        let empty = VerifierConfig {
            secret: Some(String::new()),
            keys_file: Some(PathBuf::new()),
            ..VerifierConfig::default()
        };
        assert!(Verifier::new(empty).unwrap().is_none());
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let shown = format!("{:?}", secret_config());
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn short_secret_is_refused() {
        let config = VerifierConfig {
            secret: Some("x".repeat(31)),
            ..VerifierConfig::default()
        };
        assert!(matches!(Verifier::new(config), Err(KeyError::ShortSecret)));
    }

    #[test]
    fn hs256_ok() {
        let v = verifier(secret_config());
        let got = v.verify(&hs256(&claims())).unwrap();
        assert_eq!(got.user.as_str(), "ann");
        assert_eq!(got.name.as_deref(), Some("Ann Lee"));
        assert_eq!(got.org, "acme");
        assert_eq!(got.grants.len(), 2);
        assert!(got
            .grants
            .iter()
            .any(|g| g.role == Role::Editor
                && g.pattern == RoomPattern::parse("acme.sales.*").unwrap()));
        assert_eq!(got.expires_at, claims()["exp"].as_u64().unwrap());
        assert_eq!(v.describe(), "HS256 secret");
    }

    #[test]
    fn minted_tokens_verify() {
        let c: Claims = serde_json::from_value(claims()).unwrap();
        let token = mint_hs256(SECRET.as_bytes(), &c).unwrap();
        let got = verifier(secret_config()).verify(&token).unwrap();
        assert_eq!(got, Verified::from_claims(c).unwrap());
    }

    #[test]
    fn hs256_with_another_secret_is_a_bad_signature() {
        let v = verifier(secret_config());
        let other = EncodingKey::from_secret(b"another secret, also 32 bytes long").unwrap();
        let token = sign(Algorithm::HS256, None, &other, &claims());
        assert_eq!(v.verify(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn rs256_pem_ok() {
        let (_dir, path, v) = file_verifier(&rsa(0).public);
        let token = sign(Algorithm::RS256, None, &rsa_signer(0), &claims());
        assert_eq!(v.verify(&token).unwrap().user.as_str(), "ann");
        // A kid that names no key falls back to the PEM keys, which have none.
        let token = sign(Algorithm::RS256, Some("k1"), &rsa_signer(0), &claims());
        assert!(v.verify(&token).is_ok());
        assert_eq!(
            v.describe(),
            format!("1 key from {} (RS256)", path.display())
        );
    }

    #[test]
    fn es256_pem_ok() {
        let (_dir, _path, v) = file_verifier(&ec(0).public);
        let token = sign(Algorithm::ES256, None, &ec_signer(0), &claims());
        assert_eq!(v.verify(&token).unwrap().org, "acme");
        // No RSA key configured: an RS256 token is refused for its algorithm.
        let token = sign(Algorithm::RS256, None, &rsa_signer(0), &claims());
        assert!(matches!(v.verify(&token), Err(TokenError::Algorithm(_))));
    }

    #[test]
    fn pem_file_with_several_blocks_and_pkcs1() {
        let dir = tempfile::tempdir().unwrap();
        let spki = dir.path().join("rsa.pub");
        std::fs::write(&spki, &rsa(0).public).unwrap();
        let pkcs1 = openssl(&[
            "rsa",
            "-pubin",
            "-in",
            spki.to_str().unwrap(),
            "-RSAPublicKey_out",
        ]);
        assert!(pkcs1.contains("BEGIN RSA PUBLIC KEY"));
        let content = format!("# okrhub keys\n{pkcs1}\n{}", ec(0).public);
        let path = dir.path().join("keys.pem");
        std::fs::write(&path, content).unwrap();
        let v = verifier(file_config(&path));
        assert_eq!(
            v.describe(),
            format!("2 keys from {} (RS256, ES256)", path.display())
        );
        let rs = sign(Algorithm::RS256, None, &rsa_signer(0), &claims());
        let es = sign(Algorithm::ES256, None, &ec_signer(0), &claims());
        assert!(v.verify(&rs).is_ok());
        assert!(v.verify(&es).is_ok());
        let other = sign(Algorithm::ES256, None, &ec_signer(1), &claims());
        assert_eq!(v.verify(&other), Err(TokenError::BadSignature));
    }

    #[test]
    fn keys_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            Verifier::new(file_config(&missing)),
            Err(KeyError::Io { .. })
        ));

        let cases: [(&str, &str); 4] = [
            ("garbage", "garbage"),
            ("private", &rsa(0).private),
            (
                "broken",
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            ),
            ("unterminated", "-----BEGIN PUBLIC KEY-----\nAAAA\n"),
        ];
        for (name, content) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            let err = Verifier::new(file_config(&path)).unwrap_err();
            assert!(matches!(err, KeyError::Invalid(_)), "{name}: {err:?}");
        }

        let path = dir.path().join("empty.json");
        std::fs::write(&path, r#"{"keys": []}"#).unwrap();
        assert!(matches!(
            Verifier::new(file_config(&path)),
            Err(KeyError::NoKeys(_))
        ));

        let path = dir.path().join("secret.json");
        std::fs::write(
            &path,
            r#"{"keys": [{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            Verifier::new(file_config(&path)),
            Err(KeyError::NoKeys(_))
        ));

        let weak = generate(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]);
        let path = dir.path().join("weak.pem");
        std::fs::write(&path, &weak.public).unwrap();
        let err = Verifier::new(file_config(&path)).unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");

        let p384 = generate(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]);
        let path = dir.path().join("p384.pem");
        std::fs::write(&path, &p384.public).unwrap();
        let err = Verifier::new(file_config(&path)).unwrap_err();
        assert!(err.to_string().contains("P-256"), "{err}");
    }

    #[test]
    fn jwks_with_kid_ok() {
        let set = jwks(vec![
            jwk(&rsa_signer(0), Algorithm::RS256, "r0"),
            jwk(&ec_signer(0), Algorithm::ES256, "e0"),
            jwk(&rsa_signer(1), Algorithm::RS256, "r1"),
        ]);
        let (_dir, path, v) = file_verifier(&set);
        assert_eq!(
            v.describe(),
            format!("3 keys from {} (RS256, ES256)", path.display())
        );
        let r0 = sign(Algorithm::RS256, Some("r0"), &rsa_signer(0), &claims());
        let r1 = sign(Algorithm::RS256, Some("r1"), &rsa_signer(1), &claims());
        let e0 = sign(Algorithm::ES256, Some("e0"), &ec_signer(0), &claims());
        assert!(v.verify(&r0).is_ok());
        assert!(v.verify(&r1).is_ok());
        assert!(v.verify(&e0).is_ok());
        // Without a kid, the keys of the token's algorithm are tried.
        let bare = sign(Algorithm::RS256, None, &rsa_signer(1), &claims());
        assert!(v.verify(&bare).is_ok());
        // The kid picks the key: r1's token under r0's kid does not verify.
        let swapped = sign(Algorithm::RS256, Some("r0"), &rsa_signer(1), &claims());
        assert_eq!(v.verify(&swapped), Err(TokenError::BadSignature));
        // A kid naming a key of another algorithm.
        let mixed = sign(Algorithm::ES256, Some("r0"), &ec_signer(0), &claims());
        assert!(matches!(v.verify(&mixed), Err(TokenError::Algorithm(_))));
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let mut enc = jwk(&rsa_signer(1), Algorithm::RS256, "enc");
        enc.common.public_key_use = Some(PublicKeyUse::Encryption);
        let mut set: serde_json::Value = serde_json::from_str(&jwks(vec![
            jwk(&rsa_signer(0), Algorithm::RS256, "r0"),
            enc,
        ]))
        .unwrap();
        let keys = set["keys"].as_array_mut().unwrap();
        keys.push(json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "ed"}));
        keys.push(json!({"kty": "RSA", "alg": "ES256K", "n": "AQAB", "e": "AQAB", "kid": "odd"}));
        let (_dir, _path, v) = file_verifier(&set.to_string());
        assert!(v.describe().starts_with("1 key from "), "{}", v.describe());
        let enc_token = sign(Algorithm::RS256, Some("enc"), &rsa_signer(1), &claims());
        assert_eq!(v.verify(&enc_token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn jwks_with_duplicate_kids_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let set = jwks(vec![
            jwk(&rsa_signer(0), Algorithm::RS256, "k"),
            jwk(&rsa_signer(1), Algorithm::RS256, "k"),
        ]);
        std::fs::write(&path, set).unwrap();
        let err = Verifier::new(file_config(&path)).unwrap_err();
        assert!(
            matches!(&err, KeyError::Invalid(m) if m.contains("\"k\"")),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_kid_is_unknown_key() {
        let set = jwks(vec![jwk(&rsa_signer(0), Algorithm::RS256, "r0")]);
        let (_dir, _path, v) = file_verifier(&set);
        let token = sign(Algorithm::RS256, Some("nope"), &rsa_signer(0), &claims());
        let err = v.verify(&token).unwrap_err();
        assert_eq!(err, TokenError::UnknownKey);
        assert_eq!(err.code(), "unknown_key");
    }

    #[test]
    fn bad_signature() {
        let (_dir, _path, v) = file_verifier(&rsa(0).public);
        let token = sign(Algorithm::RS256, None, &rsa_signer(1), &claims());
        assert_eq!(v.verify(&token), Err(TokenError::BadSignature));

        // A tampered payload under a genuine signature.
        let good = sign(Algorithm::RS256, None, &rsa_signer(0), &claims());
        let evil = sign(
            Algorithm::RS256,
            None,
            &rsa_signer(1),
            &with(claims(), "sub", json!("mallory")),
        );
        let g: Vec<&str> = good.split('.').collect();
        let e: Vec<&str> = evil.split('.').collect();
        let forged = format!("{}.{}.{}", g[0], e[1], g[2]);
        assert_eq!(v.verify(&forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn expiry_and_leeway() {
        let v = verifier(secret_config());
        let expired = hs256(&with(claims(), "exp", json!(now() - 120)));
        let err = v.verify(&expired).unwrap_err();
        assert_eq!(err, TokenError::Expired);
        assert_eq!(err.code(), "expired");
        // Within the default 30 s of leeway.
        let just = hs256(&with(claims(), "exp", json!(now() - 10)));
        assert!(v.verify(&just).is_ok());
        // exp is required.
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(matches!(
            v.verify(&hs256(&no_exp)),
            Err(TokenError::InvalidClaims(m)) if m.contains("exp")
        ));
        // No leeway: the same token is expired.
        let strict = verifier(VerifierConfig {
            leeway_secs: 0,
            ..secret_config()
        });
        assert_eq!(strict.verify(&just), Err(TokenError::Expired));
    }

    #[test]
    fn nbf_in_future_is_not_yet_valid() {
        let v = verifier(secret_config());
        let future = hs256(&with(claims(), "nbf", json!(now() + 300)));
        assert_eq!(v.verify(&future), Err(TokenError::NotYetValid));
        let soon = hs256(&with(claims(), "nbf", json!(now() + 10)));
        assert!(v.verify(&soon).is_ok(), "within the leeway");
        let past = hs256(&with(claims(), "nbf", json!(now() - 10)));
        assert!(v.verify(&past).is_ok());
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let v = verifier(VerifierConfig {
            issuer: Some("https://id.acme.test".into()),
            audience: Some("okrhub".into()),
            ..secret_config()
        });
        assert_eq!(
            v.describe(),
            "HS256 secret; requires iss \"https://id.acme.test\", aud \"okrhub\""
        );
        let good = with(
            with(claims(), "iss", json!("https://id.acme.test")),
            "aud",
            json!("okrhub"),
        );
        assert!(v.verify(&hs256(&good)).is_ok());
        let array_aud = with(good.clone(), "aud", json!(["other", "okrhub"]));
        assert!(v.verify(&hs256(&array_aud)).is_ok());

        let wrong_iss = with(good.clone(), "iss", json!("https://evil.test"));
        assert_eq!(v.verify(&hs256(&wrong_iss)), Err(TokenError::WrongIssuer));
        let wrong_aud = with(good.clone(), "aud", json!("other"));
        assert_eq!(v.verify(&hs256(&wrong_aud)), Err(TokenError::WrongAudience));
        let mut no_iss = good.clone();
        no_iss.as_object_mut().unwrap().remove("iss");
        assert_eq!(v.verify(&hs256(&no_iss)), Err(TokenError::WrongIssuer));
        let mut no_aud = good;
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(v.verify(&hs256(&no_aud)), Err(TokenError::WrongAudience));

        // Not configured: not checked.
        let open = verifier(secret_config());
        assert!(open.verify(&hs256(&wrong_iss)).is_ok());
        assert!(open.verify(&hs256(&wrong_aud)).is_ok());
        assert!(open.verify(&hs256(&array_aud)).is_ok());
    }

    #[test]
    fn alg_none_is_refused() {
        let v = verifier(secret_config());
        let payload = b64url(claims().to_string().as_bytes());
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"PS256"}"#,
        ] {
            let token = format!("{}.{payload}.", b64url(header.as_bytes()));
            let err = v.verify(&token).unwrap_err();
            assert!(matches!(err, TokenError::Algorithm(_)), "{header}: {err:?}");
            assert_eq!(err.code(), "algorithm");
        }
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        let (_dir, _path, v) = file_verifier(&rsa(0).public);
        let confused = EncodingKey::from_secret(rsa(0).public.as_bytes()).unwrap();
        let token = sign(Algorithm::HS256, None, &confused, &claims());
        assert!(matches!(v.verify(&token), Err(TokenError::Algorithm(_))));
    }

    #[test]
    fn secret_and_file_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.pem");
        std::fs::write(&path, &ec(0).public).unwrap();
        let v = verifier(VerifierConfig {
            secret: Some(SECRET.into()),
            keys_file: Some(path.clone()),
            ..VerifierConfig::default()
        });
        assert_eq!(
            v.describe(),
            format!("HS256 secret + 1 key from {} (ES256)", path.display())
        );
        assert!(v.verify(&hs256(&claims())).is_ok());
        let es = sign(Algorithm::ES256, None, &ec_signer(0), &claims());
        assert!(v.verify(&es).is_ok());
        // The secret is not a public key's stand-in, nor the reverse.
        let confused = EncodingKey::from_secret(ec(0).public.as_bytes()).unwrap();
        let token = sign(Algorithm::HS256, None, &confused, &claims());
        assert_eq!(v.verify(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn claims_are_checked_after_the_signature() {
        let v = verifier(secret_config());
        let other_org = with(claims(), "roles", json!({"globex.*.*": "admin"}));
        assert!(matches!(
            v.verify(&hs256(&other_org)),
            Err(TokenError::InvalidClaims(m)) if m.contains("globex.*.*")
        ));
        let bad_sub = with(claims(), "sub", json!("a b"));
        assert!(matches!(
            v.verify(&hs256(&bad_sub)),
            Err(TokenError::InvalidClaims(m)) if m.contains("sub")
        ));
        let bad_role = with(claims(), "roles", json!({"acme.*.*": "owner"}));
        assert!(matches!(
            v.verify(&hs256(&bad_role)),
            Err(TokenError::InvalidClaims(_))
        ));
        let mut no_org = claims();
        no_org.as_object_mut().unwrap().remove("org");
        assert!(matches!(
            v.verify(&hs256(&no_org)),
            Err(TokenError::InvalidClaims(m)) if m.contains("org")
        ));
    }

    #[test]
    fn oversized_and_malformed_tokens() {
        let v = verifier(secret_config());
        let big = hs256(&with(claims(), "name", json!("x".repeat(MAX_TOKEN_LEN))));
        assert!(big.len() > MAX_TOKEN_LEN);
        let err = v.verify(&big).unwrap_err();
        assert!(
            matches!(err, TokenError::Malformed(ref m) if m.contains("8192")),
            "{err:?}"
        );
        assert_eq!(err.code(), "malformed");

        for bad in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.sig"] {
            let err = v.verify(bad).unwrap_err();
            assert!(matches!(err, TokenError::Malformed(_)), "{bad:?}: {err:?}");
        }
        let good = hs256(&claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[2] = "not*base64";
        assert!(matches!(
            v.verify(&parts.join(".")),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn b64url_decodes() {
        assert_eq!(b64url_decode("").unwrap(), b"");
        assert_eq!(b64url_decode("e30").unwrap(), b"{}");
        assert_eq!(b64url_decode("_-8").unwrap(), [0xff, 0xef]);
        assert!(b64url_decode("e30=").is_none());
        assert!(b64url_decode("a").is_none());
        let data: Vec<u8> = (0..=255).collect();
        for n in 0..data.len() {
            assert_eq!(b64url_decode(&b64url(&data[..n])).unwrap(), &data[..n]);
        }
    }

    #[test]
    fn reload_on_change() {
        let (_dir, path, v) = file_verifier(&rsa(0).public);
        let a = sign(Algorithm::RS256, None, &rsa_signer(0), &claims());
        let b = sign(Algorithm::RS256, None, &rsa_signer(1), &claims());
        assert!(v.verify(&a).is_ok());
        assert_eq!(v.verify(&b), Err(TokenError::BadSignature));
        assert!(!v.reload_if_changed().unwrap(), "nothing changed yet");

        overwrite(&path, &rsa(1).public, 10);
        assert!(v.reload_if_changed().unwrap());
        assert!(v.verify(&b).is_ok());
        assert_eq!(v.verify(&a), Err(TokenError::BadSignature));
        assert!(!v.reload_if_changed().unwrap());

        // Garbage: the error is reported, key B stays.
        overwrite(&path, "garbage", 20);
        assert!(matches!(v.reload_if_changed(), Err(KeyError::Invalid(_))));
        assert!(v.verify(&b).is_ok());
        assert!(!v.reload_if_changed().unwrap(), "reported once per change");

        // Gone: the same.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(v.reload_if_changed(), Err(KeyError::Io { .. })));
        assert!(v.verify(&b).is_ok());

        // Back, as a JWKS this time.
        overwrite(
            &path,
            &jwks(vec![jwk(&ec_signer(0), Algorithm::ES256, "e0")]),
            30,
        );
        assert!(v.reload_if_changed().unwrap());
        let e = sign(Algorithm::ES256, Some("e0"), &ec_signer(0), &claims());
        assert!(v.verify(&e).is_ok());
        assert!(matches!(v.verify(&b), Err(TokenError::Algorithm(_))));
    }

    #[test]
    fn verify_reloads_lazily_at_most_once_a_second() {
        let b = sign(Algorithm::RS256, None, &rsa_signer(1), &claims());
        let (_dir, path, v) = file_verifier(&rsa(0).public);
        let clone = v.clone();
        overwrite(&path, &rsa(1).public, 10);
        // Checked just now: the change is not looked at yet.
        v.set_last_check(Instant::now());
        assert_eq!(v.verify(&b), Err(TokenError::BadSignature));
        // A second later, verify looks.
        v.set_last_check(Instant::now() - RELOAD_INTERVAL);
        assert!(v.verify(&b).is_ok());
        assert!(clone.verify(&b).is_ok(), "clones share the keys");
        assert!(!v.reload_if_changed().unwrap(), "verify already re-read it");
    }

    #[test]
    fn too_many_kidless_candidates() {
        let keys: Vec<Jwk> = (0..MAX_KIDLESS_TRIES + 1)
            .map(|i| {
                let mut k = jwk(&rsa_signer(i % 2), Algorithm::RS256, "x");
                k.common.key_id = Some(format!("k{i}"));
                k
            })
            .collect();
        let (_dir, _path, v) = file_verifier(&jwks(keys));
        let bare = sign(Algorithm::RS256, None, &rsa_signer(0), &claims());
        assert_eq!(v.verify(&bare), Err(TokenError::UnknownKey));
        let named = sign(Algorithm::RS256, Some("k4"), &rsa_signer(0), &claims());
        assert!(v.verify(&named).is_ok());
    }

    #[test]
    fn key_error_messages() {
        let e = KeyError::NoKeys(PathBuf::from("/etc/okrhub/jwks.json"));
        assert!(e.to_string().contains("/etc/okrhub/jwks.json"));
        assert_eq!(
            KeyError::ShortSecret.to_string(),
            "the HS256 secret must be at least 32 bytes"
        );
    }
}
