//! Heads before ladders, inside one process. While a foreground run (a video's head, which makes
//! it playable) is under way, background runs (the pieces of other ladders) are paused with
//! SIGSTOP, and resumed with SIGCONT when no foreground run is left.
//!
//! Niceness did this before, but niceness weighs a process against the whole host: beside other
//! busy programs (a build, another service), pieces at niceness 10 got about a tenth of their
//! share and a burst's ladders took six times longer (docs/performance.md). A pause weighs
//! pieces against Vidi's own heads only; the rest of the time they run at Vidi's priority.
//!
//! Signals go by pid, so a pid must never be signalled once its process may have been reaped
//! (the pid could be another process's by then): a [`Background`] is released before its child
//! is waited for, and dropped before the child handle.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// The pause switch of one process's media runs; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Priority(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    foreground: usize,
    background: HashSet<i32>,
}

impl Priority {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the set consistent (each step is one insert or
        // remove): carry on with it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a foreground run until the guard is dropped: background runs pause meanwhile.
    pub fn foreground(&self) -> Foreground {
        let mut s = self.state();
        s.foreground += 1;
        if s.foreground == 1 {
            s.background.iter().for_each(|&pid| signal(pid, libc::SIGSTOP));
        }
        Foreground(self.clone())
    }

    /// Registers the running child `pid` as a background run (paused at once if a foreground
    /// run is under way).
    pub(crate) fn background(&self, pid: u32) -> Background {
        let pid = pid as i32;
        let mut s = self.state();
        s.background.insert(pid);
        if s.foreground > 0 {
            signal(pid, libc::SIGSTOP);
        }
        Background { priority: self.clone(), pid: Some(pid) }
    }
}

/// A foreground run; dropping it resumes the background runs if it was the last.
#[must_use = "background runs pause only while this guard lives"]
#[derive(Debug)]
pub struct Foreground(Priority);

impl Drop for Foreground {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.foreground -= 1;
        if s.foreground == 0 {
            s.background.iter().for_each(|&pid| signal(pid, libc::SIGCONT));
        }
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
            s.background.remove(&pid);
            if s.foreground > 0 {
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
        let mut reg_early = p.background(early.id());
        assert_ne!(state_of(early.id()), 'T');

        let fg = p.foreground();
        let fg2 = p.foreground();
        assert_eq!(wait_state(early.id(), |s| s == 'T'), 'T', "paused by the first foreground run");
        // A child that starts during a foreground run is paused at once.
        let mut late = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut reg_late = p.background(late.id());
        assert_eq!(wait_state(late.id(), |s| s == 'T'), 'T');

        drop(fg);
        assert_eq!(state_of(early.id()), 'T', "still paused: another foreground run lives");
        drop(fg2);
        assert_ne!(wait_state(early.id(), |s| s != 'T'), 'T', "resumed by the last one");
        assert_ne!(wait_state(late.id(), |s| s != 'T'), 'T');

        // Released while paused: resumed, so it can exit and be waited for.
        let _fg = p.foreground();
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
}
