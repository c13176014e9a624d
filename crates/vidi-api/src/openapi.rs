//! The OpenAPI document, generated from the handlers' annotations and the wire types, served at
//! `/openapi.json`. A copy is committed as `openapi.json` at the repository root and a test fails
//! when the two drift apart.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::resources::tracks::{captions, chapters};
use crate::resources::{
    account, analytics, auth, live_streams, players, source, thumbnail, upload, upload_tokens, videos, webhooks,
};

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        // As in api.video's spec: `apiKey` is HTTP Basic with the key as user name.
        c.add_security_scheme("apiKey", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        c.add_security_scheme("bearerAuth", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// What the annotations cannot say once for every operation: problem bodies are
/// `application/problem+json` (contract §1.3), and the list parameters' ranges (contract §1.4),
/// so a client generating requests from this document stays inside them.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{Object, Schema, Type};
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for op in ops.into_iter().flatten() {
                for (status, response) in op.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else { continue };
                    if (status.starts_with('4') || status.starts_with('5'))
                        && let Some(c) = response.content.shift_remove("application/json")
                    {
                        response.content.insert("application/problem+json".into(), c);
                    }
                }
                for p in op.parameters.iter_mut().flatten() {
                    let RefOr::T(p) = p else { continue };
                    let max = match p.name.as_str() {
                        "currentPage" => 2_147_483_647,
                        "pageSize" => 100,
                        _ => continue,
                    };
                    let schema = Object::builder().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(max));
                    p.schema = Some(RefOr::T(Schema::Object(schema.build())));
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Vidi", description = "A self-hosted video platform, wire-compatible with api.video's v1 API (2023)."),
    paths(
        auth::authenticate, auth::refresh, account::account,
        videos::create, videos::list, videos::show, videos::update, videos::delete, videos::status,
        source::upload_source, thumbnail::pick, thumbnail::upload,
        captions::list, captions::show, captions::upload, captions::update, captions::delete,
        chapters::list, chapters::show, chapters::upload, chapters::delete,
        players::create, players::list, players::show, players::update, players::delete,
        players::upload_logo, players::delete_logo,
        live_streams::create, live_streams::list, live_streams::show, live_streams::update, live_streams::delete,
        live_streams::upload_thumbnail, live_streams::delete_thumbnail,
        upload::upload, upload_tokens::create, upload_tokens::list, upload_tokens::show, upload_tokens::delete,
        webhooks::create, webhooks::list, webhooks::show, webhooks::delete,
        webhooks::secret, webhooks::deliveries, webhooks::delivery, webhooks::replay,
        analytics::video_sessions, analytics::live_stream_sessions, analytics::session_events,
        analytics::video_qoe, analytics::live_stream_qoe,
        crate::collect::create_session, crate::collect::append_events,
    ),
    components(schemas(videos::VideoIdOnly, analytics::PlayerSessionEvent,
        analytics::SessionOut<analytics::VideoSessionSession>, analytics::SessionOut<analytics::LiveStreamSessionSession>,
        crate::collect::EventIn)),
    modifiers(&Security, &Conventions)
)]
pub struct ApiDoc;

/// The document as committed (pretty JSON, trailing newline).
pub fn document() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().expect("the spec serialises");
    s.push('\n');
    s
}

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], document()).into_response() }),
    )
}
