//! Values and their keys (PROFILE §3): what a seed agrees to hold.
//!
//! A value on the wire is the lowercase hex of the bytes of an ASCII-armored OpenPGP message
//! (P-V1); its key is the SHA-1 of that hex text as transmitted (P-V2; the original libmuttr
//! hashed the armored text before hex encoding, which this profile does not follow).
//!
//! [`check_store`] is the whole P-V3 admission test for a STORE: key/value agreement, the value's
//! form down to the OpenPGP packet sequence, and the presence and sanity of `timestamp` and
//! `publisher`. Quotas (P-V4) are the store's business ([`crate::store`]), since they depend on
//! what is already held.

use openpgp::Packet;
use openpgp::armor;
use openpgp::parse::{PacketParserResult, Parse};
use sequoia_openpgp as openpgp;

use crate::id::{Key, NodeId, is_lower_hex};

/// How far in the future a STORE's `timestamp` may be (P-V3): ten minutes, in milliseconds.
/// Clocks of honest seeds disagree by seconds; a publisher ten minutes ahead is either broken
/// or trying to extend its value's life past the expiry window.
pub const MAX_FUTURE_SKEW_MS: u64 = 10 * 60 * 1000;

/// The key of a value: SHA-1 of its hex text (P-V2).
pub fn key_of(value_hex: &str) -> Key {
    NodeId::sha1(value_hex.as_bytes())
}

/// The wire form of an armored message: lowercase hex of its bytes (P-V1).
pub fn to_hex(armored: &str) -> String {
    hex::encode(armored.as_bytes())
}

/// Why a value is refused (P-V1, P-V3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Empty value.
    #[error("value is empty (P-V1)")]
    Empty,
    /// Not lowercase hex of whole bytes.
    #[error("value is not lowercase hex of whole bytes (P-V1)")]
    BadHex,
    /// The bytes are not UTF-8 text.
    #[error("value does not decode to text (P-V1)")]
    NotText,
    /// No `-----BEGIN PGP MESSAGE-----` … `-----END PGP MESSAGE-----` block.
    #[error("value is not an ASCII-armored PGP MESSAGE (P-V1)")]
    NoArmor,
    /// The armor is there but its body does not decode (bad base64, bad checksum, cut short).
    #[error("armor does not decode: {0} (P-V1)")]
    BadArmor(String),
    /// The packets are not an encrypted message (ESKs followed by one encrypted container).
    #[error("OpenPGP packets are not an encrypted message: {0} (P-V3)")]
    NotEncrypted(String),
}

/// Decodes the hex of a value to its armored text (P-V1 form only: hex and UTF-8).
pub fn from_hex(value_hex: &str) -> Result<String, ValueError> {
    if value_hex.is_empty() {
        return Err(ValueError::Empty);
    }
    if !value_hex.len().is_multiple_of(2) || !is_lower_hex(value_hex) {
        return Err(ValueError::BadHex);
    }
    let bytes = hex::decode(value_hex).map_err(|_| ValueError::BadHex)?;
    String::from_utf8(bytes).map_err(|_| ValueError::NotText)
}

/// Checks that a value is hex of an armored OpenPGP *encrypted* message (P-V1 MUST, and the
/// SHOULD of P-V3 about the packets), returning the binary message.
pub fn validate(value_hex: &str) -> Result<Vec<u8>, ValueError> {
    let text = from_hex(value_hex)?;
    let begin = text.find("-----BEGIN PGP MESSAGE-----");
    let end = text.find("-----END PGP MESSAGE-----");
    match (begin, end) {
        (Some(b), Some(e)) if b < e => {}
        _ => return Err(ValueError::NoArmor),
    }
    let mut reader = armor::Reader::from_bytes(
        text.as_bytes(),
        armor::ReaderMode::Tolerant(Some(armor::Kind::Message)),
    );
    let mut binary = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut binary)
        .map_err(|e| ValueError::BadArmor(e.to_string()))?;
    if binary.is_empty() {
        return Err(ValueError::BadArmor("no data".into()));
    }
    check_encrypted_packets(&binary)?;
    Ok(binary)
}

/// An encrypted OpenPGP message is, at the top level: optional Marker packets, one or more
/// PKESK/SKESK packets, then exactly one encrypted container (SEIP), and nothing after it
/// (RFC 9580 §10.3). The container is not opened: a seed holds no keys for it.
fn check_encrypted_packets(binary: &[u8]) -> Result<(), ValueError> {
    let bad = |why: &str| ValueError::NotEncrypted(why.to_string());
    let mut ppr = openpgp::parse::PacketParser::from_bytes(binary)
        .map_err(|e| ValueError::NotEncrypted(e.to_string()))?;
    let (mut esks, mut containers) = (0usize, 0usize);
    while let PacketParserResult::Some(pp) = ppr {
        if containers > 0 {
            return Err(bad("packets after the encrypted container"));
        }
        match &pp.packet {
            Packet::Marker(_) => {}
            Packet::PKESK(_) | Packet::SKESK(_) => esks += 1,
            Packet::SEIP(_) => {
                if esks == 0 {
                    return Err(bad("encrypted container without a session key packet"));
                }
                containers += 1;
            }
            other => {
                return Err(ValueError::NotEncrypted(format!(
                    "unexpected {}",
                    other.tag()
                )));
            }
        }
        // `next` does not descend into the (still encrypted) container.
        ppr = pp
            .next()
            .map_err(|e| ValueError::NotEncrypted(e.to_string()))?
            .1;
    }
    if containers != 1 {
        return Err(bad("no encrypted container"));
    }
    Ok(())
}

/// A well-formed encrypted OpenPGP message, armored, whose ciphertext is pseudo-random bytes
/// drawn from `rng`: one SKESK v4 packet (AES-256, iterated and salted SHA-256 S2K) followed by
/// one SEIP v1 packet of `ciphertext_len` bytes.
///
/// Seeds store and route values without decrypting them, so to a seed this is exactly a real
/// message; unlike one made by an OpenPGP library (which draws session keys and salts from the
/// operating system), it is a pure function of the RNG, which keeps simulations and load tests
/// reproducible. It decrypts under no key: use the `crypto` module for messages meant to be read.
pub fn opaque_message<R: rand::Rng + ?Sized>(rng: &mut R, ciphertext_len: usize) -> String {
    fn packet(tag: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(0xc0 | tag); // new-format header
        let len = body.len();
        if len < 192 {
            out.push(len as u8);
        } else if len < 8384 {
            let l = len - 192;
            out.push(((l >> 8) + 192) as u8);
            out.push((l & 0xff) as u8);
        } else {
            out.push(0xff);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        out.extend_from_slice(body);
    }
    let mut salt = [0u8; 8];
    rng.fill(&mut salt);
    // version 4, AES-256 (9), S2K iterated+salted (3) with SHA-256 (8), salt, count 0xff.
    let mut skesk = vec![4, 9, 3, 8];
    skesk.extend_from_slice(&salt);
    skesk.push(0xff);
    // SEIP v1: version byte, then the ciphertext (block-size prefix + data + MDC when real).
    let mut seip = vec![1u8; 1 + ciphertext_len.max(16 + 2 + 22)];
    rng.fill(&mut seip[1..]);
    let mut binary = Vec::new();
    packet(3, &skesk, &mut binary);
    packet(18, &seip, &mut binary);
    let mut w = armor::Writer::new(Vec::new(), armor::Kind::Message).expect("in-memory armor");
    std::io::Write::write_all(&mut w, &binary).expect("in-memory write");
    String::from_utf8(w.finalize().expect("in-memory armor")).expect("armor is ASCII")
}

/// Why a STORE is refused (P-V3, P-V4). Each answers `success: false` and stores nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreRefusal {
    /// `key` is not SHA-1(`value`).
    #[error("key is not sha1(value) (P-V2)")]
    KeyMismatch,
    /// The value is not an armored encrypted OpenPGP message.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// No `timestamp`.
    #[error("STORE without timestamp (P-V3)")]
    MissingTimestamp,
    /// No `publisher`.
    #[error("STORE without publisher (P-V3)")]
    MissingPublisher,
    /// `timestamp` more than [`MAX_FUTURE_SKEW_MS`] ahead of the receiver's clock.
    #[error("timestamp {timestamp} is more than 10 minutes ahead of {now} (P-V3)")]
    FromTheFuture {
        /// The STORE's timestamp.
        timestamp: u64,
        /// The receiver's clock.
        now: u64,
    },
    /// `timestamp` so old that the value has already expired.
    #[error("value expired at {expires} (P-K2 expiry)")]
    Expired {
        /// When the value expired (ms since the epoch).
        expires: u64,
    },
    /// Over a quota (P-V4).
    #[error("quota exceeded: {0} (P-V4)")]
    Quota(String),
}

impl StoreRefusal {
    /// The PROFILE rule behind the refusal.
    pub fn rule(&self) -> &'static str {
        match self {
            StoreRefusal::KeyMismatch => "P-V2",
            StoreRefusal::Value(ValueError::NotEncrypted(_)) => "P-V3",
            StoreRefusal::Value(_) => "P-V1",
            StoreRefusal::Quota(_) => "P-V4",
            StoreRefusal::Expired { .. } => "P-K2",
            _ => "P-V3",
        }
    }
}

/// A STORE that passed [`check_store`]: the fields the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// SHA-1 of the value.
    pub key: Key,
    /// Publisher's node ID.
    pub publisher: NodeId,
    /// Publication time, ms since the epoch.
    pub timestamp: u64,
}

/// The P-V3 admission test, on the receiver's clock `now_ms` (ms since the epoch). `expiry_ms`
/// is the configured value lifetime (P-K2, 24 h): a STORE whose value has already expired is
/// refused too, since keeping it would only hand out stale data.
pub fn check_store(
    key: &Key,
    value_hex: &str,
    timestamp: Option<u64>,
    publisher: Option<NodeId>,
    now_ms: u64,
    expiry_ms: u64,
) -> Result<Admitted, StoreRefusal> {
    if key_of(value_hex) != *key {
        return Err(StoreRefusal::KeyMismatch);
    }
    validate(value_hex)?;
    let timestamp = timestamp.ok_or(StoreRefusal::MissingTimestamp)?;
    let publisher = publisher.ok_or(StoreRefusal::MissingPublisher)?;
    if timestamp > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
        return Err(StoreRefusal::FromTheFuture {
            timestamp,
            now: now_ms,
        });
    }
    let expires = timestamp.saturating_add(expiry_ms);
    if expires <= now_ms {
        return Err(StoreRefusal::Expired { expires });
    }
    Ok(Admitted {
        key: *key,
        publisher,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real encrypted message (`gpg --symmetric --armor`, passphrase "muttr"): one SKESK
    /// followed by one SEIP packet.
    pub(crate) const SYMMETRIC_MESSAGE: &str = "-----BEGIN PGP MESSAGE-----

jA0ECQMCo/aByYUDKKT/0kUBkgZ/qb3yHurKIOcrLRiWXYk9VEpdiNu6cRRxERpU
j5QIq9VOCUsBEBC2KCVvAqBaMK4qqGxpo7JBq9ttuQ/TBNrvnaE=
=b5iO
-----END PGP MESSAGE-----
";

    const DAY: u64 = 86_400_000;
    const NOW: u64 = 1_700_000_000_000;

    fn pubr() -> Option<NodeId> {
        Some(NodeId::sha1(b"publisher"))
    }

    #[test]
    fn key_is_sha1_of_hex_text_p_v2() {
        let v = to_hex(SYMMETRIC_MESSAGE);
        assert_eq!(key_of(&v), NodeId::sha1(v.as_bytes()));
        assert_ne!(key_of(&v), NodeId::sha1(SYMMETRIC_MESSAGE.as_bytes()));
    }

    #[test]
    fn accepts_encrypted_message() {
        let v = to_hex(SYMMETRIC_MESSAGE);
        let ok = check_store(&key_of(&v), &v, Some(NOW), pubr(), NOW, DAY).unwrap();
        assert_eq!(ok.timestamp, NOW);
    }

    #[test]
    fn refusals_p_v3() {
        let v = to_hex(SYMMETRIC_MESSAGE);
        let k = key_of(&v);
        let check = |key: &Key, val: &str, ts, publ| check_store(key, val, ts, publ, NOW, DAY);
        assert_eq!(
            check(&NodeId::ZERO, &v, Some(NOW), pubr()),
            Err(StoreRefusal::KeyMismatch)
        );
        assert_eq!(
            check(&k, &v, None, pubr()),
            Err(StoreRefusal::MissingTimestamp)
        );
        assert_eq!(
            check(&k, &v, Some(NOW), None),
            Err(StoreRefusal::MissingPublisher)
        );
        let future = NOW + MAX_FUTURE_SKEW_MS + 1;
        assert!(matches!(
            check(&k, &v, Some(future), pubr()),
            Err(StoreRefusal::FromTheFuture { .. })
        ));
        // Exactly ten minutes ahead is still accepted.
        assert!(check(&k, &v, Some(NOW + MAX_FUTURE_SKEW_MS), pubr()).is_ok());
        assert!(matches!(
            check(&k, &v, Some(NOW - DAY), pubr()),
            Err(StoreRefusal::Expired { .. })
        ));
    }

    fn refusal(value_hex: &str) -> StoreRefusal {
        check_store(&key_of(value_hex), value_hex, Some(NOW), pubr(), NOW, DAY).unwrap_err()
    }

    #[test]
    fn value_form_p_v1() {
        let v = to_hex(SYMMETRIC_MESSAGE);
        assert_eq!(refusal(""), StoreRefusal::Value(ValueError::Empty));
        assert_eq!(
            refusal(&v.to_uppercase()),
            StoreRefusal::Value(ValueError::BadHex)
        );
        assert_eq!(refusal(&v[1..]), StoreRefusal::Value(ValueError::BadHex));
        assert_eq!(refusal("zz"), StoreRefusal::Value(ValueError::BadHex));
        assert_eq!(refusal("fffe"), StoreRefusal::Value(ValueError::NotText));
        assert_eq!(
            refusal(&to_hex("hello")),
            StoreRefusal::Value(ValueError::NoArmor)
        );
        let key_block = SYMMETRIC_MESSAGE.replace("MESSAGE", "PUBLIC KEY BLOCK");
        assert_eq!(
            refusal(&to_hex(&key_block)),
            StoreRefusal::Value(ValueError::NoArmor)
        );
        // Corrupt the base64 body.
        let broken = SYMMETRIC_MESSAGE.replace("jA0ECQMCo", "jA0E!!!!!");
        assert!(matches!(refusal(&to_hex(&broken)).rule(), "P-V1" | "P-V3"));
        // Cut short: the armor tail is missing.
        let cut = &SYMMETRIC_MESSAGE[..SYMMETRIC_MESSAGE.len() - 40];
        assert_eq!(
            refusal(&to_hex(cut)),
            StoreRefusal::Value(ValueError::NoArmor)
        );
    }

    #[test]
    fn opaque_messages_are_valid_and_reproducible() {
        use rand::SeedableRng;
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for len in [0, 100, 191, 192, 5_000, 9_000] {
            let m = opaque_message(&mut a, len);
            assert_eq!(m, opaque_message(&mut b, len));
            let bin = validate(&to_hex(&m)).unwrap_or_else(|e| panic!("len {len}: {e}"));
            assert!(bin.len() > len);
        }
        assert_ne!(opaque_message(&mut a, 64), opaque_message(&mut a, 64));
    }

    #[test]
    fn non_encrypted_packets_are_refused() {
        // A literal data packet ("hi") armored as a MESSAGE: well-formed OpenPGP, not encrypted.
        let literal = [0xcb, 0x08, b'b', 0, 0, 0, 0, 0, b'h', b'i'];
        let mut w = armor::Writer::new(Vec::new(), armor::Kind::Message).unwrap();
        std::io::Write::write_all(&mut w, &literal).unwrap();
        let armored = String::from_utf8(w.finalize().unwrap()).unwrap();
        let r = refusal(&to_hex(&armored));
        assert!(
            matches!(r, StoreRefusal::Value(ValueError::NotEncrypted(_))),
            "{r:?}"
        );
        assert_eq!(r.rule(), "P-V3");
    }
}
