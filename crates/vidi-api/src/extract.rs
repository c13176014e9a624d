//! Request parsing with api.video's errors: JSON bodies as typed structs ([`JsonBody`]) whose
//! fields read through [`de`], so a wrong type names the attribute exactly as the field-by-field
//! reading did; and query strings decoded as forms with the `tags[]` and `metadata[key]`
//! conventions of the official clients.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use vidi_core::model::MetadataPair;

use crate::{ApiError, ApiResult, AppState};

/// A JSON object body.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.cfg.max_json_bytes;
        let body = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| {
            ApiError::invalid_payload(format!("The body is missing, unreadable or larger than {limit} bytes."))
        })?;
        parse_object(&body).map(JsonObject)
    }
}

pub fn parse_object(body: &Bytes) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_payload("The body is empty: a JSON object is expected."));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid_payload("The body must be a JSON object.")),
        Err(e) => Err(ApiError::invalid_payload(format!("The body is not valid JSON: {e}"))),
    }
}

fn wrong(name: &str, expected: &str) -> ApiError {
    ApiError::invalid_attribute(name, format!("The \"{name}\" attribute must be {expected}."))
}

/// A typed JSON body. The body must be a JSON object (else `invalid-payload`, as for
/// [`JsonObject`]); its fields are only checked when the handler calls [`JsonBody::read`], so a
/// handler answers a missing video or an invalid path before a bad attribute, as it always has.
pub struct JsonBody<T>(ApiResult<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let JsonObject(map) = JsonObject::from_request(req, state).await?;
        Ok(JsonBody(typed(map)))
    }
}

impl<T> JsonBody<T> {
    /// The body, or the problem of its first wrong attribute.
    pub fn read(self) -> ApiResult<T> {
        self.0
    }
}

/// What a [`de`] function's error message starts with; the rest is the expected type's words.
const EXPECTED: &str = "\u{0}expected ";

/// Deserialises an object into `T`, a wrong attribute answered as `invalid-attribute` named by
/// its top-level field (the name api.video gives it).
pub fn typed<T: DeserializeOwned>(map: Map<String, Value>) -> ApiResult<T> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let name = attribute_name(e.path());
        let message = e.into_inner().to_string();
        match message.strip_prefix(EXPECTED) {
            Some(expected) => wrong(&name, expected),
            None => ApiError::invalid_attribute(&name, message),
        }
    })
}

/// The name api.video gives an attribute at `path`: `title`, `clip[startTimecode]`,
/// `metadata[0]`.
fn attribute_name(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut name = String::new();
    for (i, segment) in path.iter().enumerate() {
        match segment {
            Segment::Map { key } if i == 0 => name.push_str(key),
            Segment::Map { key } => name.push_str(&format!("[{key}]")),
            Segment::Seq { index } => name.push_str(&format!("[{index}]")),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    name
}

/// A PATCH field where `null` means something (clear the value) and absence means "leave it":
/// read with `#[serde(default, deserialize_with = "de::nullable_string")]`.
#[derive(Default)]
pub enum Nullable<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Nullable<T> {
    /// `None` when absent, else the new value (`Some(None)` for `null`).
    pub fn given(self) -> Option<Option<T>> {
        match self {
            Nullable::Absent => None,
            Nullable::Null => Some(None),
            Nullable::Value(v) => Some(Some(v)),
        }
    }
}

/// The attribute readers: each takes one JSON value (`null` counting as absent) and says what it
/// expected when the value is of another type: the words api.video's clients have always seen
/// in the problem's `detail`.
mod read {
    use super::*;

    pub type Read<T> = Result<Option<T>, &'static str>;

    pub fn string(v: &Value) -> Read<String> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err("a string"),
        }
    }

    pub fn boolean(v: &Value) -> Read<bool> {
        match v {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            _ => Err("a boolean"),
        }
    }

    pub fn integer(v: &Value) -> Read<i64> {
        // JSON Schema's integer is a number without a fraction, so `35244.0` is one (schemathesis
        // sends such); beyond 2^53 a float is no longer exact and is refused.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        match v {
            Value::Null => Ok(None),
            Value::Number(n) if n.is_i64() => Ok(n.as_i64()),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => Ok(Some(f as i64)),
                _ => Err("an integer"),
            },
            _ => Err("an integer"),
        }
    }

    pub fn strings(v: &Value) -> Read<Vec<String>> {
        let expected = "an array of strings";
        match v {
            Value::Null => Ok(None),
            Value::Array(items) => {
                items.iter().map(|v| v.as_str().map(str::to_string).ok_or(expected)).collect::<Result<_, _>>().map(Some)
            }
            _ => Err(expected),
        }
    }

    pub fn metadata(v: &Value) -> Read<Vec<MetadataPair>> {
        let expected = "an array of {\"key\": string, \"value\": string} objects";
        match v {
            Value::Null => Ok(None),
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    let key = v.get("key").and_then(Value::as_str);
                    let value = v.get("value").and_then(Value::as_str);
                    match (key, value) {
                        (Some(k), Some(v)) if !k.is_empty() => {
                            Ok(MetadataPair { key: k.to_string(), value: v.to_string() })
                        }
                        _ => Err(expected),
                    }
                })
                .collect::<Result<_, _>>()
                .map(Some),
            _ => Err(expected),
        }
    }
}

/// `deserialize_with` functions for the fields of typed bodies: `#[serde(default,
/// deserialize_with = "de::string")]` on an `Option<String>` reads absent and `null` as `None`
/// and any other type as the attribute's `invalid-attribute` problem.
pub mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;
    use vidi_core::model::MetadataPair;

    use super::{EXPECTED, read};

    fn with<'de, D: Deserializer<'de>, T>(d: D, f: fn(&Value) -> read::Read<T>) -> Result<Option<T>, D::Error> {
        let v = Value::deserialize(d)?;
        f(&v).map_err(|expected| serde::de::Error::custom(format!("{EXPECTED}{expected}")))
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        with(d, read::string)
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        with(d, read::boolean)
    }

    pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        with(d, read::integer)
    }

    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        with(d, read::strings)
    }

    pub fn metadata<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<MetadataPair>>, D::Error> {
        with(d, read::metadata)
    }

    /// An object field (`clip`): absent or `null` is `None`, an object is read field by field
    /// (a wrong field still named `clip[startTimecode]`), and anything else is the wrong type.
    /// serde alone would also read a JSON array as the struct's fields in order, a form the
    /// schema does not have.
    pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(serde::de::Error::custom(format!("{EXPECTED}an object")))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(E::custom(format!("{EXPECTED}an object")))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!("{EXPECTED}an object")))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!("{EXPECTED}an object")))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!("{EXPECTED}an object")))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(format!("{EXPECTED}an object")))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }

    /// The same readers for fields where `null` means nothing to a user (a player's settings, a
    /// token's `ttl`): api.video's schema does not allow it there, so it is refused as the wrong
    /// type instead of being read as absent (docs/contract.md, "null").
    pub fn string_not_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        with(d, |v| if v.is_null() { Err("a string, not null") } else { read::string(v) })
    }

    pub fn boolean_not_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        with(d, |v| if v.is_null() { Err("a boolean, not null") } else { read::boolean(v) })
    }

    pub fn integer_not_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        with(d, |v| if v.is_null() { Err("an integer, not null") } else { read::integer(v) })
    }

    /// Only called when the field is present (absent is the `Default`), so `null` is `Null`.
    pub fn nullable_string<'de, D: Deserializer<'de>>(d: D) -> Result<super::Nullable<String>, D::Error> {
        Ok(match with(d, read::string)? {
            None => super::Nullable::Null,
            Some(s) => super::Nullable::Value(s),
        })
    }
}

/// A decoded query string, in order.
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Query(form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect())
    }

    /// The last value of a plain parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `name[]=a&name[]=b`, also `name=a` and `name[0]=a`.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k == name || k.strip_prefix(name).and_then(|r| r.strip_prefix('[')).is_some_and(|r| r.ends_with(']'))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `name[key]=value` pairs.
    pub fn map(&self, name: &str) -> Vec<MetadataPair> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')?;
                (!key.is_empty()).then(|| MetadataPair { key: key.to_string(), value: v.clone() })
            })
            .collect()
    }

    /// The query string to repeat in pagination links: every parameter but the page ones.
    pub fn without_paging(&self) -> Vec<(String, String)> {
        self.0.iter().filter(|(k, _)| k != "currentPage" && k != "pageSize").cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_conventions_of_both_clients() {
        // Node percent-encodes the brackets and writes spaces as `+`.
        let q = Query::parse(Some("tags%5B%5D=a&tags%5B%5D=b+c&metadata%5BAuthor%5D=John+Doe&metadata[x]=1&title=t"));
        assert_eq!(q.list("tags"), vec!["a", "b c"]);
        assert_eq!(
            q.map("metadata"),
            vec![
                MetadataPair { key: "Author".into(), value: "John Doe".into() },
                MetadataPair { key: "x".into(), value: "1".into() }
            ]
        );
        assert_eq!(q.get("title"), Some("t"));
        assert_eq!(Query::parse(Some("tags=solo")).list("tags"), vec!["solo"]);
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        #[serde(default, deserialize_with = "de::string")]
        title: Option<String>,
        #[serde(default, deserialize_with = "de::nullable_string")]
        player_id: Nullable<String>,
        #[serde(default, deserialize_with = "de::object")]
        clip: Option<Clip>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Clip {
        #[serde(default, deserialize_with = "de::string")]
        start_timecode: Option<String>,
    }

    fn sample(body: &'static [u8]) -> ApiResult<Sample> {
        typed(parse_object(&Bytes::from_static(body)).unwrap())
    }

    #[test]
    fn integers_are_numbers_without_a_fraction() {
        use serde_json::json;
        assert_eq!(read::integer(&json!(35244.0)), Ok(Some(35244)));
        assert_eq!(read::integer(&json!(-3)), Ok(Some(-3)));
        assert_eq!(read::integer(&json!(null)), Ok(None));
        for wrong in [json!(1.5), json!(1e300), json!("1"), json!(true)] {
            assert_eq!(read::integer(&wrong), Err("an integer"), "{wrong}");
        }
    }

    #[test]
    fn typed_bodies_name_the_attribute() {
        let wrong_type = sample(br#"{"title": 3}"#).err().unwrap();
        let expected = ApiError::invalid_attribute("title", "The \"title\" attribute must be a string.");
        assert_eq!(format!("{wrong_type:?}"), format!("{expected:?}"));
        let nested = sample(br#"{"clip": {"startTimecode": 1}}"#).err().unwrap();
        let expected = ApiError::invalid_attribute(
            "clip[startTimecode]",
            "The \"clip[startTimecode]\" attribute must be a string.",
        );
        assert_eq!(format!("{nested:?}"), format!("{expected:?}"));
        let s = sample(br#"{"title": null, "playerId": null, "unknown": 1}"#).unwrap();
        assert!(s.title.is_none() && s.clip.is_none());
        assert_eq!(s.player_id.given(), Some(None));
        assert_eq!(sample(b"{}").unwrap().player_id.given(), None);
        assert_eq!(sample(br#"{"playerId": "pl1"}"#).unwrap().player_id.given(), Some(Some("pl1".into())));
        assert!(sample(br#"{"playerId": false}"#).is_err());
        // An object only: serde would read an array as the fields in order (schemathesis found it).
        for wrong in [&br#"{"clip": [null, null]}"#[..], br#"{"clip": ["00:00:01"]}"#, br#"{"clip": 1}"#] {
            let e = typed::<Sample>(parse_object(&Bytes::from_static(wrong)).unwrap()).err().unwrap();
            let expected = ApiError::invalid_attribute("clip", "The \"clip\" attribute must be an object.");
            assert_eq!(format!("{e:?}"), format!("{expected:?}"));
        }
        assert!(sample(br#"{"clip": null}"#).unwrap().clip.is_none());
        let clip = sample(br#"{"clip": {"startTimecode": "00:00:01"}}"#).unwrap().clip.unwrap();
        assert_eq!(clip.start_timecode.as_deref(), Some("00:00:01"));
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse_object(&Bytes::from_static(b"[1]")).is_err());
        assert!(parse_object(&Bytes::from_static(b"{oops")).is_err());
        assert!(parse_object(&Bytes::from_static(b"  ")).is_err());
    }
}

/// Property tests of the query-string parser: any string is answered without a panic; pairs
/// written the way the official clients write them (percent-encoding, `+` for spaces, brackets
/// encoded or not) read back as written; and `get`, `list` and `map` agree with a plain model
/// over those pairs.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// A key of the conventions: plain `tags`, `tags[]`, `tags[3]`, `metadata[k]`, or another.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("tags".to_string()),
            Just("tags[]".to_string()),
            (0u8..20).prop_map(|i| format!("tags[{i}]")),
            "[a-zA-Z0-9 _&=+%-]{0,6}".prop_map(|k| format!("metadata[{k}]")),
            "[a-zA-Z0-9 _&=+%\\[\\]-]{0,8}",
        ]
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec((key(), ".{0,12}"), 0..8)
    }

    fn encode(pairs: &[(String, String)], raw_brackets: bool) -> String {
        let s = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        if raw_brackets { s.replace("%5B", "[").replace("%5D", "]") } else { s }
    }

    proptest! {
        #[test]
        fn never_panics(raw in ".{0,60}", name in "[a-z\\[\\]]{0,6}") {
            let q = Query::parse(Some(&raw));
            let _ = (q.get(&name), q.list(&name), q.map(&name), q.without_paging());
        }

        #[test]
        fn pairs_read_back_as_written(pairs in pairs(), raw_brackets in any::<bool>()) {
            let q = Query::parse(Some(&encode(&pairs, raw_brackets)));
            prop_assert_eq!(&q.0, &pairs);
        }

        #[test]
        fn lookups_agree_with_a_model(pairs in pairs()) {
            let q = Query::parse(Some(&encode(&pairs, false)));
            for name in ["tags", "metadata", "tags[]"] {
                let last = pairs.iter().rfind(|(k, _)| k == name).map(|(_, v)| v.as_str());
                prop_assert_eq!(q.get(name), last);
            }
            let tags: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k == "tags" || (k.starts_with("tags[") && k.ends_with(']')))
                .map(|(_, v)| v.clone())
                .collect();
            prop_assert_eq!(q.list("tags"), tags);
            let metadata: Vec<(String, String)> = pairs
                .iter()
                .filter_map(|(k, v)| {
                    let inner = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                    (!inner.is_empty()).then(|| (inner.to_string(), v.clone()))
                })
                .collect();
            let got: Vec<(String, String)> = q.map("metadata").into_iter().map(|m| (m.key, m.value)).collect();
            prop_assert_eq!(got, metadata);
            let kept: Vec<(String, String)> =
                pairs.iter().filter(|(k, _)| k != "currentPage" && k != "pageSize").cloned().collect();
            prop_assert_eq!(q.without_paging(), kept);
        }
    }
}
