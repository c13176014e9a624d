//! What a source is, as far as Vidi cares: the facts ffprobe found (parsed in `vidi-media`),
//! stored with the video (see `model::ProbeOutcome`) and read by the API (encoding metadata,
//! thumbnail timecodes) and the encoder (the ladder, pieces).
//!
//! Stored as JSON in existing databases: the field names and shapes here may not change.

use serde::{Deserialize, Serialize};

/// What a source is, as far as Vidi cares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub format: String,
    pub duration_s: Option<f64>,
    /// Total bitrate in kbit/s.
    pub bitrate_kbps: Option<f64>,
    pub video: Option<VideoStream>,
    pub audio: Option<AudioStream>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoStream {
    pub codec: String,
    /// As stored; see `rotation` for how it is displayed.
    pub width: u32,
    pub height: u32,
    pub framerate: Option<f64>,
    /// Degrees, from the display matrix or the legacy `rotate` tag.
    pub rotation: i32,
    pub aspect_ratio: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    pub codec: String,
    pub sample_rate: Option<u32>,
}

impl VideoStream {
    /// Width and height as a viewer sees them (rotation by ±90° swaps them).
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 { (self.height, self.width) } else { (self.width, self.height) }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::ProbeOutcome;

    /// A probe as databases written before it was typed hold it: it still reads, and writes back
    /// the same.
    #[test]
    fn stored_probes_still_read() {
        let stored = r#"{"Probed":{"format":"mov,mp4,m4a,3gp,3g2,mj2","duration_s":2.0,"bitrate_kbps":412.0,"video":{"codec":"h264","width":640,"height":360,"framerate":25.0,"rotation":0,"aspect_ratio":"16:9"},"audio":{"codec":"aac","sample_rate":44100}}}"#;
        let p: ProbeOutcome = serde_json::from_str(stored).unwrap();
        let ProbeOutcome::Probed(probe) = &p else { panic!("{p:?}") };
        assert_eq!(probe.video.as_ref().map(|v| v.display_size()), Some((640, 360)));
        assert_eq!(serde_json::to_string(&p).unwrap(), stored);
        let failed: ProbeOutcome = serde_json::from_str(r#"{"Failed":"no audio or video stream found"}"#).unwrap();
        assert_eq!(failed, ProbeOutcome::Failed("no audio or video stream found".into()));
    }
}
