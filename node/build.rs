//! Records the git revision the binaries are built from, for `--version` and the pod's status
//! page: `MUTTR_GIT_REV` is the short commit hash, or `unknown` outside a git checkout (a crate
//! tarball, a container build without `.git`). `MUTTR_GIT_REV` set in the build environment
//! wins (release pipelines, the Dockerfile). Only HEAD and the branch it names are watched —
//! never the index, which `git status` rewrites — so ordinary builds do not rebuild the crate.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=MUTTR_GIT_REV");
    let rev = std::env::var("MUTTR_GIT_REV").ok().or_else(|| {
        // Rebuild when HEAD moves (a commit, a checkout). A path that does not exist (a
        // packed ref) is not watched: Cargo would rerun the script on every build.
        let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])];
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(git(&["rev-parse", "--git-path", &head_ref]));
        }
        for p in watch.into_iter().flatten() {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!(
        "cargo:rustc-env=MUTTR_GIT_REV={}",
        rev.unwrap_or_else(|| "unknown".into())
    );
}
