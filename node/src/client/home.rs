//! [`Home`]: where a client keeps your identity, contacts and pod (`muttr`, `muttrd`).
//!
//! ```text
//! HOME/identity.asc     your secret key (muttr keygen), optionally under a passphrase
//! HOME/contacts/*.asc   imported public keys (muttr key import)
//! HOME/pod.toml         your pod, alias and extra CAs (muttr register, muttr alias add)
//! ```
//!
//! The directory is `--home`, else `$MUTTR_HOME`, else `$XDG_CONFIG_HOME/muttr`, else
//! `~/.config/muttr`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Client, ClientConfig, TcpDialer};
use crate::crypto::{Identity, PublicKey};
use crate::net::Clock;

/// A problem with the home directory, said for a person ("no identity at …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HomeError(pub String);

impl HomeError {
    fn at(path: &Path, e: impl std::fmt::Display) -> HomeError {
        HomeError(format!("{}: {e}", path.display()))
    }
}

/// The client's home directory and passphrase source.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
    passphrase_file: Option<PathBuf>,
}

/// What `pod.toml` holds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodFile {
    /// The pod's base URL.
    pub pod: String,
    /// Reach other pods over plain `http://` (local networks only).
    #[serde(default)]
    pub insecure: bool,
    /// Your alias there, once taken.
    #[serde(default)]
    pub alias: Option<String>,
    /// Extra trust roots (`--ca-file`), as absolute paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_files: Vec<PathBuf>,
}

impl Home {
    /// `flag`, else `$MUTTR_HOME`, else `$XDG_CONFIG_HOME/muttr`, else `~/.config/muttr`.
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

    /// The passphrase, if one is configured: the file given, else `$MUTTR_PASSPHRASE`.
    pub fn passphrase(&self) -> Result<Option<String>, HomeError> {
        if let Some(f) = &self.passphrase_file {
            let text = std::fs::read_to_string(f).map_err(|e| HomeError::at(f, e))?;
            return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
        }
        Ok(std::env::var("MUTTR_PASSPHRASE")
            .ok()
            .filter(|p| !p.is_empty()))
    }

    /// Your identity.
    pub fn identity(&self) -> Result<Identity, HomeError> {
        let path = self.identity_path();
        if !path.exists() {
            return Err(HomeError(format!(
                "no identity at {} (create one with `muttr keygen`)",
                path.display()
            )));
        }
        Identity::load(&path, self.passphrase()?.as_deref()).map_err(|e| HomeError::at(&path, e))
    }

    /// `pod.toml`.
    pub fn pod_path(&self) -> PathBuf {
        self.dir.join("pod.toml")
    }

    /// Your pod, as `muttr register` left it.
    pub fn pod(&self) -> Result<PodFile, HomeError> {
        let path = self.pod_path();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            HomeError(format!(
                "no pod configured ({}): run `muttr register --pod URL` first",
                path.display()
            ))
        })?;
        toml::from_str(&text).map_err(|e| HomeError::at(&path, e))
    }

    /// Writes `pod.toml`.
    pub fn save_pod(&self, f: &PodFile) -> Result<(), HomeError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| HomeError::at(&self.dir, e))?;
        let path = self.pod_path();
        let text = toml::to_string(f).map_err(|e| HomeError::at(&path, e))?;
        std::fs::write(&path, text).map_err(|e| HomeError::at(&path, e))
    }

    /// A passive client of `config.pod` with your identity, trusting the default roots plus
    /// `ca_files`.
    pub fn client(&self, config: ClientConfig, ca_files: &[PathBuf]) -> Result<Client, HomeError> {
        let identity = self.identity()?;
        let clock = Clock::system();
        let made = if ca_files.is_empty() {
            Client::new(identity, config, clock)
        } else {
            let tls =
                crate::trust::client_config(ca_files).map_err(|e| HomeError(e.to_string()))?;
            Client::with_dialer(identity, config, clock, TcpDialer::trusting(tls))
        };
        made.map_err(|e| HomeError(e.to_string()))
    }

    /// A passive client of the pod in `pod.toml` (with its alias and CAs, plus `extra_ca`).
    pub fn pod_client(&self, extra_ca: &[PathBuf]) -> Result<(Client, PodFile), HomeError> {
        let file = self.pod()?;
        let mut config = ClientConfig::new(file.pod.clone());
        config.insecure = file.insecure;
        config.alias = file.alias.clone();
        let mut ca_files = file.ca_files.clone();
        ca_files.extend(extra_ca.iter().cloned());
        Ok((self.client(config, &ca_files)?, file))
    }
}

/// Reads an armored public key file.
pub fn read_public_key(path: &Path) -> Result<PublicKey, HomeError> {
    let text = std::fs::read_to_string(path).map_err(|e| HomeError::at(path, e))?;
    PublicKey::from_armored(&text).map_err(|e| HomeError::at(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_file_round_trips_and_a_missing_one_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path().join("h")), None);
        let err = home.pod().unwrap_err().to_string();
        assert!(err.contains("muttr register --pod URL"), "{err}");
        let f = PodFile {
            pod: "http://127.0.0.1:8080".into(),
            insecure: true,
            alias: Some("alice".into()),
            ca_files: vec![],
        };
        home.save_pod(&f).unwrap();
        assert_eq!(home.pod().unwrap(), f);
        let err = home.identity().unwrap_err().to_string();
        assert!(err.contains("muttr keygen"), "{err}");
    }
}
