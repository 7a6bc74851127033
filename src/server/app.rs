//! `GET /app`: the installable web app that pairs a browser as a `webpush` device (SPEC §1.13).
//! Its files are compiled into the binary, so the relay has nothing to find on disk, and each
//! is served with `Content-Security-Policy: default-src 'self'`: the page may load nothing
//! from anywhere else.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// (name, content type, bytes) of every file under `/app/`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../assets/app/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app/app.js"),
    ),
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app/sw.js"),
    ),
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_bytes!("../../assets/app/manifest.webmanifest"),
    ),
    (
        "icon-192.png",
        "image/png",
        include_bytes!("../../assets/app/icon-192.png"),
    ),
    (
        "icon-512.png",
        "image/png",
        include_bytes!("../../assets/app/icon-512.png"),
    ),
];

/// `/app` → `/app/`: the page's relative links (and the service worker's scope) need the slash.
pub async fn redirect() -> Redirect {
    Redirect::permanent("app/")
}

pub async fn index() -> Response {
    serve("index.html")
}

pub async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    serve_from(FILES, name)
}

/// One of `files` by name, with the relay's own-content headers; an unknown name is 404.
pub fn serve_from(files: &[(&str, &'static str, &'static [u8])], name: &str) -> Response {
    let Some((_, content_type, bytes)) = files.iter().find(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = own_content((*bytes).into_response(), content_type);
    // Revalidate each load, so an upgraded relay's page and worker reach browsers at once.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// What every page the relay serves to a browser carries: its type, and a policy under which
/// it may load nothing from anywhere else.
pub fn own_content(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
