//! The external term format decoder (`proto::term`): `Decoder::term` and `Decoder::term_body`,
//! with and without an atom cache, at any start offset, several terms in a row.
//!
//! Input: `[mode, cache_len, start, data..]`. Bit 0 of `mode` picks `term_body` (no version
//! byte) over `term`; bit 1 gives the decoder an atom cache of `cache_len` atoms.
//!
//! Checked for every input: no panic; a failed decode leaves the position where it was;
//! decoding allocates at most `MAX_ALLOC_PER_INPUT_BYTE` per input byte (plus a little);
//! every decoded term encodes, its encoding decodes to an `exact_eq` term and encodes to
//! the same bytes again; errors, terms and their clones format without panicking.
#![no_main]

use beamlink::proto::term::{self, Atom, Decoder, MAX_ALLOC_PER_INPUT_BYTE, Term};
use beamlink_fuzz::measure;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// Heap a decode may use beyond the per-byte bound (small fixed allocations).
const SLACK: usize = 4096;

fn cache() -> &'static [Atom] {
    static CACHE: OnceLock<Vec<Atom>> = OnceLock::new();
    CACHE.get_or_init(|| {
        (0..256)
            .map(|i| Atom::from(format!("cached_{i}")))
            .collect()
    })
}

/// A sink that formats without keeping the text (terms may be large).
struct Discard(usize);

impl std::fmt::Write for Discard {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn check_term(t: &Term) {
    let mut first = BytesMut::new();
    term::encode(t, &mut first).unwrap_or_else(|e| panic!("a decoded term must encode: {e}"));
    let first = first.freeze();
    let back = term::decode(&first).unwrap_or_else(|e| panic!("our encoding must decode: {e}"));
    assert!(back.exact_eq(t), "re-decoded term differs");
    assert!(t.exact_eq(&back), "exact_eq is symmetric");
    let mut second = BytesMut::new();
    term::encode(&back, &mut second).expect("encodes again");
    assert_eq!(first, second, "the encoding is canonical");
    let copy = t.clone();
    assert!(copy.exact_eq(t));
    let mut sink = Discard(0);
    let _ = write!(sink, "{t} {t:?}");
}

fuzz_target!(|data: &[u8]| {
    let [mode, cache_len, start, rest @ ..] = data else {
        return;
    };
    let buf = Bytes::copy_from_slice(rest);
    let body = mode & 1 == 1;
    let with_cache = mode & 2 == 2;
    // Any start offset, including past the end.
    let start = usize::from(*start) % (buf.len() + 3);
    let mut decoder = Decoder::new(&buf, start);
    if with_cache {
        decoder = decoder.with_atom_cache(&cache()[..usize::from(*cache_len)]);
    }
    let mut terms = Vec::new();
    for _ in 0..8 {
        if decoder.is_at_end() {
            break;
        }
        let before = decoder.position();
        let (result, usage) = measure(|| {
            if body {
                decoder.term_body()
            } else {
                decoder.term()
            }
        });
        let input = buf.len().saturating_sub(before);
        assert!(
            usage.peak <= MAX_ALLOC_PER_INPUT_BYTE * input + SLACK,
            "decoding {input} bytes used {} bytes of heap",
            usage.peak
        );
        match result {
            Ok(t) => {
                assert!(decoder.position() > before, "a term takes bytes");
                terms.push(t);
            }
            Err(e) => {
                assert_eq!(
                    decoder.position(),
                    before,
                    "a failed decode consumes nothing"
                );
                let mut sink = Discard(0);
                let _ = write!(sink, "{e} {e:?}");
                break;
            }
        }
    }
    for t in &terms {
        check_term(t);
    }
    // The one-term entry point agrees with the decoder on inputs without a cache.
    if !body && start == 0 {
        if let Ok(t) = term::decode(&buf) {
            assert_eq!(terms.len(), 1);
            assert!(t.exact_eq(&terms[0]));
        }
    }
});
