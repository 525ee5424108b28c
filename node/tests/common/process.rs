//! A `muttr-seed` or `muttr-pod` process started by a test: spawned with its arguments, ready
//! once it has printed its first line on stdout, killed (never left running) when dropped.
//!
//! One file for the workspace's real-process tests: `node/tests` use it as `mod common`, and
//! `pod/tests` and `conformance/tests` take it in with `#[path]`.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running binary and the line it printed when ready.
pub struct Process {
    /// The process.
    pub child: Child,
    /// Its first line on stdout ("muttr-pod listening on http://…", "muttr-seed listening on
    /// ADDR node ID").
    pub ready: String,
}

impl Process {
    /// Starts `bin` with `args` (stderr inherited, so a failing test shows the logs) and waits
    /// for its ready line.
    pub fn start<I, S>(bin: &Path, args: I) -> Process
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", bin.display()));
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut ready)
            .expect("a ready line");
        Process { child, ready }
    }

    /// The ready line's `http://…` URL, without a trailing slash (a pod).
    pub fn url(&self) -> String {
        self.ready
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the ready line {:?}", self.ready))
            .trim_end_matches('/')
            .to_string()
    }

    /// The ready line's fourth word, the address a seed listens on (a seed).
    pub fn seed_addr(&self) -> std::net::SocketAddr {
        self.ready
            .split_whitespace()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in the ready line {:?}", self.ready))
    }

    /// Kills it hard (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    /// A failing test must never leave a process running (or hang waiting for one).
    fn drop(&mut self) {
        self.kill();
    }
}
