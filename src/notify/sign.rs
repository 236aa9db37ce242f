//! The four signatures, each exactly as its vendor documents it.
//!
//! | target | key | message | sent as |
//! |---|---|---|---|
//! | DingTalk custom robot | the secret | `timestamp + "\n" + secret` | the URL's `timestamp` (ms) and `sign` (base64, URL-encoded) |
//! | Feishu / Lark custom bot | `timestamp + "\n" + secret` | empty | `timestamp` (s, a string) and `sign` (base64) in the JSON body |
//! | Slack incoming webhook | — (the URL is the secret) | — | — |
//! | Standard Webhooks | base64-decoded secret after `whsec_` | `id.timestamp.body` | `webhook-signature: v1,<base64>` |

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac_b64(key: &[u8], message: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk: base64(HMAC-SHA256(key = secret, message = `timestamp + "\n" + secret`)), not yet
/// URL-encoded (see [`dingtalk_url`]). `timestamp_ms` is in milliseconds.
pub fn dingtalk(secret: &str, timestamp_ms: i64) -> String {
    hmac_b64(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    )
}

/// The robot's URL with `&timestamp=…&sign=…` (the sign URL-encoded) appended.
pub fn dingtalk_url(url: &str, secret: &str, timestamp_ms: i64) -> String {
    let sign = dingtalk(secret, timestamp_ms);
    let encoded = percent_encoding::utf8_percent_encode(&sign, percent_encoding::NON_ALPHANUMERIC);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timestamp={timestamp_ms}&sign={encoded}")
}

/// Feishu / Lark: base64(HMAC-SHA256(key = `timestamp + "\n" + secret`, message = empty)).
/// `timestamp_s` is in seconds.
pub fn lark(secret: &str, timestamp_s: i64) -> String {
    hmac_b64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

/// Why a Standard Webhooks secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by base64 (24 to 64 bytes decoded)")]
pub struct BadSecret;

/// The key of a Standard Webhooks secret: the base64 after `whsec_`, decoded.
pub fn webhook_key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let b64 = secret.strip_prefix("whsec_").ok_or(BadSecret)?;
    let key = STANDARD.decode(b64).map_err(|_| BadSecret)?;
    if !(24..=64).contains(&key.len()) {
        return Err(BadSecret);
    }
    Ok(key)
}

/// Standard Webhooks: `v1,` + base64(HMAC-SHA256(key, `id.timestamp.body`)); `timestamp_s` in
/// seconds.
pub fn standard_webhook(key: &[u8], id: &str, timestamp_s: i64, body: &[u8]) -> String {
    let mut message = format!("{id}.{timestamp_s}.").into_bytes();
    message.extend_from_slice(body);
    format!("v1,{}", hmac_b64(key, &message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector() {
        // The spec's published vector (standard-webhooks/standard-webhooks, and every
        // reference library's tests).
        let key = webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            standard_webhook(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(
            webhook_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(BadSecret)
        );
        assert_eq!(webhook_key("whsec_c2hvcnQ="), Err(BadSecret));
    }

    #[test]
    fn dingtalk_and_lark_differ_in_which_side_is_the_key() {
        let (secret, ms) = ("SECtest", 1_700_000_000_000);
        assert_ne!(dingtalk(secret, ms), lark(secret, ms / 1000));
        let url = dingtalk_url(
            "https://oapi.dingtalk.com/robot/send?access_token=x",
            secret,
            ms,
        );
        assert!(url.starts_with(
            "https://oapi.dingtalk.com/robot/send?access_token=x&timestamp=1700000000000&sign="
        ));
        let sign = url.split("sign=").nth(1).unwrap();
        assert!(!sign.contains(['+', '/', '=']), "{sign}");
    }
}
