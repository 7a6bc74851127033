//! Accepting and serving connections so that slow, idle or greedy clients cannot exhaust the
//! relay: a semaphore caps the connections served at once (the rest wait in the listen
//! backlog), hyper caps the header bytes and times out the header read, tower-http's
//! `DeadlineBody` times out the body, and [`IdleTimer`] closes connections that sit idle.
//! On shutdown every connection is asked to finish its request and close; whatever is still
//! open after [`DRAIN`] is dropped, so a stuck client cannot hold the process.

use crate::relay::config::Connections;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::Service;
use tower_http::timeout::DeadlineBody;

/// How long connections get to finish after the shutdown signal before they are dropped.
/// Streams end at once and requests take milliseconds, so this only waits for stuck clients;
/// it leaves room in SPEC §2.0's 10 s for the dispatcher to stop.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module doc).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Connections,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(
            limits
                .max_header_bytes
                .max(crate::relay::config::MIN_HEADER_BYTES)
                + 8192,
        )
        .max_header_size(limits.max_header_bytes)
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs));
    let body_timeout = Duration::from_secs(limits.body_timeout_secs);
    let idle_timeout = Duration::from_secs(limits.idle_timeout_secs);
    let heads = Arc::new(Heads::default());
    let mut accept_failing = false;
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the cap, new connections wait in the kernel's backlog and the
        // ones already accepted keep being served.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    if std::mem::take(&mut accept_failing) {
                        tracing::info!("accepting connections again");
                    }
                    accepted
                }
                Err(e) => {
                    accept_failed(e, &mut accept_failing).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let read = Arc::new(AtomicU64::new(0));
        let timer = IdleTimer {
            read: read.clone(),
            idle: idle_timeout,
            heads: heads.clone(),
        };
        let io = TokioIo::new(Counted { stream, read });
        let service = hyper::service::service_fn({
            let app = app.clone();
            move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let request = request.map(|body| Body::new(DeadlineBody::new(body_timeout, body)));
                app.clone().call(request)
            }
        });
        let connection = builder.clone().timer(timer).serve_connection(io, service);
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    heads.stop();
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain period; closing them"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// An accept error (EMFILE, ENFILE, ECONNABORTED, ENOBUFS…) concerns one connection or a
/// passing shortage: log the first of a run, and pause briefly instead of spinning or ending
/// the loop.
async fn accept_failed(e: io::Error, failing: &mut bool) {
    if *failing {
        tracing::debug!(error = %e, "accepting a connection failed again");
    } else {
        tracing::warn!(error = %e, "accepting a connection failed; retrying every 100 ms");
        *failing = true;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A TCP stream that counts the bytes read from it, so [`IdleTimer`] can tell a connection
/// that is idle from one whose next request has begun.
struct Counted {
    stream: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Ends, at shutdown, every wait for a request head: idle and half-open connections close at
/// once instead of holding the drain, while requests already read run to completion.
#[derive(Default)]
struct Heads {
    stopping: std::sync::atomic::AtomicBool,
    stopped: Arc<tokio::sync::Notify>,
}

impl Heads {
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stopped.notify_waiters();
    }
}

/// hyper's one HTTP/1 server timer is its header read timeout, and since hyper 1.4 it runs
/// from the moment a connection waits for its next request — so on its own it would also close
/// keep-alive connections after the (short) header timeout. This timer gives hyper's sleep
/// two deadlines: while no byte of the next request has arrived the connection is idle and
/// gets the idle timeout; from the first byte on, the header timeout hyper asked for. hyper
/// polls the sleep each time bytes arrive, which is when the switch is noticed.
#[derive(Clone)]
struct IdleTimer {
    read: Arc<AtomicU64>,
    idle: Duration,
    heads: Arc<Heads>,
}

impl hyper::rt::Timer for IdleTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = Instant::now();
        let header = deadline.saturating_duration_since(now);
        Box::pin(HeadSleep {
            read: self.read.clone(),
            read_at_start: self.read.load(Ordering::Relaxed),
            header,
            receiving: false,
            sleep: Box::pin(tokio::time::sleep_until((now + self.idle).into())),
            heads: self.heads.clone(),
            stopped: Box::pin(self.heads.stopped.clone().notified_owned()),
        })
    }
}

/// The sleep behind [`IdleTimer`].
struct HeadSleep {
    read: Arc<AtomicU64>,
    read_at_start: u64,
    header: Duration,
    /// Whether the next request has begun (its header deadline is set).
    receiving: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
    heads: Arc<Heads>,
    stopped: Pin<Box<tokio::sync::futures::OwnedNotified>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Register for the shutdown wake-up before reading the flag, so neither is missed.
        if self.stopped.as_mut().poll(cx).is_ready() || self.heads.stopping.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if !self.receiving && self.read.load(Ordering::Relaxed) != self.read_at_start {
            self.receiving = true;
            let deadline = tokio::time::Instant::now() + self.header;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

/// Raises the soft limit on open files to the hard limit: the default soft limit (often 1024)
/// is far below what `max_connections` needs. Returns the soft limit in force afterwards.
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited, so any difference means the soft limit is below the hard one.
    if limit.current != limit.maximum {
        let before = limit.current;
        limit.current = limit.maximum;
        // macOS refuses an unlimited soft limit for files; try its documented ceiling.
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit.current = Some(10_240.min(limit.maximum.unwrap_or(u64::MAX)));
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::warn!(error = %e, "could not raise the open-files limit");
            }
        }
        tracing::debug!(before = ?before, after = ?getrlimit(Resource::Nofile).current, "open-files limit raised");
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<u64> {
    None
}
