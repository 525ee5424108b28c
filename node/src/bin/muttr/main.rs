//! `muttr`: the Muttr command-line client.
//!
//! Offline commands (this file's siblings, one module per group):
//! - `keygen`, `key export`, `key import` ([`keys`]) — your identity and your contacts;
//! - `encrypt`, `decrypt` ([`message`]) — signed+encrypted messages through pipes;
//! - `auth-text` ([`auth`]) — the signed query strings pods authenticate (P-A1, P-S1).
//!
//! Network commands ([`net`]): `register --pod URL`, `alias add NAME`, `send ALIAS@POD TEXT`,
//! `inbox`, `listen` — passive through the pod, or active with `--bootstrap SEED`; `chat
//! [CONTACT]` ([`chat`]), a terminal chat.
//!
//! Your identity lives in a home directory ([`home`]): `--home DIR`, else `$MUTTR_HOME`, else
//! `$XDG_CONFIG_HOME/muttr`, else `~/.config/muttr`.

mod auth;
mod chat;
mod home;
mod keys;
mod message;
mod net;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Muttr command-line client.
#[derive(Debug, Parser)]
#[command(name = "muttr", version = muttr_node::VERSION)]
struct Cli {
    /// Directory holding your identity and contacts (default: $MUTTR_HOME, then
    /// $XDG_CONFIG_HOME/muttr, then ~/.config/muttr).
    #[arg(long, global = true)]
    home: Option<std::path::PathBuf>,
    /// Read the passphrase of your secret key from this file (else $MUTTR_PASSPHRASE; none
    /// when neither is set).
    #[arg(long, global = true)]
    passphrase_file: Option<std::path::PathBuf>,
    /// Say more on stderr: -v what it does (info), -vv each request (debug), -vvv everything
    /// (trace). Without it: warnings only, or $RUST_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create your identity (Ed25519/Cv25519 unless --rsa).
    Keygen(keys::KeygenArgs),
    /// Export your public key or import a contact's.
    #[command(subcommand)]
    Key(keys::KeyCmd),
    /// Read plaintext on stdin, write a signed and encrypted message on stdout.
    Encrypt(message::EncryptArgs),
    /// Read a message on stdin, write the plaintext on stdout and the signature verdict on
    /// stderr; exit 2 unless it is verified as signed by --from.
    Decrypt(message::DecryptArgs),
    /// Print a signed auth text (P-A1) for KEY=VALUE parameters.
    AuthText(auth::AuthTextArgs),
    /// Register your key with a pod (remembered for the other network commands).
    Register(net::RegisterArgs),
    /// Manage your aliases at your pod.
    Alias {
        #[command(flatten)]
        net: net::NetArgs,
        #[command(subcommand)]
        cmd: net::AliasCmd,
    },
    /// Send a signed, encrypted message to ALIAS@POD.
    Send {
        #[command(flatten)]
        net: net::NetArgs,
        #[command(flatten)]
        args: net::SendArgs,
    },
    /// Play back missed messages: fetch, decrypt, verify, show, purge. Exit 2 if any message
    /// is not verified as from its sender.
    Inbox {
        #[command(flatten)]
        net: net::NetArgs,
        #[command(flatten)]
        args: net::InboxArgs,
    },
    /// Print messages as they arrive (WebSocket push).
    Listen {
        #[command(flatten)]
        net: net::NetArgs,
    },
    /// A terminal chat: contacts, conversations kept locally, verification marks.
    Chat {
        #[command(flatten)]
        net: net::NetArgs,
        #[command(flatten)]
        args: chat::ChatArgs,
    },
}

/// An error for the user: printed as `muttr: …`, exit code 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// The log filter for `-v` repeated `verbose` times.
fn verbosity(verbose: u8) -> String {
    match verbose {
        0 => std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "warn".into()),
        1 => "info".into(),
        2 => "debug".into(),
        _ => "trace".into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = muttr_node::process::init_logging(
        &verbosity(cli.verbose),
        muttr_node::process::LogFormat::Text,
    ) {
        eprintln!("muttr: {e}");
        return ExitCode::from(2);
    }
    let home = home::Home::resolve(cli.home.clone(), cli.passphrase_file.clone());
    let result = match cli.command {
        Cmd::Keygen(a) => keys::keygen(&home, a),
        Cmd::Key(k) => keys::key(&home, k),
        Cmd::Encrypt(a) => message::encrypt(&home, a),
        Cmd::Decrypt(a) => message::decrypt(&home, a),
        Cmd::AuthText(a) => auth::auth_text(&home, a),
        Cmd::Register(a) => net::register(&home, a),
        Cmd::Alias { net, cmd } => net::alias(&home, net, cmd),
        Cmd::Send { net, args } => net::send(&home, net, args),
        Cmd::Inbox { net, args } => net::inbox(&home, net, args),
        Cmd::Listen { net } => net::listen(&home, net),
        Cmd::Chat { net, args } => chat::chat(&home, net, args),
    };
    match result {
        Ok(code) => code,
        Err(Failure(msg)) => {
            eprintln!("muttr: {msg}");
            ExitCode::FAILURE
        }
    }
}
