//! The HTTP surface ([`app`], the router tests call) and [`serve`]: bind, serve, and shut down gracefully:
//! stop taking requests, finish those in flight, send every buffered row, then exit.
//!
//! Every connection is bounded in time, so stalled or hostile peers hold neither file descriptors nor the
//! drain: a request's headers must arrive within `HTTP_HEADER_TIMEOUT_SECS` of the connection opening or of
//! its previous response (hyper's header read timeout, which also closes idle keep-alive connections), a
//! body within `HTTP_BODY_TIMEOUT_SECS` ([`crate::functions::read_body`]), and SIGTERM's drain waits at most
//! the ingestion deadline plus the body timeout for requests in flight before it closes what is left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::app::{AppState, Bridge, StartupError};
use crate::functions::error::AppError;
use crate::settings::Settings;

/// The whole HTTP surface of the handler.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        // The Functions host polls `/` until it answers: answer at once, whatever the state.
        .route("/", get(|| async { "ok" }))
        .route("/api/health", get(crate::functions::health::health))
        .route("/api/doctor", get(crate::functions::doctor::doctor))
        .route("/api/webhook/{source}", post(crate::functions::webhook::receive))
        .route("/api/enrich", post(crate::functions::enrich::enrich))
        // The playbook's poll for an enrichment that outlasted the call (the asynchronous pattern).
        .route("/api/enrich/runs/{id}", get(crate::functions::enrich_runs::poll))
        // The queue-triggered `redeliver` function: the host's default invocation, at the function's name.
        .route("/redeliver", post(crate::functions::redeliver::redeliver))
        // The queue-triggered `deadletter` function, on the spill's poison queue.
        .route("/deadletter", post(crate::functions::redeliver::deadletter))
        .fallback(|req: Request| async move { AppError::NotFound(req.uri().path().chars().take(200).collect()) })
        .layer(middleware::from_fn(invocation_span))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// One span per invocation, carrying the host's invocation id so logs join up with the Functions host's.
async fn invocation_span(req: Request, next: Next) -> Response {
    let invocation =
        req.headers().get("x-azure-functions-invocationid").and_then(|v| v.to_str().ok()).map(|s| s.chars().take(64).collect::<String>()).unwrap_or_default();
    let span = tracing::info_span!("invocation", invocation_id = %invocation, method = %req.method(), path = %req.uri().path());
    next.run(req).instrument(span).await
}

/// Binds `127.0.0.1:port` and serves until SIGTERM/SIGINT, then drains.
pub async fn serve(settings: Settings, port: u16) -> Result<(), StartupError> {
    let bridge = Bridge::build(&settings).await?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await.map_err(|source| StartupError::Listen { port, source })?;
    let addr = listener.local_addr().map_err(|source| StartupError::Listen { port, source })?;
    tracing::info!(%addr, "sentinel-bridge listening");
    // One doctor pass at start, so /api/health says whether the deployment works (no canary).
    let state = bridge.state.clone();
    tokio::spawn(async move {
        let report = state.doctor.get_or_run(&state.deployment()).await;
        if report.failed() {
            tracing::warn!(doctor = %report.summary(), "the deployment check found a failure: GET /api/doctor");
        }
    });
    let drain = settings.deadline + settings.http_body_timeout + Duration::from_secs(5);
    serve_connections(listener, app(bridge.state.clone()), settings.http_header_timeout, drain, shutdown_signal()).await;
    tracing::info!("stopped taking requests; sending buffered rows");
    bridge.shutdown().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Requests being handled, so the drain waits for them and not for connections with none in flight.
#[derive(Default)]
struct InFlight {
    requests: std::sync::atomic::AtomicUsize,
    none_left: tokio::sync::Notify,
}

/// One request in flight, until dropped.
struct Handling(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> Handling {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Handling(self.clone())
    }

    /// Until no request is in flight.
    async fn idle(&self) {
        loop {
            let woken = self.none_left.notified();
            if self.requests.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            woken.await;
        }
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        if self.0.requests.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

/// Accepts connections until `stop`, each served with its header read timeout. Then it stops accepting, asks
/// every connection to close after its request in flight, waits at most `drain` for the requests in flight
/// (not for connections that have none: a peer still sending headers holds nothing up), and gives their
/// answers a second to be written.
async fn serve_connections(listener: TcpListener, router: Router, header_timeout: Duration, drain: Duration, stop: impl std::future::Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let in_flight = Arc::new(InFlight::default());
    let counted = in_flight.clone();
    let router = router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let handling = counted.enter();
        async move {
            let answer = next.run(req).await;
            drop(handling);
            answer
        }
    }));
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: the ones held now are bounded in time, so wait and retry.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    let closed = tokio::spawn(graceful.shutdown());
    if tokio::time::timeout(drain, in_flight.idle()).await.is_err() {
        tracing::warn!(drain_secs = drain.as_secs(), "requests still in flight after the drain: closing them");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
