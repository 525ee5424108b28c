//! [`Hub`]: fan-out of new inbox entries to the WebSocket subscribers of an identity (P-S2).
//!
//! Each connection gets a bounded queue. Publishing never waits: when a subscriber's queue is
//! full (a slow or dead client), that subscriber is dropped, which closes its connection; its
//! entries remain in the inbox for playback (P-A9). So one client can neither block the pod
//! nor make it buffer without bound.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

/// A subscriber's id, to unsubscribe.
pub type SubscriberId = u64;

#[derive(Debug, Default)]
struct Inner {
    next_id: SubscriberId,
    subs: HashMap<String, Vec<(SubscriberId, mpsc::Sender<String>)>>,
}

/// Subscribers by identity (pubkeyhash).
#[derive(Debug)]
pub struct Hub {
    queue: usize,
    inner: Mutex<Inner>,
}

impl Hub {
    /// A hub whose subscribers each queue up to `queue` frames.
    pub fn new(queue: usize) -> Hub {
        Hub {
            queue: queue.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to `identity`'s new entries, unless it already has `max` subscribers.
    pub fn subscribe_capped(
        &self,
        identity: &str,
        max: usize,
    ) -> Option<(SubscriberId, mpsc::Receiver<String>)> {
        if self.subscribers(identity) >= max {
            return None;
        }
        Some(self.subscribe(identity))
    }

    /// Subscribes to `identity`'s new entries.
    pub fn subscribe(&self, identity: &str) -> (SubscriberId, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(self.queue);
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner
            .subs
            .entry(identity.to_string())
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&self, identity: &str, id: SubscriberId) {
        let mut inner = self.lock();
        if let Some(list) = inner.subs.get_mut(identity) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                inner.subs.remove(identity);
            }
        }
    }

    /// Queues `frame` for every subscriber of `identity`; returns how many got it. Subscribers
    /// whose queue is full or closed are dropped.
    pub fn publish(&self, identity: &str, frame: &str) -> usize {
        let mut inner = self.lock();
        let Some(list) = inner.subs.get_mut(identity) else {
            return 0;
        };
        let mut delivered = 0;
        list.retain(|(id, tx)| match tx.try_send(frame.to_string()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(
                    subscriber = id,
                    "WebSocket subscriber too slow: disconnecting"
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            inner.subs.remove(identity);
        }
        delivered
    }

    /// Drops every subscriber (their connections close, and their clients reconnect and play
    /// back); returns how many there were. Used when this replica may have missed entries
    /// announced by others ([`crate::replicas`]).
    pub fn disconnect_all(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.subs.values().map(Vec::len).sum();
        inner.subs.clear();
        n
    }

    /// Subscribers of `identity`.
    pub fn subscribers(&self, identity: &str) -> usize {
        self.lock().subs.get(identity).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_of_an_identity_gets_each_frame() {
        let hub = Hub::new(4);
        let (_, mut a) = hub.subscribe("x");
        let (_, mut b) = hub.subscribe("x");
        let (_, mut c) = hub.subscribe("y");
        assert_eq!(hub.publish("x", "f1"), 2);
        assert_eq!(a.try_recv().unwrap(), "f1");
        assert_eq!(b.try_recv().unwrap(), "f1");
        assert!(c.try_recv().is_err());
        assert_eq!(hub.publish("nobody", "f"), 0);
    }

    #[test]
    fn a_full_queue_drops_only_that_subscriber() {
        let hub = Hub::new(2);
        let (_, mut slow) = hub.subscribe("x");
        let (_, mut fast) = hub.subscribe("x");
        for i in 0..2 {
            hub.publish("x", &format!("f{i}"));
            assert_eq!(fast.try_recv().unwrap(), format!("f{i}"));
        }
        // The slow one's queue is full: the third frame drops it, the fast one still gets it.
        assert_eq!(hub.publish("x", "f2"), 1);
        assert_eq!(fast.try_recv().unwrap(), "f2");
        assert_eq!(hub.subscribers("x"), 1);
        // The slow one reads what was queued, then sees the end.
        assert_eq!(slow.try_recv().unwrap(), "f0");
        assert_eq!(slow.try_recv().unwrap(), "f1");
        assert!(matches!(
            slow.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn unsubscribe_forgets_the_subscriber() {
        let hub = Hub::new(2);
        let (id, _rx) = hub.subscribe("x");
        hub.unsubscribe("x", id);
        assert_eq!(hub.subscribers("x"), 0);
        assert_eq!(hub.publish("x", "f"), 0);
    }
}
