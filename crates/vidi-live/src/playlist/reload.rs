//! Blocking playlist reloads (draft-pantos-hls-rfc8216bis §6.2.5.2) and which files a request
//! may wait for.
//!
//! The decisions are pure: the caller waits on its own notification (a new playlist version)
//! and asks again, and answers 503 itself once [`LivePlaylist::block_limit`] has passed.

use super::LivePlaylist;

/// What a request with `_HLS_msn` / `_HLS_part` gets (the draft's rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Answer with the current playlist now.
    Now,
    /// Wait for a newer version, then ask again; give up with 503 after [`LivePlaylist::block_limit`].
    Wait,
    /// 400, with the reason.
    Bad(&'static str),
}

/// What a request for a file of the playlist's directory should get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// Made already (within the window): serve it.
    Available,
    /// The preload hint: block until the segmenter makes it (at most
    /// [`LivePlaylist::block_limit`]), as the draft asks of a server that hints.
    Hinted,
    /// Not a name of this playlist's window: 404 (unless the caller still stores it).
    Unknown,
}

impl LivePlaylist {
    /// The draft's Advance Part Limit: how far past the last part a `_HLS_part` may point.
    pub fn advance_part_limit(&self) -> u32 {
        let t = self.part_target.as_secs_f64();
        if t > 0.0 && t < 1.0 { (3.0 / t).floor() as u32 } else { 3 }
    }

    /// The last segment with anything in it: its msn and how many parts it has.
    fn last(&self) -> Option<(u64, u32)> {
        self.open.as_ref().or(self.segments.back()).map(|s| (s.msn, s.parts.len() as u32))
    }

    /// The blocking-reload decision for `_HLS_msn` / `_HLS_part` as given (`None` = absent).
    ///
    /// The Advance Part Limit is read as: with `_HLS_msn` the last segment's msn, `_HLS_part`
    /// may exceed that segment's last part index by the limit; with a later msn (whose parts
    /// are all in the future), `_HLS_part` itself may not exceed the limit.
    pub fn reload(&self, msn: Option<u64>, part: Option<u32>) -> Reload {
        if self.ended {
            return Reload::Now; // nothing will change: directives are ignored
        }
        let Some(msn) = msn else {
            return match part {
                Some(_) => Reload::Bad("_HLS_part requires _HLS_msn"),
                None => Reload::Now,
            };
        };
        let (last_msn, last_parts) = self.last().unwrap_or((self.first_msn, 0));
        let nothing_yet = self.last().is_none();
        if msn > last_msn + 2 {
            return Reload::Bad("_HLS_msn is more than two segments past the playlist's last");
        }
        if let Some(p) = part {
            let limit = self.advance_part_limit();
            let beyond = if msn == last_msn && !nothing_yet {
                // last_parts − 1 is the last index; exceeding it by more than the limit.
                p as i64 - (last_parts as i64 - 1) > limit as i64
            } else {
                (msn > last_msn || nothing_yet) && p > limit
            };
            if beyond {
                return Reload::Bad("_HLS_part is beyond the Advance Part Limit");
            }
        }
        if msn < self.media_sequence() {
            return Reload::Now; // left the window long ago
        }
        if self.has(msn, part) { Reload::Now } else { Reload::Wait }
    }

    /// Whether the playlist already holds segment `msn` (complete) or its part `part`; a part
    /// index past a complete segment's last part means part 0 of the next segment.
    fn has(&self, msn: u64, part: Option<u32>) -> bool {
        let Some(segment) = self.segments.iter().chain(&self.open).find(|s| s.msn == msn) else {
            return false;
        };
        let complete = segment.duration.is_some();
        match part {
            None => complete,
            Some(p) if (p as usize) < segment.parts.len() => true,
            Some(_) if complete => self.has(msn + 1, Some(0)),
            Some(_) => false,
        }
    }

    /// What a request for `name` (a file next to the playlist) should get.
    pub fn resource(&self, name: &str) -> Resource {
        if let Some(n) = name.strip_prefix("init").and_then(|n| n.strip_suffix(".mp4")) {
            let known = n.parse::<u32>().ok().zip(self.init).is_some_and(|(n, current)| n <= current);
            return if known { Resource::Available } else { Resource::Unknown };
        }
        let Some(stem) = name.strip_suffix(".m4s") else { return Resource::Unknown };
        let mut fields = stem.split('.');
        let msn = fields.next().and_then(|m| m.parse::<u64>().ok());
        let part = fields.next().map(|p| p.parse::<u32>().ok());
        let (Some(msn), None) = (msn, fields.next()) else { return Resource::Unknown };
        let segment = self.segments.iter().chain(&self.open).find(|s| s.msn == msn);
        match part {
            None if segment.is_some_and(|s| s.duration.is_some()) => Resource::Available,
            None => Resource::Unknown,
            Some(None) => Resource::Unknown,
            Some(Some(p)) if segment.is_some_and(|s| (p as usize) < s.parts.len()) => Resource::Available,
            Some(Some(p)) if self.hint() == Some((msn, p)) => Resource::Hinted,
            Some(Some(_)) => Resource::Unknown,
        }
    }
}
