//! # muttr-node: the Muttr seed
//!
//! A *seed* is a node of Muttr's distributed hash table: it stores PGP-encrypted messages for
//! other seeds, keyed by the SHA-1 of the message text, and finds them again with Kademlia over
//! JSON-in-UDP datagrams (whitepaper "Seed-to-Seed Communication", `PROFILE.md` §1–§3).
//!
//! The crate follows one idea: every protocol rule lives in code that does no IO and reads no
//! clock. Thin async drivers own the sockets and timers, so the same seed runs on real tokio
//! sockets and inside the simulator.
//!
//! ## Module map
//! | module | what it holds |
//! |---|---|
//! | [`id`] | 160-bit identifiers, XOR distance, bucket index, `NodeId::from_addr` (P-W3) |
//! | [`wire`] | the eight message types, strict decoding with a rule id per error, encoding |
//! | [`config`] | every protocol constant (P-K2) in one `Config`, loadable from TOML |
//! | [`value`] | what a value is (P-V1), its key (P-V2), the STORE admission test (P-V3) |
//! | [`client`] | the libmuttr-like API: `send("bob@pod", text)`, playback, push, verdicts |
//! | [`crypto`] | OpenPGP: identities, sign+encrypt, decrypt+verify with verdicts, signed auth texts |
//! | [`driver`] | the async task that runs a core on a socket; `spawn_seed`, `SeedHandle` |
//! | [`net`] | the IO boundary: `Transport`/`DatagramSocket` traits, tokio UDP, the injected `Clock` |
//! | [`process`] | what the binaries share: logging, SIGINT/SIGTERM, joining with retries |
//! | [`settings`] | one configuration per binary: flag > environment > file > default; durations |
//! | [`metrics`] | Prometheus metrics (P-X3): the seed's counters, the `--metrics-listen` server |
//! | [`kad`] | the sans-IO Kademlia core: routing table, lookups, request handling, timers |
//! | [`store`] | the `ValueStore` trait (P-V4 quotas), in-memory and durable stores |
//! | [`trust`] | whom HTTPS clients believe: webpki + system roots + `--ca-file` |

pub mod client;
pub mod config;
pub mod crypto;
pub mod driver;
pub mod id;
pub mod kad;
pub mod metrics;
pub mod net;
pub mod process;
pub mod settings;
pub mod store;
pub mod trust;
pub mod value;
pub mod wire;

/// The version of this build: the crate version and the git revision it was built from
/// (`0.1.0 (a1b2c3d4e5f6)`), as `--version` prints it.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("MUTTR_GIT_REV"), ")");

/// The git revision of this build (`unknown` outside a checkout).
pub const GIT_REV: &str = env!("MUTTR_GIT_REV");

pub use config::Config;
pub use driver::{Seed, SeedHandle, SeedOptions, spawn_seed};
pub use id::{Distance, Key, NodeId};
