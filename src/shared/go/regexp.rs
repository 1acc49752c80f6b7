//! Reload-list items are Go regular expressions (stakater compiles `^item$` with Go's
//! `regexp`). This reads an item with Go's parser rules and writes the same expression in
//! the `regex` crate's syntax, so an item is accepted, rejected and matched as in Go:
//! `\Q…\E`, octal escapes, a `{` that is not a repeat, ASCII `\d \s \w \b`, and character
//! classes, where the `regex` crate's nesting and set operators (`[[`, `&&`, `--`, `~~`)
//! are plain characters in Go. Syntax Go rejects is rejected with Go's message, even
//! where the `regex` crate would accept it (`\<`, `\u`, `(?x)`, `a**`, `a{1001}`).
//!
//! The item is read on its own, so it can never leave the group it is anchored in: a
//! stray `)` is an error, not an escape from the anchors. One Go quirk is kept: an item
//! that starts with a repetition operator repeats the `^` before it (`*db` ends in `db`).

use std::fmt::Write as _;

/// Why Go's parser rejects an item (its wording, with the part at fault).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GoSyntaxError {
    #[error("trailing backslash at end of expression")]
    TrailingBackslash,
    #[error("invalid escape sequence: `{0}`")]
    InvalidEscape(String),
    #[error("missing closing ]: `{0}`")]
    MissingBracket(String),
    #[error("missing closing ): `{0}`")]
    MissingParen(String),
    #[error("unexpected ): `{0}`")]
    UnexpectedParen(String),
    #[error("missing argument to repetition operator: `{0}`")]
    MissingRepeatArgument(String),
    #[error("invalid nested repetition operator: `{0}`")]
    InvalidRepeatOp(String),
    #[error("invalid repeat count: `{0}`")]
    InvalidRepeatSize(String),
    #[error("invalid character class range: `{0}`")]
    InvalidCharRange(String),
    #[error("invalid named capture: `{0}`")]
    InvalidNamedCapture(String),
    #[error("invalid or unsupported Perl syntax: `{0}`")]
    InvalidPerlOp(String),
}

use GoSyntaxError as E;

/// The `regex` crate pattern for a reload-list item: stakater's `^item$`, with the whole
/// item anchored (`a|b` is `^(?:a|b)$`).
pub fn anchored(item: &str) -> Result<String, GoSyntaxError> {
    match leading_repeat(item)? {
        // Go repeats the `^` stakater puts first; zero repeats leave the start open.
        Some((op, rest)) => Ok(format!("(?:^){op}(?:{})$", translate(rest, Prev::Repeat)?)),
        None => Ok(format!("^(?:{})$", translate(item, Prev::Empty)?)),
    }
}

/// The item alone in the `regex` crate's syntax, unanchored (what `anchored` wraps, for
/// an item that does not start with a repetition).
pub fn translate_alone(item: &str) -> Result<String, GoSyntaxError> {
    translate(item, Prev::Empty)
}

/// A repetition operator at the very start of `item` (with its lazy `?`), and the rest.
fn leading_repeat(item: &str) -> Result<Option<(&str, &str)>, GoSyntaxError> {
    let len = match item.as_bytes().first() {
        Some(b'*' | b'+' | b'?') => 1,
        Some(b'{') => match parse_repeat(item) {
            Some((len, valid)) if valid => len,
            Some((len, _)) => return Err(E::InvalidRepeatSize(item[..len].into())),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    let len = len + usize::from(item[len..].starts_with('?'));
    Ok(Some(item.split_at(len)))
}

/// What the last piece written can take: a repetition needs an atom before it, and Go
/// forbids a repetition of a repetition.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start, `(` or `|`: nothing to repeat.
    Empty,
    Atom,
    Repeat,
}

/// Go's `parseRepeat`: `{n}`, `{n,}` or `{n,m}` at the start of `s` → its length and
/// whether the counts are allowed (at most 1000, n ≤ m). `None`: not a repeat, so `{` is
/// a literal.
fn parse_repeat(s: &str) -> Option<(usize, bool)> {
    let b = s.as_bytes();
    let int = |i: usize| -> Option<(usize, Option<u32>)> {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        // Go disallows leading zeros: `{01}` is not a repeat.
        if digits == 0 || (digits > 1 && b[i] == b'0') {
            return None;
        }
        let n = s[i..i + digits]
            .parse::<u32>()
            .ok()
            .filter(|n| *n < 100_000_000);
        Some((i + digits, n))
    };
    if b.first() != Some(&b'{') {
        return None;
    }
    let (mut i, min) = int(1)?;
    let max = match b.get(i)? {
        b',' if b.get(i + 1)? == &b'}' => {
            i += 1;
            Some(None)
        }
        b',' => {
            let (j, m) = int(i + 1)?;
            i = j;
            m.map(Some)
        }
        _ => min.map(Some),
    };
    if b.get(i)? != &b'}' {
        return None;
    }
    let valid = match (min, max) {
        (Some(n), Some(None)) => n <= 1000,
        (Some(n), Some(Some(m))) => n <= 1000 && m <= 1000 && n <= m,
        _ => false, // a count over 10^8
    };
    Some((i + 1, valid))
}

/// Go's syntax → the `regex` crate's, for a whole expression.
fn translate(item: &str, start: Prev) -> Result<String, GoSyntaxError> {
    let mut out = String::with_capacity(item.len() + 8);
    let mut prev = start;
    let mut depth = 0usize;
    let mut t = item;
    // Where a run of flag groups that ends `out` starts: Go applies a repetition after
    // them to the atom before them, so the operator goes in front of them.
    let mut flags_tail: Option<usize> = None;
    while let Some(c) = t.chars().next() {
        let tail = flags_tail.take();
        match c {
            '(' if t.starts_with("(?") => {
                let (group, rest) = perl_group(t)?;
                match group {
                    Group::Open(flags) => {
                        out.push_str("(?");
                        out.push_str(flags);
                        out.push(':');
                        depth += 1;
                        prev = Prev::Empty;
                    }
                    Group::Flags(flags) => {
                        flags_tail = Some(tail.unwrap_or(out.len()));
                        if !flags.is_empty() {
                            let _ = write!(out, "(?{flags})");
                        }
                        // Go ends the repetition run here but keeps the atom before.
                        if prev == Prev::Repeat {
                            prev = Prev::Atom;
                        }
                    }
                }
                t = rest;
            }
            '(' => {
                out.push_str("(?:");
                depth += 1;
                prev = Prev::Empty;
                t = &t[1..];
            }
            ')' => {
                if depth == 0 {
                    return Err(E::UnexpectedParen(item.into()));
                }
                depth -= 1;
                out.push(')');
                prev = Prev::Atom;
                t = &t[1..];
            }
            '|' => {
                out.push('|');
                prev = Prev::Empty;
                t = &t[1..];
            }
            '^' | '$' | '.' => {
                out.push(c);
                prev = Prev::Atom;
                t = &t[1..];
            }
            '[' => {
                t = class(t, &mut out)?;
                prev = Prev::Atom;
            }
            '*' | '+' | '?' | '{' => {
                let len = match c {
                    '{' => match parse_repeat(t) {
                        Some((len, true)) => len,
                        Some((len, false)) => return Err(E::InvalidRepeatSize(t[..len].into())),
                        None => {
                            out.push_str(r"\{");
                            prev = Prev::Atom;
                            t = &t[1..];
                            continue;
                        }
                    },
                    _ => 1,
                };
                let len = len + usize::from(t[len..].starts_with('?'));
                let op = &t[..len];
                match prev {
                    Prev::Empty => return Err(E::MissingRepeatArgument(op.into())),
                    Prev::Repeat => return Err(E::InvalidRepeatOp(op.into())),
                    Prev::Atom => {}
                }
                let at = tail.unwrap_or(out.len());
                out.insert_str(at, op);
                flags_tail = tail.map(|_| at + op.len());
                prev = Prev::Repeat;
                t = &t[len..];
            }
            '\\' => {
                t = escape(t, &mut out, &mut prev)?;
            }
            _ => {
                literal(&mut out, c);
                prev = Prev::Atom;
                t = &t[c.len_utf8()..];
            }
        }
    }
    if depth > 0 {
        return Err(E::MissingParen(item.into()));
    }
    Ok(out)
}

/// A backslash sequence outside a class.
fn escape<'a>(t: &'a str, out: &mut String, prev: &mut Prev) -> Result<&'a str, GoSyntaxError> {
    let Some(c) = t[1..].chars().next() else {
        return Err(E::TrailingBackslash);
    };
    let assertion = match c {
        'A' => Some(r"\A"),
        'z' => Some(r"\z"),
        // Go's word boundary is ASCII; the group keeps a following `{` from reading as
        // the regex crate's `\b{start}`.
        'b' => Some(r"(?-u:\b)"),
        'B' => Some(r"(?-u:\B)"),
        _ => None,
    };
    if let Some(a) = assertion {
        out.push_str(a);
        *prev = Prev::Atom;
        return Ok(&t[2..]);
    }
    if c == 'Q' {
        // Literal up to `\E` or the end of the item.
        let body = &t[2..];
        let (lit, rest) = body.split_once(r"\E").unwrap_or((body, ""));
        for ch in lit.chars() {
            literal(out, ch);
        }
        if !lit.is_empty() || *prev == Prev::Repeat {
            *prev = Prev::Atom;
        }
        return Ok(rest);
    }
    if let Some((set, rest)) = set_escape(t)? {
        out.push_str(&set);
        *prev = Prev::Atom;
        return Ok(rest);
    }
    let (ch, rest) = char_escape(t)?;
    literal(out, ch);
    *prev = Prev::Atom;
    Ok(rest)
}

/// `\d \D \s \S \w \W` (ASCII, as in Go) and `\p…`/`\P…`, as a bracketed class.
fn set_escape(t: &str) -> Result<Option<(String, &str)>, GoSyntaxError> {
    let perl = match t.get(..2) {
        Some(r"\d") => "[0-9]",
        Some(r"\D") => "[^0-9]",
        Some(r"\s") => r"[\t\n\x0C\r ]",
        Some(r"\S") => r"[^\t\n\x0C\r ]",
        Some(r"\w") => "[0-9A-Za-z_]",
        Some(r"\W") => "[^0-9A-Za-z_]",
        Some(r"\p") | Some(r"\P") => return unicode_class(t).map(Some),
        _ => return Ok(None),
    };
    Ok(Some((perl.to_owned(), &t[2..])))
}

/// `\pL`, `\p{Greek}`, `\P{^Greek}`: the name is left to the regex crate's table.
fn unicode_class(t: &str) -> Result<(String, &str), GoSyntaxError> {
    let mut negated = t.as_bytes()[1] == b'P';
    let after = &t[2..];
    let Some(c) = after.chars().next() else {
        return Err(E::InvalidCharRange(t.into()));
    };
    let (mut name, rest) = if c == '{' {
        let end = after
            .find('}')
            .ok_or_else(|| E::InvalidCharRange(t.into()))?;
        (&after[1..end], &after[end + 1..])
    } else {
        after.split_at(c.len_utf8())
    };
    if let Some(n) = name.strip_prefix('^') {
        negated = !negated;
        name = n;
    }
    if name.is_empty() {
        return Err(E::InvalidCharRange(t[..t.len() - rest.len()].into()));
    }
    let p = if negated { 'P' } else { 'p' };
    Ok((format!(r"\{p}{{{name}}}"), rest))
}

/// Go's `parseEscape`: one character from a backslash sequence.
fn char_escape(t: &str) -> Result<(char, &str), GoSyntaxError> {
    let body = &t[1..];
    let c = body.chars().next().ok_or(E::TrailingBackslash)?;
    let after = &body[c.len_utf8()..];
    let invalid = |rest: &str| E::InvalidEscape(t[..t.len() - rest.len()].into());
    let is_octal = |s: &str| {
        s.as_bytes()
            .first()
            .is_some_and(|b| (b'0'..=b'7').contains(b))
    };
    match c {
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, after)),
        // `\1`..`\7` alone would be a backreference, which Go does not support.
        '1'..='7' if !is_octal(after) => Err(invalid(after)),
        '0'..='7' => {
            let mut value = c as u32 - '0' as u32;
            let mut rest = after;
            for _ in 1..3 {
                if !is_octal(rest) {
                    break;
                }
                value = value * 8 + (rest.as_bytes()[0] - b'0') as u32;
                rest = &rest[1..];
            }
            Ok((char::from_u32(value).expect("octal below 512"), rest))
        }
        'x' => hex_escape(after).ok_or_else(|| invalid(after)),
        'a' => Ok(('\x07', after)),
        'f' => Ok(('\x0C', after)),
        'n' => Ok(('\n', after)),
        'r' => Ok(('\r', after)),
        't' => Ok(('\t', after)),
        'v' => Ok(('\x0B', after)),
        _ => Err(invalid(after)),
    }
}

/// `\xHH` or `\x{H…}` after the `\x`.
fn hex_escape(s: &str) -> Option<(char, &str)> {
    if let Some(body) = s.strip_prefix('{') {
        let end = body.find('}')?;
        let digits = &body[..end];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let value = u32::from_str_radix(digits, 16).ok()?;
        // A surrogate is a rune to Go but no `char` here; it can match no name anyway.
        return Some((char::from_u32(value)?, &body[end + 1..]));
    }
    let digits = s.get(..2)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let value = u32::from_str_radix(digits, 16).ok()?;
    Some((char::from_u32(value)?, &s[2..]))
}

/// What `(?` opens.
enum Group<'a> {
    /// A group, with flags to set inside it (maybe none).
    Open(&'a str),
    /// Flags set until the end of the enclosing group.
    Flags(&'a str),
}

/// Go's `parsePerlFlags`: `(?P<name>`, `(?<name>`, `(?flags)` and `(?flags:`.
fn perl_group(t: &str) -> Result<(Group<'_>, &str), GoSyntaxError> {
    let named = t
        .strip_prefix("(?P<")
        .filter(|_| t.len() > 4)
        .or_else(|| t.strip_prefix("(?<"));
    if let Some(body) = named {
        let end = body
            .find('>')
            .ok_or_else(|| E::InvalidNamedCapture(t.into()))?;
        let name = &body[..end];
        if name.is_empty() || !name.bytes().all(|c| c == b'_' || c.is_ascii_alphanumeric()) {
            let len = t.len() - body.len() + end + 1;
            return Err(E::InvalidNamedCapture(t[..len].into()));
        }
        // Captures do not matter for a match; the name need not follow the regex crate's rules.
        return Ok((Group::Open(""), &body[end + 1..]));
    }
    let body = &t[2..];
    let mut negated = false;
    let mut saw_flag = false;
    for (i, c) in body.char_indices() {
        match c {
            'i' | 'm' | 's' | 'U' => saw_flag = true,
            '-' if !negated => {
                negated = true;
                saw_flag = false;
            }
            ':' | ')' if !negated || saw_flag => {
                let flags = &body[..i];
                let rest = &body[i + 1..];
                return Ok((
                    match c {
                        ':' => Group::Open(flags),
                        _ => Group::Flags(flags),
                    },
                    rest,
                ));
            }
            _ => {
                let len = 2 + i + c.len_utf8();
                return Err(E::InvalidPerlOp(t[..len].into()));
            }
        }
    }
    Err(E::MissingParen(t.into()))
}

/// POSIX classes Go knows inside brackets (the regex crate has the same fourteen).
const POSIX: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Go's `parseClass` from the `[`: writes a class in which every character is a hex
/// escape, so nothing in it can mean more to the regex crate than it does to Go.
fn class<'a>(s: &'a str, out: &mut String) -> Result<&'a str, GoSyntaxError> {
    let missing = || E::MissingBracket(s.into());
    let mut t = &s[1..];
    out.push('[');
    if let Some(rest) = t.strip_prefix('^') {
        out.push('^');
        t = rest;
    }
    let mut first = true;
    while first || !t.starts_with(']') {
        if t.is_empty() {
            return Err(missing());
        }
        first = false;
        if let Some(name) = t.strip_prefix("[:").and_then(|r| r.split_once(":]")) {
            let (name, rest) = name;
            if !POSIX.contains(&name.strip_prefix('^').unwrap_or(name)) {
                return Err(E::InvalidCharRange(format!("[:{name}:]")));
            }
            let _ = write!(out, "[:{name}:]");
            t = rest;
            continue;
        }
        if t.starts_with('\\')
            && let Some((set, rest)) = set_escape(t)?
        {
            out.push_str(&set);
            t = rest;
            continue;
        }
        let range_start = t;
        let (lo, rest) = class_char(t, s)?;
        t = rest;
        let mut hi = lo;
        if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
            let (h, rest) = class_char(&t[1..], s)?;
            t = rest;
            if h < lo {
                let len = range_start.len() - t.len();
                return Err(E::InvalidCharRange(range_start[..len].into()));
            }
            hi = h;
        }
        let _ = write!(out, r"\x{{{:X}}}", lo as u32);
        if hi != lo {
            let _ = write!(out, r"-\x{{{:X}}}", hi as u32);
        }
    }
    out.push(']');
    Ok(&t[1..])
}

/// One character in a class: an escape or itself.
fn class_char<'a>(t: &'a str, whole: &str) -> Result<(char, &'a str), GoSyntaxError> {
    match t.chars().next() {
        None => Err(E::MissingBracket(whole.into())),
        Some('\\') => char_escape(t),
        Some(c) => Ok((c, &t[c.len_utf8()..])),
    }
}

fn literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(item: &str) -> regex::Regex {
        regex::Regex::new(&anchored(item).unwrap_or_else(|e| panic!("{item:?}: {e}")))
            .unwrap_or_else(|e| panic!("{item:?}: {e}"))
    }

    fn matches(item: &str, name: &str) -> bool {
        re(item).is_match(name)
    }

    #[test]
    fn quote_runs_to_backslash_e_or_the_end() {
        assert!(matches(r"\Qmy.app\E", "my.app"));
        assert!(!matches(r"\Qmy.app\E", "myxapp"));
        assert!(matches(r"\Qa.b", "a.b"), "no \\E: to the end of the item");
        assert!(matches(r"\Qa(\E.*", "a(-x"));
        assert!(matches(r"x\Q\Ey", "xy"));
        // A quoted `)` or `|` cannot break the anchoring.
        assert!(!matches(r"\Qa)|(b\E", "a"));
        assert!(matches(r"\Qa)|(b\E", "a)|(b"));
        // The repetition after a quote applies to its last character, as in Go.
        assert!(matches(r"\Qab\E*", "a") && matches(r"\Qab\E*", "abbb"));
    }

    #[test]
    fn items_that_do_not_compile_alone_are_rejected() {
        for (item, want) in [
            ("app)|(db", E::UnexpectedParen("app)|(db".into())),
            ("(app", E::MissingParen("(app".into())),
            ("a**", E::InvalidRepeatOp("*".into())),
            ("a|*b", E::MissingRepeatArgument("*".into())),
            ("(*a)", E::MissingRepeatArgument("*".into())),
            ("a{1001}", E::InvalidRepeatSize("{1001}".into())),
            ("a{3,2}", E::InvalidRepeatSize("{3,2}".into())),
            ("abc\\", E::TrailingBackslash),
            (r"\e", E::InvalidEscape(r"\e".into())),
            (r"\u0061", E::InvalidEscape(r"\u".into())),
            (r"\<a", E::InvalidEscape(r"\<".into()).clone()),
            (r"\1", E::InvalidEscape(r"\1".into())),
            (r"\C", E::InvalidEscape(r"\C".into())),
            ("[z-a]", E::InvalidCharRange("z-a".into())),
            ("[a", E::MissingBracket("[a".into())),
            ("[[:foo:]]", E::InvalidCharRange("[:foo:]".into())),
            ("(?x)a", E::InvalidPerlOp("(?x".into())),
            ("(?=a)", E::InvalidPerlOp("(?=".into())),
            ("(?i-)a", E::InvalidPerlOp("(?i-)".into())),
            ("(?P<>a)", E::InvalidNamedCapture("(?P<>".into())),
            ("(?P<a-b>x)", E::InvalidNamedCapture("(?P<a-b>".into())),
        ] {
            // `\<` is punctuation to Go: a literal `<`, valid.
            if item == r"\<a" {
                assert!(matches(item, "<a"));
                continue;
            }
            assert_eq!(anchored(item), Err(want), "{item:?}");
        }
    }

    #[test]
    fn a_leading_repetition_repeats_the_start_anchor() {
        // Go: `^*db$` repeats `^`; zero repeats leave the start open.
        assert!(matches("*db", "db") && matches("*db", "mydb"));
        assert!(!matches("*db", "db-x"));
        assert!(matches("?db", "mydb"));
        assert!(matches("*", "anything"), "`^*$` matches every name");
        assert!(matches("{0}db", "xdb"));
        // One or more repeats keep it anchored.
        assert!(matches("+db", "db") && !matches("+db", "mydb"));
        assert!(matches("{2}db", "db") && !matches("{2}db", "xdb"));
        assert!(matches("*?db", "xdb"), "lazy");
        assert_eq!(anchored("**db"), Err(E::InvalidRepeatOp("*".into())));
        assert_eq!(anchored("*a)|(b"), Err(E::UnexpectedParen("a)|(b".into())));
        assert_eq!(
            anchored("{1001}a"),
            Err(E::InvalidRepeatSize("{1001}".into()))
        );
        // A whole-item alternation after it is still anchored as a whole.
        assert!(matches("*a|b", "xa") && matches("*a|b", "xb") && !matches("*a|b", "bx"));
    }

    #[test]
    fn braces_that_are_not_a_repeat_are_literals() {
        assert!(matches("a{", "a{"));
        assert!(matches("a{x}", "a{x}"));
        assert!(matches("a{01}", "a{01}"), "Go: no leading zeros in a count");
        assert!(matches("a{,2}", "a{,2}"));
        assert!(matches("a}", "a}"));
        assert!(
            matches("{x", "{x"),
            "a leading literal brace is no repetition"
        );
        assert!(matches("a{2}", "aa") && !matches("a{2}", "a"));
        assert!(matches("a{1,}", "aaa") && matches("a{0,1000}", ""));
    }

    #[test]
    fn escapes_follow_go() {
        assert!(matches(r"\141pp", "app"), "octal");
        assert!(matches(r"\0", "\0"));
        assert!(matches(r"\x61\x{70}p", "app"));
        assert!(matches(r"a\.b", "a.b") && !matches(r"a\.b", "axb"));
        assert!(matches(r"\_a\-", "_a-"), "escaped punctuation is itself");
        assert!(
            matches(r"\d\d", "42") && !matches(r"\d", "٣"),
            "ASCII digits only"
        );
        assert!(matches(r"\w+", "a_1") && !matches(r"\w", "é"));
        assert!(
            matches(r"\s", " ") && !matches(r"\s", "\x0B"),
            "Go's \\s has no \\v"
        );
        assert!(matches(r"a\b", "a") && !matches(r"\bé", "xé"));
        assert!(
            matches(r"\b{2}a", "a"),
            "a repeated boundary, not the regex crate's \\b{{…}}"
        );
        assert!(matches(r"\Aab\z", "ab"));
        assert!(matches(r"\pL+", "abc") && matches(r"\p{^L}", "1") && matches(r"\PL", "1"));
        assert!(!matches(r"\P{^L}", "1"));
    }

    #[test]
    fn classes_follow_go() {
        assert!(
            matches("[]a]", "]") && matches("[]a]", "a"),
            "`]` first is literal"
        );
        assert!(matches("[^]a]", "b") && !matches("[^]a]", "]"));
        assert!(matches("[a-]", "-") && matches("[-a]", "-"));
        // The regex crate's nesting and set operators are characters to Go.
        assert!(matches("[[a]", "[") && matches("[[a]]", "a]"));
        assert!(matches("[a&&b]", "&") && matches("[a&&b]", "b"));
        assert!(matches("[a~~b]", "~"));
        assert_eq!(anchored("[a--b]"), Err(E::InvalidCharRange("a--".into())));
        assert!(matches("[[:alpha:]-]+", "ab-c"));
        assert!(matches("[[:^digit:]]", "a") && !matches("[[:^digit:]]", "1"));
        assert!(matches("[[:x]", ":"), "no `:]`: not a POSIX class");
        assert!(matches(r"[\d.]", ".") && matches(r"[\D]", "a") && !matches(r"[\D]", "1"));
        assert!(matches(r"[\pL]", "a") && matches(r"[\x41-\x43]", "B"));
        assert!(matches(r"[\]]", "]") && matches(r"[\\]", "\\"));
        assert!(matches("(?i)[a-c]", "B"));
        assert_eq!(anchored(r"[\b]"), Err(E::InvalidEscape(r"\b".into())));
        assert_eq!(anchored(r"[\Qa\E]"), Err(E::InvalidEscape(r"\Q".into())));
    }

    #[test]
    fn groups_and_flags() {
        assert!(matches("(?i)app", "APP"));
        assert!(matches("(?i:a)b", "Ab") && !matches("(?i:a)b", "AB"));
        assert!(
            matches("(?P<n>a)(?P<n>b)", "ab"),
            "Go allows duplicate names"
        );
        assert!(matches("(?<name>a)", "a"));
        assert!(matches("(?)a", "a"), "empty flags are allowed in Go");
        assert!(matches("(?U)a+", "aa"));
        assert!(matches("(?s:.)", "\n"));
        assert!(
            matches("a|b", "b") && !matches("a|b", "ab-x"),
            "whole item anchored"
        );
        assert!(matches("|a", ""), "an empty alternative");
    }
}
