//! Heads before ladders, inside one process. While a foreground run (a video's head, which makes
//! it playable) is under way, background runs (the pieces of ladders, the rest of a sound) are
//! paused with SIGSTOP, and resumed with SIGCONT when no foreground run is left. A background run
//! may except one owner: a video's sound runs beside that video's own head (which needs its first
//! seconds to be playable) and pauses only for the heads of other videos.
//!
//! Niceness did this before, but niceness weighs a process against the whole host: beside other
//! busy programs (a build, another service), pieces at niceness 10 got about a tenth of their
//! share and a burst's ladders took six times longer (docs/performance.md). A pause weighs
//! pieces against Vidi's own heads only; the rest of the time they run at Vidi's priority.
//!
//! Signals go by pid, so a pid must never be signalled once its process may have been reaped
//! (the pid could be another process's by then): a [`Background`] is released before its child
//! is waited for, and dropped before the child handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The pause switch of one process's media runs; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Priority(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    /// Foreground runs under way, by the video (or other owner) each is for.
    foreground: HashMap<String, usize>,
    background: HashMap<i32, Run>,
}

/// A registered background child.
#[derive(Debug)]
struct Run {
    /// The owner whose foreground runs this child does not pause for (a video's sound keeps
    /// running beside that video's own head: the head needs its first seconds).
    except: Option<String>,
    /// Whether it was sent SIGSTOP (and not SIGCONT since).
    paused: bool,
}

/// Whether a background run excepting `except` must be paused while `foreground` runs are under
/// way: when one of them is another owner's.
fn must_pause(foreground: &HashMap<String, usize>, except: Option<&str>) -> bool {
    foreground.keys().any(|owner| Some(owner.as_str()) != except)
}

impl State {
    /// Brings every background run to the state the foreground runs call for.
    fn apply(&mut self) {
        for (&pid, run) in &mut self.background {
            let pause = must_pause(&self.foreground, run.except.as_deref());
            if pause != run.paused {
                signal(pid, if pause { libc::SIGSTOP } else { libc::SIGCONT });
                run.paused = pause;
            }
        }
    }
}

impl Priority {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (each step is one insert or
        // remove): carry on with them.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a foreground run for `owner` (a video id) until the guard is dropped: background
    /// runs pause meanwhile, but for those excepting `owner`.
    pub fn foreground(&self, owner: &str) -> Foreground {
        let mut s = self.state();
        *s.foreground.entry(owner.to_string()).or_default() += 1;
        s.apply();
        Foreground(self.clone(), owner.to_string())
    }

    /// Registers the running child `pid` as a background run (paused at once if a foreground
    /// run calls for it), that does not pause for the foreground runs of `except`.
    pub(crate) fn background(&self, pid: u32, except: Option<&str>) -> Background {
        let pid = pid as i32;
        let mut s = self.state();
        let paused = must_pause(&s.foreground, except);
        if paused {
            signal(pid, libc::SIGSTOP);
        }
        s.background.insert(pid, Run { except: except.map(str::to_string), paused });
        Background { priority: self.clone(), pid: Some(pid) }
    }
}

/// A foreground run; dropping it resumes the background runs nothing else holds paused.
#[must_use = "background runs pause only while this guard lives"]
#[derive(Debug)]
pub struct Foreground(Priority, String);

impl Drop for Foreground {
    fn drop(&mut self) {
        let mut s = self.0.state();
        if let Some(n) = s.foreground.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                s.foreground.remove(&self.1);
            }
        }
        s.apply();
    }
}

/// A background child, registered while it runs.
#[derive(Debug)]
pub(crate) struct Background {
    priority: Priority,
    pid: Option<i32>,
}

impl Background {
    /// Unregisters the child, resuming it if it is paused: called before it is waited for, so a
    /// paused child can still exit and its pid is never signalled after it is reaped.
    pub(crate) fn release(&mut self) {
        if let Some(pid) = self.pid.take() {
            let mut s = self.priority.state();
            if s.background.remove(&pid).is_some_and(|r| r.paused) {
                signal(pid, libc::SIGCONT);
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.release();
    }
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory effects; the pid is a live or zombie child of ours (see the
    // module's note), and a failure (already exited) is harmless.
    unsafe {
        libc::kill(pid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_of(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The state follows the command's closing parenthesis.
        stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap()
    }

    fn wait_state(pid: u32, want: impl Fn(char) -> bool) -> char {
        for _ in 0..200 {
            let s = state_of(pid);
            if want(s) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        state_of(pid)
    }

    #[test]
    fn background_children_pause_while_a_foreground_run_lives() {
        let p = Priority::default();
        let mut early = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut reg_early = p.background(early.id(), None);
        assert_ne!(state_of(early.id()), 'T');

        let fg = p.foreground("v1");
        let fg2 = p.foreground("v1");
        assert_eq!(wait_state(early.id(), |s| s == 'T'), 'T', "paused by the first foreground run");
        // A child that starts during a foreground run is paused at once.
        let mut late = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut reg_late = p.background(late.id(), None);
        assert_eq!(wait_state(late.id(), |s| s == 'T'), 'T');

        drop(fg);
        assert_eq!(state_of(early.id()), 'T', "still paused: another foreground run lives");
        drop(fg2);
        assert_ne!(wait_state(early.id(), |s| s != 'T'), 'T', "resumed by the last one");
        assert_ne!(wait_state(late.id(), |s| s != 'T'), 'T');

        // Released while paused: resumed, so it can exit and be waited for.
        let _fg = p.foreground("v1");
        assert_eq!(wait_state(late.id(), |s| s == 'T'), 'T');
        reg_late.release();
        assert_ne!(wait_state(late.id(), |s| s != 'T'), 'T');
        reg_early.release();
        for c in [&mut early, &mut late] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        assert!(p.state().background.is_empty());
    }

    #[test]
    fn a_run_excepting_an_owner_pauses_only_for_the_others() {
        let p = Priority::default();
        let mut sound = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let own = p.foreground("v1");
        let mut reg = p.background(sound.id(), Some("v1"));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_ne!(state_of(sound.id()), 'T', "runs beside its own video's head");
        let other = p.foreground("v2");
        assert_eq!(wait_state(sound.id(), |s| s == 'T'), 'T', "paused for another video's head");
        drop(own);
        assert_eq!(state_of(sound.id()), 'T', "still paused: the other head runs");
        drop(other);
        assert_ne!(wait_state(sound.id(), |s| s != 'T'), 'T', "resumed when no other head runs");
        reg.release();
        sound.kill().unwrap();
        sound.wait().unwrap();
        assert!(p.state().background.is_empty() && p.state().foreground.is_empty());
    }
}
