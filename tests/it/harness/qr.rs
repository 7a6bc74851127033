//! QR codes read back with a decoder that is not ours (zbarimg, Debian's zbar-tools): the SVG
//! the relay serves, and the half blocks a terminal draws.

use super::stdout_of;
use std::path::Path;
use std::process::Command;

/// What zbarimg reads in the image at `path`: the QR code's text, exactly.
fn zbar(path: &Path) -> String {
    // zbarimg fails when it finds no QR code.
    let zbarimg = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output();
    stdout_of(zbarimg.unwrap()).trim_end().to_owned()
}

/// The SVG rasterised to PNG and decoded.
pub fn decode_svg(svg: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (svg_path, png) = (dir.path().join("qr.svg"), dir.path().join("qr.png"));
    std::fs::write(&svg_path, svg).unwrap();
    let status = Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png)
        .arg(&svg_path)
        .status()
        .unwrap();
    assert!(status.success(), "rsvg-convert could not rasterise the SVG");
    zbar(&png)
}

/// Half-block lines back into pixels, as a terminal draws them (one character cell = two
/// modules stacked, `scale` pixels per module), written as a plain PBM and decoded.
pub fn decode_terminal(lines: &[&str]) -> String {
    let scale = 6;
    let width = lines[0].chars().count();
    let mut rows: Vec<Vec<bool>> = Vec::new();
    for line in lines {
        assert_eq!(line.chars().count(), width, "ragged QR line {line:?}");
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for c in line.chars() {
            let (t, b) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected character {other:?} in the QR code"),
            };
            top.push(t);
            bottom.push(b);
        }
        rows.push(top);
        rows.push(bottom);
    }
    let mut pbm = format!("P1\n{} {}\n", width * scale, rows.len() * scale);
    for row in &rows {
        let line: String = row
            .iter()
            .flat_map(|&dark| std::iter::repeat_n(if dark { "1 " } else { "0 " }, scale))
            .collect();
        for _ in 0..scale {
            pbm.push_str(&line);
            pbm.push('\n');
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qr.pbm");
    std::fs::write(&path, pbm).unwrap();
    zbar(&path)
}
