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
        let name = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
            _ => String::new(),
        };
        let message = e.into_inner().to_string();
        match message.strip_prefix(EXPECTED) {
            Some(expected) => wrong(&name, expected),
            None => ApiError::invalid_attribute(&name, message),
        }
    })
}

/// The attribute readers: each takes one JSON value (`null` counting as absent) and says what it
/// expected when the value is of another type. [`Fields`] and [`de`] both use them, so a typed
/// body and a field read by name fail with the same words.
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
}

/// Typed access to a JSON object's fields, each failure naming the attribute.
pub trait Fields {
    /// `Ok(None)` when absent; `null` counts as absent unless the caller checks [`Fields::is_null`].
    fn string(&self, name: &str) -> ApiResult<Option<String>>;
    fn boolean(&self, name: &str) -> ApiResult<Option<bool>>;
    fn integer(&self, name: &str) -> ApiResult<Option<i64>>;
    fn strings(&self, name: &str) -> ApiResult<Option<Vec<String>>>;
    fn metadata(&self, name: &str) -> ApiResult<Option<Vec<MetadataPair>>>;
    fn is_null(&self, name: &str) -> bool;
}

fn field<T>(m: &Map<String, Value>, name: &str, f: fn(&Value) -> read::Read<T>) -> ApiResult<Option<T>> {
    m.get(name).map_or(Ok(None), |v| f(v).map_err(|expected| wrong(name, expected)))
}

impl Fields for Map<String, Value> {
    fn string(&self, name: &str) -> ApiResult<Option<String>> {
        field(self, name, read::string)
    }

    fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        field(self, name, read::boolean)
    }

    fn integer(&self, name: &str) -> ApiResult<Option<i64>> {
        field(self, name, read::integer)
    }

    fn strings(&self, name: &str) -> ApiResult<Option<Vec<String>>> {
        field(self, name, read::strings)
    }

    fn metadata(&self, name: &str) -> ApiResult<Option<Vec<MetadataPair>>> {
        field(self, name, read::metadata)
    }

    fn is_null(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Null))
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

    #[test]
    fn fields_name_the_attribute() {
        let m = parse_object(&Bytes::from_static(br#"{"title": 3, "tags": ["a", 1], "public": null}"#)).unwrap();
        let e = m.string("title").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(m.strings("tags").is_err());
        assert_eq!(m.boolean("public").unwrap(), None);
        assert!(m.is_null("public"));
        assert!(parse_object(&Bytes::from_static(b"[1]")).is_err());
        assert!(parse_object(&Bytes::from_static(b"{oops")).is_err());
    }
}
