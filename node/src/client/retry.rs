//! One retry and reconnect policy for every client in the workspace: jittered exponential
//! backoff, bounded, through [`backon`], sleeping on tokio's clock (virtual in the simulator
//! and in tests with a paused clock).
//!
//! - [`policy`]: the backoff of a single call (send, notify, fetch): 250 ms, doubling, at most
//!   10 s between tries, jittered (each wait between 1× and 2× its step), 9 tries: between
//!   36 s and 72 s of waiting in all — long enough to ride out a pod restart (the simulator's
//!   `pods.toml` takes pods down for 20 s) or a lost packet, short enough that a user hears
//!   about a real outage within about a minute.
//! - [`reconnect`]: the backoff of a push subscription that dropped: the same curve, without a
//!   limit on tries (a listener keeps listening), at most 10 s apart; [`patience`] gives its
//!   waits one by one.
//! - [`retryable`]: which errors are worth another try (the pod or the DHT was unreachable or
//!   answered 5xx/429), and which are not (a 4xx is the same answer next time).

use std::time::Duration;

use backon::ExponentialBuilder;

use super::ClientError;

/// The first wait.
pub const MIN_DELAY: Duration = Duration::from_millis(250);
/// The longest wait between two tries.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// Tries of one call after the first: 0.25 + 0.5 + 1 + 2 + 4 + 8 + 10 + 10 = 35.75 s of
/// waiting before jitter.
pub const MAX_RETRIES: usize = 8;

/// The backoff of one call. The jitter is drawn from `seed` (the client derives one per call
/// from its identity and a counter), never from the operating system, so a simulation stays
/// a function of its seed.
pub fn policy(seed: u64) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_factor(2.0)
        .with_max_times(MAX_RETRIES)
        .with_jitter()
        .with_jitter_seed(seed)
}

/// The backoff of a subscription's reconnects: unbounded tries.
pub fn reconnect(seed: u64) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_factor(2.0)
        .without_max_times()
        .with_jitter()
        .with_jitter_seed(seed)
}

/// The waits of a reconnect (or of any step a caller retries until it gives up itself, such
/// as the testbed's notify and read loops): [`reconnect`]'s curve, as an endless iterator.
pub fn patience(seed: u64) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    reconnect(seed).build().chain(std::iter::repeat(MAX_DELAY))
}

/// Whether trying again may give another answer.
pub fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Unreachable(_) | ClientError::Seed(_) => true,
        ClientError::Http { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}
