//! The HTTP side: axum on tokio. Every request is answered by
//! [`Service::handle`] on a blocking thread (a commit waits for its fsync);
//! bodies are limited to [`BODY_BYTES_MAX`]; shutdown stops accepting,
//! finishes the requests in flight, and returns.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;

use super::error::ApiError;
use super::service::{Request, Service};
use super::xml::Xml;

/// The largest request body accepted: 1 MiB (the API's own limit is lower
/// for every operation).
pub const BODY_BYTES_MAX: usize = 1 << 20;

/// Serves `service` on `listener` until `shutdown` completes; then stops
/// accepting, lets the requests in flight finish, and returns.
pub async fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().fallback(answer).layer(DefaultBodyLimit::max(BODY_BYTES_MAX)).with_state(service);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn answer(
    State(service): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
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
    let (status, body, request_id) = match answered {
        Ok(response) => (response.status, response.body, response.request_id),
        // The handler panicked: the request fails, the server goes on.
        Err(_) => {
            let err = ApiError::internal("the request failed inside the service");
            (500, Xml::error(&err, "00000000-0000-0000-0000-000000000000"), String::new())
        }
    };
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}
