//! The SD-JWT checkers the end-to-end tests call (`tools/tests/node/`, on the npm `@sd-jwt`
//! packages `xtask/npm` pins) give the right verdicts: their self-test issues SD-JWTs and SD-JWT
//! VCs with the same library, then has each checker accept the good ones and refuse a wrong
//! key, an altered disclosure, a disclosure no digest references, a revoked status and the
//! rest (`selftest.mjs` lists the cases). A checker that accepted a tampered token would make
//! every test built on it pass for nothing.

mod common;

#[test]
fn the_sd_jwt_checkers_accept_good_tokens_and_refuse_tampered_ones() {
    let run = common::tools::node_checker("selftest.mjs")
        .output()
        .expect("node runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "the checkers' self-test failed:\n{said}"
    );
    assert!(said.contains(" passed, 0 failed"), "{said}");
}
