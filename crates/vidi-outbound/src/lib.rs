//! The outbound guard: every request Vidi makes on a user's behalf (a `source` URL import now,
//! webhook deliveries next) goes through one [`Guard`], so a user cannot make Vidi reach what only
//! Vidi can reach (its own loopback services, the cloud's metadata endpoint, the private
//! network).
//!
//! - Addresses are checked where the connection is made: names resolve through the guard's own
//!   resolver, which drops every forbidden address (so a name that resolves to loopback, or is
//!   re-bound between a check and the connection, never connects), and IP literals in the URL and
//!   in every redirect are checked before the request. At most [`MAX_REDIRECTS`] redirects.
//! - Forbidden: loopback, private (RFC 1918, unique-local, CGNAT), link-local (169.254/16, the
//!   metadata endpoint), multicast, unspecified, broadcast and reserved ranges, also when written
//!   as IPv4-mapped, NAT64 or 6to4 IPv6. `VIDI_OUTBOUND_ALLOW_PRIVATE=true` lifts this for
//!   installations whose media or receivers are on the private network (and for tests).
//! - No proxy from the environment: a proxy would make the connection on our behalf, unchecked.
//! - Downloads are bounded in size, total time and minimum rate ([`Limits`], [`bounded`]), and
//!   their errors say why without saying what answered on a refused address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// Why an outbound request was refused or failed, in words fit for the user who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("the URL must be an absolute http or https URL")]
    BadUrl,
    #[error("the URL's address is not allowed (loopback, private, link-local, multicast or reserved)")]
    Forbidden,
    #[error("the URL could not be reached")]
    Unreachable,
    #[error("the URL redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects,
    #[error("the URL answered with HTTP status {0}")]
    Status(u16),
    #[error("the answer is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the transfer took longer than {0} s")]
    TooSlow(u64),
    #[error("the transfer stalled: under {min} bytes/s for {window} s")]
    Stalled { min: u64, window: u64 },
    #[error("the transfer was cut off")]
    Broken,
}

/// Whether `ip` is an address a user's URL may not reach.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()            // 127/8
        || ip.is_private()      // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()   // 169.254/16: cloud metadata endpoints live here
        || ip.is_multicast()    // 224/4
        || ip.is_broadcast()
        || a == 0               // "this network", including 0.0.0.0 (connects to the host itself)
        || (a == 100 && (64..128).contains(&b)) // 100.64/10, carrier-grade NAT
        || (a == 192 && b == 0 && c == 0)       // 192.0.0/24, protocol assignments
        || (a == 198 && (18..20).contains(&b))  // 198.18/15, benchmarking
        || a >= 240 // 240/4, reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // IPv6 forms that carry an IPv4 address: judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return forbidden_v4(embedded(seg[6], seg[7])); // NAT64 64:ff9b::/96
    }
    if seg[0] == 0x2002 {
        return forbidden_v4(embedded(seg[1], seg[2])); // 6to4
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || seg[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::/96 (deprecated, never public)
        || (seg[0] & 0xfe00) == 0xfc00   // fc00::/7, unique local
        || (seg[0] & 0xffc0) == 0xfe80   // fe80::/10, link-local
        || (seg[0] & 0xffc0) == 0xfec0 // fec0::/10, site-local (deprecated)
}

/// What a guard lets through: public addresses, plus `exempt` ones (or everything, when private
/// addresses are allowed).
#[derive(Clone, Debug)]
struct Policy {
    allow_private: bool,
    exempt: Arc<[IpAddr]>,
}

impl Policy {
    fn refuses(&self, ip: IpAddr) -> bool {
        !self.allow_private && is_forbidden(ip) && !self.exempt.contains(&ip)
    }
}

/// Resolves names like the system does, then keeps only the addresses a user may reach.
struct GuardedResolver(Policy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| !policy.refuses(a.ip())).collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    if found.is_empty() { "no address".into() } else { Box::new(Refused) };
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The marker error of a refused address, found again in reqwest's error chain.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("address not allowed")
    }
}

impl std::error::Error for Refused {}

/// Checks what can be checked on a URL before any connection: scheme, and a literal address.
fn check_url(url: &Url, policy: &Policy) -> Result<(), OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::BadUrl);
    }
    let literal = match url.host() {
        None => return Err(OutboundError::BadUrl),
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
    };
    if literal.is_some_and(|ip| policy.refuses(ip)) {
        return Err(OutboundError::Forbidden);
    }
    Ok(())
}

/// The guard. Cheap to clone.
#[derive(Clone)]
pub struct Guard {
    client: reqwest::Client,
    /// The same guard, following no redirect at all (webhook deliveries: a receiver is one URL,
    /// and a redirect is an answer like any other non-2xx).
    no_redirect: reqwest::Client,
    policy: Policy,
}

impl Guard {
    /// `allow_private`: `VIDI_OUTBOUND_ALLOW_PRIVATE`. `timeout`: per request, headers included
    /// (downloads bound their bodies with [`Limits`] instead, so use a generous one for them).
    pub fn new(allow_private: bool, connect_timeout: Duration) -> reqwest::Result<Guard> {
        Guard::with_exempt(allow_private, Vec::new(), connect_timeout)
    }

    /// A guard that also lets through the `exempt` addresses (one internal host an installation
    /// trusts; the tests' loopback origin).
    pub fn with_exempt(allow_private: bool, exempt: Vec<IpAddr>, connect_timeout: Duration) -> reqwest::Result<Guard> {
        let policy = Policy { allow_private, exempt: exempt.into() };
        let checks = policy.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(OutboundError::TooManyRedirects)
            } else {
                match check_url(attempt.url(), &checks) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }
        });
        let builder = |redirects: reqwest::redirect::Policy| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .user_agent(concat!("vidi/", env!("CARGO_PKG_VERSION")))
                .redirect(redirects)
                .no_proxy();
            if !allow_private {
                b = b.dns_resolver(Arc::new(GuardedResolver(policy.clone())));
            }
            b.build()
        };
        let client = builder(redirects)?;
        let no_redirect = builder(reqwest::redirect::Policy::none())?;
        Ok(Guard { client, no_redirect, policy })
    }

    /// Whether a connection to `ip` is allowed. For protocols the guard's HTTP client does not
    /// speak (an RTMP restream): their caller resolves the name itself, keeps the addresses this
    /// allows, and connects to one of those, never to the name again.
    pub fn allows(&self, ip: IpAddr) -> bool {
        !self.policy.refuses(ip)
    }

    /// Parses and checks a URL a user gave (scheme, literal address).
    pub fn check(&self, raw: &str) -> Result<Url, OutboundError> {
        let url = Url::parse(raw).map_err(|_| OutboundError::BadUrl)?;
        check_url(&url, &self.policy)?;
        Ok(url)
    }

    /// Sends a request built on the guarded client, mapping failures to what the user may be
    /// told.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, OutboundError> {
        req.send().await.map_err(classify)
    }

    /// GETs `url` and streams its body within `limits`. A non-2xx answer is an error.
    pub async fn download(
        &self,
        url: &Url,
        limits: Limits,
    ) -> Result<impl Stream<Item = Result<Bytes, OutboundError>> + Send + 'static, OutboundError> {
        check_url(url, &self.policy)?;
        let started = tokio::time::Instant::now();
        let res = tokio::time::timeout(limits.total, self.send(self.client.get(url.clone())))
            .await
            .map_err(|_| OutboundError::TooSlow(limits.total.as_secs()))??;
        if !res.status().is_success() {
            return Err(OutboundError::Status(res.status().as_u16()));
        }
        if res.content_length().is_some_and(|n| n > limits.max_bytes) {
            return Err(OutboundError::TooLarge(limits.max_bytes));
        }
        let body = res.bytes_stream().map(|r| r.map_err(classify));
        Ok(bounded(body, limits, started))
    }
}

/// What a receiver answered to a [`Guard::post`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    /// The start of the body: at most the `keep` bytes asked for.
    pub excerpt: Bytes,
}

impl Guard {
    /// POSTs `body` to `url` with `headers`, following no redirect, and reads at most `keep`
    /// bytes of the answer (the rest is never read: the connection is dropped). Everything, from
    /// connecting to the last byte kept, must fit in `timeout`: a receiver that drips its answer
    /// or never ends it costs at most that.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
        keep: usize,
    ) -> Result<Answer, OutboundError> {
        check_url(url, &self.policy)?;
        let mut req = self.no_redirect.post(url.clone()).body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let exchange = async {
            let mut res = self.send(req).await?;
            let status = res.status().as_u16();
            let retry_after =
                res.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
            let mut excerpt = Vec::new();
            while excerpt.len() < keep {
                match res.chunk().await {
                    Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(keep - excerpt.len())]),
                    Ok(None) => break,
                    // The status is what counts; a body cut short leaves what came.
                    Err(_) => break,
                }
            }
            Ok(Answer { status, retry_after, excerpt: Bytes::from(excerpt) })
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| OutboundError::TooSlow(timeout.as_secs()))?
    }
}

/// Finds what went wrong in reqwest's error chain.
fn classify(e: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<Refused>() {
            return OutboundError::Forbidden;
        }
        if let Some(o) = s.downcast_ref::<OutboundError>() {
            return o.clone();
        }
        source = s.source();
    }
    if e.is_body() || e.is_decode() { OutboundError::Broken } else { OutboundError::Unreachable }
}

/// The bounds of a download.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bytes: u64,
    /// From the request to the last byte.
    pub total: Duration,
    /// Bytes per second the transfer must average over each `window`.
    pub min_rate: u64,
    pub window: Duration,
}

/// `body`, ended with an error as soon as it breaks a limit: more than `max_bytes`, past the
/// total time counted from `started`, or fewer than `min_rate × window` bytes in a window (a
/// drip-feeding server cannot hold a worker for ever).
pub fn bounded<S>(
    body: S,
    limits: Limits,
    started: tokio::time::Instant,
) -> impl Stream<Item = Result<Bytes, OutboundError>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, OutboundError>> + Send + 'static,
{
    struct State<S> {
        body: std::pin::Pin<Box<S>>,
        seen: u64,
        window_start: tokio::time::Instant,
        window_bytes: u64,
        done: bool,
    }
    impl<S> State<S> {
        /// Ends a rate window: an error if too few bytes came in it, else a new window from `now`.
        fn close_window(&mut self, now: tokio::time::Instant, need: u64, limits: &Limits) -> Result<(), OutboundError> {
            if self.window_bytes < need {
                self.done = true;
                return Err(OutboundError::Stalled { min: limits.min_rate, window: limits.window.as_secs() });
            }
            self.window_start = now;
            self.window_bytes = 0;
            Ok(())
        }
    }
    let state = State { body: Box::pin(body), seen: 0, window_start: started, window_bytes: 0, done: false };
    let deadline = started + limits.total;
    let window_need = limits.min_rate.saturating_mul(limits.window.as_secs().max(1));
    futures::stream::unfold(state, move |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let window_end = st.window_start + limits.window;
            let wake = window_end.min(deadline);
            match tokio::time::timeout_at(wake, st.body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    st.seen += chunk.len() as u64;
                    st.window_bytes += chunk.len() as u64;
                    if st.seen > limits.max_bytes {
                        st.done = true;
                        return Some((Err(OutboundError::TooLarge(limits.max_bytes)), st));
                    }
                    let now = tokio::time::Instant::now();
                    if now >= window_end
                        && let Err(e) = st.close_window(now, window_need, &limits)
                    {
                        return Some((Err(e), st));
                    }
                    return Some((Ok(chunk), st));
                }
                Ok(Some(Err(e))) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Ok(None) => return None,
                Err(_) => {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        st.done = true;
                        return Some((Err(OutboundError::TooSlow(limits.total.as_secs())), st));
                    }
                    if let Err(e) = st.close_window(now, window_need, &limits) {
                        return Some((Err(e), st));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests;
