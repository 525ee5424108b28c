//! Signed-then-encrypted messages (P-G2) and their decryption with a signature verdict (P-G3).

use std::io::{Read, Write};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper,
};
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, Fingerprint, KeyHandle};

use super::keys::{Identity, PublicKey};
use super::{CryptoError, POLICY};

/// What the signature of a decrypted message says about its sender (P-G3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid signature by the expected sender's key.
    Good {
        /// The signing key's certificate fingerprint, lowercase hex.
        signer_fingerprint: String,
    },
    /// No signature at all.
    Unsigned,
    /// A signature by the expected key that does not verify (altered or forged).
    BadSignature,
    /// Signed by a key other than the expected sender's.
    WrongSigner {
        /// The issuer named by the signature.
        issuer: String,
    },
    /// Signed, but no sender was given to check it against.
    UnknownSigner {
        /// The issuer named by the signature.
        issuer: String,
    },
}

impl Verdict {
    /// True only for a good signature by the expected sender.
    pub fn is_good(&self) -> bool {
        matches!(self, Verdict::Good { .. })
    }

    /// The verdict as a stable word for programs (`muttr --json`, `muttrd`): `good`,
    /// `unsigned`, `bad-signature`, `wrong-signer` or `unknown-signer`.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Good { .. } => "good",
            Verdict::Unsigned => "unsigned",
            Verdict::BadSignature => "bad-signature",
            Verdict::WrongSigner { .. } => "wrong-signer",
            Verdict::UnknownSigner { .. } => "unknown-signer",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Good { signer_fingerprint } => {
                write!(f, "good signature by {signer_fingerprint}")
            }
            Verdict::Unsigned => f.write_str("NOT SIGNED"),
            Verdict::BadSignature => f.write_str("BAD SIGNATURE"),
            Verdict::WrongSigner { issuer } => {
                write!(
                    f,
                    "signed by someone else ({issuer}), not the expected sender"
                )
            }
            Verdict::UnknownSigner { issuer } => write!(f, "signed by unknown key {issuer}"),
        }
    }
}

/// A decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext. Authentic only when `verdict.is_good()`.
    pub plaintext: Vec<u8>,
    /// The signature verdict.
    pub verdict: Verdict,
}

/// Signs `plaintext` with `signer`'s key and encrypts it to every recipient, as one armored
/// OpenPGP message (P-G2). Add the signer's own public key to `recipients` to be able to read
/// it back.
pub fn sign_and_encrypt(
    plaintext: &[u8],
    signer: &Identity,
    recipients: &[&PublicKey],
    now: SystemTime,
) -> Result<String, CryptoError> {
    if recipients.is_empty() {
        return Err(CryptoError::Malformed("no recipients".into()));
    }
    let mut keys = Vec::new();
    for r in recipients {
        let before = keys.len();
        keys.extend(
            r.cert()
                .keys()
                .with_policy(&POLICY, now)
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .for_storage_encryption(),
        );
        if keys.len() == before {
            return Err(CryptoError::NoEncryptionKey(r.fingerprint()));
        }
    }
    let keypair = signer.signing_keypair(now)?;
    let mut sink = Vec::new();
    let write = || -> openpgp::Result<()> {
        let message = Message::new(&mut sink);
        let message = Armorer::new(message)
            .kind(openpgp::armor::Kind::Message)
            .build()?;
        let message = Encryptor::for_recipients(message, keys).build()?;
        let message = Signer::new(message, keypair)?
            .hash_algo(openpgp::types::HashAlgorithm::SHA512)?
            .creation_time(now)
            .build()?;
        let mut literal = LiteralWriter::new(message).date(now)?.build()?;
        literal.write_all(plaintext)?;
        literal.finalize()?;
        Ok(())
    };
    write().map_err(CryptoError::from_openpgp)?;
    String::from_utf8(sink).map_err(|e| CryptoError::Malformed(e.to_string()))
}

struct Helper<'a> {
    me: &'a Identity,
    expected: Option<&'a PublicKey>,
    verdict: Option<Verdict>,
}

fn issuer_of(sig: &openpgp::packet::Signature) -> String {
    sig.get_issuers()
        .first()
        .map(|h| h.to_hex().to_lowercase())
        .unwrap_or_else(|| "unknown".into())
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .expected
            .map(|k| vec![k.cert().clone()])
            .unwrap_or_default())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        // Record a verdict; never fail here, so the caller always learns what was wrong.
        let mut verdict = Verdict::Unsigned;
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    let v = match r {
                        Ok(good) => Verdict::Good {
                            signer_fingerprint: good
                                .ka
                                .cert()
                                .fingerprint()
                                .to_hex()
                                .to_lowercase(),
                        },
                        Err(VerificationError::MissingKey { sig, .. }) => match self.expected {
                            Some(_) => Verdict::WrongSigner {
                                issuer: issuer_of(sig),
                            },
                            None => Verdict::UnknownSigner {
                                issuer: issuer_of(sig),
                            },
                        },
                        Err(_) => Verdict::BadSignature,
                    };
                    // A good signature wins; otherwise keep the most telling failure.
                    let rank = |v: &Verdict| match v {
                        Verdict::Good { .. } => 4,
                        Verdict::BadSignature => 3,
                        Verdict::WrongSigner { .. } | Verdict::UnknownSigner { .. } => 2,
                        Verdict::Unsigned => 1,
                    };
                    if rank(&v) > rank(&verdict) {
                        verdict = v;
                    }
                }
            }
        }
        self.verdict = Some(verdict);
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let mut unlocked = false;
        for mut pair in self.me.decryption_keypairs() {
            for pkesk in pkesks {
                if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                    unlocked = true;
                    if decrypt(algo, &sk) {
                        return Ok(Some(self.me.cert().clone()));
                    }
                }
            }
        }
        if unlocked {
            // A session key for us, but the encrypted data does not decrypt with it.
            Err(CorruptContainer.into())
        } else {
            Err(NotForMe.into())
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not encrypted to this identity")]
struct NotForMe;

#[derive(Debug, thiserror::Error)]
#[error("the encrypted data is truncated or corrupted")]
struct CorruptContainer;

/// Decrypts an armored message with `me`'s key and checks its signature against
/// `expected_signer` (P-G3). The plaintext is returned whatever the verdict; only a
/// [`Verdict::Good`] makes it authentic.
pub fn decrypt_and_verify(
    armored: &[u8],
    me: &Identity,
    expected_signer: Option<&PublicKey>,
    now: SystemTime,
) -> Result<Decrypted, CryptoError> {
    let helper = Helper {
        me,
        expected: expected_signer,
        verdict: None,
    };
    let mut decryptor = DecryptorBuilder::from_bytes(armored)
        .map_err(CryptoError::from_openpgp)?
        .with_policy(&POLICY, now, helper)
        .map_err(|e| {
            if e.downcast_ref::<NotForMe>().is_some() {
                CryptoError::NotForMe
            } else {
                CryptoError::from_openpgp(e)
            }
        })?;
    let mut plaintext = Vec::new();
    decryptor
        .read_to_end(&mut plaintext)
        .map_err(|e| CryptoError::Malformed(e.to_string()))?;
    let verdict = decryptor
        .helper_ref()
        .verdict
        .clone()
        .unwrap_or(Verdict::Unsigned);
    // A signature by the expected key is only good if it is that key's.
    let verdict = match (verdict, expected_signer) {
        (Verdict::Good { signer_fingerprint }, Some(k))
            if signer_fingerprint != k.fingerprint() =>
        {
            Verdict::WrongSigner {
                issuer: signer_fingerprint,
            }
        }
        (v, _) => v,
    };
    Ok(Decrypted { plaintext, verdict })
}

/// The fingerprint type, re-exported for callers matching issuers.
pub type KeyFingerprint = Fingerprint;
