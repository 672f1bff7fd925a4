//! Tests that cannot run here say so where it is seen: a line on stderr (which `cargo test`
//! shows only for a failing test, or with `--nocapture`) and a line in the skip list,
//! `target/tmp/test-skips.txt`, that `.ci/run` prints after the test run. A prerequisite that
//! `.ci/run` installs (Claude Code, the SDKs, util-linux `script`) is required under
//! `CI=true`: there its absence fails the test instead.

use std::io::Write;
use std::path::PathBuf;

/// The skip list: one line per test (or part of one) that did not run, with the reason.
pub fn list() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-skips.txt")
}

/// Notes that `test` (or a part of it) did not run, and why.
pub fn skipped(test: &str, why: &str) {
    let line = format!("{test}: skipped: {why}\n");
    eprint!("{line}");
    // One append of a whole line, so that tests running at once do not interleave.
    let _ = std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list())
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Whether this is a CI run (`CI=true`), in which nothing `.ci/run` installs may be missing.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `found`, or `None` after noting why `test` is skipped; under `CI=true` a missing
/// prerequisite fails the test instead, saying what is missing.
pub fn required<T>(test: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(it) => Some(it),
        Err(why) if in_ci() => panic!("{test}: CI=true but {why}"),
        Err(why) => {
            skipped(test, &why);
            None
        }
    }
}
