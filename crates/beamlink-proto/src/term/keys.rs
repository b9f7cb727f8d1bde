//! Exact term equality (`=:=`) and duplicate map keys, which the BEAM refuses on input.

use super::{Fun, Term};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

/// Up to this many keys, comparing every pair is cheaper than hashing.
const PAIRWISE_MAX: usize = 8;

impl Term {
    /// Erlang's exact equality `=:=` as of OTP 27: like `==` on [`Term`], except that `0.0`
    /// and `-0.0` differ. Integers are compared by value whatever their representation.
    pub fn exact_eq(&self, other: &Term) -> bool {
        exact_eq(self, other)
    }
}

/// True when two keys of `pairs` are exactly equal. Expected time linear in the size of the
/// keys: std's `RandomState` keys SipHash randomly per process, so crafted keys cannot force
/// collisions.
pub(crate) fn has_duplicate_keys(pairs: &[(Term, Term)]) -> bool {
    if pairs.len() <= PAIRWISE_MAX {
        return pairs
            .iter()
            .enumerate()
            .any(|(i, (a, _))| pairs[i + 1..].iter().any(|(b, _)| exact_eq(a, b)));
    }
    let keyed = RandomState::new();
    let mut seen = HashSet::with_capacity_and_hasher(pairs.len(), keyed.clone());
    !pairs.iter().all(|(term, _)| {
        seen.insert(Key {
            term,
            keyed: &keyed,
        })
    })
}

/// A term compared with [`exact_eq`] and hashed with [`hash_term`].
struct Key<'a> {
    term: &'a Term,
    keyed: &'a RandomState,
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        exact_eq(self.term, other.term)
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_term(self.term, state, self.keyed);
    }
}

/// Hashes so that exactly equal terms hash alike (integers by value, floats by bits).
/// `keyed` hashes map pairs, which are combined without regard to order.
fn hash_term<H: Hasher>(term: &Term, h: &mut H, keyed: &RandomState) {
    std::mem::discriminant(term).hash(h);
    match term {
        Term::Int(i) => i.hash(h),
        Term::Big(b) => {
            b.negative.hash(h);
            trimmed(&b.magnitude).hash(h);
        }
        Term::Float(x) => x.to_bits().hash(h),
        Term::Atom(a) => a.hash(h),
        Term::Binary(b) => b.hash(h),
        Term::Bits { data, last_bits } => {
            data.hash(h);
            last_bits.hash(h);
        }
        Term::Pid(p) => p.hash(h),
        Term::Port(p) => p.hash(h),
        Term::Ref(r) => r.hash(h),
        Term::Export(e) => e.hash(h),
        Term::Fun(f) => {
            (&f.module, f.index, f.uniq, f.arity, &f.pid).hash(h);
            hash_all(&f.free_vars, h, keyed);
        }
        Term::Tuple(items) | Term::List(items) => hash_all(items, h, keyed),
        Term::ImproperList(items, tail) => {
            hash_all(items, h, keyed);
            hash_term(tail, h, keyed);
        }
        Term::Map(pairs) => {
            h.write_usize(pairs.len());
            // Map equality ignores pair order, so the hash must too: combine commutatively.
            let mut sum = 0u64;
            for (k, v) in pairs {
                let mut one = keyed.build_hasher();
                hash_term(k, &mut one, keyed);
                hash_term(v, &mut one, keyed);
                sum = sum.wrapping_add(one.finish());
            }
            h.write_u64(sum);
        }
        Term::Record(r) => {
            (&r.module, &r.name, r.exported).hash(h);
            h.write_usize(r.fields.len());
            for (name, value) in &r.fields {
                name.hash(h);
                hash_term(value, h, keyed);
            }
        }
    }
}

fn hash_all<H: Hasher>(items: &[Term], h: &mut H, keyed: &RandomState) {
    h.write_usize(items.len());
    for t in items {
        hash_term(t, h, keyed);
    }
}

fn trimmed(magnitude: &[u8]) -> &[u8] {
    let used = magnitude.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &magnitude[..used]
}

fn exact_eq(a: &Term, b: &Term) -> bool {
    match (a, b) {
        (Term::Int(x), Term::Int(y)) => x == y,
        (Term::Big(x), Term::Big(y)) => {
            let (mx, my) = (trimmed(&x.magnitude), trimmed(&y.magnitude));
            mx == my && (x.negative == y.negative || mx.is_empty())
        }
        (Term::Float(x), Term::Float(y)) => x.to_bits() == y.to_bits(),
        (Term::Atom(x), Term::Atom(y)) => x == y,
        (Term::Binary(x), Term::Binary(y)) => x == y,
        (
            Term::Bits {
                data: dx,
                last_bits: bx,
            },
            Term::Bits {
                data: dy,
                last_bits: by,
            },
        ) => dx == dy && bx == by,
        (Term::Pid(x), Term::Pid(y)) => x == y,
        (Term::Port(x), Term::Port(y)) => x == y,
        (Term::Ref(x), Term::Ref(y)) => x == y,
        (Term::Export(x), Term::Export(y)) => x == y,
        (Term::Fun(x), Term::Fun(y)) => fun_eq(x, y),
        (Term::Tuple(x), Term::Tuple(y)) | (Term::List(x), Term::List(y)) => all_eq(x, y),
        (Term::ImproperList(x, tx), Term::ImproperList(y, ty)) => all_eq(x, y) && exact_eq(tx, ty),
        (Term::Map(x), Term::Map(y)) => x.len() == y.len() && map_eq(x, y),
        (Term::Record(x), Term::Record(y)) => {
            (&x.module, &x.name, x.exported) == (&y.module, &y.name, y.exported)
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|((nx, vx), (ny, vy))| nx == ny && exact_eq(vx, vy))
        }
        _ => false,
    }
}

/// Maps are equal when they hold the same pairs in any order. Keys of a map are distinct, so
/// each pair of `x` must find its key in `y` with an equal value.
fn map_eq(x: &[(Term, Term)], y: &[(Term, Term)]) -> bool {
    if x.len() <= PAIRWISE_MAX {
        return x
            .iter()
            .all(|(k, v)| y.iter().any(|(k2, v2)| exact_eq(k, k2) && exact_eq(v, v2)));
    }
    let keyed = RandomState::new();
    let mut index = HashMap::with_capacity_and_hasher(y.len(), keyed.clone());
    for (term, v) in y {
        index.insert(
            Key {
                term,
                keyed: &keyed,
            },
            v,
        );
    }
    x.iter().all(|(term, v)| {
        index
            .get(&Key {
                term,
                keyed: &keyed,
            })
            .is_some_and(|v2| exact_eq(v, v2))
    })
}

fn fun_eq(x: &Fun, y: &Fun) -> bool {
    x.module == y.module
        && x.index == y.index
        && x.uniq == y.uniq
        && x.arity == y.arity
        && x.old_index == y.old_index
        && x.old_uniq == y.old_uniq
        && x.pid == y.pid
        && all_eq(&x.free_vars, &y.free_vars)
}

fn all_eq(x: &[Term], y: &[Term]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| exact_eq(a, b))
}
