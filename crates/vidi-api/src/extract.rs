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
        match v {
            Value::Null => Ok(None),
            Value::Number(n) if n.is_i64() => Ok(n.as_i64()),
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
        #[serde(default)]
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
