//! # muttr-conformance: is this a Muttr implementation?
//!
//! Test vectors and black-box suites that grade any implementation of Muttr case by case
//! against `PROFILE.md`, the way Autobahn|Testsuite grades WebSocket servers and Wycheproof's
//! vectors grade crypto libraries. Every case has a stable id, names the PROFILE rule it checks,
//! and gets a verdict: `pass`, `fail` (a MUST broken), `non-strict` (a SHOULD broken) or
//! `not-applicable`.
//!
//! ## Module map
//! | module | what it holds |
//! |---|---|
//! | [`report`] | verdicts, case results, expect files (known failures), text / JSON / JUnit reports |
//! | [`generate`] | the generator of `vectors/*.json`, with expected results computed from the PROFILE |
//! | [`vectors`] | the vector runner: every case through the adapter protocol, graded |
//! | [`rest`] | the REST vector runner: `rest.json`'s HTTP/WebSocket steps against a pod (ours in-process, or any URL) |
//! | [`adapter`] | the stdin/stdout JSON-lines adapter protocol, this implementation behind it, a subprocess client |
//! | [`pod`] | the live suite: a pod over HTTP(S) and WebSocket, with its own keys and federation pod |
//! | [`seed`] | the live suite: a seed over real UDP, played against from several sockets |
//! | [`pgp`] | hand-built OpenPGP packet sequences (encrypted or not) for STORE cases |
//! | [`profile`] | `spec/PROFILE.md`, embedded: its sections and rule ids, the links reports use |
//! | [`catalogue`] | the live suites' cases as data (`cases/*.json`): `list`, and `not-judged` for what a stopped target never reached |
//! | [`select`] | `--only` / `--skip` globs over case ids |
//! | [`canon`] | canonical (sorted-key) JSON text, so generated files are reproducible |
//!
//! The `muttr-conformance` binary wraps these: `gen-vectors`, `vectors [--impl CMD] [--pod URL]`,
//! `adapter`, `seed UDP_ADDR`, `pod URL`; see `conformance/README.md`.

pub mod adapter;
pub mod canon;
pub mod catalogue;
pub mod generate;
pub mod pgp;
pub mod pod;
pub mod profile;
pub mod report;
pub mod rest;
pub mod seed;
pub mod select;
pub mod vectors;
