//! `--help` of `muttr-seed` and `muttr`, as snapshots (insta): a change to an option, its
//! name, default or help text shows up in review as a change to `tests/snapshots/`, where
//! operators' scripts and the docs would notice it. Update with `cargo insta review` or
//! `INSTA_UPDATE=always cargo test -p muttr-node --test help`.

use std::process::Command;

fn help(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        // `[env: …=value]` would show the caller's environment.
        .env_remove("MUTTR_SEED_CONFIG")
        .env_remove("MUTTR_HOME")
        .env_remove("MUTTR_PASSPHRASE")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn muttr_seed_help() {
    insta::assert_snapshot!(help(env!("CARGO_BIN_EXE_muttr-seed"), &[]));
}

#[test]
fn muttr_help() {
    insta::assert_snapshot!(help(env!("CARGO_BIN_EXE_muttr"), &[]));
}

#[test]
fn muttr_send_help() {
    insta::assert_snapshot!(help(env!("CARGO_BIN_EXE_muttr"), &["send"]));
}

#[test]
fn muttrd_help() {
    insta::assert_snapshot!(help(env!("CARGO_BIN_EXE_muttrd"), &[]));
}
