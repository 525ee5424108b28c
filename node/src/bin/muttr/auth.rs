//! `muttr auth-text`: a signed auth text for a pod request (P-A1), or its hex (P-S1).

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use muttr_node::crypto::auth;

use crate::Failure;
use crate::home::Home;

/// Arguments of `muttr auth-text`.
#[derive(Debug, Args)]
pub struct AuthTextArgs {
    /// Endpoint parameters, `KEY=VALUE` (e.g. `alias=alice`).
    params: Vec<String>,
    /// The identity (default: the pubkeyhash of your key).
    #[arg(long)]
    identity: Option<String>,
    /// The identity type.
    #[arg(long, default_value = auth::PUBKEYHASH)]
    identity_type: String,
    /// The nonce (default: now, in ms since the epoch, P-A2).
    #[arg(long)]
    nonce: Option<u64>,
    /// Print the hex form the WebSocket expects (P-S1).
    #[arg(long)]
    hex: bool,
}

pub fn auth_text(home: &Home, a: AuthTextArgs) -> Result<ExitCode, Failure> {
    let me = home.identity()?;
    let mut params = Vec::new();
    for p in &a.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Failure(format!("parameter {p:?} is not KEY=VALUE")))?;
        params.push((k, v));
    }
    let now = SystemTime::now();
    let nonce = match a.nonce {
        Some(n) => n,
        None => now.duration_since(SystemTime::UNIX_EPOCH)?.as_millis() as u64,
    };
    let identity = a.identity.unwrap_or_else(|| me.public().pubkeyhash());
    let text = auth::sign_auth(&me, &identity, &a.identity_type, nonce, &params, now)?;
    if a.hex {
        println!("{}", hex::encode(text));
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
