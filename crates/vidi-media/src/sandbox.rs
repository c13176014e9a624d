//! Confinement of the media tools (defence in depth behind the input allow-lists of
//! [`crate::input`]). A decoder bug exploited by a hostile upload would run with Vidi's rights,
//! which include every other video in the local store. On Linux with Landlock (5.13+), each
//! ffmpeg/ffprobe is started in a domain that can read the system's programs and libraries, read
//! its own job's input, and read and write its own scratch folder: nothing else on disk, and (on
//! kernels with Landlock ABI 4) no TCP at all, since media tools are only ever given local files.
//!
//! Where the kernel has no Landlock (older kernels, or the LSM left out of `lsm=`), the tools run
//! unconfined and Vidi says so once at start-up; the allow-lists still keep hostile formats from
//! opening other files. Operators of such kernels can get the same effect by running workers in a
//! container that mounts only the data folder.
//!
//! The ruleset is built in the parent (opening paths and allocating are not safe between `fork`
//! and `exec`); the child only calls `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What one tool run may touch on disk, beyond the system's programs and libraries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jail {
    /// Files or folders it may read.
    pub read: Vec<PathBuf>,
    /// Folders it may read and write (create, rename and remove files in).
    pub write: Vec<PathBuf>,
}

impl Jail {
    pub fn new() -> Self {
        Jail::default()
    }

    pub fn read(mut self, p: impl AsRef<Path>) -> Self {
        self.read.push(p.as_ref().to_path_buf());
        self
    }

    pub fn write(mut self, p: impl AsRef<Path>) -> Self {
        self.write.push(p.as_ref().to_path_buf());
        self
    }
}

/// Read-only places every media tool needs: the programs and their shared libraries, the
/// dynamic loader's cache, and the few device nodes glibc and ffmpeg open. Deliberately not
/// `/etc` as a whole (an operator's configuration may hold secrets), `/proc`, `/home` or `/tmp`.
const SYSTEM_READ: &[&str] =
    &["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/localtime"];
/// Device nodes a tool may open for reading and writing.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

// Landlock's ABI (include/uapi/linux/landlock.h). Each access right appeared in a given ABI
// version; asking the kernel to handle a right it does not know is an error, so the handled set
// is computed from the running kernel's version.
const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
/// REMOVE_DIR … MAKE_SYM (bits 4 to 12), all in ABI 1.
const FS_MAKE_AND_REMOVE: u64 = 0x1ff0;
const FS_REFER: u64 = 1 << 13; // ABI 2
const FS_TRUNCATE: u64 = 1 << 14; // ABI 3
const FS_IOCTL_DEV: u64 = 1 << 15; // ABI 5
const NET_BIND_TCP: u64 = 1 << 0; // ABI 4
const NET_CONNECT_TCP: u64 = 1 << 1; // ABI 4
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0; // ABI 6
const SCOPE_SIGNAL: u64 = 1 << 1; // ABI 6

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The running kernel's Landlock ABI version (0: none), read once.
pub fn landlock_abi() -> i64 {
    static ABI: OnceLock<i64> = OnceLock::new();
    *ABI.get_or_init(|| {
        // SAFETY: the documented probe call: no attribute, size 0, the version flag.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        if v < 1 { 0 } else { v }
    })
}

/// A ruleset ready to be applied in a child (see [`restrict_self`]).
#[derive(Debug)]
pub struct Ruleset(OwnedFd);

impl Ruleset {
    pub fn raw_fd(&self) -> i32 {
        self.0.as_raw_fd()
    }
}

/// Builds the ruleset of `jail` for `program`, or `None` when the kernel has no Landlock.
pub fn build(jail: &Jail, program: &Path) -> std::io::Result<Option<Ruleset>> {
    let abi = landlock_abi();
    if abi < 1 {
        return Ok(None);
    }
    let mut fs = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_READ_DIR | FS_MAKE_AND_REMOVE;
    if abi >= 2 {
        fs |= FS_REFER;
    }
    if abi >= 3 {
        fs |= FS_TRUNCATE;
    }
    if abi >= 5 {
        fs |= FS_IOCTL_DEV;
    }
    let net = if abi >= 4 { NET_BIND_TCP | NET_CONNECT_TCP } else { 0 };
    let scoped = if abi >= 6 { SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL } else { 0 };
    let attr = RulesetAttr { handled_access_fs: fs, handled_access_net: net, scoped };
    // SAFETY: `attr` is a valid ruleset attribute of the size given.
    let fd = unsafe {
        libc::syscall(libc::SYS_landlock_create_ruleset, &attr as *const RulesetAttr, size_of::<RulesetAttr>(), 0u32)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us (O_CLOEXEC).
    let ruleset = Ruleset(unsafe { OwnedFd::from_raw_fd(fd as i32) });

    let read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;
    let device = FS_READ_FILE | FS_WRITE_FILE;
    let mut rules: Vec<(PathBuf, u64, bool)> = Vec::new();
    for p in SYSTEM_READ {
        rules.push((PathBuf::from(p), read, false));
    }
    for p in DEVICES {
        rules.push((PathBuf::from(p), device, false));
    }
    // A program outside the system folders (an operator's own ffmpeg build) needs its folder.
    if let Some(dir) = resolve_program(program).and_then(|p| p.parent().map(Path::to_path_buf)) {
        rules.push((dir, read, false));
    }
    // The job's own files: missing ones are an error, or the tool would run without them.
    for p in &jail.read {
        rules.push((p.clone(), FS_READ_FILE | FS_READ_DIR, true));
    }
    for p in &jail.write {
        rules.push((p.clone(), fs & !FS_EXECUTE & !FS_IOCTL_DEV, true));
    }
    for (path, access, required) in rules {
        let file = match std::fs::File::options().read(true).custom_flags(libc::O_PATH).open(&path) {
            Ok(f) => f,
            Err(_) if !required => continue,
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        // Rights that only make sense on folders are refused by the kernel on a file.
        let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
        let file_rights = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
        let allowed = if is_dir { access & fs } else { access & fs & file_rights };
        let rule = PathBeneathAttr { allowed_access: allowed, parent_fd: file.as_raw_fd() };
        // SAFETY: a valid path-beneath rule for a ruleset descriptor we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset.raw_fd(),
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(e.kind(), format!("landlock rule for {}: {e}", path.display())));
        }
    }
    Ok(Some(ruleset))
}

/// The program's path as `exec` will find it.
fn resolve_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return std::fs::canonicalize(program).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// Enters the ruleset's domain. Runs in the child between `fork` and `exec`: only system calls.
///
/// # Safety
/// Must be called in a freshly forked child (it changes the calling process's rights for good).
pub unsafe fn restrict_self(ruleset_fd: i32) -> std::io::Result<()> {
    // SAFETY: plain system calls on the calling process.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset_fd, 0u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tool;
    use std::time::Duration;

    /// A jailed shell can read its input and write its scratch, and nothing else of the data
    /// folder: the property that keeps a hijacked decoder away from other videos.
    #[tokio::test]
    async fn a_jailed_tool_reaches_only_its_own_files() {
        if landlock_abi() < 1 {
            eprintln!("skipped: this kernel has no Landlock");
            return;
        }
        let data = tempfile::tempdir().unwrap();
        let mine = data.path().join("mine");
        let other = data.path().join("other");
        let scratch = data.path().join("scratch");
        std::fs::write(&mine, b"my source").unwrap();
        std::fs::write(&other, b"someone else's video").unwrap();
        std::fs::create_dir(&scratch).unwrap();
        let sh = Tool::new("sh", Duration::from_secs(10)).jailed(Jail::new().read(&mine).write(&scratch));
        let run = |script: String| {
            let sh = sh.clone();
            async move { sh.run(&["-c", &script]).await }
        };
        assert_eq!(run(format!("cat {}", mine.display())).await.unwrap(), b"my source");
        assert!(run(format!("cat {}", other.display())).await.is_err(), "read another file");
        assert!(run(format!("ls {}", data.path().display())).await.is_err(), "listed the data folder");
        assert!(
            run(format!("echo x > {}/out && mv {0}/out {0}/out2 && cat {0}/out2", scratch.display())).await.is_ok()
        );
        assert!(run(format!("echo x > {}/planted", data.path().display())).await.is_err(), "wrote outside scratch");
        assert!(run("cat /etc/hostname".into()).await.is_err(), "read /etc");
        if landlock_abi() >= 4 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            // bash's /dev/tcp would need bash; a python one-liner may not exist: use the shell's
            // own redirection only when bash is there.
            if Path::new("/bin/bash").exists() {
                let bash = Tool::new("bash", Duration::from_secs(10)).jailed(Jail::new());
                let r = bash.run(&["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")]).await;
                assert!(r.is_err(), "connected over TCP");
            }
        }
    }
}
