//! Scratch folders of local media work (an encode job, an API-side probe or thumbnail): what the
//! media tools may write (see `vidi_media::sandbox`), removed when the work ends however it ends:
//! asynchronously when the work returns, and on drop when the work is dropped instead (a worker
//! stopping, a request cancelled), since nothing else would ever remove it.

use std::path::{Path, PathBuf};

use crate::error::CoreResult;

pub struct Scratch(Option<PathBuf>);

impl Scratch {
    /// Takes charge of `path`, which the caller creates.
    pub fn new(path: PathBuf) -> Scratch {
        Scratch(Some(path))
    }

    /// Creates a fresh folder `<parent>/<prefix>-<random>` and takes charge of it.
    pub fn create(parent: &Path, prefix: &str) -> CoreResult<Scratch> {
        let dir = parent.join(format!("{prefix}-{}", crate::id::random_body()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch::new(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.as_deref().expect("present until removed")
    }

    pub async fn remove(mut self) {
        if let Some(p) = self.0.take() {
            let _ = tokio::fs::remove_dir_all(&p).await;
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Only dropped work gets here: its partial output, on local disk, quick to block on.
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn removed_when_done_or_dropped() {
        let parent = tempfile_dir();
        let a = Scratch::create(&parent, "t").unwrap();
        let pa = a.path().to_path_buf();
        std::fs::write(pa.join("x"), b"x").unwrap();
        a.remove().await;
        assert!(!pa.exists());
        let b = Scratch::create(&parent, "t").unwrap();
        let pb = b.path().to_path_buf();
        drop(b);
        assert!(!pb.exists());
        std::fs::remove_dir_all(parent).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("vidi-scratch-test-{}", crate::id::random_body()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
