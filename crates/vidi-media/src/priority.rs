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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The pause switch of one process's media runs; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Priority(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    owners: AtomicU64,
}

/// A head's claim on its own background runs: a foreground run held [`for`](Priority::foreground_for)
/// an owner pauses every background run but that owner's. A head holds one from its start until
/// its video plays, so that its own sound (a background run, which must write its first segment
/// before the video plays) gets the machine to itself rather than sharing it with every other
/// video's pieces and sounds, which is what made each head of a burst slower than the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner(u64);

#[derive(Debug, Default)]
struct State {
    /// Live foreground runs, counted by the owner they spare (`None`: they spare nobody).
    foreground: HashMap<Option<Owner>, usize>,
    background: HashMap<i32, Run>,
}

#[derive(Debug)]
struct Run {
    owner: Option<Owner>,
    paused: bool,
}

impl State {
    /// Whether a background run of `owner` must pause under the live foreground runs.
    fn must_pause(&self, owner: Option<Owner>) -> bool {
        self.foreground.keys().any(|spared| spared.is_none() || *spared != owner)
    }

    /// Pauses or resumes every background run whose due state changed.
    fn settle(&mut self) {
        let due: Vec<(i32, bool)> =
            self.background.iter().map(|(&pid, run)| (pid, self.must_pause(run.owner))).collect();
        for (pid, pause) in due {
            let run = self.background.get_mut(&pid).expect("listed above");
            if run.paused != pause {
                signal(pid, if pause { libc::SIGSTOP } else { libc::SIGCONT });
                run.paused = pause;
            }
        }
    }
}

impl Priority {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (`settle` re-derives the
        // signals from them): carry on with them.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new owner, for one head's runs.
    pub fn owner(&self) -> Owner {
        Owner(self.0.owners.fetch_add(1, Ordering::Relaxed))
    }

    /// Marks a foreground run until the guard is dropped: every background run pauses meanwhile.
    pub fn foreground(&self) -> Foreground {
        self.hold(None)
    }

    /// Like [`foreground`](Self::foreground), sparing the background runs of `owner`.
    pub fn foreground_for(&self, owner: Owner) -> Foreground {
        self.hold(Some(owner))
    }

    fn hold(&self, spared: Option<Owner>) -> Foreground {
        let mut s = self.state();
        *s.foreground.entry(spared).or_default() += 1;
        s.settle();
        Foreground { priority: self.clone(), spared }
    }

    /// Registers the running child `pid` as a background run of `owner` (paused at once if a
    /// foreground run that does not spare it is under way).
    pub(crate) fn background(&self, pid: u32, owner: Option<Owner>) -> Background {
        let pid = pid as i32;
        let mut s = self.state();
        s.background.insert(pid, Run { owner, paused: false });
        s.settle();
        Background { priority: self.clone(), pid: Some(pid) }
    }
}

/// A foreground run; dropping it resumes the background runs that nothing else pauses.
#[must_use = "background runs pause only while this guard lives"]
#[derive(Debug)]
pub struct Foreground {
    priority: Priority,
    spared: Option<Owner>,
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let mut s = self.priority.state();
        if let Some(n) = s.foreground.get_mut(&self.spared) {
            *n -= 1;
            if *n == 0 {
                s.foreground.remove(&self.spared);
            }
        }
        s.settle();
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
            if s.background.remove(&pid).is_some_and(|run| run.paused) {
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

        let fg = p.foreground();
        let fg2 = p.foreground();
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

    #[test]
    fn a_foreground_run_for_an_owner_spares_that_owners_runs_only() {
        let p = Priority::default();
        let (mine, theirs) = (p.owner(), p.owner());
        let mut a = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut b = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut reg_a = p.background(a.id(), Some(mine));
        let mut reg_b = p.background(b.id(), Some(theirs));

        // Its head's picture: everything pauses, its own sound too.
        let until_playable = p.foreground_for(mine);
        let picture = p.foreground();
        assert_eq!(wait_state(a.id(), |s| s == 'T'), 'T');
        assert_eq!(wait_state(b.id(), |s| s == 'T'), 'T');
        // The picture is done: its own sound runs, the others' runs stay paused.
        drop(picture);
        assert_ne!(wait_state(a.id(), |s| s != 'T'), 'T');
        assert_eq!(state_of(b.id()), 'T');
        // Playable: everything runs.
        drop(until_playable);
        assert_ne!(wait_state(b.id(), |s| s != 'T'), 'T');
        // Another head starting pauses both.
        let other = p.foreground_for(p.owner());
        assert_eq!(wait_state(a.id(), |s| s == 'T'), 'T');
        assert_eq!(wait_state(b.id(), |s| s == 'T'), 'T');
        reg_a.release();
        reg_b.release();
        assert_ne!(wait_state(a.id(), |s| s != 'T'), 'T');
        drop(other);
        for c in [&mut a, &mut b] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        assert!(p.state().background.is_empty() && p.state().foreground.is_empty());
    }
}
