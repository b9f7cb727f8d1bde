//! Resource bounds of the term codec, measured with a counting global allocator: heap use
//! while decoding stays within `MAX_ALLOC_PER_INPUT_BYTE` times the input, bombs allocate
//! next to nothing, and terms nested `MAX_DEPTH` deep are decoded, encoded, formatted,
//! compared, cloned and dropped on a 2 MiB stack (the size of a tokio worker thread).

mod support;

use beamlink::proto::term::{self, MAX_ALLOC_PER_INPUT_BYTE, MAX_DEPTH, Term};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static STACK_LOW: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

fn note_stack() {
    let sp = stack_pointer();
    let _ = STACK_LOW.try_with(|low| low.set(low.get().min(sp)));
}

fn grow(n: usize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + n);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
    note_stack();
}

fn shrink(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(n)));
    note_stack();
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // During a moving realloc both blocks exist.
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Peak heap bytes `run` allocates on this thread beyond what was live before.
fn peak_of<T>(run: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = run();
    (out, PEAK.with(Cell::get) - base)
}

/// Stack bytes `run` uses below the caller, as seen by allocations and formatter writes.
fn stack_of(run: impl FnOnce()) -> usize {
    let base = stack_pointer();
    STACK_LOW.with(|l| l.set(usize::MAX));
    run();
    base.saturating_sub(STACK_LOW.with(Cell::get))
}

/// A formatter sink that notes how deep the stack is at each write.
struct StackProbe;

impl std::fmt::Write for StackProbe {
    fn write_str(&mut self, _: &str) -> std::fmt::Result {
        note_stack();
        Ok(())
    }
}

fn decode_bounded(bytes: &[u8]) -> usize {
    let buf = Bytes::copy_from_slice(bytes);
    let (result, peak) = peak_of(|| term::decode(&buf));
    drop(result);
    let bound = MAX_ALLOC_PER_INPUT_BYTE * bytes.len() + 512;
    assert!(
        peak <= bound,
        "{peak} bytes for {} input bytes (bound {bound})",
        bytes.len()
    );
    peak
}

#[test]
fn bombs_allocate_next_to_nothing() {
    let mut bombs: Vec<Vec<u8>> = vec![
        vec![131, 108, 255, 255, 255, 255],
        vec![131, 105, 255, 255, 255, 255, 97, 1],
        vec![131, 116, 255, 255, 255, 255, 97, 1, 97, 1],
        vec![131, 109, 255, 255, 255, 255, 1, 2, 3],
        vec![131, 77, 255, 255, 255, 255, 3, 1],
        vec![131, 111, 255, 255, 255, 255, 0, 1],
        vec![
            131, 112, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            255, 255, 255, 255,
        ],
    ];
    // Nested declared counts that each claim the same remaining bytes.
    let mut nested = vec![131];
    for _ in 0..200 {
        nested.extend_from_slice(&[108, 0, 0, 0x10, 0]);
    }
    nested.extend(std::iter::repeat_n(106, 5000));
    bombs.push(nested);
    let mut deep = vec![131];
    for _ in 0..100_000 {
        deep.extend_from_slice(&[104, 1]);
    }
    deep.push(106);
    bombs.push(deep);
    for bomb in &bombs {
        let buf = Bytes::copy_from_slice(bomb);
        let (result, peak) = peak_of(|| term::decode(&buf));
        assert!(result.is_err(), "{:?}", &bomb[..8]);
        // Short bombs get nothing; long ones no more than their length allows.
        let limit = if bomb.len() < 100 {
            0
        } else {
            MAX_ALLOC_PER_INPUT_BYTE * bomb.len()
        };
        assert!(
            peak <= limit,
            "bomb {:?}… of {} bytes allocated {peak} bytes",
            &bomb[..8],
            bomb.len()
        );
    }
}

#[test]
fn worst_case_inputs_stay_within_the_bound() {
    let mut worst = 0f64;
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    // One Term slot per input byte.
    inputs.push([&[131, 107, 255, 255][..], &[1u8; 65535]].concat());
    // A list head of one element, then a long STRING_EXT tail appended to it.
    inputs.push(
        [
            &[131, 108, 0, 0, 0, 1, 97, 1, 107, 255, 255][..],
            &[1u8; 65535],
        ]
        .concat(),
    );
    // Chained one-element tails, growing the head by doubling.
    let mut chain = vec![131];
    for _ in 0..20_000 {
        chain.extend_from_slice(&[108, 0, 0, 0, 1, 106]);
    }
    chain.push(106);
    inputs.push(chain);
    // Maps of two-byte pairs (plus the duplicate-key hash set).
    let mut map = vec![131, 116, 0, 0, 0x80, 0];
    for i in 0..0x8000u32 {
        map.extend_from_slice(&[98]);
        map.extend_from_slice(&i.to_be_bytes());
        map.push(106);
    }
    inputs.push(map);
    let mut small_map = vec![131, 116, 0, 0, 0, 200];
    for i in 0..200u8 {
        small_map.extend_from_slice(&[97, i, 106]);
    }
    inputs.push(small_map);
    // Tuples of NILs, nested lists, atoms from Latin-1, pids.
    inputs.push([&[131, 105, 0, 1, 0, 0][..], &[106u8; 65536]].concat());
    inputs.push([&[131, 100, 0, 255][..], &[0xe9u8; 255]].concat());
    for input in &inputs {
        let peak = decode_bounded(input);
        worst = worst.max(peak as f64 / input.len() as f64);
    }
    println!(
        "worst measured heap per input byte: {worst:.1} (bound {MAX_ALLOC_PER_INPUT_BYTE}; size_of::<Term>() = {})",
        std::mem::size_of::<Term>()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_terms_stay_within_the_bound(t in support::arb_term()) {
        decode_bounded(&support::enc(&t));
    }

    #[test]
    fn random_bytes_stay_within_the_bound(bytes in prop::collection::vec(any::<u8>(), 1..300)) {
        decode_bounded(&bytes);
    }
}

fn nested(open: &[u8], leaf: &[u8], close: &[u8], levels: usize) -> Vec<u8> {
    let mut bytes = vec![131];
    for _ in 0..levels {
        bytes.extend_from_slice(open);
    }
    bytes.extend_from_slice(leaf);
    for _ in 0..levels {
        bytes.extend_from_slice(close);
    }
    bytes
}

/// Stack used by every recursive operation on the deepest terms the decoder accepts, on a
/// thread with the stack of a tokio worker (2 MiB). Overflowing would abort the test binary.
#[test]
fn deepest_terms_fit_a_tokio_worker_stack() {
    const TOKIO_WORKER_STACK: usize = 2 * 1024 * 1024;
    let report = std::thread::Builder::new()
        .stack_size(TOKIO_WORKER_STACK)
        .spawn(|| {
            // (name, one level, levels, close): each at MAX_DEPTH nested containers, with
            // a leaf `1` whose container allocates in the innermost frame.
            let shapes: [(&str, &[u8], usize, &[u8]); 5] = [
                ("lists", &[108, 0, 0, 0, 1], MAX_DEPTH, &[106]),
                ("tuples", &[104, 1], MAX_DEPTH, &[]),
                ("maps", &[116, 0, 0, 0, 1, 106], MAX_DEPTH, &[]),
                ("improper", &[108, 0, 0, 0, 1, 97, 1, 104, 1], MAX_DEPTH / 2, &[]),
                ("funs", &FUN_OPEN, MAX_DEPTH, &[]),
            ];
            let mut lines = Vec::new();
            let mut worst = 0;
            for (name, open, levels, close) in shapes {
                let bytes = nested(open, &[98, 255, 255, 255, 255], close, levels);
                let before_leaf = 1 + open.len() * levels;
                let buf = Bytes::from(bytes.clone());
                let mut decoded = None;
                let decode = stack_of(|| decoded = Some(term::decode(&buf).expect("at the limit")));
                let t = decoded.unwrap();
                // The buffer fills up right before the leaf, so the innermost frame grows it.
                let mut out = BytesMut::with_capacity(before_leaf);
                let encode = stack_of(|| term::encode(&t, &mut out).expect("at the limit"));
                assert_eq!(out.len(), bytes.len(), "{name}");
                let display = stack_of(|| write!(StackProbe, "{t}").unwrap());
                let debug = stack_of(|| write!(StackProbe, "{t:?}").unwrap());
                let mut copy = None;
                let clone = stack_of(|| copy = Some(t.clone()));
                let copy = copy.unwrap();
                assert!(copy == t && copy.exact_eq(&t));
                let drop_ = stack_of(|| drop(copy));
                let ops = [decode, encode, display, debug, clone, drop_];
                worst = worst.max(*ops.iter().max().unwrap());
                lines.push(format!(
                    "{name:>9}: decode {decode} encode {encode} display {display} debug {debug} clone {clone} drop {drop_}"
                ));
            }
            (lines, worst)
        })
        .unwrap()
        .join()
        .expect("no stack overflow at MAX_DEPTH on a 2 MiB stack");
    let (lines, worst) = report;
    println!("stack bytes used at MAX_DEPTH = {MAX_DEPTH}:");
    for line in lines {
        println!("  {line}");
    }
    // Optimised builds (what runs in production) keep half the stack free. Unoptimised
    // frames are several times larger; there the run above proves that everything fits.
    let budget = if cfg!(debug_assertions) {
        TOKIO_WORKER_STACK - 256 * 1024
    } else {
        TOKIO_WORKER_STACK / 2
    };
    assert!(worst < budget, "worst {worst} bytes, budget {budget}");
}

/// A `NEW_FUN_EXT` header with one free variable, up to the free variable.
const FUN_OPEN: [u8; 75] = [
    112, 0, 0, 0, 0, 0, 6, 83, 97, 170, 70, 21, 144, 209, 189, 241, 235, 98, 209, 166, 235, 8, 0,
    0, 0, 43, 0, 0, 0, 1, 119, 8, 101, 114, 108, 95, 101, 118, 97, 108, 97, 43, 98, 0, 50, 155, 13,
    88, 119, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104, 111, 115, 116, 0, 0, 0, 9, 0, 0,
    0, 0, 0, 0, 0, 0,
];
