//! QR codes of pairing links (SPEC §2.4, §1.19): an SVG for the operator API's pairing answer
//! and the console, Unicode half blocks for `reflecto admin pair --qr`. A phone's camera opens
//! the link, and `/app/#code=…` fills in the code.

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the code, as the QR standard asks; scanners need it.
const QUIET_ZONE: usize = 4;

/// The link a phone opens to pair: `<public url>/app/#code=<code>`. A trailing slash on the
/// public URL (a relay mounted under `/reflecto/`) is not doubled.
pub fn pairing_link(public_url: &str, code: &str) -> String {
    format!("{}/app/#code={code}", public_url.trim_end_matches('/'))
}

/// `--public-url` checked: an http(s) URL with a host and no query or fragment, returned
/// without its trailing slash so links join it with `/app/…`.
pub fn check_public_url(value: &str) -> Result<String, String> {
    let bad = |why: &str| format!("--public-url '{value}': {why}");
    let url = url::Url::parse(value.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("must be an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Medium error correction: a link of ~60 characters stays a small code (version 4–5) that
/// still scans off a scratched or glaring phone screen.
/// `None` only for a link longer than any QR code holds (2,331 bytes at M): an absurd public
/// URL, whose pairing then goes without a picture rather than failing.
fn encode(link: &str) -> Option<QrCode> {
    QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L))
        .ok()
}

/// The link as a standalone SVG document (no XML declaration, so it can be placed inside an
/// HTML page as it is): black modules on white, 8 px per module, quiet zone included. Empty
/// for a link no QR code holds.
pub fn pairing_qr_svg(link: &str) -> String {
    let Some(code) = encode(link) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .quiet_zone(true)
        .module_dimensions(8, 8)
        .build();
    match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    }
}

/// The link as lines of Unicode half blocks, two module rows per line. With `ansi`, each
/// line is drawn black on a white background, so the code is right whatever the terminal's
/// colours; without it (a pipe, a file), dark modules are the blocks, as on paper. Empty for
/// a link no QR code holds.
pub fn pairing_qr_terminal(link: &str, ansi: bool) -> String {
    let rows = modules(link);
    let mut out = String::new();
    for pair in rows.chunks(2) {
        if ansi {
            out.push_str("\x1b[30;107m");
        }
        let top = &pair[0];
        let bottom = pair.get(1);
        for (x, &upper) in top.iter().enumerate() {
            let lower = bottom.is_some_and(|row| row[x]);
            out.push(match (upper, lower) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if ansi {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    out
}

/// The code's modules with the quiet zone around them, `true` = dark, row by row.
fn modules(link: &str) -> Vec<Vec<bool>> {
    let Some(code) = encode(link) else {
        return Vec::new();
    };
    let width = code.width();
    let colors = code.to_colors();
    let full = width + 2 * QUIET_ZONE;
    let mut rows = vec![vec![false; full]; full];
    for (i, color) in colors.iter().enumerate() {
        rows[i / width + QUIET_ZONE][i % width + QUIET_ZONE] = *color == Color::Dark;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_does_not_double_a_trailing_slash() {
        assert_eq!(
            pairing_link("https://relay.example/reflecto/", "123456"),
            "https://relay.example/reflecto/app/#code=123456"
        );
        assert_eq!(
            pairing_link("http://127.0.0.1:8080", "000001"),
            "http://127.0.0.1:8080/app/#code=000001"
        );
    }

    #[test]
    fn a_public_url_is_an_http_url_without_query() {
        assert_eq!(
            check_public_url("https://relay.example/").unwrap(),
            "https://relay.example"
        );
        assert_eq!(
            check_public_url("https://relay.example/reflecto").unwrap(),
            "https://relay.example/reflecto"
        );
        for bad in [
            "relay.example",
            "ftp://relay.example",
            "https://r.example/?a=1",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_svg_is_an_svg_element_with_a_white_background() {
        let svg = pairing_qr_svg("https://relay.example/app/#code=123456");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("fill=\"#fff\""));
    }

    #[test]
    fn terminal_lines_cover_two_module_rows_each() {
        let link = "https://relay.example/app/#code=123456";
        let rows = modules(link);
        let plain = pairing_qr_terminal(link, false);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines.len(), rows.len().div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == rows.len()));
        // The quiet zone's first line is blank; a finder pattern's top edge is solid.
        assert!(lines[0].chars().all(|c| c == ' '));
        let coloured = pairing_qr_terminal(link, true);
        assert!(coloured.starts_with("\x1b[30;107m") && coloured.contains("\x1b[0m\n"));
    }

    #[test]
    fn a_link_no_qr_code_holds_gets_no_picture_and_no_panic() {
        let absurd = format!("https://relay.example/{}", "a".repeat(4000));
        assert_eq!(pairing_qr_svg(&absurd), "");
        assert_eq!(pairing_qr_terminal(&absurd, true), "");
    }
}
