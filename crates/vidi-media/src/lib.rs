//! The one way Vidi runs external media tools. Every ffmpeg/ffprobe call goes through [`Tool`]:
//! it has a timeout, kills the child when dropped (a cancelled request or a lost job leaves no
//! orphan), and keeps stderr so a failure has a reason a human can read. A run can be fed on its
//! stdin from a stream ([`Tool::run_fed`]), and a process meant to run for hours (a live
//! transcode, a restream) is kept up by a [`Supervisor`], in the same jail, with no time bound.

pub mod audio;
pub mod encode;
pub mod input;
pub mod ladder;
pub mod playlist;
pub mod priority;
pub mod probe;
pub mod sandbox;
pub mod supervise;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

pub use priority::Priority;
pub use probe::{Probe, probe};
pub use sandbox::Jail;
pub use supervise::{Restart, Supervisor};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{tool} could not start: {source}")]
    Spawn { tool: String, source: std::io::Error },
    #[error("{tool} ran longer than {0:?}", .timeout)]
    Timeout { tool: String, timeout: Duration },
    #[error("{tool} failed ({status}): {stderr}")]
    Failed { tool: String, status: String, stderr: String },
    /// The program went over one of its resource bounds ([`Tool::max_data`], [`Tool::max_cpu`]):
    /// `bound` names it and the setting that sets it.
    #[error("{tool} went over its {bound}: {stderr}")]
    OverBound { tool: String, bound: String, stderr: String },
    #[error("{tool} output unreadable: {reason}")]
    Output { tool: String, reason: String },
    /// The program exited successfully but what it wrote is missing or cut short (see
    /// [`encode::check_hls_output`]).
    #[error("{tool} output incomplete: {reason}")]
    Incomplete { tool: String, reason: String },
}

/// The start of every ffmpeg command: no banner, no stdin, overwrite, errors only.
pub const FFMPEG_QUIET: [&str; 5] = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error"];
/// What [`Tool::run_with_progress`] reads on stdout.
pub const FFMPEG_PROGRESS: [&str; 3] = ["-progress", "pipe:1", "-nostats"];

/// An external program with fixed settings.
#[derive(Clone, Debug)]
pub struct Tool {
    pub program: String,
    pub timeout: Duration,
    /// Set for background runs (the pieces of a ladder): paused while a foreground run of this
    /// process (a video's head) is under way (see [`priority`]), unless that run spares the
    /// owner given here.
    pub background: Option<(Priority, Option<priority::Owner>)>,
    /// What the next runs may touch on disk (see [`sandbox`]); `None`: not confined.
    pub jail: Option<Jail>,
    /// Confine jailed runs with Landlock when the kernel has it (`VIDI_MEDIA_SANDBOX`).
    pub sandbox: bool,
    /// An address-space limit for the child, bytes (a hostile file must not take the node's
    /// memory; ffprobe only).
    pub max_memory: Option<u64>,
    /// A bound on the memory the child may write (`RLIMIT_DATA`: its heap, anonymous mappings
    /// and thread stacks), bytes: encoders, `VIDI_ENCODE_MEMORY_BYTES`. Not the address space,
    /// which an encoder with many threads reserves far beyond what it uses (glibc keeps 64 MiB
    /// of address space per thread arena). An allocation past it fails, and the run with it.
    pub max_data: Option<u64>,
    /// A bound on the child's CPU time, all its threads together (`RLIMIT_CPU`): one job's
    /// encoders (`VIDI_ENCODE_CPU_SECS`). The kernel kills the child when it is spent. Unlike
    /// the wall-time `timeout`, a busy node does not make it come sooner.
    pub max_cpu: Option<Duration>,
}

/// Stderr is capped: a runaway decoder can print megabytes of warnings.
const STDERR_CAP: usize = 16 * 1024;

impl Tool {
    pub fn new(program: impl Into<String>, timeout: Duration) -> Self {
        Tool {
            program: program.into(),
            timeout,
            background: None,
            jail: None,
            sandbox: true,
            max_memory: None,
            max_data: None,
            max_cpu: None,
        }
    }

    /// The same program, confined to `jail` (see [`sandbox`]).
    pub fn jailed(&self, jail: Jail) -> Self {
        Tool { jail: Some(jail), ..self.clone() }
    }

    /// The same program, run in the background of `priority`: paused while a foreground run is.
    pub fn in_background(&self, priority: &Priority) -> Self {
        Tool { background: Some((priority.clone(), None)), ..self.clone() }
    }

    /// [`in_background`](Self::in_background), as a run of `owner`: a foreground run held for
    /// that owner does not pause it (see [`priority::Owner`]).
    pub fn in_background_of(&self, priority: &Priority, owner: priority::Owner) -> Self {
        Tool { background: Some((priority.clone(), Some(owner))), ..self.clone() }
    }

    /// Starts the program with piped output (and stdin when `fed`); the child dies with its
    /// handle.
    fn spawn<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], fed: bool) -> Result<tokio::process::Child, ToolError> {
        let spawn_err = |source| ToolError::Spawn { tool: self.program.clone(), source };
        let mut cmd = Command::new(&self.program);
        let stdin = if fed { Stdio::piped() } else { Stdio::null() };
        cmd.args(args).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        // Built here, before the fork: the child may only make system calls.
        let ruleset = match (&self.jail, self.sandbox) {
            (Some(jail), true) => sandbox::build(jail, std::path::Path::new(&self.program)).map_err(spawn_err)?,
            _ => None,
        };
        if self.jail.is_some() && self.sandbox && ruleset.is_none() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!("this kernel has no Landlock: media tools run unconfined (input allow-lists only)")
            });
        }
        #[cfg(target_os = "linux")]
        {
            let ruleset_fd = ruleset.as_ref().map(|r| r.raw_fd());
            let max_memory = self.max_memory;
            let max_data = self.max_data;
            // Whole seconds, at least one (zero would kill the child at once).
            let max_cpu = self.max_cpu.map(|d| d.as_secs_f64().ceil().max(1.0) as libc::rlim_t);
            // SAFETY: prctl, setrlimit and the Landlock calls are async-signal-safe
            // and touch only the child's own attributes.
            unsafe {
                cmd.pre_exec(move || {
                    // kill_on_drop covers a cancelled job, not a killed Vidi: ask the kernel to kill
                    // the child when its parent dies, or an encoder would run on as an orphan
                    // (ffmpeg ignores SIGPIPE).
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // Soft and hard limits alike: past its CPU time, the child gets SIGKILL at
                    // once rather than SIGXCPU, which ffmpeg catches and takes for a polite
                    // request to stop (it would end with a truncated output).
                    for (resource, limit) in
                        [(libc::RLIMIT_AS, max_memory), (libc::RLIMIT_DATA, max_data), (libc::RLIMIT_CPU, max_cpu)]
                    {
                        if let Some(n) = limit {
                            let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                            if libc::setrlimit(resource, &lim) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        }
                    }
                    if let Some(fd) = ruleset_fd {
                        sandbox::restrict_self(fd)?;
                    }
                    Ok(())
                });
            }
        }
        // The parent's copy of the ruleset closes here; the child entered its domain before exec.
        let child = cmd.spawn().map_err(spawn_err);
        drop(ruleset);
        child
    }

    /// A background run's registration, released before the child is waited for.
    fn register(&self, child: &tokio::process::Child) -> Option<priority::Background> {
        let (priority, owner) = self.background.as_ref()?;
        Some(priority.background(child.id()?, *owner))
    }

    /// Runs the program to completion and returns its stdout.
    pub async fn run(&self, args: &[&str]) -> Result<Vec<u8>, ToolError> {
        self.run_inner(args, None::<futures::stream::Empty<std::io::Result<bytes::Bytes>>>).await
    }

    /// [`run`](Self::run), with the child's stdin fed from `input` (closed when it ends, so the
    /// program sees the end of its input). An input that fails, or a child that stops reading,
    /// ends the feed; the child's own exit decides the outcome.
    pub async fn run_fed<S>(&self, args: &[&str], input: S) -> Result<Vec<u8>, ToolError>
    where
        S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send,
    {
        self.run_inner(args, Some(input)).await
    }

    async fn run_inner<S>(&self, args: &[&str], input: Option<S>) -> Result<Vec<u8>, ToolError>
    where
        S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send,
    {
        let started = std::time::Instant::now();
        let mut child = self.spawn(args, input.is_some())?;
        let feed = feed(child.stdin.take(), input);
        // Declared after the child: released (resumed) before the child is dropped and killed.
        let mut background = self.register(&child);
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let work = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (a, b, ()) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err), feed);
            a.and(b).map_err(|source| ToolError::Spawn { tool: self.program.clone(), source })?;
            background.as_mut().map(priority::Background::release);
            let status =
                child.wait().await.map_err(|source| ToolError::Spawn { tool: self.program.clone(), source })?;
            Ok::<_, ToolError>((status, out, err))
        };
        let (status, out, err) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ToolError::Timeout { tool: self.program.clone(), timeout: self.timeout })??;
        if !status.success() {
            let mut stderr = String::from_utf8_lossy(&err[..err.len().min(STDERR_CAP)]).trim().to_string();
            if stderr.is_empty() {
                stderr = "no message".into();
            }
            return Err(self.failure(status, stderr, started.elapsed()));
        }
        Ok(out)
    }
}

impl Tool {
    /// Runs an ffmpeg command that has `-progress pipe:1`, calling `on_progress` with the output
    /// time (microseconds) as it advances. Dropping the future kills the child.
    pub async fn run_with_progress(&self, args: &[String], mut on_progress: impl FnMut(u64)) -> Result<(), ToolError> {
        let started = std::time::Instant::now();
        let mut child = self.spawn(args, false)?;
        let mut background = self.register(&child);
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let work = async {
            let read_err = async {
                let mut err = Vec::new();
                let _ = stderr.read_to_end(&mut err).await;
                err
            };
            let read_progress = async {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(us) = line.strip_prefix("out_time_us=").and_then(|v| v.trim().parse::<i64>().ok()) {
                        on_progress(us.max(0) as u64);
                    }
                }
            };
            let (err, ()) = tokio::join!(read_err, read_progress);
            background.as_mut().map(priority::Background::release);
            let status =
                child.wait().await.map_err(|source| ToolError::Spawn { tool: self.program.clone(), source })?;
            Ok::<_, ToolError>((status, err))
        };
        let (status, err) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ToolError::Timeout { tool: self.program.clone(), timeout: self.timeout })??;
        if !status.success() {
            let stderr = String::from_utf8_lossy(&err[err.len().saturating_sub(STDERR_CAP)..]).trim().to_string();
            return Err(self.failure(status, stderr, started.elapsed()));
        }
        Ok(())
    }

    /// The error of a run that exited with `status` after `took`: over a bound when the signs
    /// say so, else a plain failure.
    fn failure(&self, status: std::process::ExitStatus, stderr: String, took: Duration) -> ToolError {
        use std::os::unix::process::ExitStatusExt;
        let tool = self.program.clone();
        // SIGKILL at the CPU bound. The OOM killer sends SIGKILL too, but a process cannot have
        // used more CPU time than its wall time on every core.
        if let (Some(cpu), Some(libc::SIGKILL)) = (self.max_cpu, status.signal()) {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            if took.as_secs_f64() * cores >= cpu.as_secs_f64() {
                let bound = format!("CPU time bound of {} s (VIDI_ENCODE_CPU_SECS)", cpu.as_secs_f64().ceil());
                return ToolError::OverBound { tool, bound, stderr };
            }
        }
        // An allocation refused: what ffmpeg, its libraries, glibc and the loader say then (a
        // thread that cannot map its stack fails with EAGAIN; a bound below what the program
        // needs to start fails its libraries' mapping). x264 refused its threads' memory says
        // only that the encoder did not open: Vidi's encoder options are fixed and tested, so
        // under a memory bound that is the bound.
        let lower = stderr.to_ascii_lowercase();
        let refused = [
            "cannot allocate memory",
            "out of memory",
            "malloc of size",
            "failed to allocate",
            "resource temporarily unavailable",
            "failed to map segment",
            "error while opening encoder",
        ];
        if let Some(bytes) = self.max_data
            && refused.iter().any(|m| lower.contains(m))
        {
            let bound = format!("memory bound of {} MiB (VIDI_ENCODE_MEMORY_BYTES)", bytes >> 20);
            return ToolError::OverBound { tool, bound, stderr };
        }
        ToolError::Failed { tool, status: status.to_string(), stderr }
    }
}

/// Copies `input` into the child's stdin, then closes it. Ends early, quietly, when the child
/// stops reading (it exited, or it read all it wanted): the child's status says what happened.
async fn feed<S>(stdin: Option<tokio::process::ChildStdin>, input: Option<S>)
where
    S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send,
{
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let (Some(mut stdin), Some(input)) = (stdin, input) else { return };
    let mut input = std::pin::pin!(input);
    while let Some(chunk) = input.next().await {
        let Ok(chunk) = chunk else {
            tracing::warn!("a media tool's input failed; its stdin is closed early");
            break;
        };
        if stdin.write_all(&chunk).await.is_err() {
            break;
        }
    }
    // Dropping stdin closes it: end of input.
}

/// The default bound on the memory one ffmpeg may write (`VIDI_ENCODE_MEMORY_BYTES`), 8 GiB:
/// well above what a 4K ladder with x264's threads on a many-core machine holds (a 1080p
/// rendition wants a few hundred MiB on two cores, more with more threads in flight), and still
/// a bound on a hostile file that makes a decoder ask for absurd frame sizes.
pub const ENCODE_MEMORY_BYTES: u64 = 8 << 30;

/// The tools, configured once at start-up.
#[derive(Clone, Debug)]
pub struct Media {
    pub ffprobe: Tool,
    pub ffmpeg: Tool,
    /// Heads before ladders: see [`priority`].
    pub priority: Priority,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            ffprobe: Tool { max_memory: Some(probe::MAX_MEMORY), ..Tool::new("ffprobe", Duration::from_secs(120)) },
            ffmpeg: Tool { max_data: Some(ENCODE_MEMORY_BYTES), ..Tool::new("ffmpeg", Duration::from_secs(6 * 3600)) },
            priority: Priority::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_failures_with_stderr_and_timeouts() {
        let sh = Tool::new("sh", Duration::from_secs(5));
        assert_eq!(sh.run(&["-c", "printf hi"]).await.unwrap(), b"hi");
        let e = sh.run(&["-c", "echo broken >&2; exit 3"]).await.unwrap_err();
        assert!(matches!(&e, ToolError::Failed { stderr, .. } if stderr == "broken"), "{e}");
        let slow = Tool::new("sh", Duration::from_millis(200));
        assert!(matches!(slow.run(&["-c", "sleep 5"]).await, Err(ToolError::Timeout { .. })));
        let missing = Tool::new("/nonexistent/tool", Duration::from_secs(1));
        assert!(matches!(missing.run(&[]).await, Err(ToolError::Spawn { .. })));
    }

    /// A background run waits out a foreground one: paused while the guard lives, resumed after
    /// (and released before it is waited for, so it can finish).
    #[tokio::test]
    async fn a_background_run_pauses_while_a_foreground_run_lives() {
        let priority = Priority::default();
        let sh = Tool::new("sh", Duration::from_secs(10)).in_background(&priority);
        let started = std::time::Instant::now();
        let fg = priority.foreground();
        let held = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            drop(fg);
        });
        assert_eq!(sh.run(&["-c", "sleep 0.2; printf done"]).await.unwrap(), b"done");
        assert!(started.elapsed() >= Duration::from_millis(1500), "ran while paused: {:?}", started.elapsed());
        held.await.unwrap();
        // Without a foreground run it is not held back.
        let started = std::time::Instant::now();
        sh.run(&["-c", "sleep 0.2"]).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(1400), "{:?}", started.elapsed());
    }

    /// ffprobe's address-space limit reaches the child (`ulimit -v` reports KiB).
    #[tokio::test]
    async fn a_memory_limit_applies_to_the_child() {
        let sh = Tool { max_memory: Some(512 << 20), ..Tool::new("sh", Duration::from_secs(5)) };
        assert_eq!(sh.run(&["-c", "ulimit -v"]).await.unwrap(), b"524288\n");
        assert_eq!(Media::default().ffprobe.max_memory, Some(probe::MAX_MEMORY));
    }

    /// An encoder's bounds reach the child: its writable memory (`ulimit -d`, KiB) and its CPU
    /// time (`ulimit -t`, seconds, rounded up).
    #[tokio::test]
    async fn an_encoders_bounds_apply_to_the_child() {
        let sh = Tool {
            max_data: Some(256 << 20),
            max_cpu: Some(Duration::from_millis(2500)),
            ..Tool::new("sh", Duration::from_secs(5))
        };
        assert_eq!(sh.run(&["-c", "ulimit -d; ulimit -t"]).await.unwrap(), b"262144\n3\n");
        assert_eq!(Media::default().ffmpeg.max_data, Some(ENCODE_MEMORY_BYTES));
    }

    /// A run that spends its CPU time is killed and says so, long before its wall-time bound.
    #[tokio::test]
    async fn a_run_over_its_cpu_bound_fails_with_that_reason() {
        let spin = Tool { max_cpu: Some(Duration::from_secs(1)), ..Tool::new("sh", Duration::from_secs(60)) };
        let started = std::time::Instant::now();
        let e = spin.run(&["-c", "while :; do :; done"]).await.unwrap_err();
        assert!(matches!(&e, ToolError::OverBound { bound, .. } if bound.contains("CPU time bound of 1 s")), "{e}");
        assert!(started.elapsed() < Duration::from_secs(50), "killed by the CPU bound, not the timeout");
    }

    /// ffmpeg over its memory bound fails with that reason (x264 cannot allocate its frames);
    /// the same encode within the default bound succeeds.
    #[tokio::test]
    async fn an_ffmpeg_over_its_memory_bound_fails_with_that_reason() {
        let args = [
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-f",
            "null",
            "-",
        ];
        let small = Tool { max_data: Some(64 << 20), ..Tool::new("ffmpeg", Duration::from_secs(120)) };
        let e = small.run(&args).await.unwrap_err();
        assert!(matches!(&e, ToolError::OverBound { bound, .. } if bound.contains("memory bound of 64 MiB")), "{e}");
        Media::default().ffmpeg.run(&args).await.unwrap();
    }
}
