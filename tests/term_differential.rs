#![cfg(feature = "interop")]
//! Differential test of the term codec against real BEAMs, one run per OTP release in
//! `BEAMLINK_OTP` (default "25 27 29"): release 25 is the `erl` on PATH, others run through
//! `scripts/otp-run <release> erl`. A missing `erl` or `scripts/otp-run` fails the test.
//!
//! For each release, in a fresh directory under /tmp:
//! 1. `tests/erl/term_corpus.erl` writes several thousand seeded terms of every kind with
//!    `term_to_binary(T, [{minor_version, 2}])`;
//! 2. Rust decodes and re-encodes each: the bytes must be identical to the BEAM's (except
//!    the documented classes in [`allowed_byte_difference`]), and the BEAM checks
//!    `binary_to_term(RustBytes) =:= Original` for every term;
//! 3. Rust encodes random terms (the proptest strategies of `support`); the BEAM decodes
//!    and re-encodes them; Rust decodes the BEAM's bytes and compares with `=:=`;
//! 4. Rust mutates corpus encodings; accept/reject verdicts, bytes used and decoded values
//!    are compared with `binary_to_term(B, [used])`. Differences must be documented ones
//!    (see [`documented_difference`]).

mod support;

use beamlink::proto::term::{self, DecodeError, Decoder, Term};
use bytes::{Bytes, BytesMut};
use proptest::prelude::Rng;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const RANDOM_TERMS: usize = 1500;
const MUTATIONS: usize = 4000;
const NONE: u32 = u32::MAX;

#[test]
fn codec_matches_real_beams() {
    let releases = std::env::var("BEAMLINK_OTP").unwrap_or_else(|_| "25 27 29".to_string());
    let releases: Vec<&str> = releases.split_whitespace().collect();
    assert!(!releases.is_empty(), "BEAMLINK_OTP names no release");
    for release in releases {
        run_release(release);
    }
}

/// How to start `erl` of one release.
struct Beam {
    release: String,
    program: PathBuf,
    prefix: Vec<String>,
}

fn beam(release: &str) -> Beam {
    if release == "25" {
        return Beam {
            release: release.into(),
            program: "erl".into(),
            prefix: vec![],
        };
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/otp-run");
    assert!(
        script.is_file(),
        "OTP {release}: {} is missing; it runs erl from the OTP {release} chroot \
         (set BEAMLINK_OTP=25 to test against the erl on PATH only)",
        script.display()
    );
    Beam {
        release: release.into(),
        program: script,
        prefix: vec![release.into(), "erl".into()],
    }
}

fn run_erl(beam: &Beam, dir: &Path, mode: &str) {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/erl/term_corpus.erl");
    let eval = format!(
        "{{ok, M, B}} = compile:file(\"{source}\", [binary, report]), \
         {{module, M}} = code:load_binary(M, \"term_corpus.erl\", B), \
         term_corpus:main([\"{mode}\", \"{}\"])",
        dir.display()
    );
    let output = Command::new(&beam.program)
        .args(&beam.prefix)
        .args(["-noshell", "-eval", &eval])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "OTP {}: cannot run {}: {e} (erl is needed: Debian package erlang-base)",
                beam.release,
                beam.program.display()
            )
        });
    assert!(
        output.status.success(),
        "OTP {}: term_corpus {mode} failed ({}):\n{}\n{}",
        beam.release,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn fresh_dir(release: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = PathBuf::from(format!(
        "/tmp/beamlink-term-diff-{release}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir(&dir).expect("fresh directory under /tmp");
    dir
}

// ---- files ---------------------------------------------------------------------------------

fn frame(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            out.extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&NONE.to_be_bytes()),
    }
}

fn read_u32(data: &[u8], at: &mut usize) -> u32 {
    let v = u32::from_be_bytes(data[*at..*at + 4].try_into().unwrap());
    *at += 4;
    v
}

fn read_frames(data: &[u8]) -> Vec<Option<Bytes>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let len = read_u32(data, &mut at);
        if len == NONE {
            out.push(None);
        } else {
            out.push(Some(Bytes::copy_from_slice(&data[at..at + len as usize])));
            at += len as usize;
        }
    }
    out
}

fn read_corpus(data: &[u8]) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let class_len = data[at] as usize;
        let class = String::from_utf8(data[at + 1..at + 1 + class_len].to_vec()).unwrap();
        at += 1 + class_len;
        let len = read_u32(data, &mut at) as usize;
        out.push((class, Bytes::copy_from_slice(&data[at..at + len])));
        at += len;
    }
    out
}

fn encoded(t: &Term) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    term::encode(t, &mut out).ok().map(|()| out.to_vec())
}

fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(48).map(|b| format!("{b}")).collect();
    format!(
        "<<{}{}>>",
        shown.join(","),
        if bytes.len() > 48 { ",…" } else { "" }
    )
}

// ---- documented differences ----------------------------------------------------------------

/// Why our bytes may differ from a BEAM's for this term, if they may.
fn allowed_byte_difference(release: u32, t: &Term) -> Option<&'static str> {
    // We write every port as V4_PORT_EXT, as OTP 27+ do; OTP 25 uses NEW_PORT_EXT when the
    // number fits 28 bits.
    (release < 27 && any_subterm(t, &|s| matches!(s, Term::Port(p) if p.id < 1 << 28)))
        .then_some("port number below 2^28: V4_PORT_EXT here, NEW_PORT_EXT on OTP 25")
}

/// A BEAM accepts what we refuse, on purpose.
fn documented_difference(err: &DecodeError, input: &[u8]) -> Option<&'static str> {
    match err {
        DecodeError::TooDeep { .. } => Some("nesting deeper than MAX_DEPTH"),
        DecodeError::Compressed { .. } => Some("compressed term"),
        DecodeError::UnknownTag { tag: 73 | 75, .. } => Some("BEAM-internal atom-index tag"),
        DecodeError::BadReferenceLength { words: 0, .. } => Some("reference without id words"),
        DecodeError::BadBitCount {
            len: 0, bits: 0, ..
        } => Some("empty BIT_BINARY_EXT (OTP 25 reads <<>>, OTP 27+ refuse it)"),
        DecodeError::IntegerOutOfRange { offset } if export_arity_at(input, *offset) => {
            Some("export arity above 255")
        }
        _ => None,
    }
}

/// We accept what a BEAM refuses, on purpose: the decoding BEAM checks identifiers that name
/// itself (`nonode@nohost` with creation 0 in the test) against its own limits.
fn documented_acceptance(t: &Term) -> Option<&'static str> {
    let local =
        |node: &term::Atom, creation: u32| node.as_str() == "nonode@nohost" && creation == 0;
    any_subterm(t, &|s| match s {
        Term::Pid(p) => local(&p.node, p.creation),
        Term::Port(p) => local(&p.node, p.creation),
        Term::Ref(r) => local(&r.node, r.creation),
        Term::Fun(f) => local(&f.pid.node, f.pid.creation),
        _ => false,
    })
    .then_some("identifier of the decoding BEAM itself, checked against its own limits")
}

fn export_arity_at(input: &[u8], offset: usize) -> bool {
    // An EXPORT_EXT arity written as INTEGER_EXT; good enough to name the case.
    input.get(offset) == Some(&term::tag::INTEGER_EXT)
        && input[..offset].contains(&term::tag::EXPORT_EXT)
}

/// `t` with the pid of every local fun replaced by one fixed pid.
fn without_fun_pids(t: &Term) -> Term {
    let map = |items: &[Term]| items.iter().map(without_fun_pids).collect::<Vec<_>>();
    match t {
        Term::Tuple(items) => Term::Tuple(map(items)),
        Term::List(items) => Term::List(map(items)),
        Term::ImproperList(items, tail) => {
            Term::ImproperList(map(items), Box::new(without_fun_pids(tail)))
        }
        Term::Map(pairs) => Term::Map(
            pairs
                .iter()
                .map(|(k, v)| (without_fun_pids(k), without_fun_pids(v)))
                .collect(),
        ),
        Term::Fun(f) => {
            let mut f = f.clone();
            f.pid = term::Pid {
                node: term::Atom::new("fun@pid"),
                id: 0,
                serial: 0,
                creation: 1,
            };
            f.free_vars = map(&f.free_vars);
            Term::Fun(f)
        }
        other => other.clone(),
    }
}

fn any_subterm(t: &Term, pred: &dyn Fn(&Term) -> bool) -> bool {
    pred(t)
        || match t {
            Term::Tuple(items) | Term::List(items) => items.iter().any(|s| any_subterm(s, pred)),
            Term::ImproperList(items, tail) => {
                items.iter().any(|s| any_subterm(s, pred)) || any_subterm(tail, pred)
            }
            Term::Map(pairs) => pairs
                .iter()
                .any(|(k, v)| any_subterm(k, pred) || any_subterm(v, pred)),
            Term::Fun(f) => f.free_vars.iter().any(|s| any_subterm(s, pred)),
            _ => false,
        }
}

// ---- mutations -----------------------------------------------------------------------------

fn mutate(rng: &mut impl Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let pick = |rng: &mut dyn Rng, n: usize| (rng.next_u32() as usize) % n.max(1);
    for _ in 0..1 + pick(rng, 2) {
        let len = out.len();
        let i = pick(rng, len);
        match pick(rng, 7) {
            0 | 1 => {
                if let Some(b) = out.get_mut(i) {
                    *b = rng.next_u32() as u8;
                }
            }
            2 => {
                if let Some(b) = out.get_mut(i) {
                    *b = b.wrapping_add(if rng.next_u32().is_multiple_of(2) {
                        1
                    } else {
                        255
                    });
                }
            }
            3 => out.truncate(i),
            4 => {
                let word = if rng.next_u32().is_multiple_of(2) {
                    u32::MAX
                } else {
                    rng.next_u32() % 1024
                };
                for (k, b) in word.to_be_bytes().into_iter().enumerate() {
                    if let Some(slot) = out.get_mut(i + k) {
                        *slot = b;
                    }
                }
            }
            5 => out.insert(i.min(len), rng.next_u32() as u8),
            _ => {
                if i < len {
                    out.remove(i);
                }
            }
        }
    }
    out
}

// ---- one release ---------------------------------------------------------------------------

/// Rust's decoding of a mutated encoding: the term and the bytes it used, or why not.
type Verdict = Result<(Term, usize), DecodeError>;

#[derive(Default, Debug)]
struct ClassStats {
    terms: usize,
    identical: usize,
    allowed: usize,
}

fn run_release(release: &str) {
    let beam = beam(release);
    let release_number: u32 = release.parse().expect("BEAMLINK_OTP holds release numbers");
    let dir = fresh_dir(release);
    let mut failures: Vec<String> = Vec::new();

    // 1. The BEAM's corpus.
    run_erl(&beam, &dir, "generate");
    let reported = std::fs::read_to_string(dir.join("otp_release.txt")).unwrap();
    assert_eq!(
        reported.trim(),
        release,
        "the erl run for OTP {release} reports OTP {reported}"
    );
    let corpus = read_corpus(&std::fs::read(dir.join("corpus.bin")).unwrap());
    let mut classes: BTreeMap<String, ClassStats> = BTreeMap::new();
    let mut allowed_reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut reencoded = Vec::new();
    let mut decoded: Vec<Term> = Vec::new();
    for (class, ext) in &corpus {
        let stats = classes.entry(class.clone()).or_default();
        stats.terms += 1;
        let t = match term::decode(ext) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!(
                    "corpus {class}: Rust cannot decode {}: {e}",
                    hex(ext)
                ));
                frame(&mut reencoded, None);
                decoded.push(Term::NIL);
                continue;
            }
        };
        let ours = encoded(&t);
        match &ours {
            Some(b) if b[..] == ext[..] => stats.identical += 1,
            Some(b) => match allowed_byte_difference(release_number, &t) {
                Some(reason) => {
                    stats.allowed += 1;
                    *allowed_reasons.entry(reason).or_default() += 1;
                }
                None => failures.push(format!(
                    "corpus {class}: BEAM {} but Rust {}",
                    hex(ext),
                    hex(b)
                )),
            },
            None => failures.push(format!("corpus {class}: Rust cannot re-encode {t}")),
        }
        frame(&mut reencoded, ours.as_deref());
        decoded.push(t);
    }
    std::fs::write(dir.join("rust_reencoded.bin"), &reencoded).unwrap();

    // 2. Rust's random terms.
    let mut runner = TestRunner::deterministic();
    let strategy = support::arb_term();
    let mut random_terms = Vec::with_capacity(RANDOM_TERMS);
    let mut random_bytes = Vec::new();
    for _ in 0..RANDOM_TERMS {
        let t = strategy.new_tree(&mut runner).unwrap().current();
        let bytes = encoded(&t).expect("strategy terms encode");
        frame(&mut random_bytes, Some(&bytes));
        random_terms.push((t, bytes));
    }
    std::fs::write(dir.join("rust_random.bin"), &random_bytes).unwrap();

    // 3. Mutated corpus encodings, with Rust's verdicts.
    let rng = runner.rng();
    let small: Vec<&Bytes> = corpus
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.len() <= 4096)
        .collect();
    let mut mutated = Vec::new();
    let mut ours_verdicts: Vec<(Vec<u8>, Verdict)> = Vec::new();
    while ours_verdicts.len() < MUTATIONS {
        let source = small[(rng.next_u32() as usize) % small.len()];
        let input = mutate(rng, source);
        if input.get(1) == Some(&term::tag::COMPRESSED) {
            // The BEAM would inflate it; we refuse compressed terms outright (documented).
            continue;
        }
        let buf = Bytes::from(input.clone());
        let mut decoder = Decoder::new(&buf, 0);
        let verdict = decoder.term().map(|t| (t, decoder.position()));
        let ours = verdict.as_ref().ok().and_then(|(t, _)| encoded(t));
        frame(&mut mutated, Some(&input));
        frame(&mut mutated, ours.as_deref());
        ours_verdicts.push((input, verdict));
    }
    std::fs::write(dir.join("mutated.bin"), &mutated).unwrap();

    // 4. The BEAM's checks.
    run_erl(&beam, &dir, "check");
    let checks = std::fs::read(dir.join("corpus_check.bin")).unwrap();
    assert_eq!(checks.len(), corpus.len());
    for ((class, ext), check) in corpus.iter().zip(&checks) {
        if *check != 1 {
            let why = match check {
                0 => "binary_to_term(Rust bytes) =/= original",
                2 => "the BEAM refuses Rust's bytes",
                _ => "Rust could not re-encode it",
            };
            failures.push(format!("corpus {class}: {why}: {}", hex(ext)));
        }
    }

    let back = read_frames(&std::fs::read(dir.join("random_reencoded.bin")).unwrap());
    assert_eq!(back.len(), random_terms.len());
    let mut random_identical = 0;
    for ((t, ours), theirs) in random_terms.iter().zip(&back) {
        let Some(theirs) = theirs else {
            failures.push(format!("random: the BEAM refuses {}", hex(ours)));
            continue;
        };
        let funs_rewritten = release_number >= 26 && any_subterm(t, &|s| matches!(s, Term::Fun(_)));
        if theirs[..] == ours[..] {
            random_identical += 1;
        } else if !funs_rewritten
            && !any_subterm(t, &|s| matches!(s, Term::Map(pairs) if pairs.len() > 1))
        {
            // Only map order may differ: a BEAM writes small maps in key order.
            failures.push(format!(
                "random: Rust wrote {}, the BEAM {}",
                hex(ours),
                hex(theirs)
            ));
        }
        match term::decode(theirs) {
            Ok(t2) if t2.exact_eq(t) => {}
            // From OTP 26 a fun has no creator: a BEAM writes its own pid into every fun.
            Ok(t2) if funs_rewritten && without_fun_pids(&t2).exact_eq(&without_fun_pids(t)) => {}
            Ok(t2) => failures.push(format!("random: sent {t}, the BEAM sent back {t2}")),
            Err(e) => failures.push(format!(
                "random: cannot decode the BEAM's {}: {e}",
                hex(theirs)
            )),
        }
    }

    let verdicts = std::fs::read(dir.join("mutated_verdicts.bin")).unwrap();
    assert_eq!(verdicts.len(), 6 * ours_verdicts.len());
    let mut agree_accept = 0;
    let mut agree_reject = 0;
    let mut documented: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut accepted_only_here: BTreeMap<&'static str, usize> = BTreeMap::new();
    for ((input, ours), theirs) in ours_verdicts.iter().zip(verdicts.chunks(6)) {
        let beam_accepts = theirs[0] == 1;
        let beam_used = u32::from_be_bytes(theirs[1..5].try_into().unwrap()) as usize;
        let same_value = theirs[5] == 1;
        match (ours, beam_accepts) {
            (Err(_), false) => agree_reject += 1,
            (Ok((_, used)), true) if *used == beam_used && same_value => agree_accept += 1,
            (Ok((t, used)), true) => failures.push(format!(
                "mutation {}: both accept, Rust used {used} bytes, the BEAM {beam_used}, same value: {same_value} (Rust: {t})",
                hex(input)
            )),
            (Err(e), true) => match documented_difference(e, input) {
                Some(reason) => *documented.entry(reason).or_default() += 1,
                None => failures.push(format!("mutation {}: the BEAM accepts, Rust refuses: {e}", hex(input))),
            },
            (Ok((t, _)), false) => match documented_acceptance(t) {
                Some(reason) => *accepted_only_here.entry(reason).or_default() += 1,
                None => failures.push(format!("mutation {}: Rust accepts {t}, the BEAM refuses", hex(input))),
            },
        }
    }

    println!("OTP {release}: {} corpus terms", corpus.len());
    for (class, s) in &classes {
        println!(
            "  {class:>12}: {:>5} terms, {:>5} byte-identical, {:>3} allowed differences",
            s.terms, s.identical, s.allowed
        );
    }
    for (reason, n) in &allowed_reasons {
        println!("  allowed byte difference ({n}): {reason}");
    }
    println!(
        "OTP {release}: {RANDOM_TERMS} Rust terms round-tripped through the BEAM, {random_identical} re-encoded byte-identical (the others hold maps, which a BEAM reorders)"
    );
    println!(
        "OTP {release}: {} mutated encodings: {agree_accept} accepted by both (same value and length), {agree_reject} refused by both",
        ours_verdicts.len()
    );
    for (reason, n) in &documented {
        println!("  the BEAM accepts, we refuse ({n}): {reason}");
    }
    for (reason, n) in &accepted_only_here {
        println!("  we accept, the BEAM refuses ({n}): {reason}");
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        let shown: Vec<&String> = failures.iter().take(30).collect();
        panic!(
            "OTP {release}: {} differences (files kept in {}):\n{}",
            failures.len(),
            dir.display(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
