//! The HTTP surface ([`app`], the router tests call) and [`serve`]: bind, serve, and shut down gracefully:
//! stop taking requests, finish those in flight, send every buffered row, then exit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
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
        // The queue-triggered `redeliver` function: the host's default invocation, at the function's name.
        .route("/redeliver", post(crate::functions::redeliver::redeliver))
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
    axum::serve(listener, app(bridge.state.clone())).with_graceful_shutdown(shutdown_signal()).await.map_err(StartupError::Serve)?;
    tracing::info!("stopped taking requests; sending buffered rows");
    bridge.shutdown().await;
    tracing::info!("shut down cleanly");
    Ok(())
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
