//! One way to show a value from outside (a vendor, a sender, Azure, a trigger body) in a log line, an error
//! answer or an incident comment: bounded, and with every character that could hide or reorder what a reader
//! sees made visible as `\u{…}`: control characters (C0, C1), bidirectional controls (the "Trojan Source"
//! class: U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) and zero-width or invisible characters
//! (U+200B–U+200D, U+2060–U+2064, U+FEFF, U+00AD, U+180E). HTML escaping stays the comment's own, on top.

/// "1 sign-in", "3 sign-ins": a count with its noun in the right number, never "sign-in(s)".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whether a character must be shown as its code point rather than as itself.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{FEFF}'
                | '\u{00AD}'
                | '\u{180E}'
        )
}

/// `s` as a reader may safely see it: at most `max` characters of it (then `…`), each hidden character shown as
/// `\u{hex}`.
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(2)));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_made_visible_and_length_is_bounded() {
        assert_eq!(printable("admin\u{202E}gnp.exe", 64), "admin\\u{202e}gnp.exe");
        assert_eq!(printable("a\u{200B}b\nc\u{0}d\u{FEFF}", 64), "a\\u{200b}b\\u{a}c\\u{0}d\\u{feff}");
        assert_eq!(printable("ünïcødé is fine", 64), "ünïcødé is fine");
        assert_eq!(printable(&"x".repeat(100), 10), format!("{}…", "x".repeat(10)));
    }

    proptest::proptest! {
        #[test]
        fn nothing_hidden_survives(s in "\\PC*|[\\u{200B}-\\u{200F}\\u{202A}-\\u{202E}\\u{2066}-\\u{2069}\\u{0}-\\u{1F}]*") {
            let p = printable(&s, 1_000);
            proptest::prop_assert!(!p.chars().any(hidden), "{p:?}");
        }
    }
}
