//! OpenPGP for Muttr (PROFILE §4, P-A1, P-S1), on sequoia-openpgp with its pure-Rust backend.
//!
//! | file | what it holds |
//! |---|---|
//! | [`keys`] | [`Identity`] (your secret key) and [`PublicKey`] (a contact's), [`pubkeyhash`] (P-G1) |
//! | [`message`] | [`sign_and_encrypt`] (P-G2) and [`decrypt_and_verify`] with its [`Verdict`] (P-G3) |
//! | [`auth`] | the signed query strings that authenticate pod requests (P-A1, P-A2, P-S1) |
//!
//! Choices made here:
//! - Keys are generated as OpenPGP v4 (RFC 4880 profile), Ed25519 for signing and Cv25519 for
//!   encryption by default, RSA-3072 on request, so that GnuPG 2.2 reads them (P-G2).
//! - Messages are signed, then encrypted, as one OpenPGP message; the encryption container is
//!   chosen by sequoia from the recipients' advertised features (SEIPD v1 for GnuPG 2.2 keys).
//! - Signatures use SHA-512. The whitepaper's 2015 example shows a SHA-1 cleartext signature;
//!   current GnuPG and sequoia refuse SHA-1 signatures as forgeable, so we neither make nor
//!   accept them (the standard policy decides).
//! - Time is passed in (`now`): signature creation times and key validity come from the
//!   caller's clock, so results are reproducible in simulation.
//! - A decrypted message is never called authentic unless its signature verifies against the
//!   key the caller expected ([`Verdict::is_good`]).

pub mod auth;
pub mod keys;
pub mod message;

use sequoia_openpgp::policy::StandardPolicy;

pub use keys::{Identity, KeyKind, PublicKey, pubkeyhash};
pub use message::{Decrypted, Verdict, decrypt_and_verify, sign_and_encrypt};

/// The OpenPGP policy every operation uses: sequoia's standard policy (no SHA-1 signatures, no
/// weak keys).
pub(crate) static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// Why an OpenPGP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The input is not valid armor or OpenPGP packets (malformed, truncated, corrupted).
    #[error("malformed OpenPGP data: {0}")]
    Malformed(String),
    /// A secret key was needed, but the data holds only public keys.
    #[error("no secret key in the given data")]
    NoSecretKey,
    /// The secret key is protected and the passphrase is missing or wrong.
    #[error("wrong or missing passphrase")]
    WrongPassphrase,
    /// The key has no usable signing (sub)key.
    #[error("key {0} has no usable signing key")]
    NoSigningKey(String),
    /// The key has no usable encryption-capable (sub)key.
    #[error("key {0} has no encryption-capable subkey: it cannot receive messages")]
    NoEncryptionKey(String),
    /// None of our keys can decrypt the message.
    #[error("the message is not encrypted to this identity")]
    NotForMe,
    /// An algorithm sequoia's pure-Rust backend or the policy does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Reading or writing a key file failed.
    #[error("{0}")]
    Io(String),
}

impl CryptoError {
    /// Classifies a sequoia error.
    pub(crate) fn from_openpgp(e: anyhow::Error) -> CryptoError {
        let msg = format!("{e:#}");
        if let Some(oe) = e.downcast_ref::<sequoia_openpgp::Error>() {
            return match oe {
                sequoia_openpgp::Error::UnsupportedPublicKeyAlgorithm(_)
                | sequoia_openpgp::Error::UnsupportedSymmetricAlgorithm(_)
                | sequoia_openpgp::Error::UnsupportedHashAlgorithm(_)
                | sequoia_openpgp::Error::UnsupportedEllipticCurve(_)
                | sequoia_openpgp::Error::UnsupportedAEADAlgorithm(_) => {
                    CryptoError::Unsupported(msg)
                }
                _ => CryptoError::Malformed(msg),
            };
        }
        CryptoError::Malformed(msg)
    }
}

#[cfg(test)]
mod tests;
