//! How deliveries are signed (docs/webhooks.md says how a receiver checks them).
//!
//! - `X-Api-Video-Signature`: hex HMAC-SHA256 of the raw body, keyed with the webhook's secret
//!   (its UTF-8 bytes). This is what api.video sends since 2024, so receivers written against
//!   api.video's own verification helpers work unchanged.
//! - `X-Vidi-Signature: v1=<hex>`: the same HMAC over `"<X-Vidi-Timestamp>.<raw body>"`. A body
//!   alone signs the event, not the moment it was sent: a captured delivery stays valid for ever.
//!   Binding the attempt's timestamp lets a receiver refuse anything older than a few minutes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// `X-Api-Video-Signature`: HMAC-SHA256(secret, body), hex.
pub fn body_signature(secret: &str, body: &[u8]) -> String {
    hmac_hex(secret, &[body])
}

/// `X-Vidi-Signature`: `v1=` and HMAC-SHA256(secret, "<timestamp>.<body>"), hex.
pub fn timed_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hmac_hex(secret, &[timestamp.to_string().as_bytes(), b".", body]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published in docs/webhooks.md (computed there independently).
    #[test]
    fn published_test_vector() {
        let secret = "whsec_3a7c1f0e9b2d4c6a8e5f7b9d1c3e5a7f";
        let body = br#"{"emittedAt":"2023-05-23T09:29:02.154104779Z","encoding":"hls","quality":"720p","type":"video.encoding.quality.completed","videoId":"vi4k0jvEUuaTdRAEjQ4Jfrgz"}"#;
        assert_eq!(body_signature(secret, body), "db1e9929f6ddbba621e96102839e567585de607764371c79de3873e87b4ff37f");
        assert_eq!(
            timed_signature(secret, 1_684_834_142, body),
            "v1=a9a2a7906b6e7df2c2e6918fa58f520065e77fb8600e23cbb35331def2ee8b73"
        );
    }
}
