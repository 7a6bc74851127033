//! The small files `listen` keeps per profile in its data dir (`seen.rs`, `shown_before.rs`):
//! named after the profile without letting it leave the dir, written whole and 0600, and
//! replaced atomically so a crash leaves the old file or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `<dir>/listen-<profile>.<extension>`, the profile reduced to `[A-Za-z0-9_-]`.
pub fn path(dir: &Path, profile: &str, extension: &str) -> PathBuf {
    let safe: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("listen-{safe}.{extension}"))
}

/// Writes `lines` to `path`, one a line, through a temporary file renamed over it.
pub fn replace<'a>(path: &Path, lines: impl IntoIterator<Item = &'a str>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = std::io::BufWriter::new(options.open(&tmp)?);
        for line in lines {
            writeln!(file, "{line}")?;
        }
        file.flush()?;
    }
    std::fs::rename(&tmp, path)
}
