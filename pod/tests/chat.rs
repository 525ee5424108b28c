//! `muttr chat` end to end, in real terminals: two chat sessions (alice on one pod, bob on
//! another) run in tmux panes; a message typed in one appears in the other, verified, and the
//! reply comes back. tmux must be installed (`.ci/run` installs it).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{muttr_user, node_bin, two_pods};

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("muttr-chat-test-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux is installed");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `command` in a new 120×30 session `name`.
    fn start(&self, name: &str, command: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "30",
            command,
        ]);
    }

    fn screen(&self, name: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", name])
    }

    /// Waits until `name`'s screen contains `text`; how long that took.
    fn wait_for(&self, name: &str, text: &str) -> Duration {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if screen.contains(text) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{text:?} never appeared on {name}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", name, "-l", text]);
        self.run(&["send-keys", "-t", name, "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chat_sessions_on_two_pods_talk_through_real_terminals() {
    let (pod1, pod2) = two_pods(91).await;
    let (host1, host2) = (pod1.host(), pod2.host());
    tokio::task::spawn_blocking(move || {
        let alice = muttr_user(&host1, "alice");
        let bob = muttr_user(&host2, "bob");
        let muttr = node_bin("muttr");
        let tmux = Tmux::new();
        let chat = |home: &Path, peer: &str| {
            format!(
                "TERM=xterm-256color '{}' --home '{}' chat {peer}",
                muttr.display(),
                home.display()
            )
        };
        tmux.start("alice", &chat(alice.path(), &format!("bob@{host2}")));
        tmux.start("bob", &chat(bob.path(), &format!("alice@{host1}")));
        tmux.wait_for("alice", "connected");
        tmux.wait_for("bob", "connected");

        tmux.type_line("alice", "hello from alice");
        let seen = tmux.wait_for("bob", "hello from alice");
        let screen = tmux.screen("bob");
        let line = screen
            .lines()
            .find(|l| l.contains("hello from alice"))
            .unwrap();
        assert!(
            line.contains("verified") && !line.contains("NOT VERIFIED"),
            "{screen}"
        );
        eprintln!("bob saw alice's message {seen:?} after it was typed");
        tmux.wait_for("alice", "sent");

        tmux.type_line("bob", "hi alice, from bob");
        tmux.wait_for("alice", "hi alice, from bob");
        let screen = tmux.screen("alice");
        let line = screen
            .lines()
            .find(|l| l.contains("hi alice, from bob"))
            .unwrap();
        assert!(line.contains("verified"), "{screen}");

        // Esc quits cleanly: the session ends.
        tmux.run(&["send-keys", "-t", "bob", "Escape"]);
        let start = Instant::now();
        while tmux
            .run(&["list-sessions", "-F", "#{session_name}"])
            .lines()
            .any(|l| l == "bob")
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chat did not quit on Esc"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Bob's history is kept: a new session shows the conversation again.
        tmux.start("bob2", &chat(bob.path(), ""));
        tmux.wait_for("bob2", "hello from alice");
    })
    .await
    .unwrap();
}
