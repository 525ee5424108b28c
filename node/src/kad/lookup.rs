//! The iterative lookup: Kademlia's node and value search as a pure state machine.
//!
//! A lookup keeps a shortlist of candidates ordered by XOR distance to the target. It keeps up
//! to α requests in flight to the closest candidates not yet asked, merges the contacts each
//! reply brings, and ends when the k closest candidates it knows have all answered (or nothing
//! is left to ask). A FIND_VALUE lookup ends as soon as a candidate returns a value whose key is
//! the target (a value that does not hash to the key is ignored: the DHT is content-addressed,
//! so a lying peer cannot substitute a message).
//!
//! A request that times out frees its α slot, but a late reply is still taken: the candidate
//! then counts as answered and its contacts are merged.
//!
//! Hops: the candidates first taken from the routing table are at hop 1; a contact learned from
//! a reply of a hop-`h` candidate is at hop `h + 1`. A lookup reports the hop of the candidate
//! that returned the value, or the largest hop among the k closest that answered.

use std::collections::BTreeMap;

use crate::id::{Distance, NodeId};
use crate::wire::Contact;

/// What a lookup searches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// FIND_NODE: the k closest nodes.
    Node,
    /// FIND_VALUE: the value at the key, or the k closest nodes if none holds it.
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotAsked,
    InFlight,
    /// Timed out; a late reply is still welcome.
    TimedOut,
    Answered,
    /// Unreachable, or answered with something unusable.
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    contact: Contact,
    state: State,
    hop: u32,
}

/// An iterative FIND_NODE or FIND_VALUE in progress.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: NodeId,
    kind: LookupKind,
    k: usize,
    alpha: usize,
    local: NodeId,
    shortlist: BTreeMap<Distance, Candidate>,
    in_flight: usize,
    value: Option<(String, u32)>,
    /// Requests sent.
    pub messages: u32,
    /// Replies received.
    pub replies: u32,
}

/// The outcome of a finished lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResult {
    /// The key or node ID searched for.
    pub target: NodeId,
    /// The value found (FIND_VALUE only).
    pub value: Option<String>,
    /// The closest nodes that answered, closest first (at most k).
    pub closest: Vec<Contact>,
    /// Hops (see the module docs).
    pub hops: u32,
    /// Requests sent.
    pub messages: u32,
}

impl Lookup {
    /// A lookup for `target`, seeded with `initial` contacts (from the routing table, or the
    /// bootstrap addresses). `local` is never asked.
    pub fn new(
        target: NodeId,
        kind: LookupKind,
        k: usize,
        alpha: usize,
        local: NodeId,
        initial: impl IntoIterator<Item = Contact>,
    ) -> Lookup {
        let mut l = Lookup {
            target,
            kind,
            k,
            alpha,
            local,
            shortlist: BTreeMap::new(),
            in_flight: 0,
            value: None,
            messages: 0,
            replies: 0,
        };
        for c in initial {
            l.add(c, 1);
        }
        l
    }

    /// The target.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// The kind.
    pub fn kind(&self) -> LookupKind {
        self.kind
    }

    fn add(&mut self, c: Contact, hop: u32) {
        if c.node_id == self.local {
            return;
        }
        self.shortlist
            .entry(c.node_id.distance(&self.target))
            .or_insert(Candidate {
                contact: c,
                state: State::NotAsked,
                hop,
            });
    }

    /// The next contacts to ask (each is now in flight). Call after every change.
    pub fn next_requests(&mut self) -> Vec<Contact> {
        let mut out = Vec::new();
        if self.is_finished() {
            return out;
        }
        let mut considered = 0;
        for cand in self.shortlist.values_mut() {
            if self.in_flight >= self.alpha {
                break;
            }
            if matches!(cand.state, State::Failed | State::TimedOut) {
                continue;
            }
            considered += 1;
            if considered > self.k {
                break;
            }
            if cand.state == State::NotAsked {
                cand.state = State::InFlight;
                self.in_flight += 1;
                self.messages += 1;
                out.push(cand.contact);
            }
        }
        out
    }

    fn find_mut(&mut self, node: &NodeId) -> Option<&mut Candidate> {
        let d = node.distance(&self.target);
        self.shortlist.get_mut(&d)
    }

    fn settle(&mut self, node: &NodeId, new_state: State) -> Option<u32> {
        let cand = self.find_mut(node)?;
        let was = cand.state;
        let hop = cand.hop;
        match (was, new_state) {
            (State::InFlight, _) => {
                cand.state = new_state;
                self.in_flight -= 1;
            }
            (State::TimedOut, State::Answered | State::Failed) => cand.state = new_state,
            _ => return None,
        }
        Some(hop)
    }

    /// `node` answered with contacts.
    pub fn on_contacts(&mut self, node: &NodeId, contacts: &[Contact]) {
        let Some(hop) = self.settle(node, State::Answered) else {
            return;
        };
        self.replies += 1;
        for c in contacts {
            self.add(*c, hop + 1);
        }
    }

    /// `node` answered with a value (FIND_VALUE). Returns false (and counts the node as failed)
    /// when the value does not hash to the target.
    pub fn on_value(&mut self, node: &NodeId, value: String) -> bool {
        if crate::value::key_of(&value) != self.target || self.kind != LookupKind::Value {
            self.settle(node, State::Failed);
            return false;
        }
        if let Some(hop) = self.settle(node, State::Answered) {
            self.replies += 1;
            if self.value.is_none() {
                self.value = Some((value, hop));
            }
        }
        true
    }

    /// The request to `node` timed out: its slot is freed, a late reply is still taken.
    pub fn on_timeout(&mut self, node: &NodeId) {
        self.settle(node, State::TimedOut);
    }

    /// The late-reply grace for `node` ended (or it is known unreachable): it is failed.
    pub fn on_failed(&mut self, node: &NodeId) {
        self.settle(node, State::Failed);
    }

    /// Whether the lookup is done.
    pub fn is_finished(&self) -> bool {
        if self.value.is_some() {
            return true;
        }
        let mut seen = 0;
        for cand in self.shortlist.values() {
            match cand.state {
                State::Failed | State::TimedOut => continue,
                State::Answered => {}
                State::NotAsked | State::InFlight => return false,
            }
            seen += 1;
            if seen == self.k {
                break;
            }
        }
        // The k closest live candidates all answered, or every candidate has been asked and
        // none is still in flight.
        true
    }

    /// The result, once finished.
    pub fn result(&self) -> LookupResult {
        let closest: Vec<Contact> = self
            .shortlist
            .values()
            .filter(|c| c.state == State::Answered)
            .take(self.k)
            .map(|c| c.contact)
            .collect();
        let hops = match &self.value {
            Some((_, hop)) => *hop,
            None => self
                .shortlist
                .values()
                .filter(|c| c.state == State::Answered)
                .take(self.k)
                .map(|c| c.hop)
                .max()
                .unwrap_or(0),
        };
        LookupResult {
            target: self.target,
            value: self.value.as_ref().map(|(v, _)| v.clone()),
            closest,
            hops,
            messages: self.messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn c(n: u16) -> Contact {
        Contact::from_addr(SocketAddr::from(([10, 0, 0, 1], n)))
    }

    #[test]
    fn alpha_limits_in_flight_and_converges() {
        let target = NodeId::sha1(b"t");
        let initial: Vec<Contact> = (1..=10).map(c).collect();
        let mut l = Lookup::new(
            target,
            LookupKind::Node,
            4,
            3,
            NodeId::ZERO,
            initial.clone(),
        );
        let first = l.next_requests();
        assert_eq!(first.len(), 3);
        assert!(l.next_requests().is_empty(), "alpha reached");
        let mut sorted = initial.clone();
        sorted.sort_by_key(|x| x.node_id.distance(&target));
        assert_eq!(first, sorted[..3].to_vec(), "closest asked first");
        // Answer everything with no new contacts until finished.
        let mut pending = first;
        while let Some(x) = pending.pop() {
            l.on_contacts(&x.node_id, &[]);
            pending.extend(l.next_requests());
        }
        assert!(l.is_finished());
        let r = l.result();
        assert_eq!(r.closest, sorted[..4].to_vec());
        assert_eq!(r.messages, 4, "stops once the k closest answered");
        assert_eq!(r.hops, 1);
    }

    #[test]
    fn timeouts_free_slots_and_late_replies_count() {
        let target = NodeId::sha1(b"t");
        let mut l = Lookup::new(target, LookupKind::Node, 2, 1, NodeId::ZERO, [c(1), c(2)]);
        let a = l.next_requests()[0];
        l.on_timeout(&a.node_id);
        let b = l.next_requests()[0];
        assert_ne!(a, b);
        // Late reply from a still counts and brings a closer contact.
        l.on_contacts(&a.node_id, &[c(3)]);
        l.on_contacts(&b.node_id, &[]);
        while !l.is_finished() {
            for x in l.next_requests() {
                l.on_contacts(&x.node_id, &[]);
            }
        }
        let r = l.result();
        assert!(r.closest.contains(&a));
        assert!(r.closest.iter().all(|x| *x != c(9)));
    }

    #[test]
    fn value_must_hash_to_target() {
        let v = "2d2d".to_string();
        let target = crate::value::key_of(&v);
        let mut l = Lookup::new(target, LookupKind::Value, 3, 3, NodeId::ZERO, [c(1), c(2)]);
        let asked = l.next_requests();
        assert!(
            !l.on_value(&asked[0].node_id, "ffff".into()),
            "wrong value refused"
        );
        assert!(!l.is_finished());
        assert!(l.on_value(&asked[1].node_id, v.clone()));
        assert!(l.is_finished());
        assert_eq!(l.result().value, Some(v));
    }

    #[test]
    fn never_asks_local_node() {
        let me = c(1);
        let mut l = Lookup::new(NodeId::ZERO, LookupKind::Node, 3, 3, me.node_id, [me, c(2)]);
        assert_eq!(l.next_requests(), vec![c(2)]);
    }
}
