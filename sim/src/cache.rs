//! Record and replay of the OpenPGP outputs that cannot be seeded.
//!
//! sequoia draws key material, session keys, ECDH ephemerals and signature salts from the
//! operating system, and a message's DHT key is the SHA-1 of its ciphertext — so two runs that
//! sealed "the same" message would store it at different keys, on different seeds, and diverge.
//! The simulator therefore records what it generated the first time and replays the same bytes
//! afterwards:
//!
//! - `keys.json`: user number → armored secret key (reused by every scenario and seed);
//! - `seals-<scenario>-<seed>.json`: `(sender, recipient, message number, SHA-256 of the
//!   plaintext)` → the sealed value (hex of the armored message, as stored in the DHT).
//!
//! A rerun with the same scenario and seed (and the same cache directory) replays every byte,
//! so its event log is identical. Without a cache directory the cache lives in memory for one
//! run: pods still work, but two runs seal differently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use muttr_node::crypto::{Identity, KeyKind};
use sha2::{Digest, Sha256};

/// When the simulator's users' keys are created, in seconds since the Unix epoch:
/// 2025-12-31T00:00:00Z, a day before every run's clock starts (`run::EPOCH_MS`), so a key is
/// valid whenever a user registers.
pub const KEYS_CREATED_S: u64 = 1_767_139_200;

/// The record/replay cache of one run.
#[derive(Debug, Default)]
pub struct CryptoCache {
    dir: Option<PathBuf>,
    seals_file: String,
    keys: BTreeMap<String, String>,
    seals: BTreeMap<String, String>,
    keys_dirty: bool,
    seals_dirty: bool,
    /// Crypto outputs replayed from the cache.
    pub hits: u64,
    /// Crypto outputs generated (and recorded).
    pub misses: u64,
}

fn load(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn store(path: &Path, map: &BTreeMap<String, String>) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(map).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

impl CryptoCache {
    /// Opens the cache of `scenario` on `seed` in `dir` (`None`: memory only).
    pub fn open(dir: Option<&Path>, scenario: &str, seed: u64) -> CryptoCache {
        let name: String = scenario
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let seals_file = format!("seals-{name}-{seed}.json");
        let (keys, seals) = match dir {
            Some(d) => (load(&d.join("keys.json")), load(&d.join(&seals_file))),
            None => Default::default(),
        };
        CryptoCache {
            dir: dir.map(Path::to_path_buf),
            seals_file,
            keys,
            seals,
            ..CryptoCache::default()
        }
    }

    /// The key of user number `n` for a user who registers at `now`: replayed when the
    /// recorded key can already encrypt at `now`, else generated (Cv25519, created at
    /// [`KEYS_CREATED_S`]) and recorded.
    ///
    /// `keys.json` is shared by every scenario, and users register at different virtual times
    /// in each; a key created when one scenario's user registered could lie in another's
    /// future (its encryption subkey not yet valid: the pod refuses it). Keys are therefore
    /// created before any run's clock starts, and a recorded key made otherwise (by an older
    /// simulator) is replaced the first time it is not yet valid.
    pub fn identity(&mut self, n: u32, now: SystemTime) -> Result<Identity, String> {
        let name = format!("user{n}");
        if let Some(armored) = self.keys.get(&name)
            && let Ok(id) = Identity::from_armored(armored.as_bytes(), None)
            && id.public().can_encrypt(now)
        {
            self.hits += 1;
            return Ok(id);
        }
        self.misses += 1;
        let created = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(KEYS_CREATED_S);
        let id = Identity::generate(&format!("sim {name}"), KeyKind::Cv25519, created)
            .map_err(|e| e.to_string())?;
        let armored = id.to_armored_secret(None).map_err(|e| e.to_string())?;
        self.keys.insert(name, armored);
        self.keys_dirty = true;
        Ok(id)
    }

    /// The sealed value of message `m` from `from` to `to` with `plaintext`, between the keys
    /// `keys` (their fingerprints): replayed, or made by `seal` and recorded.
    pub fn seal(
        &mut self,
        from: u32,
        to: u32,
        m: u64,
        keys: &str,
        plaintext: &[u8],
        seal: impl FnOnce() -> Result<String, String>,
    ) -> Result<String, String> {
        let digest = hex::encode(&Sha256::digest(plaintext)[..8]);
        // The keys are part of the name: `keys.json` is shared by every scenario and a key
        // can be replaced (see [`CryptoCache::identity`]); a value sealed with a replaced key
        // would no longer decrypt or verify, so it must not be replayed.
        let name = format!("{from}>{to}#{m}:{digest}:{keys}");
        if let Some(v) = self.seals.get(&name) {
            self.hits += 1;
            return Ok(v.clone());
        }
        self.misses += 1;
        let v = seal()?;
        self.seals.insert(name, v.clone());
        self.seals_dirty = true;
        Ok(v)
    }

    /// Writes what was generated in this run (nothing without a directory).
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if !(self.keys_dirty || self.seals_dirty) {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        if self.keys_dirty {
            store(&dir.join("keys.json"), &self.keys)?;
            self.keys_dirty = false;
        }
        if self.seals_dirty {
            store(&dir.join(&self.seals_file), &self.seals)?;
            self.seals_dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_then_replays() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
        let mut c = CryptoCache::open(Some(dir.path()), "t s", 7);
        let k1 = c.identity(3, now).unwrap().fingerprint();
        let v1 = c
            .seal(1, 2, 0, "fa>fb", b"hi", || Ok("abcd".into()))
            .unwrap();
        assert_eq!((c.hits, c.misses), (0, 2));
        c.save().unwrap();
        assert!(dir.path().join("seals-t_s-7.json").exists());

        let mut c = CryptoCache::open(Some(dir.path()), "t s", 7);
        assert_eq!(c.identity(3, now).unwrap().fingerprint(), k1);
        let v2 = c
            .seal(
                1,
                2,
                0,
                "fa>fb",
                b"hi",
                || Err("must not seal again".into()),
            )
            .unwrap();
        assert_eq!(v1, v2);
        // Another plaintext under the same numbers is not a hit.
        assert!(
            c.seal(1, 2, 0, "fa>fb", b"ho", || Err("miss".into()))
                .is_err()
        );
        // Nor the same message between replaced keys: it would not decrypt or verify.
        assert!(
            c.seal(1, 2, 0, "fa>fc", b"hi", || Err("miss".into()))
                .is_err()
        );
        assert_eq!(c.hits, 2);
        // Another seed has its own seals.
        let mut c = CryptoCache::open(Some(dir.path()), "t s", 8);
        assert!(
            c.seal(1, 2, 0, "fa>fb", b"hi", || Err("miss".into()))
                .is_err()
        );
    }

    #[test]
    fn a_recorded_key_from_the_future_is_replaced_by_one_valid_from_before_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let epoch = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
        // An older simulator recorded user 9's key when that scenario's user registered,
        // 48 s into the run.
        let late = Identity::generate(
            "sim user9",
            KeyKind::Cv25519,
            epoch + std::time::Duration::from_secs(48),
        )
        .unwrap();
        let mut keys = BTreeMap::new();
        keys.insert("user9".to_string(), late.to_armored_secret(None).unwrap());
        store(&dir.path().join("keys.json"), &keys).unwrap();
        let mut c = CryptoCache::open(Some(dir.path()), "small", 1);
        // Another scenario's user 9 registers 29 s in: the recorded key is not valid yet.
        let early = epoch + std::time::Duration::from_secs(29);
        let id = c.identity(9, early).unwrap();
        assert_ne!(id.fingerprint(), late.fingerprint());
        assert!(id.public().can_encrypt(early));
        assert!(id.public().can_encrypt(epoch));
        assert_eq!(c.misses, 1);
        // The new key is recorded and replayed from then on, at any time of any run.
        c.save().unwrap();
        let mut c = CryptoCache::open(Some(dir.path()), "pods", 1);
        assert_eq!(
            c.identity(9, epoch).unwrap().fingerprint(),
            id.fingerprint()
        );
        assert_eq!(c.hits, 1);
    }
}
