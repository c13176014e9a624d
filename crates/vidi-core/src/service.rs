//! The long-running roles of a process, each a [`Service`]: a name and a future that runs until
//! the process's shutdown token fires. `vidi serve` and `vidi worker` build their list from the
//! configuration (the HTTP API, each job lane, webhook delivery, heartbeats, restart recovery;
//! RTMP ingest and the analytics collector next) and hand it to [`start`]; nothing a service
//! starts may outlive its future, so when [`Running::wait`] returns the process holds no task.
//!
//! A service that fails (returns an error or panics) before the shutdown stops the whole process,
//! with its name in the error: a node whose webhook loop died but whose API still answers would
//! look healthy while losing work. A service that simply ends (a one-shot recovery) is done.

use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

type Run = Box<dyn FnOnce(CancellationToken) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send>;

/// One long-running role: a name (for logs and errors) and what it runs.
pub struct Service {
    name: String,
    run: Run,
}

impl Service {
    /// `run` is given the process's shutdown token: it must return soon after the token fires,
    /// having stopped everything it started (its tasks, its child processes).
    pub fn new<F, Fut>(name: impl Into<String>, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Service { name: name.into(), run: Box::new(move |token| Box::pin(run(token))) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("name", &self.name).finish()
    }
}

/// Why a process stopped other than by its shutdown signal.
#[derive(Debug, thiserror::Error)]
#[error("service {service} failed: {error:#}")]
pub struct ServiceFailed {
    pub service: String,
    pub error: anyhow::Error,
}

/// The services of a process, running.
pub struct Running {
    set: JoinSet<(String, anyhow::Result<()>)>,
    names: Vec<String>,
    aborts: Vec<tokio::task::AbortHandle>,
    shutdown: CancellationToken,
}

/// Starts every service on `shutdown`. Names must be distinct (a wiring mistake otherwise).
pub fn start(services: Vec<Service>, shutdown: CancellationToken) -> Running {
    let mut set = JoinSet::new();
    let mut names = Vec::with_capacity(services.len());
    let mut aborts = Vec::with_capacity(services.len());
    for s in services {
        assert!(!names.contains(&s.name), "two services named {}", s.name);
        names.push(s.name.clone());
        let (name, token) = (s.name, shutdown.clone());
        tracing::debug!(service = %name, "service starting");
        // A panic is caught here, so it is reported with the service's name like any failure.
        let run = std::panic::AssertUnwindSafe((s.run)(token));
        aborts.push(set.spawn(async move {
            let r = futures::FutureExt::catch_unwind(run)
                .await
                .unwrap_or_else(|panic| Err(anyhow::anyhow!("panicked: {}", panic_message(panic))));
            (name, r)
        }));
    }
    Running { set, names, aborts, shutdown }
}

impl Running {
    /// The names of the services, in the order they were started.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Waits for every service to end. The first to fail cancels the shutdown token, so the
    /// others stop as they would on SIGTERM, and its failure is returned once they have.
    pub async fn wait(mut self) -> Result<(), ServiceFailed> {
        let mut first: Option<ServiceFailed> = None;
        while let Some(joined) = self.set.join_next().await {
            let failed = match joined {
                Ok((name, Ok(()))) => {
                    tracing::debug!(service = %name, "service ended");
                    None
                }
                Ok((name, Err(error))) => Some(ServiceFailed { service: name, error }),
                // Panics are caught in the task: only `abort`, which ends the process's services
                // as a crash would, gets here.
                Err(_) => None,
            };
            if let Some(f) = failed {
                tracing::error!(service = %f.service, error = %format!("{:#}", f.error), "service failed; stopping");
                self.shutdown.cancel();
                first.get_or_insert(f);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Ends every service at once, without the graceful stop (tests standing in for a crash):
    /// their futures are dropped, which kills their child processes.
    pub fn abort(&self) {
        self.aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    fn until_shutdown(name: &str, stopped: Arc<AtomicBool>) -> Service {
        Service::new(name, move |token| async move {
            token.cancelled().await;
            stopped.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    #[tokio::test]
    async fn every_service_stops_on_the_token() {
        let token = CancellationToken::new();
        let flags: Vec<_> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
        let mut list: Vec<_> =
            flags.iter().enumerate().map(|(i, f)| until_shutdown(&format!("s{i}"), f.clone())).collect();
        list.push(Service::new("one-shot", |_| async { Ok(()) }));
        let running = start(list, token.clone());
        assert_eq!(running.names(), ["s0", "s1", "s2", "one-shot"]);
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), running.wait()).await.unwrap().unwrap();
        assert!(flags.iter().all(|f| f.load(Ordering::SeqCst)));
    }

    #[tokio::test]
    async fn a_failing_service_stops_the_others_and_is_named() {
        let token = CancellationToken::new();
        let stopped = Arc::new(AtomicBool::new(false));
        let list = vec![
            until_shutdown("http", stopped.clone()),
            Service::new("webhooks", |_| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                anyhow::bail!("database gone")
            }),
        ];
        let err = tokio::time::timeout(Duration::from_secs(5), start(list, token.clone()).wait()).await.unwrap();
        let err = err.unwrap_err();
        assert_eq!(err.service, "webhooks");
        assert_eq!(err.to_string(), "service webhooks failed: database gone");
        assert!(token.is_cancelled() && stopped.load(Ordering::SeqCst), "the others stopped gracefully");
    }

    #[tokio::test]
    async fn a_panicking_service_stops_the_process() {
        let token = CancellationToken::new();
        let stopped = Arc::new(AtomicBool::new(false));
        let list =
            vec![until_shutdown("http", stopped.clone()), Service::new("lane-encode", |_| async { panic!("boom") })];
        let err = tokio::time::timeout(Duration::from_secs(5), start(list, token.clone()).wait()).await.unwrap();
        let err = err.unwrap_err();
        assert_eq!(err.to_string(), "service lane-encode failed: panicked: boom");
        assert!(stopped.load(Ordering::SeqCst));
    }
}
