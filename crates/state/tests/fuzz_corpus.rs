//! The fuzz corpora and crash reproducers in `fuzz/corpus/<target>/` and
//! `fuzz/artifacts/<target>/` replayed through the same harness the cargo-fuzz targets use
//! (`tests/harness`), on the stable toolchain, so every input the fuzzers kept stays a regression
//! test. See `fuzz/README.md` to run the fuzzers themselves.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use crate::harness;

/// The files of `dir`, sorted by name; none if `dir` does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Replays every corpus file of `target` (there must be some: a missing corpus is a failure,
/// not a pass) and then every artifact, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = files(&fuzz.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is missing or empty: the regression corpus must be committed"
    );
    let artifacts = files(&fuzz.join("artifacts").join(target));
    for file in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{} fails (see the panic above)",
            file.display()
        );
    }
}

#[test]
fn decode_corpus_and_artifacts_replay_cleanly() {
    replay("decode", harness::decode);
}

#[test]
fn check_tx_corpus_and_artifacts_replay_cleanly() {
    replay("check_tx", harness::check_tx);
}

#[test]
fn apply_corpus_and_artifacts_replay_cleanly() {
    replay("apply", harness::apply);
}
