//! [`InboxCursor`]: what a client has done with its inbox entries, so that it purges only what
//! it has read (PROFILE P-X1).
//!
//! A client that reads entries concurrently (several fetches in flight) must not purge up to
//! the highest id it has *heard*: an entry below it may still be being read, and a purge would
//! drop it before it is read (if the fetch then fails, nothing is left to retry from). The
//! cursor purges up to just below the oldest entry still being read, or everything heard when
//! nothing is.

use std::collections::BTreeSet;

/// The state of one inbox, by entry id (P-X1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxCursor {
    heard: Option<u128>,
    reading: BTreeSet<u128>,
    purged: Option<u128>,
}

impl InboxCursor {
    /// An entry was heard (pushed or played back); `reading`: it is being read now.
    pub fn heard(&mut self, id: u128, reading: bool) {
        self.heard = self.heard.max(Some(id));
        if reading {
            self.reading.insert(id);
        }
    }

    /// The entry has been read (or given up on for good): it may be purged.
    pub fn read(&mut self, id: u128) {
        self.reading.remove(&id);
    }

    /// The inbox was purged up to `upto`.
    pub fn purged(&mut self, upto: u128) {
        self.purged = self.purged.max(Some(upto));
    }

    /// The `upto` to purge with now, if it moved since the last purge: every id below the
    /// oldest entry still being read, or all heard when nothing is.
    pub fn purgeable(&self) -> Option<u128> {
        let upto = match self.reading.first() {
            Some(&oldest) => oldest.checked_sub(1)?,
            None => self.heard?,
        };
        (self.purged < Some(upto)).then_some(upto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purges_stop_below_the_oldest_entry_being_read() {
        let mut c = InboxCursor::default();
        assert_eq!(c.purgeable(), None, "nothing heard");
        c.heard(5, true);
        c.heard(6, false);
        c.heard(7, true);
        assert_eq!(c.purgeable(), Some(4));
        c.read(5);
        assert_eq!(c.purgeable(), Some(6));
        c.read(7);
        assert_eq!(c.purgeable(), Some(7));
        c.purged(7);
        assert_eq!(c.purgeable(), None, "already purged");
        c.heard(8, true);
        assert_eq!(c.purgeable(), None, "7 is purged, 8 is being read");
        c.read(8);
        assert_eq!(c.purgeable(), Some(8));
        c.heard(0, true);
        assert_eq!(c.purgeable(), None, "nothing lies below id 0");
    }
}
