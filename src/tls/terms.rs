//! A bounded reader for the Erlang term text of an `ssl_dist_optfile` (read by OTP with
//! `file:consult/1`, `lib/ssl/src/ssl_dist_sup.erl`): one term ended by a full stop, built
//! from lists, tuples, atoms (bare and quoted), strings, binaries of one string
//! (`<<"...">>`) and integers, with `%` comments. Anything else (maps, floats, funs,
//! improper lists, variables) is refused with its line; no input can make it panic or
//! grow without bound.

use std::fmt;

/// Files larger than this are refused before they are parsed.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Deepest nesting of lists and tuples.
const MAX_DEPTH: usize = 32;
/// Most terms (of any kind) in one file.
const MAX_TERMS: usize = 20_000;

/// One term of the subset.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Term {
    /// `name` or `'quoted name'`.
    Atom(String),
    /// `"text"` or `<<"text">>`.
    Str(String),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// `[A, B, ...]`.
    List(Vec<Term>),
    /// `{A, B, ...}`.
    Tuple(Vec<Term>),
}

impl fmt::Display for Term {
    /// The term as Erlang would print it (close enough for messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, items: &[Term]) -> fmt::Result {
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{t}")?;
            }
            Ok(())
        }
        match self {
            Term::Atom(a) if is_bare_atom(a) => f.write_str(a),
            Term::Atom(a) => write!(f, "'{}'", a.replace('\'', "\\'")),
            Term::Str(s) => write!(f, "{s:?}"),
            Term::Int(i) => write!(f, "{i}"),
            Term::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            Term::Tuple(items) => {
                f.write_str("{")?;
                seq(f, items)?;
                f.write_str("}")
            }
        }
    }
}

fn is_bare_atom(a: &str) -> bool {
    a.starts_with(|c: char| c.is_ascii_lowercase())
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
}

/// Why the text is not one term of the subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line of the offending character.
    pub line: usize,
    /// What was expected or found.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Parses `text` as exactly one term followed by a full stop.
pub fn parse(text: &str) -> Result<Term, SyntaxError> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        terms: 0,
    };
    let term = p.term(0)?;
    p.skip_blank();
    if p.peek() != Some('.') {
        return Err(p.error("expected a full stop after the term"));
    }
    p.bump();
    p.skip_blank();
    if p.peek().is_some() {
        return Err(p.error("expected one term only (the file holds more after the full stop)"));
    }
    Ok(term)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    terms: usize,
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '%' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn expect(&mut self, want: char) -> Result<(), SyntaxError> {
        self.skip_blank();
        match self.bump() {
            Some(c) if c == want => Ok(()),
            Some(c) => Err(self.error(format!("expected {want:?}, found {c:?}"))),
            None => Err(self.error(format!("expected {want:?}, found the end of the file"))),
        }
    }

    fn term(&mut self, depth: usize) -> Result<Term, SyntaxError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.error(format!("more than {MAX_TERMS} terms")));
        }
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH}")));
        }
        self.skip_blank();
        match self.peek() {
            Some('[') => {
                self.bump();
                self.sequence(']', depth).map(Term::List)
            }
            Some('{') => {
                self.bump();
                self.sequence('}', depth).map(Term::Tuple)
            }
            Some('"') => {
                self.bump();
                self.quoted('"').map(Term::Str)
            }
            Some('\'') => {
                self.bump();
                self.quoted('\'').map(Term::Atom)
            }
            Some('<') => self.binary(),
            Some(c) if c.is_ascii_lowercase() => Ok(Term::Atom(self.word())),
            Some(c) if c.is_ascii_digit() || c == '-' => self.integer(),
            Some(c) if c.is_ascii_uppercase() || c == '_' => {
                let variable = self.word();
                Err(self.error(format!(
                    "{variable:?} is a variable; option files hold only constant terms"
                )))
            }
            Some(c) => Err(self.error(format!(
                "unexpected {c:?} (option files hold lists, tuples, atoms, strings and integers)"
            ))),
            None => Err(self.error("unexpected end of the file")),
        }
    }

    fn sequence(&mut self, close: char, depth: usize) -> Result<Vec<Term>, SyntaxError> {
        let mut items = Vec::new();
        self.skip_blank();
        if self.peek() == Some(close) {
            self.bump();
            return Ok(items);
        }
        loop {
            items.push(self.term(depth + 1)?);
            self.skip_blank();
            match self.bump() {
                Some(',') => {}
                Some(c) if c == close => return Ok(items),
                Some('|') => return Err(self.error("improper lists ('|') are not supported")),
                Some(c) => {
                    return Err(self.error(format!("expected ',' or {close:?}, found {c:?}")));
                }
                None => return Err(self.error(format!("missing {close:?}"))),
            }
        }
    }

    fn word(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '@' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    fn integer(&mut self) -> Result<Term, SyntaxError> {
        let negative = self.peek() == Some('-');
        if negative {
            self.bump();
        }
        let digits = self.word();
        let float = self.peek() == Some('.')
            && self
                .chars
                .get(self.pos + 1)
                .is_some_and(|c| c.is_ascii_digit());
        if float
            || self.peek() == Some('#')
            || digits.is_empty()
            || !digits.chars().all(|c| c.is_ascii_digit())
        {
            return Err(self.error(format!(
                "{}{digits:?} is not an integer (floats and based integers are not supported)",
                if negative { "-" } else { "" }
            )));
        }
        let value: i64 = digits
            .parse()
            .map_err(|_| self.error(format!("integer {digits} is too large")))?;
        Ok(Term::Int(if negative { -value } else { value }))
    }

    /// The text of a string or quoted atom after its opening quote, with Erlang's common
    /// escapes.
    fn quoted(&mut self, quote: char) -> Result<String, SyntaxError> {
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error(format!("missing closing {quote}"))),
                Some(c) if c == quote => return Ok(s),
                Some('\\') => {
                    let c = match self.bump() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('s') => ' ',
                        Some('r') => '\r',
                        Some(c @ ('\\' | '\'' | '"')) => c,
                        Some(c) => return Err(self.error(format!("unsupported escape \\{c}"))),
                        None => return Err(self.error(format!("missing closing {quote}"))),
                    };
                    s.push(c);
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// `<<"text">>`, as file names may be written.
    fn binary(&mut self) -> Result<Term, SyntaxError> {
        self.bump();
        if self.bump() != Some('<') {
            return Err(self.error("expected '<<'"));
        }
        self.skip_blank();
        if self.bump() != Some('"') {
            return Err(self.error("only binaries of one string (<<\"...\">>) are supported"));
        }
        let text = self.quoted('"')?;
        self.expect('>')?;
        if self.bump() != Some('>') {
            return Err(self.error("expected '>>'"));
        }
        Ok(Term::Str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(a: &str) -> Term {
        Term::Atom(a.into())
    }

    #[test]
    fn reads_the_subset_option_files_use() {
        let text = r#"
            % the cluster's file
            [{server, [{certfile, "/etc/ssl/node.pem"}, {verify, verify_peer},
                       {versions, ['tlsv1.2', 'tlsv1.3']}, {depth, -2}]},
             {client, [{keyfile, <<"/k.pem">>}, {x, 'it\'s'}, {}]}].  % trailing
        "#;
        let Term::List(roles) = parse(text).unwrap() else {
            panic!("not a list")
        };
        assert_eq!(roles.len(), 2);
        let Term::Tuple(server) = &roles[0] else {
            panic!()
        };
        assert_eq!(server[0], atom("server"));
        assert_eq!(
            server[1],
            Term::List(vec![
                Term::Tuple(vec![
                    atom("certfile"),
                    Term::Str("/etc/ssl/node.pem".into())
                ]),
                Term::Tuple(vec![atom("verify"), atom("verify_peer")]),
                Term::Tuple(vec![
                    atom("versions"),
                    Term::List(vec![atom("tlsv1.2"), atom("tlsv1.3")])
                ]),
                Term::Tuple(vec![atom("depth"), Term::Int(-2)]),
            ])
        );
        assert_eq!(
            roles[1].to_string(),
            r#"{client, [{keyfile, "/k.pem"}, {x, 'it\'s'}, {}]}"#
        );
    }

    #[test]
    fn refuses_what_is_not_in_the_subset_with_its_line() {
        for (text, line, needle) in [
            ("[{a, 1.5}].", 1, "not an integer"),
            ("[\n{a, X}].", 2, "variable"),
            ("[{a, #{}}].", 1, "unexpected '#'"),
            ("[a | b].", 1, "improper"),
            ("[a]", 1, "full stop"),
            ("[a]. [b].", 1, "one term only"),
            ("[{a, \"open", 1, "missing closing"),
            ("[a,", 1, "end of the file"),
            ("[{a, 99999999999999999999}].", 1, "too large"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = "[".repeat(100) + &"]".repeat(100) + ".";
        assert!(parse(&deep).unwrap_err().message.contains("nested"));
        let wide = format!("[{}].", vec!["a"; MAX_TERMS + 1].join(","));
        assert!(parse(&wide).unwrap_err().message.contains("terms"));
    }
}
