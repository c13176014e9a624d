//! ffprobe's JSON, parsed into the facts Vidi needs: the encoding metadata api.video reports in
//! `/videos/{id}/status` and what the encoder must know about the source.

use serde::Deserialize;
pub use vidi_core::probe::{AudioStream, Probe, VideoStream};

use crate::{Jail, Media, ToolError, input};

/// The largest picture Vidi encodes, on either side (8K is 7680×4320). A file may claim any size;
/// decoding 100 000×100 000 would take tens of gigabytes per frame.
pub const MAX_SIDE: u32 = 8192;
/// ffprobe's address-space limit: enough for 8K sources, bounded against hostile ones.
pub const MAX_MEMORY: u64 = 4 << 30;

/// The subset of `ffprobe -show_format -show_streams -of json` we read.
#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Debug, Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    sample_rate: Option<String>,
    display_aspect_ratio: Option<String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RawFormat {
    duration: Option<String>,
    bit_rate: Option<String>,
    format_name: Option<String>,
}

fn rate(s: &Option<String>) -> Option<f64> {
    let (n, d) = s.as_deref()?.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then_some(n / d)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Parses ffprobe's JSON. Errors when there is nothing playable in it.
pub fn parse(json: &[u8]) -> Result<Probe, String> {
    let raw: Raw = serde_json::from_slice(json).map_err(|e| format!("ffprobe JSON: {e}"))?;
    let format = raw.format.ok_or("no container format recognised")?;
    let video =
        raw.streams.iter().find(|s| s.codec_type.as_deref() == Some("video") && s.width.unwrap_or(0) > 0).map(|s| {
            let rotation = s
                .side_data_list
                .iter()
                .find_map(|d| d.get("rotation").and_then(|r| r.as_i64()))
                .or_else(|| s.tags.get("rotate").and_then(|r| r.parse().ok()))
                .unwrap_or(0) as i32;
            let (w, h) = (s.width.unwrap_or(0), s.height.unwrap_or(0));
            let mut v = VideoStream {
                codec: s.codec_name.clone().unwrap_or_default(),
                width: w,
                height: h,
                framerate: rate(&s.avg_frame_rate).or_else(|| rate(&s.r_frame_rate)),
                rotation,
                aspect_ratio: None,
            };
            let (dw, dh) = v.display_size();
            let g = gcd(dw, dh).max(1);
            v.aspect_ratio = s
                .display_aspect_ratio
                .clone()
                .filter(|a| a != "0:1" && v.rotation.rem_euclid(180) == 0)
                .or(Some(format!("{}:{}", dw / g, dh / g)));
            v
        });
    let audio = raw.streams.iter().find(|s| s.codec_type.as_deref() == Some("audio")).map(|s| AudioStream {
        codec: s.codec_name.clone().unwrap_or_default(),
        sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()),
    });
    if video.is_none() && audio.is_none() {
        return Err("no audio or video stream found".into());
    }
    if let Some(v) = &video
        && (v.width > MAX_SIDE || v.height > MAX_SIDE)
    {
        return Err(format!(
            "the picture is {}×{}; Vidi encodes sources up to {MAX_SIDE}×{MAX_SIDE}",
            v.width, v.height
        ));
    }
    Ok(Probe {
        format: format.format_name.unwrap_or_default(),
        duration_s: format.duration.as_deref().and_then(|d| d.parse().ok()),
        bitrate_kbps: format.bit_rate.as_deref().and_then(|b| b.parse::<f64>().ok()).map(|b| (b / 1000.0).round()),
        video,
        audio,
    })
}

/// Probes `input`, a local source file, confined to reading it (see [`crate::input`] and
/// [`crate::sandbox`]). `Ok(Err(reason))` means the tool ran and the file is not accepted
/// media; `Err` means the tool itself could not run.
pub async fn probe(media: &Media, source: &str) -> Result<Result<Probe, String>, ToolError> {
    let mut args: Vec<String> =
        ["-v", "error", "-of", "json", "-show_format", "-show_streams"].map(String::from).into();
    args.extend(input::source(source));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tool = media.ffprobe.jailed(Jail::new().read(input::path_of(source)));
    match tool.run(&args).await {
        Ok(out) => Ok(parse(&out)),
        Err(ToolError::Failed { stderr, .. }) => Ok(Err(input::explain(&stderr).unwrap_or(stderr))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn landscape_with_audio() {
        let p = parse(&fixture("landscape_h264_aac.json")).unwrap();
        let v = p.video.unwrap();
        assert_eq!((v.codec.as_str(), v.width, v.height, v.framerate), ("h264", 640, 360, Some(25.0)));
        assert_eq!(v.aspect_ratio.as_deref(), Some("16:9"));
        let a = p.audio.unwrap();
        assert_eq!((a.codec.as_str(), a.sample_rate), ("aac", Some(44100)));
        assert!((p.duration_s.unwrap() - 2.0).abs() < 0.1);
    }

    #[test]
    fn portrait_without_audio() {
        let p = parse(&fixture("portrait_rotated_no_audio.json")).unwrap();
        let v = p.video.unwrap();
        assert_eq!(v.display_size(), (360, 640));
        assert_eq!(v.aspect_ratio.as_deref(), Some("9:16"));
        assert!(p.audio.is_none());
    }

    #[test]
    fn rotation_swaps_display_size() {
        let json = br#"{"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,
            "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]}],"format":{"format_name":"mov"}}"#;
        let v = parse(json).unwrap().video.unwrap();
        assert_eq!((v.rotation, v.display_size()), (-90, (1080, 1920)));
        assert_eq!(v.aspect_ratio.as_deref(), Some("9:16"));
    }

    /// The real ffprobe, confined: it reads an MP4, and refuses an HLS playlist that points at it
    /// (the shape of the cross-tenant manifest attack) without opening what it names.
    #[tokio::test]
    async fn probes_sources_in_the_jail_and_refuses_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mp4");
        let made = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10"])
            .args(["-t", "1", "-pix_fmt", "yuv420p"])
            .arg(&clip)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no ffmpeg");
            return;
        }
        let media = Media::default();
        let p = probe(&media, clip.to_str().unwrap()).await.unwrap().unwrap();
        assert_eq!(p.video.unwrap().width, 160);
        let list = dir.path().join("list.m3u8");
        std::fs::write(&list, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nclip.mp4\n#EXT-X-ENDLIST\n").unwrap();
        let reason = probe(&media, list.to_str().unwrap()).await.unwrap().unwrap_err();
        assert!(reason.contains("(hls) is not accepted"), "{reason}");
    }

    #[test]
    fn giant_pictures_are_refused() {
        let json = br#"{"streams":[{"codec_type":"video","codec_name":"rawvideo","width":100000,"height":100000}],
            "format":{"format_name":"avi"}}"#;
        assert!(parse(json).unwrap_err().contains("100000×100000"));
    }

    #[test]
    fn empty_probe_is_not_media() {
        assert!(parse(b"{\n\n}").is_err());
        assert!(parse(br#"{"streams":[],"format":{"format_name":"tty"}}"#).is_err());
    }
}

/// Property tests of ffprobe output parsing: any bytes, and any JSON of ffprobe's shape with
/// fields of any type, are answered without a panic; generated well-typed reports give what a
/// plain model of the rules says (the first video stream with a picture, the first audio stream,
/// the size limit, rotation and the display aspect ratio).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "codec_type",
                        "width",
                        "height",
                        "tags",
                        "rotate",
                        "rotation",
                        "side_data_list",
                        "x"
                    ]),
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    #[derive(Clone, Debug)]
    struct Stream {
        kind: &'static str,
        width: u32,
        height: u32,
        rotation: i32,
        dar: Option<String>,
        sample_rate: u32,
    }

    fn stream() -> impl Strategy<Value = Stream> {
        (
            prop::sample::select(vec!["video", "audio", "subtitle", "data"]),
            prop_oneof![Just(0u32), 1u32..4000, 8000u32..9000],
            1u32..4000,
            prop::sample::select(vec![0, 90, -90, 180, 270]),
            proptest::option::of(prop::sample::select(vec!["16:9".to_string(), "0:1".to_string(), "4:3".to_string()])),
            8000u32..96000,
        )
            .prop_map(|(kind, width, height, rotation, dar, sample_rate)| Stream {
                kind,
                width,
                height,
                rotation,
                dar,
                sample_rate,
            })
    }

    fn report(streams: &[Stream], duration: f64, side_data: bool) -> Value {
        let streams: Vec<Value> = streams
            .iter()
            .map(|s| {
                let mut v =
                    json!({ "codec_type": s.kind, "codec_name": "c", "sample_rate": s.sample_rate.to_string() });
                if s.kind == "video" {
                    v["width"] = json!(s.width);
                    v["height"] = json!(s.height);
                    v["avg_frame_rate"] = json!("30/1");
                    if let Some(d) = &s.dar {
                        v["display_aspect_ratio"] = json!(d);
                    }
                    if side_data {
                        v["side_data_list"] = json!([{ "rotation": s.rotation }]);
                    } else {
                        v["tags"] = json!({ "rotate": s.rotation.to_string() });
                    }
                }
                v
            })
            .collect();
        json!({ "streams": streams, "format": { "format_name": "mov", "duration": duration.to_string(), "bit_rate": "1000" } })
    }

    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_any_json_of_its_shape(streams in prop::collection::vec(any_json(), 0..4), format in any_json()) {
            let doc = json!({ "streams": streams, "format": format });
            let _ = parse(doc.to_string().as_bytes());
        }

        #[test]
        fn agrees_with_a_model(streams in prop::collection::vec(stream(), 0..5), duration in 0.0f64..1e6, side_data in any::<bool>()) {
            let got = parse(report(&streams, duration, side_data).to_string().as_bytes());
            let video = streams.iter().find(|s| s.kind == "video" && s.width > 0);
            let audio = streams.iter().find(|s| s.kind == "audio");
            match (video, audio) {
                (None, None) => prop_assert!(got.is_err()),
                (Some(v), _) if v.width > MAX_SIDE || v.height > MAX_SIDE => prop_assert!(got.is_err()),
                _ => {
                    let p = got.unwrap();
                    prop_assert_eq!(p.duration_s, Some(duration));
                    prop_assert_eq!(p.audio.as_ref().map(|a| a.sample_rate), audio.map(|a| Some(a.sample_rate)));
                    prop_assert_eq!(p.video.is_some(), video.is_some());
                    if let (Some(pv), Some(v)) = (&p.video, video) {
                        prop_assert_eq!((pv.width, pv.height, pv.rotation), (v.width, v.height, v.rotation));
                        let upright = v.rotation.rem_euclid(180) == 0;
                        let (dw, dh) = if upright { (v.width, v.height) } else { (v.height, v.width) };
                        let g = gcd(dw, dh).max(1);
                        let want = match &v.dar {
                            Some(d) if d != "0:1" && upright => d.clone(),
                            _ => format!("{}:{}", dw / g, dh / g),
                        };
                        prop_assert_eq!(pv.aspect_ratio.as_deref(), Some(want.as_str()));
                    }
                }
            }
        }
    }
}
