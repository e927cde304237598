//! JSON paths into a vendor event, as mapping files write them: `data.risk_score`, `@meta.product`,
//! `data.access_groups[0].access_units[0].resource.name` (Apono's template spelling `access_groups.[0]` too),
//! `['key.with.dots']`, and `$` for the whole event.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON path '{path}' at character {at}: {reason}")]
pub struct PathError {
    pub path: String,
    pub at: usize,
    pub reason: &'static str,
}

fn is_bare_char(c: char) -> bool {
    !matches!(c, '.' | '[' | ']' | '\'' | '"' | '$') && !c.is_whitespace() && !c.is_control()
}

impl JsonPath {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn get<'v>(&self, mut v: &'v Value) -> Option<&'v Value> {
        for seg in &self.segments {
            v = match (seg, v) {
                (Segment::Key(k), Value::Object(m)) => m.get(k)?,
                (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// Removes what the path points at, leaving the rest of the event; used to find the fields a mapping
    /// does not name. Emptied objects along the way are removed too, so they do not show up as leftovers.
    pub fn remove(&self, v: &mut Value) {
        fn go(segs: &[Segment], v: &mut Value) -> bool {
            let Some((first, rest)) = segs.split_first() else { return false };
            match (first, v) {
                (Segment::Key(k), Value::Object(m)) => {
                    if rest.is_empty() {
                        m.shift_remove(k);
                    } else if let Some(child) = m.get_mut(k) {
                        if go(rest, child) {
                            m.shift_remove(k);
                        }
                    }
                    m.is_empty()
                }
                (Segment::Index(i), Value::Array(a)) => {
                    if let Some(child) = a.get_mut(*i) {
                        if rest.is_empty() || go(rest, child) {
                            // Keep positions stable for the other indices: leave a null where the item was.
                            a[*i] = Value::Null;
                        }
                    }
                    a.iter().all(Value::is_null)
                }
                _ => false,
            }
        }
        if self.segments.is_empty() {
            *v = Value::Null;
        } else {
            go(&self.segments, v);
        }
    }
}

impl FromStr for JsonPath {
    type Err = PathError;

    fn from_str(input: &str) -> Result<Self, PathError> {
        let err = |at: usize, reason| PathError { path: input.to_string(), at, reason };
        let chars: Vec<char> = input.chars().collect();
        let mut i = 0;
        let mut segments = Vec::new();
        if chars.first() == Some(&'$') {
            i = 1;
            if i == chars.len() {
                return Ok(JsonPath { segments });
            }
            if chars[i] == '.' {
                i += 1;
            } else if chars[i] != '[' {
                return Err(err(i, "expected '.' or '[' after '$'"));
            }
        }
        if chars.is_empty() {
            return Err(err(0, "empty path"));
        }
        loop {
            if i >= chars.len() {
                return Err(err(i, "path ends where a segment was expected"));
            }
            if chars[i] == '[' {
                i += 1;
                match chars.get(i) {
                    Some('\'') | Some('"') => {
                        let quote = chars[i];
                        i += 1;
                        let mut key = String::new();
                        loop {
                            match chars.get(i) {
                                None => return Err(err(i, "unterminated quoted key")),
                                Some('\\') => {
                                    let Some(&c) = chars.get(i + 1) else { return Err(err(i, "dangling escape")) };
                                    key.push(c);
                                    i += 2;
                                }
                                Some(&c) if c == quote => {
                                    i += 1;
                                    break;
                                }
                                Some(&c) => {
                                    key.push(c);
                                    i += 1;
                                }
                            }
                        }
                        if chars.get(i) != Some(&']') {
                            return Err(err(i, "expected ']' after quoted key"));
                        }
                        i += 1;
                        segments.push(Segment::Key(key));
                    }
                    Some(c) if c.is_ascii_digit() => {
                        let start = i;
                        while chars.get(i).is_some_and(char::is_ascii_digit) {
                            i += 1;
                        }
                        let digits: String = chars[start..i].iter().collect();
                        let idx = digits.parse::<usize>().map_err(|_| err(start, "index too large"))?;
                        if chars.get(i) != Some(&']') {
                            return Err(err(i, "expected ']' after index"));
                        }
                        i += 1;
                        segments.push(Segment::Index(idx));
                    }
                    _ => return Err(err(i, "expected an index or a quoted key after '['")),
                }
            } else {
                let start = i;
                while chars.get(i).is_some_and(|&c| is_bare_char(c)) {
                    i += 1;
                }
                if i == start {
                    return Err(err(i, "expected a key"));
                }
                segments.push(Segment::Key(chars[start..i].iter().collect()));
            }
            match chars.get(i) {
                None => return Ok(JsonPath { segments }),
                Some('.') => {
                    i += 1;
                    // Handlebars-style `a.[0]` is accepted as `a[0]`.
                }
                Some('[') => {}
                Some(_) => return Err(err(i, "expected '.', '[' or the end of the path")),
            }
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("$");
        }
        for (n, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) if !k.is_empty() && k.chars().all(is_bare_char) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => {
                    f.write_str("['")?;
                    for c in k.chars() {
                        if c == '\'' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("']")?;
                }
            }
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for JsonPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn p(s: &str) -> JsonPath {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_spellings_mappings_use() {
        let ev = json!({"@meta": {"product": "TrapEye"}, "data": {"access_groups": [{"access_units": [{"resource": {"name": "db"}}]}]}, "a.b": 1});
        assert_eq!(p("@meta.product").get(&ev), Some(&json!("TrapEye")));
        assert_eq!(p("data.access_groups[0].access_units[0].resource.name").get(&ev), Some(&json!("db")));
        assert_eq!(p("data.access_groups.[0].access_units.[0].resource.name").get(&ev), Some(&json!("db")));
        assert_eq!(p("['a.b']").get(&ev), Some(&json!(1)));
        assert_eq!(p("$['@meta'].product").get(&ev), Some(&json!("TrapEye")));
        assert_eq!(p("$").get(&ev), Some(&ev));
        assert_eq!(p("data.missing").get(&ev), None);
    }

    #[test]
    fn rejects_malformed_paths_with_a_position() {
        for bad in ["", "a.", "a..b", "a[", "a[x]", "a['x", "a]", "$x", "a b", "[1"] {
            assert!(bad.parse::<JsonPath>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn remove_leaves_the_unnamed_rest() {
        let mut ev = json!({"a": {"b": 1, "c": 2}, "d": [{"e": 1}, {"e": 2}], "f": {"g": 1}});
        p("a.b").remove(&mut ev);
        p("f.g").remove(&mut ev);
        p("d[0].e").remove(&mut ev);
        assert_eq!(ev, json!({"a": {"c": 2}, "d": [null, {"e": 2}]}));
        p("d[1].e").remove(&mut ev);
        assert_eq!(ev, json!({"a": {"c": 2}}));
    }

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![(0usize..1000).prop_map(Segment::Index), "[a-zA-Z@_][a-zA-Z0-9_@-]{0,8}".prop_map(Segment::Key), "\\PC{1,8}".prop_map(Segment::Key),]
    }

    proptest! {
        #[test]
        fn display_round_trips(segs in prop::collection::vec(segment(), 1..6)) {
            let path = JsonPath { segments: segs };
            let text = path.to_string();
            prop_assert_eq!(text.parse::<JsonPath>(), Ok(path));
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<JsonPath>();
        }
    }
}
