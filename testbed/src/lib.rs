//! # muttr-testbed: real seeds and pods on a faulty network
//!
//! The simulator (`muttr-sim`) runs thousands of seeds in one process on virtual time; this
//! crate runs the real binaries — `muttr-seed` and `muttr-pod`, unchanged, as separate
//! processes — each in its own Linux network namespace, connected through a switch that delays,
//! loses and reorders packets, cuts the network in two and heals it, while the runner kills
//! seeds with SIGKILL and restarts them on their data directory. Users on every pod send each
//! other messages through the client library the whole time; the report says how many of the
//! messages their pod acknowledged were delivered, what was lost and why, and how long the
//! network took to recover from each fault.
//!
//! ```sh
//! cargo build -p muttr-node -p muttr-pod -p muttr-testbed
//! sudo target/debug/muttr-testbed run testbed/scenarios/faults30.toml --out testbed-out/faults30
//! ```
//!
//! ## Module map
//! | module | what it holds |
//! |---|---|
//! | [`scenario`] | scenario files (TOML): hosts, workload, network, partitions, kills |
//! | [`netns`] | namespaces and veth pairs through iproute2; privilege check; cleanup |
//! | [`pki`] | a private CA and per-pod certificates for HTTPS scenarios (`https = true`) |
//! | [`switch`] | the impairing user-space Ethernet switch (netem's delay/jitter/loss/reorder, partitions) |
//! | [`workload`] | the client process of one pod: registration, sending, receiving, events |
//! | [`runner`] | the schedule (messages, partition sides, victims) and the orchestration |
//! | [`report`] | folding events into delivery, losses with reasons, recovery times |
//!
//! The binary has four commands: `run` (the runner), `cleanup` (removes namespaces left by a
//! run that was itself SIGKILLed), and the internal `switch` and `client`, which the runner
//! starts inside the namespaces.

pub mod netns;
pub mod pki;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod switch;
pub mod workload;
