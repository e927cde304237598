//! Tokens of KQL. Hyphenated operator names (`project-away`, `mv-expand`) and negated string operators
//! (`!contains`, `!in~`) are single tokens; `datetime(…)`, `timespan(…)` and `dynamic(…)` literals keep their
//! raw text, since their insides are not KQL tokens.

use super::{KqlError, Position};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A bracketed name: `['@meta']`.
    QuotedIdent(String),
    Str(String),
    Long(i64),
    Real(f64),
    /// A timespan literal like `5m`, in ticks.
    Span(i64),
    /// `datetime(…)` / `timespan(…)` / `dynamic(…)` / `guid(…)` with their raw inside.
    Typed(String, String),
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub pos: Position,
}

const HYPHENATED: &[&str] = &[
    "project-away",
    "project-rename",
    "project-keep",
    "project-reorder",
    "mv-expand",
    "mv-apply",
    "make-series",
    "top-nested",
    "top-hitters",
    "parse-where",
    "parse-kv",
    "order-by",
];

const SYMBOLS: &[&str] = &[
    "!contains_cs",
    "!startswith",
    "!endswith",
    "!contains",
    "!between",
    "!has_cs",
    "!has",
    "!in~",
    "!in",
    "==",
    "!=",
    "<>",
    "<=",
    ">=",
    "=~",
    "!~",
    "=>",
    "..",
    "|",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    ".",
    "=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    ":",
    "!",
    "$",
    "~",
];

pub fn lex(src: &str) -> Result<Vec<Token>, KqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    // Where each line starts, so a character's offset becomes a line and column.
    let line_starts: Vec<usize> = std::iter::once(0).chain(chars.iter().enumerate().filter(|(_, c)| **c == '\n').map(|(i, _)| i + 1)).collect();
    let at = |offset: usize| {
        let line = line_starts.partition_point(|&s| s <= offset);
        Position { line, column: offset - line_starts[line - 1] + 1 }
    };
    let err = |pos: usize, msg: String| KqlError::Syntax { pos: at(pos), message: msg };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        // Strings: "…", '…', verbatim @"…", and h"…" (hidden) strings.
        let verbatim = c == '@' && matches!(chars.get(i + 1), Some('"') | Some('\''));
        let hidden = matches!(c, 'h' | 'H') && matches!(chars.get(i + 1), Some('"') | Some('\''));
        if c == '"' || c == '\'' || verbatim || hidden {
            if verbatim || hidden {
                i += 1;
            }
            let quote = chars[i];
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else { return Err(err(start, "unterminated string literal".into())) };
                if ch == quote {
                    i += 1;
                    break;
                }
                if ch == '\\' && !verbatim {
                    let Some(&e) = chars.get(i + 1) else { return Err(err(i, "dangling escape".into())) };
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                s.push(ch);
                i += 1;
            }
            out.push(Token { tok: Tok::Str(s), pos: at(start) });
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], 'e' | 'E') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '-' || *d == '+') {
                i += 2;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let num: String = chars[start..i].iter().collect();
            // A unit right after the number makes a timespan: 5m, 1.5h, 100ms.
            let ustart = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i > ustart {
                let text: String = chars[start..i].iter().collect();
                let ticks = super::value::parse_timespan_literal(&text).ok_or_else(|| err(start, format!("'{text}' is not a number or timespan")))?;
                out.push(Token { tok: Tok::Span(ticks), pos: at(start) });
            } else if num.contains(['.', 'e', 'E']) {
                out.push(Token { tok: Tok::Real(num.parse().map_err(|_| err(start, format!("bad number '{num}'")))?), pos: at(start) });
            } else {
                let tok = match num.parse::<i64>() {
                    Ok(n) => Tok::Long(n),
                    Err(_) => Tok::Real(num.parse().map_err(|_| err(start, format!("bad number '{num}'")))?),
                };
                out.push(Token { tok, pos: at(start) });
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&'-') {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let joined: String = chars[start..j].iter().collect();
                if HYPHENATED.contains(&joined.as_str()) {
                    word = joined;
                    i = j;
                }
            }
            let lower = word.to_ascii_lowercase();
            if matches!(lower.as_str(), "datetime" | "timespan" | "dynamic" | "guid" | "time") {
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if chars.get(j) == Some(&'(') {
                    // Raw text up to the matching parenthesis, skipping over strings.
                    let mut depth = 0;
                    let mut k = j;
                    let mut quote: Option<char> = None;
                    loop {
                        let Some(&ch) = chars.get(k) else { return Err(err(start, format!("unterminated {word}(…) literal"))) };
                        match quote {
                            Some(_) if ch == '\\' => k += 1,
                            Some(q) if ch == q => quote = None,
                            Some(_) => {}
                            None => match ch {
                                '"' | '\'' => quote = Some(ch),
                                '(' => depth += 1,
                                ')' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            },
                        }
                        k += 1;
                    }
                    let inner: String = chars[j + 1..k].iter().collect();
                    let kind = if lower == "time" { "timespan".to_string() } else { lower };
                    out.push(Token { tok: Tok::Typed(kind, inner.trim().to_string()), pos: at(start) });
                    i = k + 1;
                    continue;
                }
            }
            out.push(Token { tok: Tok::Ident(word), pos: at(start) });
            continue;
        }
        if c == '[' && matches!(chars.get(i + 1), Some('\'') | Some('"')) {
            // ['name'] or ["name"]; anything else after '[' is an ordinary bracket.
            let quote = chars[i + 1];
            let mut j = i + 2;
            let mut name = String::new();
            while j < chars.len() && chars[j] != quote {
                name.push(chars[j]);
                j += 1;
            }
            if chars.get(j + 1) == Some(&']') {
                out.push(Token { tok: Tok::QuotedIdent(name), pos: at(start) });
                i = j + 2;
                continue;
            }
        }
        let rest: String = chars[i..chars.len().min(i + 13)].iter().collect();
        let sym = SYMBOLS
            .iter()
            .find(|s| rest.starts_with(**s) && !(s.starts_with('!') && s.len() > 2 && rest[s.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')));
        match sym {
            Some(s) => {
                out.push(Token { tok: Tok::Sym(s), pos: at(start) });
                i += s.chars().count();
            }
            None => return Err(err(start, format!("unexpected character '{c}'"))),
        }
    }
    out.push(Token { tok: Tok::Eof, pos: at(chars.len()) });
    Ok(out)
}
