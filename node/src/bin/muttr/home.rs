//! Where the client keeps your identity and contacts.

use std::path::{Path, PathBuf};

use muttr_node::crypto::{Identity, PublicKey};

use crate::Failure;

/// The client's home directory and passphrase source.
#[derive(Debug)]
pub struct Home {
    dir: PathBuf,
    passphrase_file: Option<PathBuf>,
}

impl Home {
    /// `--home`, else `$MUTTR_HOME`, else `$XDG_CONFIG_HOME/muttr`, else `~/.config/muttr`.
    pub fn resolve(flag: Option<PathBuf>, passphrase_file: Option<PathBuf>) -> Home {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = flag
            .or_else(|| env("MUTTR_HOME"))
            .or_else(|| env("XDG_CONFIG_HOME").map(|d| d.join("muttr")))
            .or_else(|| env("HOME").map(|d| d.join(".config/muttr")))
            .unwrap_or_else(|| PathBuf::from(".muttr"));
        Home {
            dir,
            passphrase_file,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The identity file.
    pub fn identity_path(&self) -> PathBuf {
        self.dir.join("identity.asc")
    }

    /// The contacts directory.
    pub fn contacts_dir(&self) -> PathBuf {
        self.dir.join("contacts")
    }

    /// The passphrase, if one is configured.
    pub fn passphrase(&self) -> Result<Option<String>, Failure> {
        if let Some(f) = &self.passphrase_file {
            let text =
                std::fs::read_to_string(f).map_err(|e| Failure(format!("{}: {e}", f.display())))?;
            return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
        }
        Ok(std::env::var("MUTTR_PASSPHRASE")
            .ok()
            .filter(|p| !p.is_empty()))
    }

    /// Your identity.
    pub fn identity(&self) -> Result<Identity, Failure> {
        let path = self.identity_path();
        if !path.exists() {
            return Err(Failure(format!(
                "no identity at {} (create one with `muttr keygen`)",
                path.display()
            )));
        }
        Ok(Identity::load(&path, self.passphrase()?.as_deref())?)
    }
}

/// Reads an armored public key file.
pub fn read_public_key(path: &Path) -> Result<PublicKey, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    PublicKey::from_armored(&text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}
