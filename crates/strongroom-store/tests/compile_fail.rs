//! Plaintext can not be reached without committing the read (which audits it): the
//! programs in `tests/ui` must fail to compile, with the errors recorded beside them.

#[test]
fn plaintext_is_reachable_only_through_commit() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
