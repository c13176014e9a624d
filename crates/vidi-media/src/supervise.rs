//! Processes that run for hours: a live transcode, a restream push. A [`Supervisor`] keeps one
//! up through [`Tool`]'s own spawning (the same jail, the same death with its parent), with no
//! time bound: it restarts the program when it fails, waiting longer after each failure in a
//! row, keeps the end of its stderr for whoever asks why, and stops it when told.
//!
//! A supervised run is never a background run: the VOD scheduler ([`crate::priority`]) neither
//! pauses it (a viewer is watching it now) nor counts it as a foreground run that would pause the
//! pieces of ladders.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::{Tool, ToolError};

/// How much of a supervised program's stderr is kept: its last lines say why it stopped.
const STDERR_KEPT: usize = 16 * 1024;

/// When to start the program again.
#[derive(Clone, Debug)]
pub struct Restart {
    /// The wait after the first failure; each failure in a row doubles it...
    pub first: Duration,
    /// ...up to this.
    pub max: Duration,
    /// A run that lasted this long was healthy: the next failure waits `first` again.
    pub healthy_after: Duration,
    /// Whether a run that exits successfully is started again (a pusher that must stay up) or
    /// ends the supervision (a transcode whose input ended).
    pub after_success: bool,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            after_success: false,
        }
    }
}

/// A fresh input for each run (a live transcode's stream, from its current position).
pub type Feed = Arc<dyn Fn() -> BoxStream<'static, std::io::Result<Bytes>> + Send + Sync>;

/// Reads each run's stdout (a live transcode's output), to its end; a run without one has its
/// stdout read and dropped.
pub type Reader = Arc<dyn Fn(tokio::process::ChildStdout) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// What a supervisor has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The running child's pid, if one runs now.
    pub pid: Option<u32>,
    /// How many times the program was started.
    pub starts: u32,
    /// How the last run ended (`None`: none ended yet).
    pub last_exit: Option<String>,
    /// The end of the program's stderr, across runs (at most 16 KiB).
    pub stderr_tail: String,
}

/// Keeps one program running (see the module's note).
pub struct Supervisor {
    tool: Tool,
    args: Vec<String>,
    restart: Restart,
    feed: Option<Feed>,
    reader: Option<Reader>,
    status: Arc<Mutex<Status>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
}

impl Supervisor {
    /// `tool` runs `args` under supervision; its timeout and any background setting are
    /// dropped (see the module's note).
    pub fn new(tool: &Tool, args: Vec<String>, restart: Restart) -> Self {
        let tool = Tool { background: None, ..tool.clone() };
        Supervisor { tool, args, restart, feed: None, reader: None, status: Arc::default(), stderr: Arc::default() }
    }

    /// Feeds each run's stdin from a stream `feed` makes for it.
    pub fn fed(self, feed: Feed) -> Self {
        Supervisor { feed: Some(feed), ..self }
    }

    /// Hands each run's stdout to `reader` (otherwise it is drained).
    pub fn reading(self, reader: Reader) -> Self {
        Supervisor { reader: Some(reader), ..self }
    }

    pub fn status(&self) -> Status {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        s.stderr_tail = String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>()).into_owned();
        s
    }

    /// Runs the program until `stop` fires (it is killed then, and this returns `Ok`), or until
    /// a run exits successfully when [`Restart::after_success`] is false. A program that cannot
    /// be started at all (missing, refused by the jail) is an error at once: retrying would
    /// only repeat it.
    pub async fn run(&self, stop: &CancellationToken) -> Result<(), ToolError> {
        let mut wait = self.restart.first;
        loop {
            let started = Instant::now();
            let Some(ended) = self.run_once(stop).await? else {
                self.set(|s| {
                    s.pid = None;
                    s.last_exit = Some("stopped".into());
                });
                return Ok(());
            };
            let success = ended.success();
            self.set(|s| {
                s.pid = None;
                s.last_exit = Some(ended.to_string());
            });
            if success && !self.restart.after_success {
                return Ok(());
            }
            if started.elapsed() >= self.restart.healthy_after {
                wait = self.restart.first;
            }
            tracing::warn!(tool = %self.tool.program, status = %ended, retry_in = ?wait, "a supervised program stopped; starting it again");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return Ok(()),
            }
            wait = (wait * 2).min(self.restart.max);
        }
    }

    /// One run, to its exit (`None`: stopped, the child killed and reaped, so nothing of it is
    /// left when the supervision ends). Dropping the future kills the child too.
    async fn run_once(&self, stop: &CancellationToken) -> Result<Option<std::process::ExitStatus>, ToolError> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut child = self.tool.spawn(&args, self.feed.is_some())?;
        self.set(|s| {
            s.pid = child.id();
            s.starts += 1;
        });
        let input = self.feed.as_ref().map(|f| f());
        let feed = crate::feed(child.stdin.take(), input);
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        // Without a reader, stdout is read and dropped: a program that writes there must not
        // block on a full pipe.
        let drain: futures::future::BoxFuture<'static, ()> = match &self.reader {
            Some(read) => read(stdout),
            None => Box::pin(async move {
                let mut buf = vec![0u8; 8192];
                while matches!(stdout.read(&mut buf).await, Ok(n) if n > 0) {}
            }),
        };
        let keep = async {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
                tail.extend(&buf[..n]);
                let excess = tail.len().saturating_sub(STDERR_KEPT);
                tail.drain(..excess);
            }
        };
        let wait_err = |source| ToolError::Spawn { tool: self.tool.program.clone(), source };
        tokio::select! {
            ((), (), ()) = async { tokio::join!(feed, drain, keep) } => child.wait().await.map(Some).map_err(wait_err),
            () = stop.cancelled() => {
                let _ = child.start_kill();
                child.wait().await.map_err(wait_err)?;
                Ok(None)
            }
        }
    }

    fn set(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Tool {
        // The tool's timeout must not apply to supervised runs.
        Tool::new("sh", Duration::from_millis(100))
    }

    fn quick() -> Restart {
        Restart { first: Duration::from_millis(20), max: Duration::from_millis(80), ..Restart::default() }
    }

    #[tokio::test]
    async fn a_failing_program_is_restarted_with_backoff_and_its_stderr_kept() {
        let sup = Supervisor::new(&sh(), vec!["-c".into(), "echo 'no input' >&2; exit 3".into()], quick());
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            stopper.cancel();
        });
        sup.run(&stop).await.unwrap();
        let s = sup.status();
        // 20 + 40 + 80 + 80 … ms between starts: more than three, far fewer than without a wait.
        assert!((4..=12).contains(&s.starts), "{s:?}");
        assert!(s.stderr_tail.contains("no input"), "{s:?}");
        assert_eq!(s.pid, None);
    }

    #[tokio::test]
    async fn a_long_run_outlives_the_tool_timeout_and_stops_when_told() {
        let sup = Supervisor::new(&sh(), vec!["-c".into(), "sleep 30".into()], quick());
        let stop = CancellationToken::new();
        let run = sup.run(&stop);
        tokio::pin!(run);
        // Well past the tool's 100 ms timeout, the child still runs.
        assert!(tokio::time::timeout(Duration::from_millis(400), &mut run).await.is_err());
        let pid = sup.status().pid.expect("running");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(2), run).await.unwrap().unwrap();
        // Killed and reaped before `run` returned: its pid is gone (or, rarely, reused by an
        // unrelated process).
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmdline.contains("sleep"), "the child was left running");
        assert_eq!(sup.status().starts, 1);
    }

    #[tokio::test]
    async fn each_run_is_fed_its_own_input_and_success_ends_supervision() {
        let feed: Feed = Arc::new(|| Box::pin(futures::stream::iter([Ok(Bytes::from_static(b"frames\n"))])));
        // The program echoes its input on stderr, then exits 0 at the end of it.
        let sup = Supervisor::new(&sh(), vec!["-c".into(), "cat >&2".into()], quick()).fed(feed);
        sup.run(&CancellationToken::new()).await.unwrap();
        let s = sup.status();
        assert_eq!((s.starts, s.stderr_tail.as_str()), (1, "frames\n"));
        assert_eq!(s.last_exit.as_deref(), Some("exit status: 0"));

        // A pusher that must stay up is started again after a success too, each time fed anew.
        let feed: Feed = Arc::new(|| Box::pin(futures::stream::iter([Ok(Bytes::from_static(b"x"))])));
        let always = Restart { after_success: true, ..quick() };
        let sup = Supervisor::new(&sh(), vec!["-c".into(), "cat >&2".into()], always).fed(feed);
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stopper.cancel();
        });
        sup.run(&stop).await.unwrap();
        let s = sup.status();
        assert!(s.starts >= 3 && s.stderr_tail == "x".repeat(s.starts as usize), "{s:?}");
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_a_loop() {
        let sup = Supervisor::new(&Tool::new("/nonexistent/ffmpeg", Duration::from_secs(1)), vec![], quick());
        assert!(matches!(sup.run(&CancellationToken::new()).await, Err(ToolError::Spawn { .. })));
    }

    /// Live runs are untouched by the VOD scheduler: a head's foreground run does not pause
    /// them, even when the tool they were made from was a background one.
    #[tokio::test]
    async fn the_vod_scheduler_never_pauses_a_supervised_run() {
        let priority = crate::Priority::default();
        let tool = sh().in_background(&priority);
        let sup = Supervisor::new(&tool, vec!["-c".into(), "sleep 30".into()], quick());
        let stop = CancellationToken::new();
        let run = sup.run(&stop);
        tokio::pin!(run);
        let _ = tokio::time::timeout(Duration::from_millis(100), &mut run).await;
        let pid = sup.status().pid.expect("running");
        let _head = priority.foreground();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
        assert_ne!(state, 'T', "paused by a head");
        stop.cancel();
        run.await.unwrap();
    }
}
