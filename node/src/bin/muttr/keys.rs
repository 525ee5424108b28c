//! `muttr keygen`, `muttr key export`, `muttr key import`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use muttr_node::crypto::{Identity, KeyKind};

use crate::Failure;
use crate::home::{Home, read_public_key};

/// Arguments of `muttr keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The user ID of the key (a name or address).
    #[arg(long, default_value = "muttr user")]
    name: String,
    /// RSA-3072 instead of Ed25519/Cv25519.
    #[arg(long)]
    rsa: bool,
    /// Replace an existing identity.
    #[arg(long)]
    force: bool,
}

/// `muttr key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Print your armored public key.
    Export,
    /// Add a contact's armored public key.
    Import {
        /// The key file.
        file: PathBuf,
    },
}

pub fn keygen(home: &Home, a: KeygenArgs) -> Result<ExitCode, Failure> {
    let path = home.identity_path();
    if path.exists() && !a.force {
        return Err(Failure(format!(
            "an identity already exists at {} (use --force to replace it)",
            path.display()
        )));
    }
    let kind = if a.rsa {
        KeyKind::Rsa3072
    } else {
        KeyKind::Cv25519
    };
    let id = Identity::generate(&a.name, kind, SystemTime::now())?;
    id.save(&path, home.passphrase()?.as_deref())?;
    let public = id.public();
    println!("created {}", path.display());
    println!("fingerprint {}", id.fingerprint());
    println!("pubkeyhash  {}", public.pubkeyhash());
    Ok(ExitCode::SUCCESS)
}

pub fn key(home: &Home, cmd: KeyCmd) -> Result<ExitCode, Failure> {
    match cmd {
        KeyCmd::Export => {
            print!("{}", home.identity()?.public().armored());
        }
        KeyCmd::Import { file } => {
            let key = read_public_key(&file)?;
            let dir = home.contacts_dir();
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
            let dest = dir.join(format!("{}.asc", key.fingerprint()));
            std::fs::write(&dest, key.armored())
                .map_err(|e| Failure(format!("{}: {e}", dest.display())))?;
            println!(
                "imported {} (pubkeyhash {})",
                key.fingerprint(),
                key.pubkeyhash()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
