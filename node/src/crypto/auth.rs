//! Signed auth texts: how a client proves who it is to a pod (PROFILE P-A1, P-A2, P-S1).
//!
//! The auth text is a form-encoded query string, `identity=…&identityType=…&nonce=…` followed
//! by the endpoint's own parameters, cleartext-signed with the OpenPGP Cleartext Signature
//! Framework and armored:
//!
//! ```text
//! -----BEGIN PGP SIGNED MESSAGE-----
//! Hash: SHA512
//!
//! identity=4e12…&identityType=pubkeyhash&nonce=1437075033746&alias=alice
//! -----BEGIN PGP SIGNATURE-----
//! …
//! -----END PGP SIGNATURE-----
//! ```
//!
//! An authenticated POST sends that text as its body; the WebSocket sends its hex (P-S1). The
//! signature covers every parameter, so the pod reads parameters only from the signed text.
//! Form encoding leaves no raw newline or leading dash in the text, so the cleartext
//! framework's dash-escaping and trailing-whitespace rules never alter it.

use std::io::{Read, Write};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::parse::Parse;
use openpgp::parse::stream::{
    MessageLayer, MessageStructure, VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::serialize::stream::{Message, Signer};
use openpgp::{Cert, KeyHandle};

use super::keys::{Identity, PublicKey};
use super::{CryptoError, POLICY};

/// The `identityType` naming a key registered at the pod by its SHA-1 (P-A3).
pub const PUBKEYHASH: &str = "pubkeyhash";
/// The `identityType` naming a user of another pod, `alias@host[:port]` (P-A3).
pub const HREF: &str = "href";

/// Why an auth text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a cleartext-signed armored text.
    #[error("not an armored cleartext-signed message: {0}")]
    BadArmor(String),
    /// No signature.
    #[error("the auth text is not signed")]
    NotSigned,
    /// A signature by the key that does not verify (the text was altered).
    #[error("the signature does not verify")]
    BadSignature,
    /// Signed by another key than the identity's.
    #[error("signed by a key other than the identity's")]
    WrongKey,
    /// The signed text is not a query string with `identity`, `identityType` and `nonce`.
    #[error("malformed auth text: {0}")]
    Malformed(String),
    /// The nonce is outside the accepted window (P-A2).
    #[error("nonce {nonce} is more than {window_ms} ms from the pod's clock {now_ms}")]
    StaleNonce {
        /// The nonce sent.
        nonce: u64,
        /// The pod's clock.
        now_ms: u64,
        /// The accepted distance.
        window_ms: u64,
    },
    /// Signing failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The parameters of an auth text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthText {
    /// `identity`: a pubkeyhash or `alias@host`.
    pub identity: String,
    /// `identityType`: `pubkeyhash` or `href`.
    pub identity_type: String,
    /// `nonce`: ms since the epoch (P-A2).
    pub nonce: u64,
    /// Every other parameter, in order.
    pub params: Vec<(String, String)>,
    /// The signed query string itself.
    pub query: String,
}

impl AuthText {
    /// The first value of parameter `name` (among the endpoint parameters).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a query string into an auth text.
    pub fn from_query(query: &str) -> Result<AuthText, AuthError> {
        let (mut identity, mut identity_type, mut nonce) = (None, None, None);
        let mut params = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "identity" => &mut identity,
                "identityType" => &mut identity_type,
                "nonce" => &mut nonce,
                _ => {
                    params.push((k.into_owned(), v.into_owned()));
                    continue;
                }
            };
            if slot.is_some() {
                return Err(AuthError::Malformed(format!("`{k}` given twice")));
            }
            *slot = Some(v.into_owned());
        }
        let identity = identity.ok_or_else(|| AuthError::Malformed("no `identity`".into()))?;
        let identity_type =
            identity_type.ok_or_else(|| AuthError::Malformed("no `identityType`".into()))?;
        let nonce = nonce.ok_or_else(|| AuthError::Malformed("no `nonce`".into()))?;
        let nonce = nonce
            .parse::<u64>()
            .map_err(|_| AuthError::Malformed("`nonce` is not an integer (P-A2)".into()))?;
        if identity.is_empty() {
            return Err(AuthError::Malformed("empty `identity`".into()));
        }
        Ok(AuthText {
            identity,
            identity_type,
            nonce,
            params,
            query: query.to_string(),
        })
    }
}

/// The query string of an auth text: the three auth parameters first, then `params` in order,
/// form-encoded.
pub fn auth_query(
    identity: &str,
    identity_type: &str,
    nonce: u64,
    params: &[(&str, &str)],
) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("identity", identity);
    s.append_pair("identityType", identity_type);
    s.append_pair("nonce", &nonce.to_string());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The armored cleartext-signed auth text (P-A1), signed by `signer` at `now`.
pub fn sign_auth(
    signer: &Identity,
    identity: &str,
    identity_type: &str,
    nonce: u64,
    params: &[(&str, &str)],
    now: SystemTime,
) -> Result<String, AuthError> {
    let query = auth_query(identity, identity_type, nonce, params);
    Ok(cleartext_sign(signer, &query, now)?)
}

/// The hex form of [`sign_auth`], for the WebSocket (P-S1).
pub fn sign_auth_hex(
    signer: &Identity,
    identity: &str,
    identity_type: &str,
    nonce: u64,
    now: SystemTime,
) -> Result<String, AuthError> {
    Ok(hex::encode(sign_auth(
        signer,
        identity,
        identity_type,
        nonce,
        &[],
        now,
    )?))
}

/// Cleartext-signs `text` (any text; the auth texts are query strings).
pub fn cleartext_sign(
    signer: &Identity,
    text: &str,
    now: SystemTime,
) -> Result<String, CryptoError> {
    let keypair = signer.signing_keypair(now)?;
    let mut sink = Vec::new();
    let write = || -> openpgp::Result<()> {
        let message = Message::new(&mut sink);
        let mut w = Signer::new(message, keypair)?
            .cleartext()
            .hash_algo(openpgp::types::HashAlgorithm::SHA512)?
            .creation_time(now)
            .build()?;
        w.write_all(text.as_bytes())?;
        w.finalize()?;
        Ok(())
    };
    write().map_err(CryptoError::from_openpgp)?;
    String::from_utf8(sink).map_err(|e| CryptoError::Malformed(e.to_string()))
}

/// Reads the signed text of a cleartext-signed message WITHOUT verifying it, so a pod can find
/// the identity whose key must verify it. Never trust the result before [`verify_auth`].
pub fn parse_auth(armored: &str) -> Result<AuthText, AuthError> {
    AuthText::from_query(&cleartext_body(armored)?)
}

/// The signed text of a cleartext-signed message, per RFC 9580 §7: after the header block,
/// up to the signature armor, dash-escaping undone, the last line ending not part of it.
pub fn cleartext_body(armored: &str) -> Result<String, AuthError> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIG: &str = "-----BEGIN PGP SIGNATURE-----";
    let start = armored
        .find(BEGIN)
        .ok_or_else(|| AuthError::BadArmor("no BEGIN PGP SIGNED MESSAGE line".into()))?;
    let rest = &armored[start + BEGIN.len()..];
    // Header lines (Hash: …) end at the first empty line.
    let mut lines = rest.split('\n');
    lines.next(); // the remainder of the BEGIN line
    let mut body_lines = Vec::new();
    let mut in_headers = true;
    let mut saw_signature = false;
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if in_headers {
            if line.trim().is_empty() {
                in_headers = false;
            }
            continue;
        }
        if line.starts_with(SIG) {
            saw_signature = true;
            break;
        }
        body_lines.push(line.strip_prefix("- ").unwrap_or(line));
    }
    if !saw_signature {
        return Err(AuthError::NotSigned);
    }
    Ok(body_lines.join("\n"))
}

struct AuthHelper<'a> {
    key: &'a PublicKey,
    outcome: Option<Result<(), AuthError>>,
}

impl VerificationHelper for AuthHelper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(vec![self.key.cert().clone()])
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut outcome = Err(AuthError::NotSigned);
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    match r {
                        Ok(_) => outcome = Ok(()),
                        Err(VerificationError::MissingKey { .. }) if outcome.is_err() => {
                            outcome = Err(AuthError::WrongKey)
                        }
                        Err(_) if outcome.is_err() => outcome = Err(AuthError::BadSignature),
                        Err(_) => {}
                    }
                }
            }
        }
        self.outcome = Some(outcome);
        Ok(())
    }
}

/// Verifies that the cleartext-signed `armored` text was signed by `key`, and parses it.
pub fn verify_auth(armored: &str, key: &PublicKey, now: SystemTime) -> Result<AuthText, AuthError> {
    if !armored.contains("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(AuthError::BadArmor(
            "no BEGIN PGP SIGNED MESSAGE line".into(),
        ));
    }
    let helper = AuthHelper { key, outcome: None };
    let mut verifier = VerifierBuilder::from_bytes(armored.as_bytes())
        .map_err(|e| AuthError::BadArmor(e.to_string()))?
        .with_policy(&POLICY, now, helper)
        .map_err(|e| AuthError::BadArmor(format!("{e:#}")))?;
    let mut text = Vec::new();
    verifier
        .read_to_end(&mut text)
        .map_err(|e| AuthError::BadArmor(e.to_string()))?;
    match verifier.helper_ref().outcome.clone() {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(e),
        None => return Err(AuthError::NotSigned),
    }
    let text = String::from_utf8(text).map_err(|_| AuthError::Malformed("not UTF-8".into()))?;
    // The cleartext framework's text ends without the final line break; sequoia may hand it
    // back with one.
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    AuthText::from_query(text)
}

/// [`verify_auth`] for the hex form of the WebSocket (P-S1).
pub fn verify_auth_hex(
    hex_text: &str,
    key: &PublicKey,
    now: SystemTime,
) -> Result<AuthText, AuthError> {
    let bytes =
        hex::decode(hex_text.trim()).map_err(|_| AuthError::BadArmor("not hex (P-S1)".into()))?;
    let text = String::from_utf8(bytes).map_err(|_| AuthError::BadArmor("not text".into()))?;
    verify_auth(&text, key, now)
}

/// P-A2: the nonce must be within `window_ms` of the pod's clock. (Replay — a nonce accepted
/// before — is the caller's check: it keeps the accepted `(identity, nonce)` pairs.)
pub fn check_nonce(nonce: u64, now_ms: u64, window_ms: u64) -> Result<(), AuthError> {
    if nonce.abs_diff(now_ms) > window_ms {
        return Err(AuthError::StaleNonce {
            nonce,
            now_ms,
            window_ms,
        });
    }
    Ok(())
}
