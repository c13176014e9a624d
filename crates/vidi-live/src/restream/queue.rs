//! One pusher's queue: bounded, never blocking the ingest. What a destination cannot take in time
//! is dropped, and then everything up to the next keyframe too (a frame without its reference
//! frames is garbage to the receiver); a configuration is never dropped.
//!
//! One reader at a time: each run of the pusher's ffmpeg starts a [`Reader`], which forgets what
//! is queued (stale media would only add delay), waits for the next keyframe, and then writes an
//! FLV header, the current configurations and the frames from that keyframe on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::flv;
use crate::media::{AudioConfig, MediaEvent, VideoConfig};

/// The most a queue holds: about 5 s of a 6 Mb/s stream, in bytes and in events (30 fps video
/// and 47 AAC frames a second make about 80 events a second).
pub const MAX_BYTES: usize = 4 << 20;
pub const MAX_EVENTS: usize = 512;

#[derive(Default)]
struct Inner {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    events: VecDeque<MediaEvent>,
    bytes: usize,
    /// Dropping until the next keyframe (after an overflow, and at the start of each run).
    resync: bool,
    dropped: u64,
    /// Bumped by each new reader: an older reader still alive (its run ending) reads nothing more.
    generation: u64,
    closed: bool,
}

impl Inner {
    /// Whether `event` starts a decodable stream: a video keyframe, or any audio frame when the
    /// broadcast has no video.
    fn is_entry(&self, event: &MediaEvent) -> bool {
        match event {
            MediaEvent::Video { keyframe, .. } => *keyframe,
            MediaEvent::Audio { .. } => self.video.is_none(),
            _ => false,
        }
    }
}

#[derive(Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    ready: Notify,
}

fn size(event: &MediaEvent) -> usize {
    match event {
        MediaEvent::Video { data, .. } | MediaEvent::Audio { data, .. } => data.len(),
        MediaEvent::VideoConfig(c) => c.avcc.len(),
        MediaEvent::AudioConfig(c) => c.asc.len(),
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event`, or drops it (see the module's note). Never waits.
    pub fn push(&self, event: &MediaEvent) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        match event {
            MediaEvent::VideoConfig(c) => q.video = Some(c.clone()),
            MediaEvent::AudioConfig(c) => q.audio = Some(c.clone()),
            _ => {
                if q.resync {
                    if !q.is_entry(event) {
                        q.dropped += 1;
                        return;
                    }
                    q.resync = false;
                }
                if q.events.len() >= MAX_EVENTS || q.bytes + size(event) > MAX_BYTES {
                    q.dropped += 1;
                    q.resync = true;
                    return;
                }
            }
        }
        q.bytes += size(event);
        q.events.push_back(event.clone());
        drop(q);
        self.ready.notify_one();
    }

    /// Frames dropped so far (never configurations).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Ends every reader once it has written what is queued.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// A new run's reader; the previous one reads nothing more.
    pub fn reader(self: &Arc<Self>) -> Reader {
        let mut q = self.lock();
        q.generation += 1;
        q.events.clear();
        q.bytes = 0;
        q.resync = true;
        Reader { queue: self.clone(), generation: q.generation, base: None, last_ts: 0, keep_times: false }
    }
}

/// Writes one run's FLV stream (see the module's note).
pub struct Reader {
    queue: Arc<Queue>,
    generation: u64,
    /// The decode time of the run's first keyframe: the run's timestamps start at 0 there.
    base: Option<i64>,
    /// The last timestamp written: a configuration that changes mid-run goes there, so the
    /// stream's times never go backwards.
    last_ts: u32,
    /// Write the events' own timestamps rather than from 0 at the first keyframe (a ladder's
    /// encoder keeps them, to line its keyframes up with the source's).
    keep_times: bool,
}

impl Reader {
    /// This reader writes the events' own timestamps (which must then be non-negative).
    pub fn keeping_times(self) -> Reader {
        Reader { keep_times: true, ..self }
    }

    /// The next bytes of the run's FLV stream: everything queued, as one chunk. `None` at the end
    /// (the queue closed, or a newer reader took over).
    pub async fn next(&mut self) -> Option<Bytes> {
        let queue = self.queue.clone();
        loop {
            let notified = queue.ready.notified();
            {
                let mut q = queue.lock();
                if q.generation != self.generation {
                    return None;
                }
                if !q.events.is_empty() {
                    let events: Vec<MediaEvent> = q.events.drain(..).collect();
                    q.bytes = 0;
                    let (video, audio) = (q.video.clone(), q.audio.clone());
                    drop(q);
                    let out = self.write(events, video, audio);
                    if !out.is_empty() {
                        return Some(out);
                    }
                    continue;
                }
                if q.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    fn write(&mut self, events: Vec<MediaEvent>, video: Option<VideoConfig>, audio: Option<AudioConfig>) -> Bytes {
        let mut out = BytesMut::new();
        for event in events {
            let Some(base) = self.base else {
                // The queue starts each run at an entry frame: the header goes before it, with the
                // configurations known now (earlier configuration events are already in them).
                let Some(dts) = event.dts() else { continue };
                let base = if self.keep_times { 0 } else { dts };
                self.base = Some(base);
                out.extend_from_slice(&flv::header(video.is_some(), audio.is_some()));
                if let Some(v) = &video {
                    flv::video_config(&mut out, 0, v);
                }
                if let Some(a) = &audio {
                    flv::audio_config(&mut out, 0, a);
                }
                self.frame(&mut out, &event, base);
                continue;
            };
            self.frame(&mut out, &event, base);
        }
        out.freeze()
    }

    fn frame(&mut self, out: &mut BytesMut, event: &MediaEvent, base: i64) {
        // Milliseconds since the run's first keyframe; a frame from before it (audio interleaved a
        // little early) is dropped rather than given a time that goes backwards.
        let ts = |dts: i64| u32::try_from(dts - base).ok();
        if let Some(ts) = event.dts().and_then(ts) {
            self.last_ts = ts;
        }
        match event {
            MediaEvent::VideoConfig(c) => flv::video_config(out, self.last_ts, c),
            MediaEvent::AudioConfig(c) => flv::audio_config(out, self.last_ts, c),
            MediaEvent::Video { dts, cts, keyframe, data } => {
                if let Some(ts) = ts(*dts) {
                    flv::video(out, ts, *cts, *keyframe, data);
                }
            }
            MediaEvent::Audio { dts, data } => {
                if let Some(ts) = ts(*dts) {
                    flv::audio(out, ts, data);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(dts: i64, keyframe: bool, len: usize) -> MediaEvent {
        MediaEvent::Video { dts, cts: 0, keyframe, data: Bytes::from(vec![0; len]) }
    }

    fn a(dts: i64) -> MediaEvent {
        MediaEvent::Audio { dts, data: Bytes::from_static(&[1, 2, 3]) }
    }

    fn config() -> MediaEvent {
        MediaEvent::VideoConfig(VideoConfig {
            avcc: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
            width: 2,
            height: 2,
            codec: "avc1.64001f".into(),
        })
    }

    /// The tags of an FLV stream: (type, timestamp, first data byte).
    fn tags(mut b: &[u8]) -> Vec<(u8, u32, u8)> {
        assert_eq!(&b[..3], b"FLV");
        b = &b[13..];
        let mut out = Vec::new();
        while !b.is_empty() {
            let size = u32::from_be_bytes([0, b[1], b[2], b[3]]) as usize;
            let ts = u32::from_be_bytes([b[7], b[4], b[5], b[6]]);
            out.push((b[0], ts, b[11]));
            b = &b[11 + size + 4..];
        }
        out
    }

    #[tokio::test]
    async fn a_run_starts_at_the_next_keyframe_with_the_configurations_first() {
        let q = Arc::new(Queue::default());
        q.push(&config());
        q.push(&v(0, true, 10));
        let mut r = q.reader();
        // Queued before the run: forgotten. Then frames before a keyframe: dropped.
        q.push(&v(40, false, 10));
        q.push(&a(50));
        q.push(&v(80, true, 10));
        q.push(&a(70));
        q.push(&a(90));
        q.push(&v(120, false, 10));
        let got = tags(&r.next().await.unwrap());
        // The AVC sequence header, the keyframe at 0, the early audio frame dropped.
        assert_eq!(got, vec![(9, 0, 0x17), (9, 0, 0x17), (8, 10, 0xaf), (9, 40, 0x27)]);
        assert_eq!(q.dropped(), 2);
    }

    #[tokio::test]
    async fn an_overflow_drops_until_the_next_keyframe_and_a_new_reader_ends_the_old() {
        let q = Arc::new(Queue::default());
        q.push(&config());
        let mut r = q.reader();
        q.push(&v(0, true, 1));
        for i in 1..MAX_EVENTS as i64 + 10 {
            q.push(&v(i, false, 1));
        }
        assert_eq!(q.dropped(), 10);
        // Still resyncing: inter frames are dropped even though the reader emptied the queue.
        assert_eq!(tags(&r.next().await.unwrap()).len(), 1 + MAX_EVENTS);
        q.push(&v(600, false, 1));
        q.push(&v(601, true, 1));
        let mut out = BytesMut::new();
        flv::video(&mut out, 601, 0, true, &[0]);
        assert_eq!(&r.next().await.unwrap()[..], &out[..]);
        assert_eq!(q.dropped(), 11);

        // A byte overflow too.
        q.push(&v(602, false, MAX_BYTES + 1));
        assert_eq!(q.dropped(), 12);

        let mut newer = q.reader();
        assert_eq!(r.next().await, None);
        q.push(&v(700, true, 1));
        q.close();
        assert!(newer.next().await.is_some());
        assert_eq!(newer.next().await, None);
    }

    #[tokio::test]
    async fn audio_only_starts_on_any_audio_frame() {
        let q = Arc::new(Queue::default());
        q.push(&MediaEvent::AudioConfig(AudioConfig {
            asc: Bytes::from_static(&[0x12, 0x10]),
            sample_rate: 44100,
            channels: 2,
            codec: "mp4a.40.2".into(),
        }));
        let mut r = q.reader();
        q.push(&a(1000));
        q.push(&a(1023));
        let b = r.next().await.unwrap();
        assert_eq!(b[4], 4, "audio only");
        assert_eq!(tags(&b), vec![(8, 0, 0xaf), (8, 0, 0xaf), (8, 23, 0xaf)]);
    }
}
