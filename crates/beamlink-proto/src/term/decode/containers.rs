//! Terms that hold other terms: tuples, lists (strings included), maps, funs and native
//! records. Each
//! claims the bytes its elements will need before it allocates for them.

use super::Decoder;
use crate::term::error::DecodeError;
use crate::term::tag::*;
use crate::term::{Fun, Record, Term, keys};

impl Decoder<'_> {
    pub(super) fn tuple(&mut self, at: usize, tag: u8, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let arity = if tag == SMALL_TUPLE_EXT {
            self.u8()?.into()
        } else {
            self.u32()?
        };
        self.claim(at, arity, 1, 0)?;
        let mut items = Vec::with_capacity(arity as usize);
        for _ in 0..arity {
            self.settle();
            if !self.push_small_int(&mut items)? {
                items.push(self.value(inner)?);
            }
        }
        Ok(Term::Tuple(items))
    }

    /// Appends the bytes of a `STRING_EXT` (tag already read) as integers.
    pub(super) fn string_into(&mut self, items: &mut Vec<Term>) -> Result<(), DecodeError> {
        let len = self.u16()?;
        let bytes = self.take(len.into())?;
        items.extend(bytes.iter().map(|&b| Term::Int(b.into())));
        Ok(())
    }

    /// `LIST_EXT`. A tail that is itself a list (`NIL_EXT`, `STRING_EXT`, `LIST_EXT`) is
    /// appended in a loop, as the BEAM does, so chained tails cost no recursion; a zero-length
    /// list is its tail.
    pub(super) fn list(&mut self, at: usize, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let mut items: Vec<Term> = Vec::new();
        let mut header_at = at;
        loop {
            let count = self.u32()?;
            self.claim(header_at, count, 1, 1)?;
            items.reserve(count as usize);
            for _ in 0..count {
                self.settle();
                if !self.push_small_int(&mut items)? {
                    items.push(self.value(inner)?);
                }
            }
            self.settle();
            header_at = self.pos;
            match self.list_tail(&mut items)? {
                Tail::Proper => return Ok(Term::List(items)),
                Tail::More => {}
                Tail::Other => break,
            }
        }
        let tail = self.value(inner)?;
        Ok(if items.is_empty() {
            tail
        } else {
            Term::ImproperList(items, Box::new(tail))
        })
    }

    /// Reads a list tail that is itself a list; leaves any other tail unread.
    #[inline(never)]
    fn list_tail(&mut self, items: &mut Vec<Term>) -> Result<Tail, DecodeError> {
        match self.peek()? {
            NIL_EXT => {
                self.pos += 1;
                Ok(Tail::Proper)
            }
            STRING_EXT => {
                self.pos += 1;
                self.string_into(items)?;
                Ok(Tail::Proper)
            }
            LIST_EXT => {
                self.pos += 1;
                Ok(Tail::More)
            }
            _ => Ok(Tail::Other),
        }
    }

    /// `NEW_FUN_EXT`. Its Size field is not checked, as the BEAM does not check it either;
    /// the encoder always writes the right one.
    pub(super) fn fun(&mut self, at: usize, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let (mut fun, num_free) = self.fun_header()?;
        self.claim(at, num_free, 1, 0)?;
        fun.free_vars.reserve_exact(num_free as usize);
        for _ in 0..num_free {
            self.settle();
            if !self.push_small_int(&mut fun.free_vars)? {
                fun.free_vars.push(self.value(inner)?);
            }
        }
        Ok(Term::Fun(fun))
    }

    /// Everything of a fun before its free variables, out of the recursion's frames.
    #[inline(never)]
    pub(super) fn fun_header(&mut self) -> Result<(Box<Fun>, u32), DecodeError> {
        let _size = self.u32()?;
        let arity = self.u8()?;
        let uniq = self.array::<16>()?;
        let index = self.u32()?;
        let num_free = self.u32()?;
        let module = self.atom()?;
        let old_index = self.integer()?;
        let old_uniq = self.integer()?;
        let pid = self.pid()?;
        let fun = Fun {
            arity,
            uniq,
            index,
            module,
            old_index,
            old_uniq,
            pid,
            free_vars: Vec::new(),
        };
        Ok((Box::new(fun), num_free))
    }

    /// `RECORD_EXT` (OTP 29): `Arity:u32`, flags (0, or 1 for an exported record; OTP 29.1
    /// refuses anything else), module, name, `Arity` field-name atoms, `Arity` values. A
    /// field named twice is refused, as OTP 29.1's `binary_to_term/1` refuses it.
    pub(super) fn record(&mut self, at: usize, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let arity = self.u32()?;
        let flags = self.u8()?;
        if flags > 1 {
            return Err(DecodeError::BadRecord { offset: at });
        }
        let module = self.atom()?;
        let name = self.atom()?;
        // A name and a value per field.
        self.claim(at, arity, 2, 0)?;
        let mut names = Vec::with_capacity(arity as usize);
        for _ in 0..arity {
            self.settle();
            names.push(self.atom()?);
        }
        let mut fields = Vec::with_capacity(arity as usize);
        for field in names {
            self.settle();
            fields.push((field, self.value(inner)?));
        }
        let record = Record {
            module,
            name,
            exported: flags == 1,
            fields,
        };
        if record.has_duplicate_fields() {
            return Err(DecodeError::BadRecord { offset: at });
        }
        Ok(Term::Record(Box::new(record)))
    }

    pub(super) fn map(&mut self, at: usize, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let pairs = self.u32()?;
        self.claim(at, pairs, 2, 0)?;
        let mut items = Vec::with_capacity(pairs as usize);
        for _ in 0..pairs {
            self.settle();
            let key = self.value(inner)?;
            self.settle();
            let value = self.value(inner)?;
            items.push((key, value));
        }
        if keys::has_duplicate_keys(&items) {
            return Err(DecodeError::DuplicateMapKey { offset: at });
        }
        Ok(Term::Map(items))
    }
}

/// What follows a list's elements.
enum Tail {
    /// `[]` or a string: the list is complete and proper.
    Proper,
    /// Another `LIST_EXT` header, whose elements continue the list.
    More,
    /// Any other term: the list is improper.
    Other,
}
