//! The boxes of the segmenter's output, over mp4-atom's typed boxes: the init segment
//! (`ftyp`+`moov` with `mvex`) and one fragment (`moof` with a `traf` per track, then `mdat`).
//!
//! Only the 8-byte `mdat` header is written by hand (to append the samples without an
//! intermediate copy); the rest is mp4-atom's: mp4-atom 0.17 encodes `avcC` from its parsed fields (the
//! publisher's record is decoded first, so what goes out is what came in), `esds` from the
//! AudioSpecificConfig bytes verbatim, and `trun` with signed composition offsets (version 1).

use bytes::Bytes;
use mp4_atom::{
    Audio, Avc1, Avcc, Dinf, Dref, Encode, Esds, Ftyp, Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd,
    Smhd, Stbl, Stco, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry, Url, Visual, Vmhd, esds,
};

use crate::media::{AudioConfig, VideoConfig};

/// Track ids: fixed, so a player that switches init segments after a discontinuity finds the same
/// track under the same id.
pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// `sample_depends_on = 2` (an IDR: depends on no other sample).
const SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`.
const NON_SYNC: u32 = 0x0101_0000;

/// A video configuration ready for the init segment: its record decoded by mp4-atom.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoTrack {
    pub config: VideoConfig,
    pub avcc: Avcc,
}

impl VideoTrack {
    pub fn new(config: VideoConfig) -> Result<Self, String> {
        let avcc = match <Avcc as mp4_atom::Atom>::decode_body(&mut config.avcc.as_ref()) {
            Ok(avcc) => avcc,
            // A record whose optional high-profile tail is malformed (some encoders truncate
            // it): the tail is only informative, so keep the parameter sets without it.
            Err(_) => {
                let record = crate::avc::AvcRecord::parse(&config.avcc).map_err(|e| e.0)?;
                Avcc {
                    configuration_version: 1,
                    avc_profile_indication: record.profile,
                    profile_compatibility: record.compatibility,
                    avc_level_indication: record.level,
                    length_size: record.length_size,
                    sequence_parameter_sets: record.sps,
                    picture_parameter_sets: record.pps,
                    ext: None,
                }
            }
        };
        Ok(VideoTrack { config, avcc })
    }
}

fn encode(atom: &impl Encode, out: &mut Vec<u8>) {
    // Encoding into a Vec fails only on values out of a field's range, which the segmenter
    // never builds (sizes are u32 and checked by the caller): a failure is a bug.
    atom.encode(out).expect("an fMP4 box the segmenter built does not encode");
}

/// `ftyp` + `moov` for the tracks present.
pub fn init_segment(video: Option<&VideoTrack>, audio: Option<&AudioConfig>) -> Bytes {
    let mut trak = Vec::new();
    let mut trex = Vec::new();
    if let Some(v) = video {
        trak.push(video_trak(v));
        trex.push(track_defaults(VIDEO_TRACK));
    }
    if let Some(a) = audio {
        trak.push(audio_trak(a));
        trex.push(track_defaults(AUDIO_TRACK));
    }
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: AUDIO_TRACK + 1,
            ..Default::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    encode(&ftyp, &mut out);
    encode(&moov, &mut out);
    Bytes::from(out)
}

fn track_defaults(track_id: u32) -> Trex {
    Trex { track_id, default_sample_description_index: 1, ..Default::default() }
}

fn empty_tables(stsd: Stsd) -> Stbl {
    // Fragmented: every sample is in a moof, but players still expect the empty tables.
    Stbl { stsd, stco: Some(Stco::default()), ..Default::default() }
}

fn dinf() -> Dinf {
    Dinf { dref: Dref { entries: vec![Url::default().into()] } }
}

fn video_trak(v: &VideoTrack) -> Trak {
    let (w, h) = (v.config.width.min(u16::MAX as u32) as u16, v.config.height.min(u16::MAX as u32) as u16);
    let avc1 = Avc1 {
        visual: Visual { data_reference_index: 1, width: w, height: h, compressor: "".into(), ..Default::default() },
        avcc: v.avcc.clone(),
        ..Default::default()
    };
    Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK,
            enabled: true,
            in_movie: true,
            width: w.into(),
            height: h.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: VIDEO_TIMESCALE, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: b"vide".into(), name: "Vidi video".into() },
            minf: Minf {
                vmhd: Some(Vmhd::default()),
                dinf: dinf(),
                stbl: empty_tables(Stsd { codecs: vec![avc1.into()] }),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

fn audio_trak(a: &AudioConfig) -> Trak {
    let dec_specific = esds::DecoderSpecific {
        profile: 0,
        freq_index: 0,
        chan_conf: 0,
        // Verbatim: the publisher's AudioSpecificConfig is what the decoder needs (SBR/PS
        // signalling included), not a re-derived two bytes.
        raw: a.asc.to_vec(),
    };
    let mp4a = Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: a.channels.max(1) as u16,
            sample_size: 16,
            // The field is 16.16: rates above 65535 Hz do not fit; players read the rate from
            // the AudioSpecificConfig anyway.
            sample_rate: u16::try_from(a.sample_rate).unwrap_or(0).into(),
        },
        esds: Esds {
            es_desc: esds::EsDescriptor {
                es_id: AUDIO_TRACK as u16,
                dec_config: esds::DecoderConfig {
                    object_type_indication: 0x40, // MPEG-4 audio
                    stream_type: 5,               // audio stream
                    dec_specific: Some(dec_specific),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    };
    Trak {
        tkhd: Tkhd {
            track_id: AUDIO_TRACK,
            enabled: true,
            in_movie: true,
            alternate_group: 1,
            volume: 1.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: a.sample_rate, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: b"soun".into(), name: "Vidi audio".into() },
            minf: Minf {
                smhd: Some(Smhd::default()),
                dinf: dinf(),
                stbl: empty_tables(Stsd { codecs: vec![mp4a.into()] }),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// One sample as it goes into a `trun`, in its track's timescale.
pub struct FragmentSample<'a> {
    pub duration: u32,
    /// Presentation minus decode time.
    pub cts: i32,
    pub sync: bool,
    pub data: &'a [u8],
}

/// The samples of one track within a fragment.
pub struct Run<'a> {
    pub track_id: u32,
    /// The first sample's decode time (the `tfdt`): absolute, so a player joining at any part
    /// and a demuxer reading parts back to back agree on every timestamp.
    pub decode_time: u64,
    pub samples: Vec<FragmentSample<'a>>,
}

/// `moof` (one `traf` per non-empty run) + `mdat` holding the runs' data in the same order.
pub fn fragment(sequence: u32, runs: &[Run<'_>]) -> Bytes {
    let runs: Vec<&Run> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let traf = |data_offset: i32, run: &Run| Traf {
        tfhd: Tfhd { track_id: run.track_id, default_base_is_moof: true, ..Default::default() },
        tfdt: Some(Tfdt { base_media_decode_time: run.decode_time }),
        trun: vec![Trun {
            data_offset: Some(data_offset),
            samples: run
                .samples
                .iter()
                .map(|s| TrunEntry {
                    duration: Some(s.duration),
                    size: Some(s.data.len() as u32),
                    flags: Some(if s.sync { SYNC } else { NON_SYNC }),
                    cts: (run.track_id == VIDEO_TRACK).then_some(s.cts as i64),
                })
                .collect::<Vec<_>>()
                .into(),
        }],
        ..Default::default()
    };
    let mut moof = Moof { mfhd: Mfhd { sequence_number: sequence }, traf: runs.iter().map(|r| traf(0, r)).collect() };
    // The data offsets are relative to the moof's start (default-base-is-moof) and so depend on
    // the moof's own size, which does not depend on their values: measure, then fill in.
    let mut probe = Vec::new();
    encode(&moof, &mut probe);
    let mut offset = probe.len() + 8;
    for (traf, run) in moof.traf.iter_mut().zip(&runs) {
        traf.trun[0].data_offset = Some(offset as i32);
        offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mut out = Vec::with_capacity(offset);
    encode(&moof, &mut out);
    debug_assert_eq!(out.len(), probe.len());
    let data_len = offset - probe.len() - 8;
    // The mdat is written here rather than through mp4_atom::Mdat to avoid copying every
    // sample into an intermediate Vec first.
    out.extend_from_slice(&((data_len + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for run in &runs {
        for s in &run.samples {
            out.extend_from_slice(s.data);
        }
    }
    Bytes::from(out)
}
