//! Request parsing with api.video's errors: JSON bodies read field by field (so a wrong type names
//! the attribute, and `null` can be told apart from absent), and query strings decoded as forms
//! with the `tags[]` and `metadata[key]` conventions of the official clients.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
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

fn wrong(name: &str, expected: &str) -> ApiError {
    ApiError::invalid_attribute(name, format!("The \"{name}\" attribute must be {expected}."))
}

impl Fields for Map<String, Value> {
    fn string(&self, name: &str) -> ApiResult<Option<String>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong(name, "a string")),
        }
    }

    fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong(name, "a boolean")),
        }
    }

    fn integer(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(_) => Err(wrong(name, "an integer")),
        }
    }

    fn strings(&self, name: &str) -> ApiResult<Option<Vec<String>>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| wrong(name, "an array of strings")))
                .collect::<ApiResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(wrong(name, "an array of strings")),
        }
    }

    fn metadata(&self, name: &str) -> ApiResult<Option<Vec<MetadataPair>>> {
        let expected = "an array of {\"key\": string, \"value\": string} objects";
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    let key = v.get("key").and_then(Value::as_str);
                    let value = v.get("value").and_then(Value::as_str);
                    match (key, value) {
                        (Some(k), Some(v)) if !k.is_empty() => {
                            Ok(MetadataPair { key: k.to_string(), value: v.to_string() })
                        }
                        _ => Err(wrong(name, expected)),
                    }
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(wrong(name, expected)),
        }
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
