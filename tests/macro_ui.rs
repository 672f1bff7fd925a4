//! The `#[tools]` macro seen from a user's crate: the pass cases compile and run (checking the
//! registry they produce), and each compile-fail case shows the error a misuse gets, pinned in
//! its `.stderr` file (regenerate with `TRYBUILD=overwrite` and review the diff).

#[test]
fn macro_ui() {
    let t = trybuild::TestCases::new();
    t.pass("../tests/ui/pass/*.rs");
    t.compile_fail("../tests/ui/fail/*.rs");
}
