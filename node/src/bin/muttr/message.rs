//! `muttr encrypt` and `muttr decrypt`, through stdin and stdout.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use muttr_node::crypto;

use crate::Failure;
use crate::home::{Home, read_public_key};

/// Arguments of `muttr encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The recipient's public key file (repeatable).
    #[arg(long, required = true)]
    to: Vec<PathBuf>,
    /// Encrypt to yourself too, so you can read it back.
    #[arg(long = "self")]
    to_self: bool,
}

/// Arguments of `muttr decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The expected sender's public key file: the message is verified against it.
    #[arg(long)]
    from: PathBuf,
}

fn stdin_bytes() -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf)?;
    Ok(buf)
}

pub fn encrypt(home: &Home, a: EncryptArgs) -> Result<ExitCode, Failure> {
    let me = home.identity()?;
    let mut keys =
        a.to.iter()
            .map(|p| read_public_key(p))
            .collect::<Result<Vec<_>, _>>()?;
    if a.to_self {
        keys.push(me.public());
    }
    let refs: Vec<&crypto::PublicKey> = keys.iter().collect();
    let armored = crypto::sign_and_encrypt(&stdin_bytes()?, &me, &refs, SystemTime::now())?;
    std::io::stdout().write_all(armored.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn decrypt(home: &Home, a: DecryptArgs) -> Result<ExitCode, Failure> {
    let me = home.identity()?;
    let sender = read_public_key(&a.from)?;
    let d = crypto::decrypt_and_verify(&stdin_bytes()?, &me, Some(&sender), SystemTime::now())?;
    std::io::stdout().write_all(&d.plaintext)?;
    std::io::stdout().flush()?;
    if d.verdict.is_good() {
        eprintln!("muttr: {}", d.verdict);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "muttr: WARNING: this message is NOT verified as coming from {} ({}): do not trust it",
            sender.fingerprint(),
            d.verdict
        );
        Ok(ExitCode::from(2))
    }
}
