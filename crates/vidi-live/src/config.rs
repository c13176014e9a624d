//! The settings of live ingest and packaging, from the binary's configuration.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// PART-TARGET: fixed for a broadcast (Safari stops for good when it changes).
    pub part_target: Duration,
    /// A segment closes at the first keyframe at or after this.
    pub segment_target: Duration,
    /// How many whole segments a viewer's playlist lists.
    pub window: usize,
    /// A publisher that comes back within this continues the same broadcast, playlist and
    /// recording (`VIDI_LIVE_RECONNECT_SECS`).
    pub reconnect_grace: Duration,
    /// A publisher that sent no media for this long is silent: `broadcasting` turns false, and a
    /// new publisher of the same key replaces it.
    pub silence: Duration,
    /// How often the live thumbnail is taken while broadcasting (unless one was uploaded).
    pub thumbnail_every: Duration,
    /// How often this node tells the database it still holds its broadcasts.
    pub heartbeat: Duration,
    /// A broadcast whose node has not heartbeated for this long lost its node: any node ends it.
    pub stale_after: Duration,
    /// Attempts of the recording job.
    pub max_attempts: u32,
    /// The heights of the transcoded lower renditions (`VIDI_LIVE_LADDER`), tallest first;
    /// empty: the source rendition only, no transcoding.
    pub ladder: Vec<u32>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            // 333 ms holds the draft's 85 % rule for any frame rate from 20 fps (250 ms fails at 24).
            part_target: Duration::from_millis(333),
            segment_target: Duration::from_secs(2),
            window: 6,
            reconnect_grace: Duration::from_secs(60),
            silence: Duration::from_secs(3),
            thumbnail_every: Duration::from_secs(5),
            heartbeat: Duration::from_secs(2),
            stale_after: Duration::from_secs(15),
            max_attempts: 5,
            ladder: Vec::new(),
        }
    }
}
