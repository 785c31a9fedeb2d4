//! Diff (pure): what the hub holds vs. the current intent -> the upserts and deletes of the next
//! incremental Update.
//!
//! Where it sits: inside `sync`, between `translate` and the wire. The hub holds exactly what the
//! agent last sent on the current stream (a full state, then deltas), so the agent keeps a copy
//! ([`Held`]) and diffs against it.

use std::collections::BTreeMap;

use fleetgate_proto::spoke::v1::{Object, ObjectRef};

/// Identity of an object inside a cluster: (kind, namespace, name).
pub type Key = (i32, String, String);

/// The objects the hub holds for this cluster, by key.
pub type Held = BTreeMap<Key, Object>;

/// The key of an object (an object without a ref has the empty key).
pub fn key(o: &Object) -> Key {
    o.r#ref
        .as_ref()
        .map(|r| (r.kind, r.namespace.clone(), r.name.clone()))
        .unwrap_or_default()
}

/// Indexes a full intent.
pub fn held_of(objects: &[Object]) -> Held {
    objects.iter().map(|o| (key(o), o.clone())).collect()
}

/// One incremental change set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    /// Objects that are new or differ from what the hub holds.
    pub upserts: Vec<Object>,
    /// Objects the hub holds that are gone.
    pub deletes: Vec<ObjectRef>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// The change set that turns `held` into `next`, in key order.
pub fn diff(held: &Held, next: &[Object]) -> Delta {
    let next = held_of(next);
    let upserts = next
        .iter()
        .filter(|(k, o)| held.get(*k) != Some(*o))
        .map(|(_, o)| o.clone())
        .collect();
    let deletes = held
        .keys()
        .filter(|k| !next.contains_key(*k))
        .map(|(kind, namespace, name)| ObjectRef {
            kind: *kind,
            namespace: namespace.clone(),
            name: name.clone(),
        })
        .collect();
    Delta { upserts, deletes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_proto::spoke::v1::Kind;

    fn obj(kind: Kind, name: &str, generation: i64) -> Object {
        Object {
            r#ref: Some(ObjectRef {
                kind: kind as i32,
                namespace: "ns".into(),
                name: name.into(),
            }),
            generation,
            ..Default::default()
        }
    }

    fn names(d: &Delta) -> (Vec<String>, Vec<String>) {
        (
            d.upserts
                .iter()
                .map(|o| o.r#ref.clone().unwrap().name)
                .collect(),
            d.deletes.iter().map(|r| r.name.clone()).collect(),
        )
    }

    #[test]
    fn diff_table() {
        let g = |n: &str, gen_| obj(Kind::Gateway, n, gen_);
        let r = |n: &str, gen_| obj(Kind::HttpRoute, n, gen_);
        type Case = (
            &'static str,
            Vec<Object>,
            Vec<Object>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            ("nothing held, nothing new", vec![], vec![], vec![], vec![]),
            (
                "all new",
                vec![],
                vec![g("a", 1), r("b", 1)],
                vec!["a", "b"],
                vec![],
            ),
            (
                "unchanged",
                vec![g("a", 1)],
                vec![g("a", 1)],
                vec![],
                vec![],
            ),
            (
                "changed",
                vec![g("a", 1), r("b", 1)],
                vec![g("a", 2), r("b", 1)],
                vec!["a"],
                vec![],
            ),
            (
                "vanished",
                vec![g("a", 1), r("b", 1)],
                vec![g("a", 1)],
                vec![],
                vec!["b"],
            ),
            (
                "same name, other kind is another object",
                vec![g("a", 1)],
                vec![r("a", 1)],
                vec!["a"],
                vec!["a"],
            ),
        ];
        for (name, held, next, ups, dels) in cases {
            let d = diff(&held_of(&held), &next);
            let (u, del) = names(&d);
            assert_eq!(u, ups, "{name}: upserts");
            assert_eq!(del, dels, "{name}: deletes");
            assert_eq!(d.is_empty(), ups.is_empty() && dels.is_empty(), "{name}");
        }
        let d = diff(&held_of(&[g("a", 1)]), &[r("a", 1)]);
        assert_eq!(d.deletes[0].kind, Kind::Gateway as i32);
    }
}
