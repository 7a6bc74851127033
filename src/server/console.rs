//! `GET /admin`: the operator's console (SPEC §1.19), a page that drives `/v1/admin/*` with an
//! admin token kept in the tab's `sessionStorage`. Like `/app`, its files are compiled into the
//! binary and served under `default-src 'self'`: nothing loads from anywhere else.

use axum::extract::Path;
use axum::response::{Redirect, Response};

/// (name, content type, bytes) of every file under `/admin/`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../assets/admin/index.html"),
    ),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/admin/admin.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/admin/admin.js"),
    ),
];

/// `/admin` → `/admin/`: the page's relative links (`admin.js`, `../v1/admin/`) need the slash.
pub async fn redirect() -> Redirect {
    Redirect::permanent("admin/")
}

pub async fn index() -> Response {
    super::app::serve_from(FILES, "index.html")
}

pub async fn file(Path(name): Path<String>) -> Response {
    super::app::serve_from(FILES, &name)
}
