//! Events: what happened, recorded in the `events` outbox by the same transaction as the change
//! that caused it (a change and its event are both written or neither is), and delivered later
//! (webhooks). The four kinds are api.video's 2023 webhook events (contract §9); their wire
//! bodies are built here, once.

use serde_json::{Value, json};

use crate::id::{EventId, VideoId, WorkspaceId};
use crate::time::to_rfc3339_nanos;

/// The event kinds, by their wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    VideoEncodingQualityCompleted,
    LiveStreamBroadcastStarted,
    LiveStreamBroadcastEnded,
    VideoSourceRecorded,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::VideoEncodingQualityCompleted,
        EventKind::LiveStreamBroadcastStarted,
        EventKind::LiveStreamBroadcastEnded,
        EventKind::VideoSourceRecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::VideoEncodingQualityCompleted => "video.encoding.quality.completed",
            EventKind::LiveStreamBroadcastStarted => "live-stream.broadcast.started",
            EventKind::LiveStreamBroadcastEnded => "live-stream.broadcast.ended",
            EventKind::VideoSourceRecorded => "video.source.recorded",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An output of the encoder, as events name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Hls,
    Mp4,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Hls => "hls",
            Encoding::Mp4 => "mp4",
        }
    }

    pub fn parse(s: &str) -> Option<Encoding> {
        match s {
            "hls" => Some(Encoding::Hls),
            "mp4" => Some(Encoding::Mp4),
            _ => None,
        }
    }
}

/// What an event says, by kind. Live-stream ids are kept as the strings the wire carries (the
/// outbox stores and sends them as they are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// One HLS rendition, or the MP4, is encoded: sent once per rendition and once for the MP4.
    QualityCompleted {
        video_id: VideoId,
        encoding: Encoding,
        quality: String,
    },
    BroadcastStarted {
        live_stream_id: String,
    },
    BroadcastEnded {
        live_stream_id: String,
    },
    SourceRecorded {
        live_stream_id: String,
        video_id: VideoId,
    },
}

impl EventBody {
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::QualityCompleted { .. } => EventKind::VideoEncodingQualityCompleted,
            EventBody::BroadcastStarted { .. } => EventKind::LiveStreamBroadcastStarted,
            EventBody::BroadcastEnded { .. } => EventKind::LiveStreamBroadcastEnded,
            EventBody::SourceRecorded { .. } => EventKind::VideoSourceRecorded,
        }
    }

    /// What the event is about (a video or a live stream): deliveries for one subject keep their
    /// order.
    pub fn subject(&self) -> &str {
        match self {
            EventBody::QualityCompleted { video_id, .. } => video_id.as_str(),
            EventBody::BroadcastStarted { live_stream_id }
            | EventBody::BroadcastEnded { live_stream_id }
            | EventBody::SourceRecorded { live_stream_id, .. } => live_stream_id,
        }
    }

    /// Two events with the same key are the same event: the outbox keeps the first. A rendition
    /// is completed once, however often its encode is retried; broadcasts are told apart by the
    /// caller's `occurrence` (their start time, say).
    pub fn dedup_key(&self, occurrence: &str) -> String {
        match self {
            EventBody::QualityCompleted { video_id, encoding, quality } => {
                format!("{}:{video_id}:{}:{quality}", self.kind().as_str(), encoding.as_str())
            }
            _ => format!("{}:{}:{occurrence}", self.kind().as_str(), self.subject()),
        }
    }

    /// The fields beyond `type` and `emittedAt`, as stored and as sent.
    pub fn fields(&self) -> Value {
        match self {
            EventBody::QualityCompleted { video_id, encoding, quality } => {
                json!({ "videoId": video_id, "encoding": encoding.as_str(), "quality": quality })
            }
            EventBody::BroadcastStarted { live_stream_id } | EventBody::BroadcastEnded { live_stream_id } => {
                json!({ "liveStreamId": live_stream_id })
            }
            EventBody::SourceRecorded { live_stream_id, video_id } => {
                json!({ "liveStreamId": live_stream_id, "videoId": video_id })
            }
        }
    }

    /// Reads back what [`EventBody::fields`] stored.
    pub fn from_fields(kind: EventKind, f: &Value) -> Option<EventBody> {
        let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
        Some(match kind {
            EventKind::VideoEncodingQualityCompleted => EventBody::QualityCompleted {
                video_id: VideoId::parse(&s("videoId")?)?,
                encoding: Encoding::parse(&s("encoding")?)?,
                quality: s("quality")?,
            },
            EventKind::LiveStreamBroadcastStarted => EventBody::BroadcastStarted { live_stream_id: s("liveStreamId")? },
            EventKind::LiveStreamBroadcastEnded => EventBody::BroadcastEnded { live_stream_id: s("liveStreamId")? },
            EventKind::VideoSourceRecorded => EventBody::SourceRecorded {
                live_stream_id: s("liveStreamId")?,
                video_id: VideoId::parse(&s("videoId")?)?,
            },
        })
    }
}

/// A recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    /// Unix nanoseconds (api.video's `emittedAt` has nanoseconds).
    pub emitted_at_ns: i64,
    pub body: EventBody,
}

impl Event {
    /// The webhook body of contract §9: `{type, emittedAt, …fields}`.
    pub fn wire(&self) -> Value {
        let mut v = json!({ "type": self.body.kind().as_str(), "emittedAt": to_rfc3339_nanos(self.emitted_at_ns) });
        if let (Value::Object(out), Value::Object(fields)) = (&mut v, self.body.fields()) {
            out.extend(fields);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_completed_has_the_2023_body_and_round_trips() {
        let video_id = VideoId::parse("vi4k0jvEUuaTdRAEjQ4Jfrgz").unwrap();
        let body = EventBody::QualityCompleted { video_id, encoding: Encoding::Hls, quality: "720p".into() };
        let e = Event {
            id: EventId::generate(),
            workspace_id: WorkspaceId::generate(),
            emitted_at_ns: 1_684_834_142_154_104_779,
            body: body.clone(),
        };
        assert_eq!(
            e.wire(),
            json!({"type": "video.encoding.quality.completed", "emittedAt": "2023-05-23T09:29:02.154104779Z",
                   "videoId": "vi4k0jvEUuaTdRAEjQ4Jfrgz", "encoding": "hls", "quality": "720p"})
        );
        assert_eq!(EventBody::from_fields(body.kind(), &body.fields()), Some(body.clone()));
        assert_eq!(body.dedup_key("ignored"), "video.encoding.quality.completed:vi4k0jvEUuaTdRAEjQ4Jfrgz:hls:720p");
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
    }
}
