//! Conversions between [`Term`] and [`eetf::Term`] (feature `eetf`): `TryFrom` both ways,
//! described on [`EetfError`].

use super::keys::has_duplicate_keys;
use super::{Atom, BigInt, Export, Fun, MAX_DEPTH, Pid, Port, Reference, Term, trim_magnitude};
use bytes::Bytes;
use num_bigint::Sign;
use std::fmt;

/// Why a [`Term`] and an [`eetf::Term`] do not convert: a value that exists on one side of
/// the bridge and not on the other.
///
/// The bridge (feature `eetf`) is for code that already holds `eetf` values: `TryFrom` in
/// both directions, by value and by reference. Each crate can hold values the other refuses;
/// those are an `EetfError`, never a panic.
///
/// | beamlink | eetf | notes |
/// |---|---|---|
/// | `Int` | `FixInteger` when it fits an `i32`, else `BigInteger` | eetf → beamlink: any integer that fits an `i64` is `Int` |
/// | `Big` | `BigInteger` | |
/// | `Float` | `Float` | NaN and infinities: [`EetfError::FloatNotFinite`] |
/// | `Atom` | `Atom` | more than 255 characters: [`EetfError::AtomTooLong`] |
/// | `Binary` | `Binary` | also from a `BitBinary` with 8 bits in its last byte |
/// | `Bits` | `BitBinary` | eetf keeps the last byte's bits in its low end, beamlink in its high end |
/// | `Pid`, `Port`, `Ref`, `Export` | `Pid`, `Port`, `Reference`, `ExternalFun` | a reference needs 1 to 5 id words |
/// | `Fun` | `InternalFun::New` | `InternalFun::Old` (`FUN_EXT`, which no BEAM still writes): [`EetfError::OldFun`] |
/// | `Tuple` | `Tuple` | |
/// | `List` | `List` | also from `ByteList`, and from an `ImproperList` whose tail is a list |
/// | `ImproperList` | `ImproperList` | |
/// | `Map` (pairs in order) | `Map` (a `HashMap`: order is lost) | keys equal once converted: [`EetfError::DuplicateMapKey`] |
///
/// ```
/// use beamlink_proto::term::Term;
///
/// let term = Term::tuple([Term::atom("ok"), Term::Int(1 << 40)]);
/// let theirs = eetf::Term::try_from(&term)?;
/// assert_eq!(theirs.to_string(), "{'ok',1099511627776}");
/// assert_eq!(Term::try_from(theirs)?, term);
/// # Ok::<(), beamlink_proto::term::EetfError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EetfError {
    /// An atom of more than 255 characters, which the BEAM refuses.
    AtomTooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// An infinite or NaN float, which the BEAM does not have.
    FloatNotFinite,
    /// A bitstring whose bit count in the last byte is not one both sides can hold:
    /// eetf's `tail_bits_size` outside 1..=8 (0 only for an empty one), beamlink's
    /// `last_bits` outside 1..=7 or without data bytes.
    BadBitCount {
        /// The bit count found.
        bits: u8,
    },
    /// A reference with no id words or more than five.
    ReferenceLength {
        /// The number of id words.
        words: usize,
    },
    /// eetf's `InternalFun::Old` (`FUN_EXT`): no BEAM since R16 writes it, beamlink does not
    /// hold it.
    OldFun,
    /// A fun's `old_index` or `old_uniq` outside the `i32` eetf holds it in.
    FunFieldOutOfRange {
        /// `old_index` or `old_uniq`.
        field: &'static str,
    },
    /// Two map keys that are equal once converted (eetf's `FixInteger(1)` and
    /// `BigInteger(1)` are both the integer 1; a hand-built beamlink map may repeat a key).
    DuplicateMapKey,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An OTP 29 native record ([`Term::Record`]), which eetf has no type for.
    NativeRecord,
}

impl fmt::Display for EetfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EetfError::AtomTooLong { chars } => {
                write!(f, "atom of {chars} characters (max 255)")
            }
            EetfError::FloatNotFinite => f.write_str("float is not finite"),
            EetfError::BadBitCount { bits } => {
                write!(f, "bitstring with {bits} bits in its last byte")
            }
            EetfError::ReferenceLength { words } => {
                write!(f, "reference of {words} id words (1..=5 allowed)")
            }
            EetfError::OldFun => f.write_str("old-style fun (FUN_EXT) is not supported"),
            EetfError::FunFieldOutOfRange { field } => {
                write!(f, "fun {field} does not fit an i32")
            }
            EetfError::DuplicateMapKey => f.write_str("map holds a key twice"),
            EetfError::TooDeep => write!(f, "nesting deeper than {MAX_DEPTH} levels"),
            EetfError::NativeRecord => f.write_str("a native record, which eetf cannot hold"),
        }
    }
}

impl std::error::Error for EetfError {}

fn nested(depth: usize) -> Result<usize, EetfError> {
    if depth >= MAX_DEPTH {
        Err(EetfError::TooDeep)
    } else {
        Ok(depth + 1)
    }
}

fn check_atom(text: &str) -> Result<(), EetfError> {
    if text.len() > Atom::MAX_CHARS {
        let chars = text.chars().count();
        if chars > Atom::MAX_CHARS {
            return Err(EetfError::AtomTooLong { chars });
        }
    }
    Ok(())
}

fn finite(value: f64) -> Result<f64, EetfError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(EetfError::FloatNotFinite)
    }
}

// ---- beamlink -> eetf ----------------------------------------------------------------------

impl TryFrom<&Term> for eetf::Term {
    type Error = EetfError;

    fn try_from(term: &Term) -> Result<eetf::Term, EetfError> {
        to_eetf(term, 0)
    }
}

impl TryFrom<Term> for eetf::Term {
    type Error = EetfError;

    fn try_from(term: Term) -> Result<eetf::Term, EetfError> {
        to_eetf(&term, 0)
    }
}

/// A dispatcher with no locals: with the container helpers it is the frame paid once per
/// nesting level. Measured at [`MAX_DEPTH`] levels in an unoptimised build: about 830 KiB of
/// stack this way and 700 KiB the other (iterator adapters instead of loops took 2.6 MiB,
/// more than a tokio worker has).
fn to_eetf(term: &Term, depth: usize) -> Result<eetf::Term, EetfError> {
    match term {
        Term::Tuple(items) | Term::List(items) => seq_to_eetf(term, items, depth),
        Term::ImproperList(items, tail) => improper_to_eetf(items, tail, depth),
        Term::Map(pairs) => map_to_eetf(pairs, depth),
        Term::Fun(fun) => fun_to_eetf(fun, depth),
        _ => leaf_to_eetf(term),
    }
}

// Plain loops rather than iterator adapters: in an unoptimised build every adapter is one
// more frame per nesting level.
fn to_eetf_all(items: &[Term], depth: usize) -> Result<Vec<eetf::Term>, EetfError> {
    let mut out = Vec::with_capacity(items.len());
    for t in items {
        out.push(to_eetf(t, depth)?);
    }
    Ok(out)
}

#[inline(never)]
fn seq_to_eetf(term: &Term, items: &[Term], depth: usize) -> Result<eetf::Term, EetfError> {
    let depth = nested(depth)?;
    let mut elements = Vec::with_capacity(items.len());
    for t in items {
        elements.push(to_eetf(t, depth)?);
    }
    Ok(match term {
        Term::Tuple(_) => eetf::Term::Tuple(eetf::Tuple { elements }),
        _ => eetf::Term::List(eetf::List { elements }),
    })
}

#[inline(never)]
fn improper_to_eetf(items: &[Term], tail: &Term, depth: usize) -> Result<eetf::Term, EetfError> {
    let depth = nested(depth)?;
    Ok(eetf::Term::from(eetf::ImproperList::from((
        to_eetf_all(items, depth)?,
        to_eetf(tail, depth)?,
    ))))
}

#[inline(never)]
fn map_to_eetf(pairs: &[(Term, Term)], depth: usize) -> Result<eetf::Term, EetfError> {
    let depth = nested(depth)?;
    let mut map = std::collections::HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if map.insert(to_eetf(k, depth)?, to_eetf(v, depth)?).is_some() {
            return Err(EetfError::DuplicateMapKey);
        }
    }
    Ok(eetf::Term::from(eetf::Map::from(map)))
}

fn eetf_atom(atom: &Atom) -> Result<eetf::Atom, EetfError> {
    check_atom(atom.as_str())?;
    Ok(eetf::Atom::from(atom.as_str()))
}

fn eetf_pid(pid: &Pid) -> Result<eetf::Pid, EetfError> {
    Ok(eetf::Pid {
        node: eetf_atom(&pid.node)?,
        id: pid.id,
        serial: pid.serial,
        creation: pid.creation,
    })
}

#[inline(never)]
fn leaf_to_eetf(term: &Term) -> Result<eetf::Term, EetfError> {
    Ok(match term {
        Term::Int(i) => match i32::try_from(*i) {
            Ok(small) => eetf::Term::from(eetf::FixInteger::from(small)),
            Err(_) => eetf::Term::from(eetf::BigInteger::from(*i)),
        },
        Term::Big(b) => {
            let sign = if b.negative { Sign::Minus } else { Sign::Plus };
            eetf::Term::from(eetf::BigInteger {
                value: num_bigint::BigInt::from_bytes_le(sign, &b.magnitude),
            })
        }
        Term::Float(x) => eetf::Term::from(eetf::Float { value: finite(*x)? }),
        Term::Atom(a) => eetf::Term::from(eetf_atom(a)?),
        Term::Binary(b) => eetf::Term::from(eetf::Binary::from(b.to_vec())),
        Term::Bits { data, last_bits } => {
            let bits = *last_bits;
            let (Some(&last), 1..=7) = (data.last(), bits) else {
                return Err(EetfError::BadBitCount { bits });
            };
            let mut bytes = data.to_vec();
            let end = bytes.len() - 1;
            bytes[end] = last >> (8 - bits);
            eetf::Term::from(eetf::BitBinary::from((bytes, bits)))
        }
        Term::Pid(p) => eetf::Term::from(eetf_pid(p)?),
        Term::Port(p) => eetf::Term::from(eetf::Port {
            node: eetf_atom(&p.node)?,
            id: p.id,
            creation: p.creation,
        }),
        Term::Ref(r) => eetf::Term::from(eetf::Reference {
            node: eetf_atom(&r.node)?,
            id: r.ids().to_vec(),
            creation: r.creation,
        }),
        Term::Export(e) => eetf::Term::from(eetf::ExternalFun {
            module: eetf_atom(&e.module)?,
            function: eetf_atom(&e.function)?,
            arity: e.arity,
        }),
        Term::Record(_) => return Err(EetfError::NativeRecord),
        // Never reached: `to_eetf` takes the containers.
        Term::Tuple(_) | Term::List(_) | Term::ImproperList(..) | Term::Map(_) | Term::Fun(_) => {
            return to_eetf(term, 0);
        }
    })
}

#[inline(never)]
fn fun_to_eetf(fun: &Fun, depth: usize) -> Result<eetf::Term, EetfError> {
    let depth = nested(depth)?;
    let small = |value: i64, field| {
        i32::try_from(value).map_err(|_| EetfError::FunFieldOutOfRange { field })
    };
    Ok(eetf::Term::from(eetf::InternalFun::New {
        module: eetf_atom(&fun.module)?,
        arity: fun.arity,
        pid: eetf_pid(&fun.pid)?,
        free_vars: to_eetf_all(&fun.free_vars, depth)?,
        index: fun.index,
        uniq: fun.uniq,
        old_index: small(fun.old_index, "old_index")?,
        old_uniq: small(fun.old_uniq, "old_uniq")?,
    }))
}

// ---- eetf -> beamlink ----------------------------------------------------------------------

impl TryFrom<&eetf::Term> for Term {
    type Error = EetfError;

    fn try_from(term: &eetf::Term) -> Result<Term, EetfError> {
        from_eetf(term, 0)
    }
}

impl TryFrom<eetf::Term> for Term {
    type Error = EetfError;

    fn try_from(term: eetf::Term) -> Result<Term, EetfError> {
        from_eetf(&term, 0)
    }
}

fn from_eetf_all(items: &[eetf::Term], depth: usize) -> Result<Vec<Term>, EetfError> {
    let mut out = Vec::with_capacity(items.len());
    for t in items {
        out.push(from_eetf(t, depth)?);
    }
    Ok(out)
}

/// A dispatcher with no locals, as [`to_eetf`].
fn from_eetf(term: &eetf::Term, depth: usize) -> Result<Term, EetfError> {
    match term {
        eetf::Term::Tuple(t) => seq_from_eetf(true, &t.elements, depth),
        eetf::Term::List(l) => seq_from_eetf(false, &l.elements, depth),
        eetf::Term::ImproperList(l) => improper_from_eetf(l, depth),
        eetf::Term::Map(m) => map_from_eetf(m, depth),
        eetf::Term::InternalFun(fun) => fun_from_eetf(fun, depth),
        _ => leaf_from_eetf(term),
    }
}

#[inline(never)]
fn seq_from_eetf(tuple: bool, items: &[eetf::Term], depth: usize) -> Result<Term, EetfError> {
    let depth = nested(depth)?;
    let mut elements = Vec::with_capacity(items.len());
    for t in items {
        elements.push(from_eetf(t, depth)?);
    }
    Ok(if tuple {
        Term::Tuple(elements)
    } else {
        Term::List(elements)
    })
}

#[inline(never)]
fn map_from_eetf(map: &eetf::Map, depth: usize) -> Result<Term, EetfError> {
    let depth = nested(depth)?;
    let mut pairs = Vec::with_capacity(map.map.len());
    for (k, v) in &map.map {
        pairs.push((from_eetf(k, depth)?, from_eetf(v, depth)?));
    }
    if has_duplicate_keys(&pairs) {
        return Err(EetfError::DuplicateMapKey);
    }
    Ok(Term::Map(pairs))
}

/// eetf allows any tail; the BEAM's list `[a, b | [c]]` is the proper list `[a, b, c]`, and
/// `[ | x]` with no head elements is `x`.
#[inline(never)]
fn improper_from_eetf(list: &eetf::ImproperList, depth: usize) -> Result<Term, EetfError> {
    let depth = nested(depth)?;
    let mut head = from_eetf_all(&list.elements, depth)?;
    let tail = from_eetf(&list.last, depth)?;
    Ok(match tail {
        Term::List(rest) => {
            head.extend(rest);
            Term::List(head)
        }
        Term::ImproperList(rest, tail) => {
            head.extend(rest);
            Term::ImproperList(head, tail)
        }
        tail if head.is_empty() => tail,
        tail => Term::ImproperList(head, Box::new(tail)),
    })
}

fn atom_from_eetf(atom: &eetf::Atom) -> Result<Atom, EetfError> {
    check_atom(&atom.name)?;
    Ok(Atom::new(&atom.name))
}

fn pid_from_eetf(pid: &eetf::Pid) -> Result<Pid, EetfError> {
    Ok(Pid {
        node: atom_from_eetf(&pid.node)?,
        id: pid.id,
        serial: pid.serial,
        creation: pid.creation,
    })
}

fn integer_from_eetf(value: &num_bigint::BigInt) -> Term {
    match i64::try_from(value) {
        Ok(i) => Term::Int(i),
        Err(_) => {
            let (sign, magnitude) = value.to_bytes_le();
            Term::Big(BigInt {
                negative: sign == Sign::Minus,
                magnitude: trim_magnitude(magnitude),
            })
        }
    }
}

#[inline(never)]
fn leaf_from_eetf(term: &eetf::Term) -> Result<Term, EetfError> {
    Ok(match term {
        eetf::Term::Atom(a) => Term::Atom(atom_from_eetf(a)?),
        eetf::Term::FixInteger(i) => Term::Int(i.value.into()),
        eetf::Term::BigInteger(i) => integer_from_eetf(&i.value),
        eetf::Term::Float(x) => Term::Float(finite(x.value)?),
        eetf::Term::Pid(p) => Term::Pid(pid_from_eetf(p)?),
        eetf::Term::Port(p) => Term::Port(Box::new(Port {
            node: atom_from_eetf(&p.node)?,
            id: p.id,
            creation: p.creation,
        })),
        eetf::Term::Reference(r) => {
            let node = atom_from_eetf(&r.node)?;
            let reference = Reference::new(node, r.creation, &r.id)
                .ok_or(EetfError::ReferenceLength { words: r.id.len() })?;
            Term::Ref(Box::new(reference))
        }
        eetf::Term::ExternalFun(e) => Term::Export(Box::new(Export {
            module: atom_from_eetf(&e.module)?,
            function: atom_from_eetf(&e.function)?,
            arity: e.arity,
        })),
        eetf::Term::Binary(b) => Term::Binary(Bytes::copy_from_slice(&b.bytes)),
        eetf::Term::BitBinary(b) => bits_from_eetf(b)?,
        eetf::Term::ByteList(l) => {
            Term::List(l.bytes.iter().map(|&b| Term::Int(b.into())).collect())
        }
        // Never reached: `from_eetf` takes the containers.
        eetf::Term::Tuple(_)
        | eetf::Term::List(_)
        | eetf::Term::ImproperList(_)
        | eetf::Term::Map(_)
        | eetf::Term::InternalFun(_) => return from_eetf(term, 0),
    })
}

fn bits_from_eetf(b: &eetf::BitBinary) -> Result<Term, EetfError> {
    let bits = b.tail_bits_size;
    Ok(match (b.bytes.last(), bits) {
        (None, 0 | 8) => Term::Binary(Bytes::new()),
        (Some(_), 8) => Term::Binary(Bytes::copy_from_slice(&b.bytes)),
        (Some(&last), 1..=7) => {
            let mut data = b.bytes.clone();
            let end = data.len() - 1;
            data[end] = last << (8 - bits);
            Term::Bits {
                data: Bytes::from(data),
                last_bits: bits,
            }
        }
        _ => return Err(EetfError::BadBitCount { bits }),
    })
}

#[inline(never)]
fn fun_from_eetf(fun: &eetf::InternalFun, depth: usize) -> Result<Term, EetfError> {
    let depth = nested(depth)?;
    match fun {
        eetf::InternalFun::Old { .. } => Err(EetfError::OldFun),
        eetf::InternalFun::New {
            module,
            arity,
            pid,
            free_vars,
            index,
            uniq,
            old_index,
            old_uniq,
        } => Ok(Term::Fun(Box::new(Fun {
            arity: *arity,
            uniq: *uniq,
            index: *index,
            module: atom_from_eetf(module)?,
            old_index: (*old_index).into(),
            old_uniq: (*old_uniq).into(),
            pid: pid_from_eetf(pid)?,
            free_vars: from_eetf_all(free_vars, depth)?,
        }))),
    }
}
