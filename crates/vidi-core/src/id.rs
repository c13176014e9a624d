//! Typed, prefixed ids. api.video ids are a short prefix and 22 base62 characters
//! (`vi4k0jvEUuaTdRAEjQ4Jfrgz`). We draw the 22 characters from a UUIDv7 so ids sort by creation
//! time, which keeps B-tree inserts local and pagination stable.

use std::fmt;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 22 base62 digits hold any 128-bit value (62^22 > 2^128).
fn base62_22(mut n: u128) -> String {
    let mut out = [b'0'; 22];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ascii")
}

/// A fresh time-ordered 22-character body.
pub fn ordered_body() -> String {
    base62_22(uuid::Uuid::now_v7().as_u128())
}

/// A fresh random 22-character body (for secrets-adjacent ids where ordering leaks nothing useful).
pub fn random_body() -> String {
    base62_22(uuid::Uuid::new_v4().as_u128())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ordered_body()))
            }

            /// Accepts any string with the right prefix and a base62 body. Malformed ids are simply
            /// ids that exist nowhere: callers answer 404 for them, as api.video does.
            pub fn parse(s: &str) -> Option<Self> {
                let body = s.strip_prefix($prefix)?;
                (!body.is_empty() && body.len() <= 64 && body.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then(|| Self(s.to_string()))
            }

            /// For values read back from our own database.
            pub fn from_trusted(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as a plain string, without a copy.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A video (`vi…`).
    VideoId, "vi"
);
prefixed_id!(
    /// A tenant: every API key and every resource belongs to exactly one workspace (`ws…`).
    WorkspaceId, "ws"
);
prefixed_id!(
    /// An API key's public id (`ak…`); the key itself is stored only as a hash.
    ApiKeyId, "ak"
);
prefixed_id!(
    /// One recorded event of the outbox (`ev…`): time-ordered, so reading in id order is reading
    /// in the order the changes committed (near enough; see `event`).
    EventId, "ev"
);
prefixed_id!(
    /// A webhook (`webhook_…`): contract §1.7 keeps api.video's own prefix for these.
    WebhookId, "webhook_"
);
prefixed_id!(
    /// One delivery of one event to one webhook (`wd…`), a Vidi extension.
    DeliveryId, "wd"
);

prefixed_id!(
    /// A live stream (`li…`).
    LiveStreamId, "li"
);

prefixed_id!(
    /// One broadcast of a live stream (`bc…`): it names the broadcast's folder in the media store.
    BroadcastId, "bc"
);

prefixed_id!(
    /// A player theme (`pt…`, as real api.video responses have it; the spec's examples say `pl…`).
    PlayerId, "pt"
);

prefixed_id!(
    /// A delegated upload token (`to…`): a bearer secret in a query string, so its body is random,
    /// never time-ordered (see [`UploadTokenId::generate_secret`]).
    UploadTokenId, "to"
);

impl UploadTokenId {
    /// A fresh token: 128 random bits, which is what guessing one would have to beat.
    pub fn generate_secret() -> Self {
        Self(format!("{}{}", Self::PREFIX, random_body()))
    }
}

prefixed_id!(
    /// A viewing session reported by a player to the collector (`ps…`), contract §12. Apart from
    /// a private video's playback session, which is a delivery credential: this one is not.
    PlayerSessionId, "ps"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_api_video_shape_and_sort_by_time() {
        let a = VideoId::generate();
        let b = VideoId::generate();
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().starts_with("vi"));
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(VideoId::parse(a.as_str()), Some(a));
        assert_eq!(VideoId::parse("li4k0jvEUuaTdRAEjQ4Jfrgz"), None);
        assert_eq!(VideoId::parse("vi../../etc"), None);
    }

    #[test]
    fn base62_is_fixed_width() {
        assert_eq!(base62_22(0), "0000000000000000000000");
        assert_eq!(base62_22(u128::MAX).len(), 22);
    }
}

/// What a viewer watches, as delivery names it: a video or a live stream. Their ids never collide
/// (their prefixes differ), so one map can hold both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MediaId {
    Video(VideoId),
    LiveStream(LiveStreamId),
}

impl MediaId {
    pub fn as_str(&self) -> &str {
        match self {
            MediaId::Video(id) => id.as_str(),
            MediaId::LiveStream(id) => id.as_str(),
        }
    }

    /// The name of the path parameter (and of the problem body's `name`) that carries it.
    pub fn param(&self) -> &'static str {
        match self {
            MediaId::Video(_) => "videoId",
            MediaId::LiveStream(_) => "liveStreamId",
        }
    }
}

impl std::fmt::Display for MediaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
