//! The committed completions and man pages are generated from the clap definitions; this
//! fails when they drift. Regenerate with `REFLECTO_BLESS=1 cargo test --test it docs`.

use std::path::Path;

fn compare_tree(generated: &Path, committed: &Path) {
    let bless = std::env::var_os("REFLECTO_BLESS").is_some();
    if bless {
        let _ = std::fs::remove_dir_all(committed);
        std::fs::create_dir_all(committed).unwrap();
    }
    let mut names: Vec<_> = std::fs::read_dir(generated)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for name in &names {
        let fresh = std::fs::read(generated.join(name)).unwrap();
        let path = committed.join(name);
        if bless {
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let old = std::fs::read(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run REFLECTO_BLESS=1 cargo test --test it docs",
                path.display()
            )
        });
        assert!(
            old == fresh,
            "{} drifted from the CLI definitions; run REFLECTO_BLESS=1 cargo test --test it docs",
            path.display()
        );
    }
    let committed_count = std::fs::read_dir(committed).unwrap().count();
    assert_eq!(
        committed_count,
        names.len(),
        "{} holds files the CLI no longer generates",
        committed.display()
    );
}

#[test]
fn completions_and_man_pages_match_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    reflecto::cli::docs::write_completions(&tmp.path().join("completions")).unwrap();
    reflecto::cli::docs::write_man_pages(&tmp.path().join("man")).unwrap();
    compare_tree(&tmp.path().join("completions"), &root.join("completions"));
    compare_tree(&tmp.path().join("man"), &root.join("man"));
}
