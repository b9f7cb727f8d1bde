//! What the fuzz targets share: an allocator that measures what a decoder allocates, a
//! deterministic chunker that splits a stream at input-chosen boundaries, and the round-trip
//! checks of control messages used by both the `frame` and the `control` targets.
//!
//! Rust code needs no AddressSanitizer to be memory safe, so the campaign runs without
//! one (`--sanitizer none`, several times faster); libFuzzer's `-malloc_limit_mb` only works
//! under a sanitizer, so the bound on allocations is checked here instead, per input and
//! tighter: see [`measure`].

use beamlink::proto::control::Control;
use beamlink::proto::dist_header::{AtomCacheOut, DistDecoder, uses_header};
use beamlink::proto::flags::DistFlags;
use beamlink::proto::frame::{self, Frame};
use beamlink::proto::term::EncodeError;
use bytes::BytesMut;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
    LARGEST.fetch_max(size, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap used while a closure ran.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// Most bytes live at once, above what was live when it started.
    pub peak: usize,
    /// The largest single allocation or reallocation.
    pub largest: usize,
}

/// Runs `run` and reports the heap it used. libFuzzer's own threads allocate through
/// `malloc`, not through this allocator, so the numbers are the target's alone.
pub fn measure<T>(run: impl FnOnce() -> T) -> (T, Usage) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    LARGEST.store(0, Relaxed);
    let out = run();
    let usage = Usage {
        peak: PEAK.load(Relaxed).saturating_sub(base),
        largest: LARGEST.load(Relaxed),
    };
    (out, usage)
}

/// Splits a stream into chunks whose sizes come from `seed` (a splitmix64 sequence), so the
/// fuzzer chooses the boundaries: mostly small chunks, sometimes 1 byte, sometimes large.
pub struct Chunker {
    state: u64,
}

impl Chunker {
    /// A chunker for this seed.
    pub fn new(seed: &[u8]) -> Chunker {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for &b in seed {
            state = state.rotate_left(8) ^ u64::from(b);
        }
        Chunker { state }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The size of the next chunk (at least 1).
    pub fn size(&mut self) -> usize {
        let r = self.next();
        match r % 8 {
            0 => 1,
            1..=5 => 1 + (r >> 8) as usize % 16,
            6 => 1 + (r >> 8) as usize % 300,
            _ => 1 + (r >> 8) as usize % 70_000,
        }
    }

    /// `data` cut into chunks.
    pub fn split<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.size().min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        chunks
    }
}

/// The flag combinations that change how a control message is written.
pub const CONTROL_FLAG_SETS: [DistFlags; 5] = [
    DistFlags::EMPTY,
    DistFlags::SEND_SENDER,
    DistFlags::EXIT_PAYLOAD,
    DistFlags(DistFlags::SEND_SENDER.0 | DistFlags::EXIT_PAYLOAD.0),
    // Alias sends go out as ALTACT_SIG_SEND.
    DistFlags(DistFlags::SEND_SENDER.0 | DistFlags::EXIT_PAYLOAD.0 | DistFlags::ALTACT_SIG.0),
];

/// What `control` becomes after a trip over a connection with `flags`: without
/// `SEND_SENDER` a send goes out as `SEND`, which does not carry the sender.
pub fn as_received(control: &Control, flags: DistFlags) -> Control {
    match control {
        Control::Send {
            to, token, message, ..
        } if !flags.contains(DistFlags::SEND_SENDER) => Control::Send {
            from: None,
            to: to.clone(),
            token: token.clone(),
            message: message.clone(),
        },
        other => other.clone(),
    }
}

/// True when writing the exit reason inside the control tuple (no `EXIT_PAYLOAD`) puts it one
/// level deeper than the decoder accepts; the only way a received control cannot be re-sent.
fn too_deep_inline(err: &EncodeError) -> bool {
    *err == EncodeError::TooDeep
}

/// Checks that a valid control message survives, for every flag combination:
/// `to_terms` → `from_terms`, and `encode_message` → `take_frame` → `decode_message`.
pub fn check_control_round_trips(control: &Control) {
    for flags in CONTROL_FLAG_SETS {
        check_control_round_trip(control, flags);
    }
}

/// [`check_control_round_trips`] for one set of flags.
pub fn check_control_round_trip(control: &Control, flags: DistFlags) {
    let expected = as_received(control, flags);
    let (c, payload) = control.to_terms(flags);
    match Control::from_terms(c, payload.cloned()) {
        Ok(back) => assert_eq!(back, expected, "to_terms/from_terms with {flags:?}"),
        Err(e) => panic!("to_terms/from_terms with {flags:?}: {e}"),
    }
    let mut out = BytesMut::new();
    match frame::encode_message(control, flags, &mut out) {
        Ok(()) => {}
        Err(e) if too_deep_inline(&e) && !flags.contains(DistFlags::EXIT_PAYLOAD) => {
            assert!(out.is_empty(), "a failed encode leaves nothing behind");
            return;
        }
        Err(e) => panic!("encode_message with {flags:?}: {e}"),
    }
    let Ok(Some(Frame::Message(bytes))) = frame::take_frame(&mut out, u32::MAX) else {
        panic!("encode_message wrote no whole frame");
    };
    assert!(out.is_empty());
    let mut decoder = DistDecoder::new(flags, usize::MAX);
    match decoder.decode(&bytes) {
        Ok(Some(back)) => assert_eq!(back, expected, "encode_message/decode with {flags:?}"),
        Ok(None) => panic!("encode_message/decode with {flags:?}: a lone fragment"),
        Err(e) => panic!("encode_message/decode with {flags:?}: {e}"),
    }
    if !uses_header(flags) {
        assert_eq!(frame::decode_message(&bytes).as_ref(), Ok(&expected));
        return;
    }
    // As a link sends it: through the connection's outgoing atom cache, twice (the second
    // time the atoms go as references to the entries the first one set up).
    let mut cache = AtomCacheOut::new();
    for round in 0..2 {
        frame::encode_message_cached(control, flags, Some(&mut cache), &mut out)
            .unwrap_or_else(|e| panic!("encode_message_cached with {flags:?}: {e}"));
        let Ok(Some(Frame::Message(bytes))) = frame::take_frame(&mut out, u32::MAX) else {
            panic!("encode_message_cached wrote no whole frame");
        };
        match decoder.decode(&bytes) {
            Ok(Some(back)) => assert_eq!(back, expected, "cached, round {round}, {flags:?}"),
            other => panic!("cached, round {round}, {flags:?}: {other:?}"),
        }
    }
}
