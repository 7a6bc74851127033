//! What a test reads in files: the bytes a store left on disk, the links an asset makes.

use std::path::Path;

/// Every file under `dir` (the store, its `-wal` and `-shm`) that contains `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// Every `src` and `href` in `body` (the file `name`) is a relative path: no scheme, no
/// leading slash, so the page loads nothing from elsewhere and works under any prefix.
pub fn assert_relative_links(name: &str, body: &str) {
    for attribute in ["src=\"", "href=\""] {
        for value in body.split(attribute).skip(1) {
            let value = value.split('"').next().unwrap();
            assert!(
                !value.contains(':') && !value.starts_with('/'),
                "{name}: {attribute}{value}\" is not a relative path"
            );
        }
    }
}
