//! One behavioural suite for every [`ValueStore`], run against [`MemStore`] and
//! [`SqliteStore`], plus a model-based comparison of the two.

use proptest::prelude::*;

use super::*;

fn v(n: u8, publisher: u8, len: usize, timestamp: u64) -> StoredValue {
    StoredValue {
        key: NodeId::sha1([n]),
        value: "a".repeat(len),
        publisher: NodeId::sha1([200, publisher]),
        timestamp,
    }
}

fn quotas(per_pub: usize, total: usize, bytes: u64) -> Quotas {
    Quotas {
        max_values_per_publisher: per_pub,
        max_values: total,
        max_bytes: bytes,
    }
}

fn suite<S: ValueStore>(make: impl Fn(Quotas) -> S) {
    // put / get / AlreadyHeld changes nothing.
    let mut s = make(quotas(10, 10, 1_000));
    assert_eq!(s.put(v(1, 1, 10, 100)), Ok(PutOutcome::Stored));
    assert_eq!(s.put(v(1, 2, 20, 999)), Ok(PutOutcome::AlreadyHeld));
    assert_eq!(s.get(&NodeId::sha1([1])), Some(v(1, 1, 10, 100)));
    assert_eq!((s.len(), s.bytes()), (1, 10));
    assert!(s.contains(&NodeId::sha1([1])) && !s.contains(&NodeId::sha1([2])));

    // Per-publisher quota at its exact boundary.
    let mut s = make(quotas(2, 10, 1_000));
    s.put(v(1, 1, 1, 1)).unwrap();
    s.put(v(2, 1, 1, 1)).unwrap();
    assert!(matches!(s.put(v(3, 1, 1, 1)), Err(StoreError::Quota(_))));
    assert_eq!(
        s.put(v(3, 2, 1, 1)),
        Ok(PutOutcome::Stored),
        "other publisher fits"
    );
    assert!(s.remove(&NodeId::sha1([1])).unwrap());
    assert_eq!(
        s.put(v(4, 1, 1, 1)),
        Ok(PutOutcome::Stored),
        "room again after remove"
    );

    // Total count quota.
    let mut s = make(quotas(10, 2, 1_000));
    s.put(v(1, 1, 1, 1)).unwrap();
    s.put(v(2, 2, 1, 1)).unwrap();
    assert!(matches!(s.put(v(3, 3, 1, 1)), Err(StoreError::Quota(_))));

    // Byte quota: exactly full is allowed, one more byte is not.
    let mut s = make(quotas(10, 10, 100));
    s.put(v(1, 1, 60, 1)).unwrap();
    assert!(matches!(s.put(v(2, 1, 41, 1)), Err(StoreError::Quota(_))));
    assert_eq!(s.put(v(2, 1, 40, 1)), Ok(PutOutcome::Stored));
    assert_eq!(s.bytes(), 100);

    // Expiry at its exact boundary: timestamp + expiry <= now is gone.
    let mut s = make(quotas(10, 10, 1_000));
    s.put(v(1, 1, 1, 1_000)).unwrap();
    s.put(v(2, 1, 1, 1_001)).unwrap();
    assert_eq!(s.expire(1_500, 500), Ok(1));
    assert!(!s.contains(&NodeId::sha1([1])) && s.contains(&NodeId::sha1([2])));
    assert_eq!(
        s.expire(10, 500),
        Ok(0),
        "no underflow before the epoch + expiry"
    );

    // Keys ascending; remove of an absent key.
    let mut s = make(quotas(10, 10, 1_000));
    for n in [5, 1, 9, 3] {
        s.put(v(n, 1, 1, 1)).unwrap();
    }
    let keys = s.keys();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 4);
    assert_eq!(s.remove(&NodeId::sha1([77])), Ok(false));
    assert!(s.flush().is_ok());

    // Publications (P-K2): saved, updated by key, listed in key order, removed.
    let mut s = make(quotas(10, 10, 1_000));
    let p = |n: u8, at: u64| Publication {
        key: NodeId::sha1([n]),
        value: format!("v{n}"),
        republish_at: at,
    };
    assert_eq!(s.publications(), Ok(vec![]));
    s.save_publication(&p(2, 10)).unwrap();
    s.save_publication(&p(1, 20)).unwrap();
    s.save_publication(&p(2, 30)).unwrap();
    let mut want = vec![p(1, 20), p(2, 30)];
    want.sort_by_key(|p| p.key);
    assert_eq!(s.publications(), Ok(want));
    assert_eq!(s.remove_publication(&NodeId::sha1([1])), Ok(true));
    assert_eq!(s.remove_publication(&NodeId::sha1([1])), Ok(false));
    assert_eq!(s.publications(), Ok(vec![p(2, 30)]));
    assert!(s.is_empty(), "a publication is not a held value");
}

#[test]
fn mem_store_behaves() {
    suite(MemStore::new);
}

#[test]
fn sqlite_store_behaves() {
    let dirs = std::cell::RefCell::new(Vec::new());
    suite(|q| {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(d.path(), q).unwrap();
        dirs.borrow_mut().push(d);
        s
    });
}

#[test]
fn sqlite_store_keeps_values_and_quotas_across_reopen() {
    let d = tempfile::tempdir().unwrap();
    let q = quotas(2, 10, 1_000);
    {
        let mut s = SqliteStore::open(d.path(), q).unwrap();
        s.put(v(1, 1, 10, 5)).unwrap();
        s.put(v(2, 1, 10, 6)).unwrap();
        s.save_publication(&Publication {
            key: NodeId::sha1([2]),
            value: "a".repeat(10),
            republish_at: 99,
        })
        .unwrap();
        s.flush().unwrap();
    }
    let mut s = SqliteStore::open(d.path(), q).unwrap();
    assert_eq!(
        s.publications().unwrap(),
        vec![Publication {
            key: NodeId::sha1([2]),
            value: "a".repeat(10),
            republish_at: 99,
        }],
        "publications survive a reopen (P-K2)"
    );
    assert_eq!(s.get(&NodeId::sha1([2])), Some(v(2, 1, 10, 6)));
    assert_eq!((s.len(), s.bytes()), (2, 20));
    assert!(
        matches!(s.put(v(3, 1, 1, 1)), Err(StoreError::Quota(_))),
        "ledger rebuilt at open"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, usize, u64),
    Remove(u8),
    Expire(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..12, 0u8..3, 0usize..40, 0u64..100).prop_map(|(n, p, l, t)| Op::Put(n, p, l, t)),
        (0u8..12).prop_map(Op::Remove),
        (0u64..150).prop_map(Op::Expire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn sqlite_matches_memory_model(ops in proptest::collection::vec(op(), 1..40)) {
        let q = quotas(4, 8, 200);
        let d = tempfile::tempdir().unwrap();
        let mut a = MemStore::new(q);
        let mut b = SqliteStore::open(d.path(), q).unwrap();
        for o in ops {
            match o {
                Op::Put(n, p, l, t) => prop_assert_eq!(a.put(v(n, p, l, t)).is_ok(), b.put(v(n, p, l, t)).is_ok()),
                Op::Remove(n) => prop_assert_eq!(a.remove(&NodeId::sha1([n])), b.remove(&NodeId::sha1([n]))),
                Op::Expire(now) => prop_assert_eq!(a.expire(now, 50), b.expire(now, 50)),
            }
            prop_assert_eq!(a.keys(), b.keys());
            prop_assert_eq!((a.len(), a.bytes()), (b.len(), b.bytes()));
        }
        for k in a.keys() {
            prop_assert_eq!(a.get(&k), b.get(&k));
        }
    }
}
