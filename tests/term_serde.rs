#![cfg(feature = "interop")]
//! serde against real BEAMs (OTP 25, 27, 29, or those in `BEAMLINK_OTP`): values written by
//! Elixir with `:erlang.term_to_binary/1` decode into the Rust types (`from_term`), and the
//! same Rust values encoded by beamlink (`to_term` + `term::encode`) are, after
//! `:erlang.binary_to_term/1` in Elixir, `==` to what Elixir wrote: Elixir structs (defined
//! with `defmodule` in the script), enums, options, binaries, nested maps, numbers.
//!
//! One `elixir` run per release, all releases in parallel: the script prints each of its
//! values' bytes, reads ours from a file, and prints the `==` verdict for each.

mod support;

use beamlink::term::typed::{ErrorKind, Options};
use beamlink::term::{self, Atom, from_term_with, to_term_with};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use support::Otp;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(rename = "Elixir.MyApp.Address")]
struct Address {
    street: String,
    city: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(rename = "Elixir.MyApp.User")]
struct User {
    name: String,
    email: Option<String>,
    age: u32,
    admin: bool,
    tags: Vec<String>,
    #[serde(with = "serde_bytes")]
    avatar: Vec<u8>,
    address: Address,
    role: Role,
    scores: HashMap<String, f64>,
}

/// `User` without the option: decoding Elixir's `email: nil` must name the field.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct StrictUser {
    name: String,
    email: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum Role {
    Admin,
    Member(u32),
    Guest { until: i64 },
    Pair(i32, String),
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum Event {
    Moved { from: Address, to: Address },
    Cancelled(Option<String>),
    Ok,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct ErlangRecord {
    a: Option<u8>,
    b: Option<u8>,
}

type Numbers = (i8, u8, i64, u64, i128, f64, f64);
type Binaries = (serde_bytes::ByteBuf, Bytes, String, Vec<u8>);
type Nested = HashMap<String, HashMap<String, BTreeMap<String, Vec<i64>>>>;

/// One value both sides know: Elixir source for it, the Rust value, how to compare.
trait Case: Sync {
    fn name(&self) -> &'static str;
    /// Elixir expression Elixir encodes.
    fn elixir(&self) -> &'static str;
    /// Elixir expression our bytes must decode `==` to (usually [`Case::elixir`]).
    fn elixir_back(&self) -> &'static str {
        self.elixir()
    }
    fn encode(&self) -> Vec<u8>;
    /// Checks that Elixir's bytes decode into the Rust value.
    fn check(&self, bytes: Bytes) -> Result<(), String>;
}

struct Typed<T> {
    name: &'static str,
    elixir: &'static str,
    back: Option<&'static str>,
    options: Options,
    value: T,
}

impl<T> Case for Typed<T>
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + Debug + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn elixir(&self) -> &'static str {
        self.elixir
    }

    fn elixir_back(&self) -> &'static str {
        self.back.unwrap_or(self.elixir)
    }

    fn encode(&self) -> Vec<u8> {
        let t = to_term_with(&self.value, self.options).expect("to_term");
        let mut out = BytesMut::new();
        term::encode(&t, &mut out).expect("encode");
        out.to_vec()
    }

    fn check(&self, bytes: Bytes) -> Result<(), String> {
        let t = term::decode(&bytes).map_err(|e| format!("decode: {e}"))?;
        let value: T = from_term_with(&t, self.options).map_err(|e| format!("{e} in {t}"))?;
        if value == self.value {
            Ok(())
        } else {
            Err(format!("decoded {value:?}, expected {:?}", self.value))
        }
    }
}

fn case<T>(name: &'static str, elixir: &'static str, value: T) -> Box<dyn Case>
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + Debug + Sync + 'static,
{
    Box::new(Typed {
        name,
        elixir,
        back: None,
        options: Options::elixir(),
        value,
    })
}

fn address(street: &str, city: &str) -> Address {
    Address {
        street: street.into(),
        city: city.into(),
    }
}

fn cases() -> Vec<Box<dyn Case>> {
    vec![
        case(
            "user",
            r#"%MyApp.User{name: "José", email: nil, age: 42, admin: true, tags: ["a", "b"],
                avatar: <<0, 1, 255>>, address: %MyApp.Address{street: "Rua 1", city: "Lisboa"},
                role: {:member, 3}, scores: %{"math" => 9.5, "art" => 7.0}}"#,
            User {
                name: "José".into(),
                email: None,
                age: 42,
                admin: true,
                tags: vec!["a".into(), "b".into()],
                avatar: vec![0, 1, 255],
                address: address("Rua 1", "Lisboa"),
                role: Role::Member(3),
                scores: HashMap::from([("math".into(), 9.5), ("art".into(), 7.0)]),
            },
        ),
        case(
            "admin",
            r#"%MyApp.User{name: "Ada", email: "ada@example.com", age: 36, admin: false, tags: [],
                avatar: <<>>, address: %MyApp.Address{street: "", city: "London"}, role: :admin,
                scores: %{}}"#,
            User {
                name: "Ada".into(),
                email: Some("ada@example.com".into()),
                age: 36,
                admin: false,
                tags: vec![],
                avatar: vec![],
                address: address("", "London"),
                role: Role::Admin,
                scores: HashMap::new(),
            },
        ),
        case(
            "roles",
            r#"[:admin, {:member, 3}, {:guest, %{until: 1700000000}}, {:pair, -1, "x"}]"#,
            vec![
                Role::Admin,
                Role::Member(3),
                Role::Guest {
                    until: 1_700_000_000,
                },
                Role::Pair(-1, "x".into()),
            ],
        ),
        case(
            "events",
            r#"[{:moved, %{from: %MyApp.Address{street: "a", city: "b"},
                          to: %MyApp.Address{street: "c", city: "d"}}},
                {:cancelled, nil}, {:cancelled, "late"}, :ok]"#,
            vec![
                Event::Moved {
                    from: address("a", "b"),
                    to: address("c", "d"),
                },
                Event::Cancelled(None),
                Event::Cancelled(Some("late".into())),
                Event::Ok,
            ],
        ),
        case(
            "options",
            r#"{nil, 5, "s", nil}"#,
            (
                None::<u8>,
                Some(5u8),
                Some("s".to_string()),
                None::<Vec<u8>>,
            ),
        ),
        Box::new(Typed {
            name: "erlang_options",
            elixir: "%{a: :undefined, b: 7}",
            back: None,
            options: Options::erlang(),
            value: ErlangRecord {
                a: None,
                b: Some(7),
            },
        }),
        case::<Binaries>(
            "binaries",
            r#"{<<>>, <<1, 2, 3>>, "tëxt", [4, 5]}"#,
            (
                serde_bytes::ByteBuf::new(),
                Bytes::from_static(&[1, 2, 3]),
                "tëxt".to_string(),
                vec![4u8, 5],
            ),
        ),
        case::<Nested>(
            "nested_maps",
            r#"%{"outer" => %{"inner" => %{"deep" => [1, -2, 3], "empty" => []}}, "none" => %{}}"#,
            HashMap::from([
                (
                    "outer".to_string(),
                    HashMap::from([(
                        "inner".to_string(),
                        BTreeMap::from([
                            ("deep".to_string(), vec![1, -2, 3]),
                            ("empty".to_string(), vec![]),
                        ]),
                    )]),
                ),
                ("none".to_string(), HashMap::new()),
            ]),
        ),
        case::<Numbers>(
            "numbers",
            "{-1, 255, 2147483648, 18446744073709551615, \
             -170141183460469231731687303715884105728, 1.5, -0.0}",
            (-1, 255, 1 << 31, u64::MAX, i128::MIN, 1.5, -0.0),
        ),
        case(
            "unit_atoms_tuples",
            r#"{{}, :ok, :"Elixir.MyApp.User", {1, {2, "three"}}}"#,
            (
                (),
                Atom::new("ok"),
                Atom::new("Elixir.MyApp.User"),
                (1u8, (2u8, "three".to_string())),
            ),
        ),
        Box::new(Typed {
            name: "charlist",
            // An Erlang string reads as a Rust String; it goes back as an Elixir string.
            elixir: r#"~c"héllo""#,
            back: Some(r#""héllo""#),
            options: Options::elixir(),
            value: "héllo".to_string(),
        }),
    ]
}

const SCRIPT: &str = r#"
defmodule MyApp.Address do
  defstruct [:street, :city]
end

defmodule MyApp.User do
  defstruct [:name, :email, :age, :admin, :tags, :avatar, :address, :role, :scores]
end

[cases_file, rust_file] = System.argv()
{cases, _} = Code.eval_file(cases_file)

for {name, value, _back} <- cases do
  IO.puts("OUT #{name} #{Base.encode16(:erlang.term_to_binary(value))}")
end

backs = Map.new(cases, fn {name, _value, back} -> {name, back} end)

for line <- String.split(File.read!(rust_file), "\n", trim: true) do
  [name, hex] = String.split(line, " ")
  got = :erlang.binary_to_term(Base.decode16!(hex))
  expected = Map.fetch!(backs, name)
  IO.puts("EQ #{name} #{got == expected}")
  if got != expected, do: IO.puts("GOT #{name} #{inspect(got)} WANT #{inspect(expected)}")
end
"#;

fn fresh_dir(otp: Otp) -> PathBuf {
    let dir = std::env::temp_dir().join(support::unique_name(&format!(
        "beamlink_term_serde_{}",
        otp.release()
    )));
    std::fs::create_dir_all(&dir).expect("a directory under /tmp");
    dir
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex from Elixir"))
        .collect()
}

/// Runs the script on `otp`; returns its stdout.
fn run_elixir(otp: Otp, dir: &Path, cases: &[Box<dyn Case>]) -> String {
    let script = dir.join("serde.exs");
    std::fs::write(&script, SCRIPT).unwrap();
    let elixir_cases: Vec<String> = cases
        .iter()
        .map(|c| format!("{{{:?}, {}, {}}}", c.name(), c.elixir(), c.elixir_back()))
        .collect();
    let cases_file = dir.join("cases.exs");
    std::fs::write(&cases_file, format!("[\n{}\n]\n", elixir_cases.join(",\n"))).unwrap();
    let rust_file = dir.join("rust.txt");
    let ours: Vec<String> = cases
        .iter()
        .map(|c| format!("{} {}", c.name(), hex(&c.encode())))
        .collect();
    std::fs::write(&rust_file, ours.join("\n")).unwrap();

    let output = otp
        .command("elixir")
        .arg(&script)
        .arg(&cases_file)
        .arg(&rust_file)
        .output()
        .unwrap_or_else(|e| panic!("{otp}: cannot run elixir: {e} (run scripts/setup)"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{otp}: elixir failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Everything that went wrong on `otp`, one line each.
fn run_release(otp: Otp) -> Vec<String> {
    let cases = cases();
    let dir = fresh_dir(otp);
    let stdout = run_elixir(otp, &dir, &cases);
    let mut failures = Vec::new();
    let mut seen_out = 0;
    let mut seen_eq = 0;
    for line in stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("OUT"), Some(name), Some(hex)) => {
                seen_out += 1;
                let case = cases.iter().find(|c| c.name() == name).expect("known case");
                if let Err(why) = case.check(Bytes::from(unhex(hex))) {
                    failures.push(format!("{otp} {name}: Elixir's bytes: {why}"));
                }
            }
            (Some("EQ"), Some(name), Some(verdict)) => {
                seen_eq += 1;
                if verdict != "true" {
                    failures.push(format!("{otp} {name}: our bytes are not == Elixir's value"));
                }
            }
            (Some("GOT"), _, _) => failures.push(format!("{otp}: {line}")),
            _ => {}
        }
    }
    if seen_out != cases.len() || seen_eq != cases.len() {
        failures.push(format!(
            "{otp}: {seen_out} OUT and {seen_eq} EQ lines for {} cases:\n{stdout}",
            cases.len()
        ));
    }

    // A field that is nil in Elixir and not an Option in Rust: the error names it.
    let user = stdout
        .lines()
        .find_map(|l| l.strip_prefix("OUT user "))
        .map(|hex| term::decode(&Bytes::from(unhex(hex))).expect("user decodes"));
    if let Some(user) = user {
        let err = beamlink::term::from_term::<StrictUser>(&user).expect_err("email is nil");
        let want = ".email: expected a UTF-8 binary, found atom nil";
        if err.to_string() != want || !matches!(err.kind(), ErrorKind::InvalidType { .. }) {
            failures.push(format!("{otp}: strict user: {err}, expected {want}"));
        }
        // And the struct is checked: the user is not an address.
        let err = beamlink::term::from_term::<Address>(&user).expect_err("not an address");
        if !matches!(err.kind(), ErrorKind::WrongStruct { .. }) {
            failures.push(format!("{otp}: user as an address: {err}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    failures
}

#[test]
fn typed_values_cross_real_beams_both_ways() {
    let releases = Otp::from_env();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = releases
            .iter()
            .map(|&otp| scope.spawn(move || run_release(otp)))
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().expect("release run"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
