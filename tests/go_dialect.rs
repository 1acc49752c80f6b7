//! Reload-list items against Go's own `regexp` (hack/tools/goregex), the dialect stakater
//! compiles them in: thousands of generated items, each accepted or rejected as Go does and
//! matching exactly the names Go matches, once anchored as a whole.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use kube_reloader::shared::go::regexp::anchored;

/// Pieces items are made of: Go syntax the regex crate reads differently or not at all,
/// and characters that could break out of the anchoring.
const TOKENS: &[&str] = &[
    "a",
    "b",
    "d",
    "-",
    ".",
    "1",
    "A",
    "(",
    ")",
    "(?:",
    "(?i)",
    "(?i:",
    "(?P<n>",
    "|",
    "*",
    "+",
    "?",
    "*?",
    "[",
    "]",
    "[^",
    "^",
    "$",
    "\\",
    "\\.",
    "\\d",
    "\\W",
    "\\s",
    "\\b",
    "\\B",
    "\\Q",
    "\\E",
    "\\z",
    "\\A",
    "{",
    "}",
    "{2}",
    "{1,}",
    "{0,1}",
    "{,2}",
    "{01}",
    "{1001}",
    ",",
    "\\x41",
    "\\x{62}",
    "\\101",
    "\\1",
    "\\0",
    "\\<",
    "\\_",
    "\\e",
    "\\u",
    "[:alpha:]",
    "[:foo:]",
    ":",
    "&&",
    "--",
    "~~",
    "[[",
    "\\pL",
    "\\PL",
    "\\p{^L}",
    "(?U)",
    "(?s)",
];

/// Names: every short string over characters that matter to the patterns above.
fn names() -> Vec<String> {
    let mut names = vec![String::new()];
    let short = ['a', 'b', 'd', '-', '.', '1', 'A', 'x'];
    let punct = [
        'a', '-', '{', '}', '(', ')', '[', ']', '&', '~', ':', '<', '\\', '*', '|', '$', '^', '_',
        ' ', 'é', '1', '\n',
    ];
    let mut layer = vec![String::new()];
    for _ in 0..3 {
        layer = layer
            .iter()
            .flat_map(|p| short.iter().map(move |c| format!("{p}{c}")))
            .collect();
        names.extend(layer.iter().cloned());
    }
    for a in punct {
        names.push(a.to_string());
        for b in punct {
            names.push(format!("{a}{b}"));
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Deterministic items: every token alone, then random sequences (xorshift, fixed seed).
fn items() -> Vec<String> {
    let mut items: Vec<String> = TOKENS.iter().map(|t| t.to_string()).collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..4000 {
        let len = 1 + next(6);
        items.push((0..len).map(|_| TOKENS[next(TOKENS.len())]).collect());
    }
    items
}

/// A repetition at the start of an item (what Go applies to stakater's `^`), found with
/// a pattern of its own rather than the code under test.
fn split_leading_repeat(item: &str) -> Option<(&str, &str)> {
    let re =
        regex::Regex::new(r"^(?:[*+?]|\{(?:0|[1-9][0-9]*)(?:,(?:0|[1-9][0-9]*)?)?\})\??").unwrap();
    re.find(item).map(|m| item.split_at(m.end()))
}

/// Go's verdict on each pattern: `None` if it does not compile, else a '0'/'1' per name.
fn go(patterns: &[String], names: &[String]) -> Vec<Option<String>> {
    let dir = kube_reloader_root().join("hack/tools/goregex");
    let mut child = Command::new("go")
        .args(["run", "."])
        .current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("go is on PATH (hack/cluster needs it too)");
    let input = serde_json::json!({ "patterns": patterns, "names": names });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "go run failed");
    serde_json::from_slice(&out.stdout).expect("goregex prints JSON")
}

fn kube_reloader_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn items_are_read_and_matched_as_go_reads_and_matches_them() {
    let names = names();
    let items = items();
    // For each item: the item (or what follows its leading repetition) alone, the same
    // closed by `\E` (which compiles only where the item ends inside a `\Q` quote), the
    // whole item anchored as we mean it, both ways, and stakater's own `^item$`.
    let mut patterns = Vec::new();
    for item in &items {
        let (op, alone) = match split_leading_repeat(item) {
            Some((op, rest)) => (op, rest),
            None => ("", item.as_str()),
        };
        patterns.extend([
            alone.to_owned(),
            format!("{alone}\\E"),
            format!("^{op}(?:{alone})$"),
            format!("^{op}(?:{alone}\\E)$"),
            format!("^{item}$"),
        ]);
    }
    let verdicts = go(&patterns, &names);
    let (mut accepted, mut mismatches) = (0, Vec::new());
    for (i, item) in items.iter().enumerate() {
        let [alone, quoted, wrapped, wrapped_quoted, stakater] = &verdicts[5 * i..5 * i + 5] else {
            unreachable!()
        };
        let want = match quoted {
            Some(_) => alone.as_ref().and(wrapped_quoted.as_ref()),
            None => alone.as_ref().and(wrapped.as_ref()),
        };
        let ours = anchored(item)
            .ok()
            .and_then(|p| regex::Regex::new(&p).ok())
            .map(|re| {
                names
                    .iter()
                    .map(|n| if re.is_match(n) { '1' } else { '0' })
                    .collect::<String>()
            });
        if ours.as_ref() != want {
            mismatches.push(format!(
                "{item:?}: ours {:?}, Go {:?}",
                ours.as_ref().map(|m| first_diff(m, want, &names)),
                want.map(|_| "compiles")
            ));
            continue;
        }
        accepted += usize::from(ours.is_some());
        // Where whole-item anchoring cannot differ (no `|`, no `\Q` that would swallow
        // stakater's `$`), stakater's own pattern matches the same names.
        let plain = !item.contains('|') && !item.contains("\\Q");
        if plain && ours.is_some() && stakater.as_ref() != ours.as_ref() {
            mismatches.push(format!("{item:?}: differs from stakater's ^item$"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} items differ from Go:\n{}",
        mismatches.len(),
        items.len(),
        mismatches[..mismatches.len().min(30)].join("\n")
    );
    // The corpus must exercise both sides, or the comparison proves little.
    assert!(
        accepted > 500 && accepted < items.len() - 500,
        "accepted {accepted}"
    );
}

/// The first name on which our matches differ from Go's (for the failure message).
fn first_diff(ours: &str, go: Option<&String>, names: &[String]) -> String {
    let Some(go) = go else {
        return "compiles".into();
    };
    let i = ours
        .chars()
        .zip(go.chars())
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    format!(
        "name {:?}: ours {}, Go {}",
        names[i],
        &ours[i..=i],
        &go[i..=i]
    )
}
