//! `GET /`: a small page for a person who opens the relay's address in a browser, naming the
//! relay and linking to what it serves. Like `/app`, it loads nothing from anywhere else.

use axum::response::{IntoResponse, Response};

/// The page: no script, no style of its own, so `default-src 'self'` costs it nothing.
const PAGE: &str = concat!(
    r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reflecto relay</title>
</head>
<body>
<h1>reflecto relay</h1>
<p>This is a reflecto relay (version "#,
    env!("CARGO_PKG_VERSION"),
    r#"): it takes notifications from <code>reflecto send</code>, scripts and CI, and delivers them to paired phones, browsers and desktops.</p>
<ul>
<li><a href="/app/">/app</a> — pair this browser or phone and receive notifications</li>
<li><a href="/admin">/admin</a> — the operator's console</li>
<li><a href="/openapi.json">/openapi.json</a> — the HTTP API (OpenAPI 3.1)</li>
<li><a href="/health/live">/health/live</a> and <a href="/health/ready">/health/ready</a> — health</li>
<li><a href="/metrics">/metrics</a> — Prometheus metrics</li>
</ul>
</body>
</html>
"#
);

pub async fn page() -> Response {
    super::app::own_content(PAGE.into_response(), "text/html; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[tokio::test]
    async fn the_page_links_what_the_relay_serves_and_loads_nothing_else() {
        let response = page().await;
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'"
        );
        for link in [
            "/app/",
            "/admin",
            "/openapi.json",
            "/health/live",
            "/health/ready",
        ] {
            assert!(PAGE.contains(&format!("href=\"{link}\"")), "{link}");
        }
        // Every link is the relay's own: no scheme, no host.
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
        assert!(!PAGE.contains("<script") && !PAGE.contains("style="));
    }
}
