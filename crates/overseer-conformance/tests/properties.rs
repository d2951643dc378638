//! Properties: the parsers never panic on any input, and terms round-trip through `Display`.

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use overseer_conformance::{parse, Term};
use proptest::prelude::*;

/// The recorded `.scn` files, read once.
fn samples() -> &'static [String] {
    static SAMPLES: OnceLock<Vec<String>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otp");
        let mut texts: Vec<String> = fs::read_dir(dir)
            .expect("tests/otp exists")
            .map(|entry| entry.expect("readable dir entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "scn"))
            .map(|path| fs::read_to_string(path).expect("readable scenario"))
            .collect();
        texts.sort();
        texts
    })
}

/// Characters that matter to the format, plus a few that should not appear in it.
const ALPHABET: &[char] = &[
    ' ', ' ', ' ', '\n', '\t', '\r', '#', '=', '{', '}', '[', ']', ',', '\'', '\\', '-', '0', '1',
    '9', 'a', 'b', 'z', 'A', '_', '@', '.', 'é', '\u{0}',
];

/// One edit to a sample file; positions are taken modulo the current length.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Delete(usize, usize),
    ReplaceChar(usize, char),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    DeleteLine(usize),
    Reindent(usize, usize),
    InsertWord(usize, &'static str),
}

const WORDS: &[&str] = &[
    "sup",
    "child",
    "template",
    "crash",
    "exit",
    "add",
    "shutdown",
    "stubborn",
    "significant=true",
    "shutdown=infinity",
    "simple_one_for_one",
    "one_for_all",
    "intensity=99999999999",
    "period=-1",
    "{",
    "}",
    "[a,",
    "temporary",
    "advance",
    "4294967296",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop::sample::select(ALPHABET);
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(p, c)| Mutation::Insert(p, c)),
        (any::<usize>(), 0..8usize).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), ch).prop_map(|(p, c)| Mutation::ReplaceChar(p, c)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        (any::<usize>(), 0..12usize).prop_map(|(l, n)| Mutation::Reindent(l, n)),
        (any::<usize>(), prop::sample::select(WORDS)).prop_map(|(p, w)| Mutation::InsertWord(p, w)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for mutation in mutations {
        let len = chars.len();
        let mut lines: Vec<String> = chars
            .iter()
            .collect::<String>()
            .split('\n')
            .map(String::from)
            .collect();
        let nlines = lines.len();
        match *mutation {
            Mutation::Insert(p, c) => chars.insert(p % (len + 1), c),
            Mutation::Delete(p, n) => {
                let start = p % (len + 1);
                let end = (start + n).min(len);
                chars.drain(start..end);
            }
            Mutation::ReplaceChar(p, c) if len > 0 => chars[p % len] = c,
            Mutation::ReplaceChar(..) => {}
            Mutation::InsertWord(p, word) => {
                let at = p % (len + 1);
                chars.splice(at..at, format!(" {word} ").chars());
            }
            Mutation::DuplicateLine(l) => {
                let line = lines[l % nlines].clone();
                lines.insert(l % nlines, line);
                chars = lines.join("\n").chars().collect();
            }
            Mutation::SwapLines(a, b) => {
                lines.swap(a % nlines, b % nlines);
                chars = lines.join("\n").chars().collect();
            }
            Mutation::DeleteLine(l) => {
                lines.remove(l % nlines);
                chars = lines.join("\n").chars().collect();
            }
            Mutation::Reindent(l, n) => {
                let line = &mut lines[l % nlines];
                *line = format!("{}{}", " ".repeat(n), line.trim_start_matches(' '));
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

/// Atom names: mostly bare atoms, sometimes anything at all (printed quoted).
fn atom_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-zA-Z0-9_@]{0,6}",
        1 => any::<String>(),
    ]
}

fn term() -> impl Strategy<Value = Term> {
    let leaf = prop_oneof![
        atom_name().prop_map(Term::Atom),
        any::<i64>().prop_map(Term::Int),
    ];
    leaf.prop_recursive(8, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Term::Tuple),
            prop::collection::vec(inner, 0..5).prop_map(Term::List),
        ]
    })
}

fn has_only_bare_atoms(term: &Term) -> bool {
    match term {
        Term::Atom(_) => !term.to_string().starts_with('\''),
        Term::Int(_) => true,
        Term::Tuple(items) | Term::List(items) => items.iter().all(has_only_bare_atoms),
        other => unreachable!("the generator makes no {other:?}"),
    }
}

/// 512 cases per property, or `PROPTEST_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_format_like_text(
        text in prop::collection::vec(prop::sample::select(ALPHABET), 0..300)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
    ) {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_mutated_samples(
        sample in prop::sample::select(samples()),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let text = apply(&sample, &mutations);
        if let Err(err) = parse(&text) {
            // Errors point at a real line (or line 1 of an empty input).
            prop_assert!(err.line >= 1 && err.line <= text.lines().count().max(1), "{err} for {text:?}");
            let prefix = format!("line {}: ", err.line);
            prop_assert!(err.to_string().starts_with(&prefix), "{} lacks {:?}", err, prefix);
        }
    }

    #[test]
    fn term_parse_never_panics(text in any::<String>()) {
        let _ = Term::parse(&text);
    }

    #[test]
    fn terms_round_trip_through_display(term in term()) {
        let text = term.to_string();
        prop_assert_eq!(Term::parse(&text), Ok(term.clone()), "text {}", text);
        if has_only_bare_atoms(&term) {
            prop_assert!(!text.contains(char::is_whitespace), "{}", text);
        }
    }

    #[test]
    fn spaces_around_term_elements_do_not_change_the_term(term in term(), pad in "[ ]{0,3}") {
        let text = term.to_string();
        // Pad after every separator/bracket that is outside quoted atoms.
        let mut spaced = String::new();
        let mut in_quote = false;
        let mut escaped = false;
        for c in text.chars() {
            spaced.push(c);
            if in_quote {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '\'') => in_quote = false,
                    _ => escaped = false,
                }
            } else if c == '\'' {
                in_quote = true;
            } else if matches!(c, '{' | '}' | '[' | ']' | ',') {
                spaced.push_str(&pad);
            }
        }
        prop_assert_eq!(Term::parse(&spaced), Ok(term));
    }
}

#[test]
fn unmutated_samples_parse() {
    assert_eq!(samples().len(), 14);
    for sample in samples() {
        assert!(parse(sample).is_ok());
        assert_eq!(apply(sample, &[]), *sample);
    }
}
