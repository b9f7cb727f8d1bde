//! How a [`Term`] prints: roughly as Erlang's `io_lib:format("~p", [T])` does, on one line
//! (no line breaking), so that logs and errors show terms the way an Erlang operator reads them.

use super::Term;
use std::fmt;

impl fmt::Display for Term {
    /// Prints the term roughly as Erlang's `~p` would (no line breaking).
    ///
    /// Children are printed by direct calls rather than `write!`, so a nesting level costs
    /// one small frame, not a trip through `core::fmt::write`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, items: &[Term]) -> fmt::Result {
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                fmt::Display::fmt(t, f)?;
            }
            Ok(())
        }
        match self {
            Term::Tuple(t) => {
                f.write_str("{")?;
                seq(f, t)?;
                f.write_str("}")
            }
            Term::List(l) => {
                f.write_str("[")?;
                seq(f, l)?;
                f.write_str("]")
            }
            Term::ImproperList(h, t) => {
                f.write_str("[")?;
                seq(f, h)?;
                f.write_str("|")?;
                fmt::Display::fmt(t, f)?;
                f.write_str("]")
            }
            Term::Map(m) => {
                f.write_str("#{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    fmt::Display::fmt(k, f)?;
                    f.write_str(" => ")?;
                    fmt::Display::fmt(v, f)?;
                }
                f.write_str("}")
            }
            Term::Record(r) => {
                write!(f, "#{}:{}{{", r.module, r.name)?;
                for (i, (name, value)) in r.fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name} = ")?;
                    fmt::Display::fmt(value, f)?;
                }
                f.write_str("}")
            }
            _ => self.fmt_leaf(f),
        }
    }
}

impl Term {
    #[inline(never)]
    fn fmt_leaf(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Int(i) => write!(f, "{i}"),
            Term::Big(b) => {
                // Hex is enough for logs; exact decimal is not worth a bignum dependency.
                f.write_str(if b.negative { "-16#" } else { "16#" })?;
                for byte in b.magnitude.iter().rev() {
                    write!(f, "{byte:02X}")?;
                }
                Ok(())
            }
            Term::Float(x) => write!(f, "{x:?}"),
            Term::Atom(a) => write!(f, "{a}"),
            Term::Binary(b) => {
                f.write_str("<<")?;
                for (i, byte) in b.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{byte}")?;
                }
                f.write_str(">>")
            }
            Term::Bits { data, last_bits } => {
                write!(f, "<<{} bytes, {last_bits} bits>>", data.len())
            }
            Term::Pid(p) => write!(f, "{p}"),
            Term::Port(p) => write!(f, "#Port<{}.{}>", p.node, p.id),
            Term::Ref(r) => write!(f, "{r}"),
            Term::Fun(fun) => write!(f, "#Fun<{}.{}>", fun.module, fun.index),
            Term::Export(e) => write!(f, "fun {}:{}/{}", e.module, e.function, e.arity),
            Term::Tuple(_)
            | Term::List(_)
            | Term::ImproperList(..)
            | Term::Map(_)
            | Term::Record(_) => fmt::Display::fmt(self, f),
        }
    }
}
