//! Identities (secret keys) and public keys, and the `pubkeyhash` that names them (P-G1).
//!
//! A [`PublicKey`] keeps the exact armored text it was made from: a pod registers that text
//! and names the identity by the SHA-1 of its bytes, so two armorings of one key are two
//! different `pubkeyhash`es. [`Identity::public`] always gives the same text for one key.

use std::path::Path;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, Password};
use openpgp::packet::Key;
use openpgp::packet::key::{SecretParts, UnspecifiedRole};
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::KeyFlags;
use openpgp::{Cert, Packet};

use super::{CryptoError, POLICY};

/// The lowercase hex SHA-1 of an armored public key's exact text (P-G1).
pub fn pubkeyhash(armored_text: &str) -> String {
    crate::id::NodeId::sha1(armored_text.as_bytes()).to_hex()
}

/// What kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// Ed25519 signing, Cv25519 encryption (the default, P-G2).
    #[default]
    Cv25519,
    /// RSA-3072 for signing and encryption.
    Rsa3072,
}

/// One's own key: a certificate with its secret key material (decrypted in memory).
#[derive(Debug, Clone)]
pub struct Identity {
    cert: Cert,
}

fn encryption_flags() -> KeyFlags {
    KeyFlags::empty()
        .set_transport_encryption()
        .set_storage_encryption()
}

impl Identity {
    /// Generates a key for `user_id` (e.g. `alice@muttr.me` or a display name), created at
    /// `now`: a certification-only primary key, a signing subkey and an encryption subkey.
    pub fn generate(
        user_id: &str,
        kind: KeyKind,
        now: SystemTime,
    ) -> Result<Identity, CryptoError> {
        let suite = match kind {
            KeyKind::Cv25519 => CipherSuite::Cv25519,
            KeyKind::Rsa3072 => CipherSuite::RSA3k,
        };
        let (cert, _revocation) = CertBuilder::new()
            .set_profile(openpgp::Profile::RFC4880)
            .map_err(CryptoError::from_openpgp)?
            .set_cipher_suite(suite)
            .set_creation_time(now)
            .add_userid(user_id)
            .add_signing_subkey()
            .add_subkey(encryption_flags(), None, None)
            .generate()
            .map_err(CryptoError::from_openpgp)?;
        Ok(Identity { cert })
    }

    /// Reads an armored (or binary) secret key, as exported by `gpg --export-secret-keys
    /// --armor` or [`Identity::to_armored_secret`]. Protected secret keys need `passphrase`.
    pub fn from_armored(text: &[u8], passphrase: Option<&str>) -> Result<Identity, CryptoError> {
        let cert = Cert::from_bytes(text).map_err(CryptoError::from_openpgp)?;
        if !cert.is_tsk() {
            return Err(CryptoError::NoSecretKey);
        }
        let password: Option<Password> = passphrase.map(Password::from);
        let mut decrypted: Vec<Packet> = Vec::new();
        for ka in cert.keys().secret() {
            let key: Key<SecretParts, UnspecifiedRole> = ka.key().clone();
            if key.has_unencrypted_secret() {
                continue;
            }
            let pw = password.as_ref().ok_or(CryptoError::WrongPassphrase)?;
            let key = key
                .decrypt_secret(pw)
                .map_err(|_| CryptoError::WrongPassphrase)?;
            decrypted.push(if ka.primary() {
                key.role_into_primary().into()
            } else {
                key.role_into_subordinate().into()
            });
        }
        let cert = if decrypted.is_empty() {
            cert
        } else {
            cert.insert_packets(decrypted)
                .map_err(CryptoError::from_openpgp)?
                .0
        };
        Ok(Identity { cert })
    }

    /// The armored secret key, its secret parts encrypted with `passphrase` when given.
    pub fn to_armored_secret(&self, passphrase: Option<&str>) -> Result<String, CryptoError> {
        let cert = match passphrase {
            None => self.cert.clone(),
            Some(p) => {
                let pw = Password::from(p);
                let mut packets: Vec<Packet> = Vec::new();
                for ka in self.cert.keys().secret() {
                    let key: Key<SecretParts, UnspecifiedRole> = ka.key().clone();
                    let key = key.encrypt_secret(&pw).map_err(CryptoError::from_openpgp)?;
                    packets.push(if ka.primary() {
                        key.role_into_primary().into()
                    } else {
                        key.role_into_subordinate().into()
                    });
                }
                self.cert
                    .clone()
                    .insert_packets(packets)
                    .map_err(CryptoError::from_openpgp)?
                    .0
            }
        };
        let bytes = cert
            .as_tsk()
            .armored()
            .to_vec()
            .map_err(CryptoError::from_openpgp)?;
        String::from_utf8(bytes).map_err(|e| CryptoError::Malformed(e.to_string()))
    }

    /// The public half, armored.
    pub fn public(&self) -> PublicKey {
        let bytes = self
            .cert
            .armored()
            .to_vec()
            .expect("serialising a certificate in memory cannot fail");
        let armored = String::from_utf8(bytes).expect("armor is ASCII");
        PublicKey {
            cert: self.cert.clone().strip_secret_key_material(),
            armored,
        }
    }

    /// The primary key's fingerprint, lowercase hex.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex().to_lowercase()
    }

    /// The certificate (with secrets).
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// Writes the armored secret key to `path` with mode 0600 (encrypted when `passphrase`).
    pub fn save(&self, path: &Path, passphrase: Option<&str>) -> Result<(), CryptoError> {
        let text = self.to_armored_secret(passphrase)?;
        let io = |e: std::io::Error| CryptoError::Io(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads a secret key written by [`Identity::save`] (or exported by GnuPG).
    pub fn load(path: &Path, passphrase: Option<&str>) -> Result<Identity, CryptoError> {
        let bytes =
            std::fs::read(path).map_err(|e| CryptoError::Io(format!("{}: {e}", path.display())))?;
        Identity::from_armored(&bytes, passphrase)
    }

    /// A key pair for signing valid at `now`.
    pub(crate) fn signing_keypair(&self, now: SystemTime) -> Result<KeyPair, CryptoError> {
        let ka = self
            .cert
            .keys()
            .unencrypted_secret()
            .with_policy(&POLICY, now)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(|| CryptoError::NoSigningKey(self.fingerprint()))?;
        ka.key()
            .clone()
            .into_keypair()
            .map_err(CryptoError::from_openpgp)
    }

    /// Key pairs able to decrypt (any time: old messages stay readable).
    pub(crate) fn decryption_keypairs(&self) -> Vec<KeyPair> {
        self.cert
            .keys()
            .unencrypted_secret()
            .filter_map(|ka| {
                let flags_ok = ka
                    .self_signatures()
                    .next()
                    .and_then(|s| s.key_flags())
                    .map(|f| f.for_transport_encryption() || f.for_storage_encryption())
                    .unwrap_or(false);
                if !flags_ok {
                    return None;
                }
                ka.key().clone().into_keypair().ok()
            })
            .collect()
    }
}

/// A contact's public key, with the exact armored text it came from.
#[derive(Debug, Clone)]
pub struct PublicKey {
    cert: Cert,
    armored: String,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.armored == other.armored
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Reads an armored public key (a secret key is accepted and its secrets dropped; the
    /// text kept is the one given).
    pub fn from_armored(text: &str) -> Result<PublicKey, CryptoError> {
        if !text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            return Err(CryptoError::Malformed(
                "not an ASCII-armored PGP PUBLIC KEY BLOCK".into(),
            ));
        }
        let cert = Cert::from_bytes(text.as_bytes()).map_err(CryptoError::from_openpgp)?;
        Ok(PublicKey {
            cert: cert.strip_secret_key_material(),
            armored: text.to_string(),
        })
    }

    /// The armored text exactly as given.
    pub fn armored(&self) -> &str {
        &self.armored
    }

    /// SHA-1 of the armored text (P-G1).
    pub fn pubkeyhash(&self) -> String {
        pubkeyhash(&self.armored)
    }

    /// The primary key's fingerprint, lowercase hex.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex().to_lowercase()
    }

    /// The certificate.
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// Whether the key has a valid encryption-capable subkey at `now`.
    pub fn can_encrypt(&self, now: SystemTime) -> bool {
        self.cert
            .keys()
            .with_policy(&POLICY, now)
            .supported()
            .alive()
            .revoked(false)
            .key_flags(encryption_flags())
            .next()
            .is_some()
    }

    /// Whether the key (primary or subkey) has this fingerprint or key ID (hex, any case).
    pub fn has_key(&self, handle: &openpgp::KeyHandle) -> bool {
        self.cert
            .keys()
            .any(|ka| ka.key().key_handle().aliases(handle))
    }
}
