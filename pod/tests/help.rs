//! `muttr-pod --help` as a snapshot (insta): a change to an option, its name, default or help
//! text shows up in review as a change to `tests/snapshots/`. Update with `cargo insta review`
//! or `INSTA_UPDATE=always cargo test -p muttr-pod --test help`.

#[test]
fn muttr_pod_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muttr-pod"))
        .arg("--help")
        // `[env: …=value]` would show the caller's environment.
        .env_remove("MUTTR_POD_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}
