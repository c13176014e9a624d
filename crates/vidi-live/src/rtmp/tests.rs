//! In-memory tests of the connection logic: an rml_rtmp client publishes to a [`Conn`], and
//! property tests feed that stream mutated, and random bytes, into fresh connections.

use std::sync::OnceLock;

use bytes::Bytes;
use proptest::prelude::*;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;

use super::conn::{Action, Closed, Conn};
use crate::media::MediaEvent;

/// The size of the RTMP handshake a client sends (C0, C1, C2).
const HANDSHAKE: usize = 1 + 1536 + 1536;

/// A client and a server connection wired back to back, recording what the client sent.
struct Pair {
    server: Conn,
    handshake: Handshake,
    client: Option<ClientSession>,
    sent: Vec<u8>,
    media: Vec<MediaEvent>,
    client_events: Vec<ClientSessionEvent>,
    /// What `Publish::begin` answers.
    admit: bool,
    closed: Option<Closed>,
}

impl Pair {
    fn new(max_message: u32, admit: bool) -> Pair {
        let mut p = Pair {
            server: Conn::new(max_message),
            handshake: Handshake::new(PeerType::Client),
            client: None,
            sent: Vec::new(),
            media: Vec::new(),
            client_events: Vec::new(),
            admit,
            closed: None,
        };
        let c0c1 = p.handshake.generate_outbound_p0_and_p1().unwrap();
        p.send(&c0c1);
        p
    }

    fn send(&mut self, bytes: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        self.sent.extend_from_slice(bytes);
        match self.server.input(bytes) {
            Ok(actions) => {
                for action in actions {
                    match action {
                        Action::Publish(key) if self.admit && key == "key" => self.server.accept().unwrap(),
                        Action::Publish(_) => {
                            self.server.refuse();
                            self.closed = Some(Closed::Refused("refused".into()));
                        }
                        Action::Media(e) => self.media.push(e),
                    }
                }
            }
            Err(c) => self.closed = Some(c),
        }
        self.pump();
    }

    /// Hands the server's output to the client, and the client's answers back, until quiet.
    fn pump(&mut self) {
        let out = self.server.take_output();
        if out.is_empty() {
            return;
        }
        let results = match &mut self.client {
            Some(client) => client.handle_input(&out).unwrap(),
            None => match self.handshake.process_bytes(&out).unwrap() {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.send(&response_bytes);
                    return;
                }
                HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                    let (client, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
                    self.client = Some(client);
                    self.send(&response_bytes);
                    self.client.as_mut().unwrap().handle_input(&remaining_bytes).unwrap()
                }
            },
        };
        self.client_results(results);
    }

    fn client_results(&mut self, results: Vec<ClientSessionResult>) {
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => self.send(&p.bytes),
                ClientSessionResult::RaisedEvent(e) => self.client_events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
    }

    fn client(&mut self) -> &mut ClientSession {
        self.client.as_mut().expect("handshake done")
    }

    fn connect(&mut self, app: &str) {
        let r = self.client().request_connection(app.into()).unwrap();
        self.client_results(vec![r]);
    }

    fn publish(&mut self, key: &str) {
        let r = self.client().request_publishing(key.into(), PublishRequestType::Live).unwrap();
        self.client_results(vec![r]);
    }

    fn video(&mut self, tag: Vec<u8>, ts: u32) {
        let r = self.client().publish_video_data(Bytes::from(tag), RtmpTimestamp::new(ts), false);
        self.client_results(vec![r.unwrap()]);
    }

    fn audio(&mut self, tag: Vec<u8>, ts: u32) {
        let r = self.client().publish_audio_data(Bytes::from(tag), RtmpTimestamp::new(ts), false);
        self.client_results(vec![r.unwrap()]);
    }
}

fn avc_config_tag() -> Vec<u8> {
    let sps = [
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
        0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
    ];
    let mut tag = vec![0x17, 0, 0, 0, 0, 1, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0, sps.len() as u8];
    tag.extend_from_slice(&sps);
    tag.extend_from_slice(&[1, 0, 4, 0x68, 0xeb, 0xe3, 0xcb]);
    tag
}

fn frame_tag(keyframe: bool, cts: u8, len: usize) -> Vec<u8> {
    let mut tag = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, cts];
    tag.extend_from_slice(&(len as u32 - 4).to_be_bytes());
    tag.extend((0..len - 4).map(|i| i as u8));
    tag
}

/// A whole honest publish: handshake, connect, publish, configs, 30 frames (some larger than
/// a chunk) and audio.
fn honest() -> &'static Pair {
    static HONEST: OnceLock<Pair> = OnceLock::new();
    HONEST.get_or_init(|| {
        let mut p = Pair::new(4 << 20, true);
        p.connect("s");
        p.publish("key");
        p.video(avc_config_tag(), 0);
        p.audio(vec![0xAF, 0, 0x12, 0x10], 0);
        for i in 0..30u32 {
            p.video(frame_tag(i % 10 == 0, 66, if i % 10 == 0 { 9000 } else { 300 }), i * 33);
            p.audio(vec![0xAF, 1, 0x21, 0x10, i as u8], i * 23);
        }
        p
    })
}

#[test]
fn an_honest_publisher_gives_configs_then_frames() {
    let p = honest();
    assert_eq!(p.closed, None);
    assert!(p.client_events.contains(&ClientSessionEvent::PublishRequestAccepted));
    let MediaEvent::VideoConfig(v) = &p.media[0] else { panic!("video config first: {:?}", p.media[0]) };
    assert_eq!((v.width, v.height, v.codec.as_str()), (320, 240, "avc1.64000d"));
    assert!(matches!(&p.media[1], MediaEvent::AudioConfig(a) if a.sample_rate == 44100));
    let video: Vec<_> = p
        .media
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Video { dts, cts, keyframe, data } => Some((*dts, *cts, *keyframe, data.len())),
            _ => None,
        })
        .collect();
    assert_eq!(video.len(), 30);
    for (i, (dts, cts, keyframe, len)) in video.into_iter().enumerate() {
        assert_eq!((dts, cts, keyframe), (i as i64 * 33, 66, i % 10 == 0));
        assert_eq!(len, if i % 10 == 0 { 9000 } else { 300 });
    }
    let audio = p.media.iter().filter(|e| matches!(e, MediaEvent::Audio { .. })).count();
    assert_eq!(audio, 30);
}

#[test]
fn a_refused_key_gets_no_media_accepted() {
    let mut p = Pair::new(4 << 20, false);
    p.connect("s");
    p.publish("other");
    assert_eq!(p.closed, Some(Closed::Refused("refused".into())));
    assert!(p.media.is_empty());
    assert!(!p.client_events.contains(&ClientSessionEvent::PublishRequestAccepted));
}

#[test]
fn another_app_is_refused_at_connect() {
    let mut p = Pair::new(4 << 20, true);
    p.connect("live");
    assert!(matches!(&p.closed, Some(Closed::Refused(r)) if r.contains("app \"live\"")), "{:?}", p.closed);
}

#[test]
fn an_oversized_message_is_refused_at_its_header() {
    let mut p = Pair::new(64 << 10, true);
    p.connect("s");
    p.publish("key");
    assert_eq!(p.closed, None);
    // A full chunk header on chunk stream 6: timestamp 0, length 5 MiB, video, stream 1. No
    // payload follows; the header alone closes the connection.
    let header = [0x06, 0, 0, 0, 0x50, 0, 0, 9, 1, 0, 0, 0];
    p.send(&header);
    assert!(matches!(&p.closed, Some(Closed::Protocol(r)) if r.contains("5242880 bytes")), "{:?}", p.closed);
}

#[test]
fn messages_are_small_until_admission() {
    // 100 KiB: refused as a command before the publish is admitted...
    let mut p = Pair::new(4 << 20, true);
    p.connect("s");
    p.send(&[0x03, 0, 0, 0, 0x01, 0x90, 0x00, 20, 0, 0, 0, 0]);
    assert!(matches!(&p.closed, Some(Closed::Protocol(r)) if r.contains("102400 bytes")), "{:?}", p.closed);
    // ...and taken as a frame after.
    let mut p = Pair::new(4 << 20, true);
    p.connect("s");
    p.publish("key");
    p.video(frame_tag(true, 0, 100 << 10), 0);
    assert_eq!(p.closed, None);
    assert!(matches!(&p.media[..], [MediaEvent::Video { keyframe: true, data, .. }] if data.len() == 100 << 10));
}

#[test]
fn a_window_that_would_overflow_the_parser_is_refused() {
    let mut p = Pair::new(4 << 20, true);
    p.connect("s");
    // Window Acknowledgement Size (type 5) of u32::MAX on chunk stream 2.
    p.send(&[0x02, 0, 0, 0, 0, 0, 4, 5, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(matches!(&p.closed, Some(Closed::Protocol(r)) if r.contains("window")), "{:?}", p.closed);
}

#[test]
fn a_bogus_codec_is_refused_by_name() {
    let mut p = Pair::new(4 << 20, true);
    p.connect("s");
    p.publish("key");
    p.audio(vec![0x2F, 0xFF, 0xFB], 0);
    assert!(matches!(&p.closed, Some(Closed::Media(r)) if r.contains("MP3")), "{:?}", p.closed);
}

#[test]
fn a_bad_handshake_closes() {
    let mut c = Conn::new(4 << 20);
    let mut bytes = vec![0x06];
    bytes.extend(std::iter::repeat_n(0u8, 1536));
    assert!(matches!(c.input(&bytes), Err(Closed::Protocol(_))));
}

/// Feeds `bytes` in pieces into a fresh connection that admits any key; checks the invariants
/// on the way.
fn feed(bytes: &[u8], pieces: &[usize], max_message: u32) -> Result<(), TestCaseError> {
    let mut c = Conn::new(max_message);
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = pieces.get(i).copied().unwrap_or(4096).clamp(1, bytes.len() - at);
        i += 1;
        let result = c.input(&bytes[at..at + n]);
        at += n;
        let _ = c.take_output();
        prop_assert!(c.pending_bytes() <= max_message as usize + 18, "held {} bytes", c.pending_bytes());
        match result {
            Ok(actions) => {
                for a in actions {
                    if let Action::Publish(_) = a {
                        // A second publish is refused before this is reached.
                        prop_assert!(c.accept().is_ok());
                    }
                }
            }
            Err(Closed::ParserPanic) => prop_assert!(false, "rml_rtmp panicked at byte {at}"),
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..20)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The honest stream with a few bytes changed, inserted or deleted after the handshake
    /// (before it, the handshake refuses nearly everything at once).
    #[test]
    fn mutated_streams_never_panic_and_stay_bounded(
        mutations in prop::collection::vec(mutation(), 1..6),
        pieces in prop::collection::vec(1usize..3000, 0..64),
    ) {
        let mut bytes = honest().sent.clone();
        for m in mutations {
            // Positions are taken after the handshake, in the stream as mutated so far.
            let body = (bytes.len() - HANDSHAKE).max(1);
            match m {
                Mutation::Set(i, b) => {
                    if let Some(byte) = bytes.get_mut(HANDSHAKE + i % body) {
                        *byte = b;
                    }
                }
                Mutation::Insert(i, b) => {
                    let at = (HANDSHAKE + i % body).min(bytes.len());
                    bytes.splice(at..at, b);
                }
                Mutation::Delete(i, n) => {
                    let at = (HANDSHAKE + i % body).min(bytes.len());
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
        feed(&bytes, &pieces, 16 << 10)?;
    }

    /// Random chunk bytes after a valid handshake, and after a valid connect and publish.
    #[test]
    fn random_chunks_never_panic_and_stay_bounded(
        garbage in prop::collection::vec(any::<u8>(), 0..8192),
        after_publish in any::<bool>(),
        pieces in prop::collection::vec(1usize..600, 0..64),
    ) {
        let honest = &honest().sent;
        // Where the honest stream's media starts: after the handshake and the first 400 bytes
        // of connect and publish (mutations of those are covered above).
        let keep = if after_publish { HANDSHAKE + 400 } else { HANDSHAKE };
        let mut bytes = honest[..keep.min(honest.len())].to_vec();
        bytes.extend_from_slice(&garbage);
        feed(&bytes, &pieces, 16 << 10)?;
    }

    /// Chunk headers built field by field (formats, chunk stream ids, lengths, extended
    /// timestamps, chunk sizes), which random bytes rarely hit.
    #[test]
    fn structured_chunk_headers_never_panic(
        chunks in prop::collection::vec(
            (0u8..4, prop_oneof![2u32..8, 64u32..400], any::<u32>(), prop_oneof![Just(0u32), 1u32..200, 0xFF_FFF0u32..0xFF_FFFF], 1u8..22, any::<u32>(), 0usize..300),
            1..40),
        pieces in prop::collection::vec(1usize..600, 0..64),
    ) {
        let mut bytes = honest().sent[..HANDSHAKE].to_vec();
        for (fmt, csid, ts, len, kind, ext, payload) in chunks {
            let basic = if csid < 64 { vec![fmt << 6 | csid as u8] } else { vec![fmt << 6, (csid - 64) as u8] };
            bytes.extend(basic);
            let ts = if ts % 3 == 0 { 0xFF_FFFF } else { ts & 0xFF_FFFF };
            if fmt <= 2 { bytes.extend(&ts.to_be_bytes()[1..]); }
            if fmt <= 1 { bytes.extend(&len.to_be_bytes()[1..]); bytes.push(kind); }
            if fmt == 0 { bytes.extend(1u32.to_le_bytes()); }
            if ts == 0xFF_FFFF { bytes.extend(ext.to_be_bytes()); }
            if kind == 1 || kind == 5 { bytes.extend(ext.to_be_bytes()); }
            bytes.extend((0..payload).map(|i| i as u8));
        }
        feed(&bytes, &pieces, 16 << 10)?;
    }
}

/// An AMF0 value of the kinds rml_rtmp's command handlers look at.
fn amf0_value() -> impl Strategy<Value = rml_amf0::Amf0Value> {
    use rml_amf0::Amf0Value;
    prop_oneof![
        any::<f64>().prop_map(Amf0Value::Number),
        prop_oneof![Just(1.0), Just(0.0), Just(-2.0)].prop_map(Amf0Value::Number),
        any::<bool>().prop_map(Amf0Value::Boolean),
        prop_oneof![Just("key"), Just("live"), Just("onMetaData"), Just("")]
            .prop_map(|s| Amf0Value::Utf8String(s.into())),
        Just(Amf0Value::Null),
        Just(Amf0Value::Object(Default::default())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Commands and data messages (AMF0, and AMF3 as rml_rtmp reads it) of every name rml_rtmp
    /// handles, with too few, too many and
    /// wrongly typed values, after a good connect (and, half the time, a good publish).
    #[test]
    fn odd_commands_never_panic(
        name in prop_oneof![
            Just("connect"), Just("createStream"), Just("publish"), Just("play"),
            Just("deleteStream"), Just("closeStream"), Just("FCPublish"), Just("@setDataFrame"),
        ],
        message_type in prop_oneof![Just(15u8), Just(17), Just(18), Just(20)],
        published in any::<bool>(),
        values in prop::collection::vec(amf0_value(), 0..5),
    ) {
        let mut p = Pair::new(4 << 20, true);
        p.connect("s");
        if published {
            p.publish("key");
        }
        let mut all = vec![rml_amf0::Amf0Value::Utf8String(name.into())];
        all.extend(values);
        let mut payload = rml_amf0::serialize(&all).unwrap();
        if message_type == 17 {
            payload.insert(0, 0);
        }
        // One full-header chunk on chunk stream 3 (the client's are 2 to 5), message stream 1,
        // preceded by a chunk size large enough to hold it.
        let mut bytes = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0];
        let len = (payload.len() as u32).to_be_bytes();
        bytes.extend([0x07, 0, 0, 0, len[1], len[2], len[3], message_type, 1, 0, 0, 0]);
        bytes.extend(payload);
        p.send(&bytes);
        prop_assert_ne!(p.closed, Some(Closed::ParserPanic));
    }
}
