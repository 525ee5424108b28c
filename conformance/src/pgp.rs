//! Hand-built OpenPGP messages for STORE cases (PROFILE P-V1, P-V3).
//!
//! A seed never decrypts what it stores, so the suite does not need real encryption: it needs
//! packet sequences whose *shape* is, or is not, an encrypted message (RFC 9580 §10.3: session
//! key packets, then one encrypted container). These are built byte by byte from a seeded RNG,
//! so vectors are reproducible, and armored with the OpenPGP armor framing (sequoia's armor
//! writer; no Muttr code is involved, so the expected verdicts do not echo the implementation
//! under test).

use rand::Rng;
use sequoia_openpgp::armor;

/// One new-format OpenPGP packet: header (tag, length) and body.
pub fn packet(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xc0 | tag];
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
    out
}

/// A version-4 SKESK packet (AES-256, iterated+salted SHA-256 S2K, random salt).
pub fn skesk<R: Rng + ?Sized>(rng: &mut R) -> Vec<u8> {
    let mut body = vec![4, 9, 3, 8];
    let mut salt = [0u8; 8];
    rng.fill(&mut salt);
    body.extend_from_slice(&salt);
    body.push(0xff);
    packet(3, &body)
}

/// A version-3 PKESK packet for an RSA key (random key ID and a random 2048-bit MPI).
pub fn pkesk<R: Rng + ?Sized>(rng: &mut R) -> Vec<u8> {
    let mut body = vec![3];
    let mut keyid = [0u8; 8];
    rng.fill(&mut keyid);
    body.extend_from_slice(&keyid);
    body.push(1); // RSA
    body.extend_from_slice(&2048u16.to_be_bytes());
    let mut mpi = vec![0u8; 256];
    rng.fill(&mut mpi[..]);
    mpi[0] |= 0x80;
    body.extend_from_slice(&mpi);
    packet(1, &body)
}

/// A version-1 SEIP packet with `len` random ciphertext bytes.
pub fn seip<R: Rng + ?Sized>(rng: &mut R, len: usize) -> Vec<u8> {
    let mut body = vec![1u8; 1 + len.max(40)];
    rng.fill(&mut body[1..]);
    packet(18, &body)
}

/// A literal data packet (binary, no file name, date 0).
pub fn literal(data: &[u8]) -> Vec<u8> {
    let mut body = vec![b'b', 0, 0, 0, 0, 0];
    body.extend_from_slice(data);
    packet(11, &body)
}

/// A compressed data packet (algorithm 0, uncompressed) holding `inner`.
pub fn compressed(inner: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(inner);
    packet(8, &body)
}

/// A marker packet (`PGP`), which readers ignore.
pub fn marker() -> Vec<u8> {
    packet(10, b"PGP")
}

/// An encrypted message: one SKESK then one SEIP.
pub fn encrypted<R: Rng + ?Sized>(rng: &mut R, len: usize) -> Vec<u8> {
    let mut out = skesk(rng);
    out.extend(seip(rng, len));
    out
}

/// Armors `binary` as `-----BEGIN PGP MESSAGE-----` (LF line endings).
pub fn armor_message(binary: &[u8]) -> String {
    armor_as(binary, armor::Kind::Message)
}

/// Armors `binary` under another block type (e.g. a public key block).
pub fn armor_as(binary: &[u8], kind: armor::Kind) -> String {
    let mut w = armor::Writer::new(Vec::new(), kind).expect("in-memory armor");
    std::io::Write::write_all(&mut w, binary).expect("in-memory write");
    String::from_utf8(w.finalize().expect("in-memory armor")).expect("armor is ASCII")
}

/// Lowercase hex of a text's bytes (the P-V1 wire form of an armored message).
pub fn hex_of(text: &str) -> String {
    hex::encode(text.as_bytes())
}

/// Lowercase hex SHA-1 of a text's bytes (P-V2 keys, P-W3 node IDs, P-G1 pubkeyhashes).
pub fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn lengths_use_the_right_header_forms() {
        assert_eq!(&packet(11, &[0; 5])[..2], &[0xcb, 5]);
        assert_eq!(&packet(18, &[0; 192])[..3], &[0xd2, 192, 0]);
        assert_eq!(
            &packet(18, &[0; 9000])[..6],
            &[0xd2, 0xff, 0, 0, 0x23, 0x28]
        );
    }

    #[test]
    fn armored_message_is_deterministic_per_seed() {
        let mk = |s| {
            armor_message(&encrypted(
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(s),
                64,
            ))
        };
        assert_eq!(mk(1), mk(1));
        assert_ne!(mk(1), mk(2));
        assert!(mk(1).starts_with("-----BEGIN PGP MESSAGE-----"));
        assert!(mk(1).trim_end().ends_with("-----END PGP MESSAGE-----"));
    }

    #[test]
    fn sha1_of_known_text() {
        assert_eq!(
            sha1_hex("127.0.0.1:4000"),
            "caf8d9b85e7fa9a124cb44cb28ad5289faa44668"
        );
    }
}
