//! The HTTP side: hyper's HTTP/1 connections on tokio, routed by axum. Every
//! request is answered by [`Service::handle`] on a blocking thread (a commit
//! waits for its fsync). [`Limits`] bound what a client can hold: the time to
//! send a request's headers (also the idle time between keep-alive
//! requests), the time to send its body, and the body's size; past them the
//! client gets the API's error or a closed connection, never a connection
//! the server keeps forever. Shutdown stops accepting, lets the requests in
//! flight finish (for at most [`Limits::shutdown_grace`]), and returns.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::error::ApiError;
use super::service::{Request, Service};
use super::xml::Xml;

/// The largest request body accepted by default: 1 MiB (the API's own limit
/// is lower for every operation).
pub const BODY_BYTES_MAX: usize = 1 << 20;

/// What one client may hold of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From the connection's first byte, or from the previous response on a
    /// keep-alive connection, to the end of the request's headers; past it
    /// the connection is closed.
    pub header_read: Duration,
    /// From the end of the headers to the end of the body; past it the
    /// request gets `RequestTimeout` (408).
    pub body_read: Duration,
    /// The largest body; a larger one gets `RequestEntityTooLarge` (413).
    pub body_bytes: usize,
    /// How long shutdown waits for the requests in flight before it drops
    /// the connections left.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    /// 10 s for headers, 30 s for a body of at most [`BODY_BYTES_MAX`],
    /// 30 s of grace at shutdown.
    fn default() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            body_bytes: BODY_BYTES_MAX,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `service` on `listener` with the default [`Limits`] until
/// `shutdown` completes; then stops accepting, lets the requests in flight
/// finish, and returns.
pub async fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(service, listener, shutdown, Limits::default()).await
}

/// [`serve`] with these limits.
pub async fn serve_with(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let app = Router::new().fallback(answer).with_state((service, limits));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before it was
                // accepted: the listener is fine, the next accept may succeed.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out ends only its connection.
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await;
    Ok(())
}

async fn answer(
    State((service, limits)): State<(Arc<Service>, Limits)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    let too_large = || {
        refuse(ApiError::new(
            "RequestEntityTooLarge",
            format!("the request body is larger than {} bytes, or it was cut off", limits.body_bytes),
            413,
        ))
    };
    // A declared length over the limit is refused before a byte is read.
    if HttpBody::size_hint(&body).lower() > limits.body_bytes as u64 {
        return too_large();
    }
    let body = match tokio::time::timeout(limits.body_read, axum::body::to_bytes(body, limits.body_bytes)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return too_large(),
        Err(_) => {
            return refuse(ApiError::new(
                "RequestTimeout",
                format!("the request body did not arrive within {} ms", limits.body_read.as_millis()),
                408,
            ))
        }
    };
    let request = Request {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let answered = tokio::task::spawn_blocking(move || service.handle(&request, SystemTime::now())).await;
    match answered {
        Ok(response) => respond(response.status, response.body, &response.request_id),
        // The handler panicked: the request fails, the server goes on.
        Err(_) => refuse(ApiError::internal("the request failed inside the service")),
    }
}

/// An error answered before (or instead of) the service: no request id was
/// drawn, so the all-zero one stands in.
fn refuse(err: ApiError) -> axum::response::Response {
    const NO_REQUEST: &str = "00000000-0000-0000-0000-000000000000";
    respond(err.status, Xml::error(&err, NO_REQUEST), NO_REQUEST)
}

fn respond(status: u16, body: String, request_id: &str) -> axum::response::Response {
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}
