//! A small Erlang term type, enough for exit reasons such as `crash`, `{shutdown,done}` or
//! `{error,boom}`.
//!
//! [`Term::parse`] reads the Erlang subset the scenarios use; [`Display`](fmt::Display) prints
//! the canonical form OTP's `~w` prints, with no spaces (`{shutdown,done}`), so a parsed reason
//! can be written straight into a trace line.
//!
//! | syntax | example | notes |
//! |---|---|---|
//! | bare atom | `normal`, `error@x`, `w1` | a lowercase ASCII letter, then ASCII letters, digits, `_` or `@` |
//! | quoted atom | `'EXIT'`, `'with space'`, `''` | `\'` and `\\` are the only escapes |
//! | integer | `0`, `-12`, `007` | decimal, must fit in an `i64` |
//! | tuple | `{}`, `{shutdown,done}` | |
//! | list | `[]`, `[a,{b,1}]` | |
//!
//! Whitespace (spaces, tabs, newlines) is allowed around every element and ignored. Nesting is
//! limited to [`MAX_TERM_DEPTH`] tuples/lists, so parsing never recurses without bound.
//! Strings, floats, `$c` characters, `16#FF` integers, pids and maps are not supported.

use std::fmt;
use std::str::FromStr;

/// How many tuples/lists may be nested inside each other in one term (`{a}` has depth 1).
///
/// A deeper term is rejected with [`TermError::TooDeep`].
pub const MAX_TERM_DEPTH: usize = 64;

/// An Erlang term: the exit reason of an `exit NAME REASON` action.
///
/// ```
/// use overseer_conformance::Term;
///
/// let reason: Term = "{shutdown, done}".parse().unwrap();
/// assert_eq!(reason.to_string(), "{shutdown,done}");
/// assert!(reason.is_normal_exit());
/// assert!(!Term::parse("{error,boom}").unwrap().is_normal_exit());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Term {
    /// An atom such as `normal`; the name is stored without quotes.
    Atom(String),
    /// An integer.
    Int(i64),
    /// A tuple `{A,B,...}` (possibly empty).
    Tuple(Vec<Term>),
    /// A proper list `[A,B,...]` (possibly empty).
    List(Vec<Term>),
}

/// Why [`Term::parse`] rejected its input. Columns count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TermError {
    /// The input was empty or only whitespace.
    #[error("empty term")]
    Empty,
    /// The input ended inside a tuple or list, or right after a `-`.
    #[error("unexpected end of term (expected {expected})")]
    UnexpectedEnd {
        /// What the parser was looking for.
        expected: &'static str,
    },
    /// A character that cannot appear at that point.
    #[error("unexpected '{found}' at column {column} (expected {expected})")]
    Unexpected {
        /// The offending character.
        found: char,
        /// Its column, counting characters from 1.
        column: usize,
        /// What the parser was looking for.
        expected: &'static str,
    },
    /// A complete term was followed by more input, e.g. `a b` or `{a}}`.
    #[error("unexpected '{found}' at column {column} after a complete term")]
    TrailingInput {
        /// The first character after the term.
        found: char,
        /// Its column, counting characters from 1.
        column: usize,
    },
    /// An integer that does not fit in an `i64`.
    #[error("integer {text} is out of range (must fit in a 64-bit signed integer)")]
    IntegerOutOfRange {
        /// The digits as written.
        text: String,
    },
    /// A quoted atom without its closing `'`.
    #[error("unterminated quoted atom starting at column {column}")]
    UnterminatedQuote {
        /// Column of the opening quote.
        column: usize,
    },
    /// A backslash in a quoted atom followed by something other than `'` or `\`.
    #[error("unsupported escape '\\{found}' at column {column} (only \\' and \\\\ are supported)")]
    BadEscape {
        /// The character after the backslash.
        found: char,
        /// Column of the backslash.
        column: usize,
    },
    /// Tuples/lists nested deeper than [`MAX_TERM_DEPTH`].
    #[error("term nested deeper than {limit} tuples/lists")]
    TooDeep {
        /// The limit that was exceeded ([`MAX_TERM_DEPTH`]).
        limit: usize,
    },
}

impl Term {
    /// Parses one Erlang term (see the [module docs](self) for the accepted syntax).
    ///
    /// # Errors
    ///
    /// A [`TermError`] saying what is wrong and where; never panics.
    pub fn parse(input: &str) -> Result<Term, TermError> {
        let mut parser = TermParser {
            chars: input.chars().collect(),
            pos: 0,
        };
        parser.skip_ws();
        if parser.peek().is_none() {
            return Err(TermError::Empty);
        }
        let term = parser.term(0)?;
        parser.skip_ws();
        match parser.peek() {
            None => Ok(term),
            Some(found) => Err(TermError::TrailingInput {
                found,
                column: parser.column(),
            }),
        }
    }

    /// Builds an atom.
    pub fn atom(name: impl Into<String>) -> Term {
        Term::Atom(name.into())
    }

    /// The atom's name, if this term is an atom.
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Term::Atom(name) => Some(name),
            _ => None,
        }
    }

    /// Whether this exit reason is a *normal* exit for OTP: `normal`, `shutdown` or
    /// `{shutdown,_}`. Everything else (`crash`, `killed`, `{error,boom}`) is abnormal.
    ///
    /// | reason | normal? |
    /// |---|---|
    /// | `normal`, `shutdown` | yes |
    /// | `{shutdown,Anything}` | yes |
    /// | `{shutdown}`, `{shutdown,a,b}`, `[shutdown]` | no |
    /// | anything else | no |
    pub fn is_normal_exit(&self) -> bool {
        match self {
            Term::Atom(name) => name == "normal" || name == "shutdown",
            Term::Tuple(items) => {
                matches!(items.as_slice(), [Term::Atom(tag), _] if tag == "shutdown")
            }
            Term::Int(_) | Term::List(_) => false,
        }
    }
}

impl FromStr for Term {
    type Err = TermError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Term::parse(s)
    }
}

impl fmt::Display for Term {
    /// Canonical Erlang form without spaces, quoting atoms only where Erlang must.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Atom(name) => write_atom(f, name),
            Term::Int(value) => write!(f, "{value}"),
            Term::Tuple(items) => write_seq(f, '{', items, '}'),
            Term::List(items) => write_seq(f, '[', items, ']'),
        }
    }
}

fn write_seq(f: &mut fmt::Formatter<'_>, open: char, items: &[Term], close: char) -> fmt::Result {
    write!(f, "{open}")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    write!(f, "{close}")
}

/// Erlang's reserved words: `io_lib:write_atom/1` quotes them (`'end'`).
const RESERVED_WORDS: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
    "rem", "try", "when", "xor",
];

/// Whether `name` can be written as an atom without quotes.
fn is_bare_atom(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(is_atom_char)
        && !RESERVED_WORDS.contains(&name)
}

/// A character allowed after the first one in a bare atom (and in scenario names).
pub(crate) fn is_atom_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@'
}

/// Whether `name` is a valid bare atom syntactically (reserved words included).
pub(crate) fn is_atom_syntax(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase()) && chars.all(is_atom_char)
}

fn write_atom(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_bare_atom(name) {
        return f.write_str(name);
    }
    f.write_str("'")?;
    for c in name.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            other => write!(f, "{other}")?,
        }
    }
    f.write_str("'")
}

/// Recursive-descent parser over the characters of one term; recursion is bounded by
/// [`MAX_TERM_DEPTH`].
struct TermParser {
    chars: Vec<char>,
    pos: usize,
}

impl TermParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// 1-based column of the next character.
    fn column(&self) -> usize {
        self.pos + 1
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(c) if c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, expected: &'static str) -> TermError {
        match self.peek() {
            Some(found) => TermError::Unexpected {
                found,
                column: self.column(),
                expected,
            },
            None => TermError::UnexpectedEnd { expected },
        }
    }

    /// One term at nesting `depth` (the number of enclosing tuples/lists).
    fn term(&mut self, depth: usize) -> Result<Term, TermError> {
        const EXPECTED: &str = "an atom, an integer, '{' or '['";
        self.skip_ws();
        match self.peek() {
            Some('{') => self.seq(depth, '}').map(Term::Tuple),
            Some('[') => self.seq(depth, ']').map(Term::List),
            Some('\'') => self.quoted_atom(),
            Some(c) if c.is_ascii_lowercase() => Ok(self.bare_atom()),
            Some(c) if c == '-' || c.is_ascii_digit() => self.integer(),
            _ => Err(self.unexpected(EXPECTED)),
        }
    }

    /// A tuple or list body; the opening bracket is the next character.
    fn seq(&mut self, depth: usize, close: char) -> Result<Vec<Term>, TermError> {
        let expected_sep = if close == '}' {
            "',' or '}'"
        } else {
            "',' or ']'"
        };
        if depth >= MAX_TERM_DEPTH {
            return Err(TermError::TooDeep {
                limit: MAX_TERM_DEPTH,
            });
        }
        self.bump(); // the opening bracket
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(close) {
            self.bump();
            return Ok(items);
        }
        loop {
            items.push(self.term(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                _ => return Err(self.unexpected(expected_sep)),
            }
        }
    }

    fn bare_atom(&mut self) -> Term {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() || is_atom_char(c) {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        Term::Atom(name)
    }

    fn quoted_atom(&mut self) -> Result<Term, TermError> {
        let start = self.column();
        self.bump(); // the opening quote
        let mut name = String::new();
        loop {
            match self.bump() {
                None => return Err(TermError::UnterminatedQuote { column: start }),
                Some('\'') => return Ok(Term::Atom(name)),
                Some('\\') => {
                    let column = self.pos; // the backslash, 1-based
                    match self.bump() {
                        Some(c @ ('\'' | '\\')) => name.push(c),
                        Some(found) => return Err(TermError::BadEscape { found, column }),
                        None => return Err(TermError::UnterminatedQuote { column: start }),
                    }
                }
                Some(c) => name.push(c),
            }
        }
    }

    fn integer(&mut self) -> Result<Term, TermError> {
        let mut text = String::new();
        if self.peek() == Some('-') {
            text.push('-');
            self.pos += 1;
        }
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            text.push(c);
            self.pos += 1;
        }
        if text == "-" {
            return Err(self.unexpected("a digit after '-'"));
        }
        text.parse::<i64>()
            .map(Term::Int)
            .map_err(|_| TermError::IntegerOutOfRange { text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(name: &str) -> Term {
        Term::atom(name)
    }

    #[test]
    fn parses_the_reasons_used_by_the_scenarios() {
        assert_eq!(Term::parse("normal"), Ok(atom("normal")));
        assert_eq!(
            Term::parse("{shutdown,done}"),
            Ok(Term::Tuple(vec![atom("shutdown"), atom("done")]))
        );
        assert_eq!(
            Term::parse("{error,boom}"),
            Ok(Term::Tuple(vec![atom("error"), atom("boom")]))
        );
    }

    #[test]
    fn spaces_inside_a_term_are_tolerated_and_not_printed() {
        let term = Term::parse("  { shutdown ,\tdone }  ").unwrap();
        assert_eq!(term.to_string(), "{shutdown,done}");
        let term = Term::parse("[ a , { b , -1 } , [ ] , { } ]").unwrap();
        assert_eq!(term.to_string(), "[a,{b,-1},[],{}]");
    }

    #[test]
    fn canonical_forms_round_trip_unchanged() {
        for text in [
            "normal",
            "shutdown",
            "{shutdown,done}",
            "{error,boom}",
            "{shutdown,{failed_to_start_child,b,start_failed}}",
            "[]",
            "{}",
            "[1,-2,{a@b,c_d}]",
            "'EXIT'",
            "'with space'",
            "''",
            "'it\\'s'",
            "'back\\\\slash'",
            "'end'",
            "-9223372036854775808",
            "9223372036854775807",
        ] {
            let term = Term::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(term.to_string(), text);
        }
    }

    #[test]
    fn quotes_only_atoms_that_need_it() {
        assert_eq!(atom("ok").to_string(), "ok");
        assert_eq!(atom("Ok").to_string(), "'Ok'");
        assert_eq!(atom("a-b").to_string(), "'a-b'");
        assert_eq!(atom("1a").to_string(), "'1a'");
        assert_eq!(atom("receive").to_string(), "'receive'");
        assert_eq!(Term::parse("'plain'"), Ok(atom("plain")));
        assert_eq!(Term::parse("'plain'").unwrap().to_string(), "plain");
        // A reserved word written bare is accepted (leniently) and printed quoted.
        assert_eq!(Term::parse("end").unwrap().to_string(), "'end'");
    }

    #[test]
    fn leading_zeros_are_normalised() {
        assert_eq!(Term::parse("007"), Ok(Term::Int(7)));
        assert_eq!(Term::parse("-0").unwrap().to_string(), "0");
    }

    #[test]
    fn normal_exits_are_normal_shutdown_and_shutdown_tuples() {
        for normal in [
            "normal",
            "shutdown",
            "{shutdown,done}",
            "{shutdown,{a,[b]}}",
        ] {
            assert!(Term::parse(normal).unwrap().is_normal_exit(), "{normal}");
        }
        for abnormal in [
            "crash",
            "killed",
            "{error,boom}",
            "{shutdown}",
            "{shutdown,a,b}",
            "[shutdown]",
            "'Normal'",
            "0",
            "{normal,x}",
        ] {
            assert!(
                !Term::parse(abnormal).unwrap().is_normal_exit(),
                "{abnormal}"
            );
        }
    }

    #[test]
    fn malformed_terms_are_typed_errors() {
        use TermError::*;
        let cases: &[(&str, TermError)] = &[
            ("", Empty),
            ("   ", Empty),
            (
                "{a,",
                UnexpectedEnd {
                    expected: "an atom, an integer, '{' or '['",
                },
            ),
            (
                "{a",
                UnexpectedEnd {
                    expected: "',' or '}'",
                },
            ),
            (
                "[a}",
                Unexpected {
                    found: '}',
                    column: 3,
                    expected: "',' or ']'",
                },
            ),
            (
                "{a,}",
                Unexpected {
                    found: '}',
                    column: 4,
                    expected: "an atom, an integer, '{' or '['",
                },
            ),
            (
                "{,a}",
                Unexpected {
                    found: ',',
                    column: 2,
                    expected: "an atom, an integer, '{' or '['",
                },
            ),
            (
                "Error",
                Unexpected {
                    found: 'E',
                    column: 1,
                    expected: "an atom, an integer, '{' or '['",
                },
            ),
            (
                "a b",
                TrailingInput {
                    found: 'b',
                    column: 3,
                },
            ),
            (
                "{a}}",
                TrailingInput {
                    found: '}',
                    column: 4,
                },
            ),
            (
                "1.5",
                TrailingInput {
                    found: '.',
                    column: 2,
                },
            ),
            (
                "-",
                UnexpectedEnd {
                    expected: "a digit after '-'",
                },
            ),
            (
                "-x",
                Unexpected {
                    found: 'x',
                    column: 2,
                    expected: "a digit after '-'",
                },
            ),
            (
                "+1",
                Unexpected {
                    found: '+',
                    column: 1,
                    expected: "an atom, an integer, '{' or '['",
                },
            ),
            (
                "9223372036854775808",
                IntegerOutOfRange {
                    text: "9223372036854775808".into(),
                },
            ),
            ("{a,'b", UnterminatedQuote { column: 4 }),
            ("'a\\", UnterminatedQuote { column: 1 }),
            (
                "'a\\n'",
                BadEscape {
                    found: 'n',
                    column: 3,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Term::parse(input).as_ref(),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!(
            "{}a{}",
            "{".repeat(MAX_TERM_DEPTH),
            "}".repeat(MAX_TERM_DEPTH)
        );
        assert!(Term::parse(&ok).is_ok());
        let deep = format!(
            "{}a{}",
            "[".repeat(MAX_TERM_DEPTH + 1),
            "]".repeat(MAX_TERM_DEPTH + 1)
        );
        assert_eq!(
            Term::parse(&deep),
            Err(TermError::TooDeep {
                limit: MAX_TERM_DEPTH
            })
        );
        let very_deep = "{".repeat(1000);
        assert_eq!(
            Term::parse(&very_deep),
            Err(TermError::TooDeep {
                limit: MAX_TERM_DEPTH
            })
        );
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(
            Term::parse("{a,").unwrap_err().to_string(),
            "unexpected end of term (expected an atom, an integer, '{' or '[')"
        );
        assert_eq!(
            Term::parse("'a\\n'").unwrap_err().to_string(),
            "unsupported escape '\\n' at column 3 (only \\' and \\\\ are supported)"
        );
    }
}
