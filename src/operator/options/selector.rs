//! A label selector checked at start-up with the API server's grammar
//! (apimachinery's `labels.Parse`): stakater exits on a selector it cannot parse, and a
//! watch given one would be refused by the API server on every retry, never ready.

/// `Err` names what is wrong with `selector` (after stakater's `k:v` forms are rewritten).
pub fn check(selector: &str) -> Result<(), String> {
    for req in split_top_level(selector)? {
        requirement(req.trim()).map_err(|e| format!("{req:?}: {e}"))?;
    }
    Ok(())
}

/// The requirements: commas outside parentheses separate them.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Err("a `)` without its `(`".into()),
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err("a `(` without its `)`".into());
    }
    out.push(&s[start..]);
    Ok(out)
}

fn requirement(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("an empty requirement".into());
    }
    if let Some(key) = r.strip_prefix('!') {
        return label_key(key.trim());
    }
    for word in [" notin ", " in "] {
        if let Some((key, rest)) = r.split_once(word) {
            label_key(key.trim())?;
            let values = rest
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("expected `({})` after `{}`", "values", word.trim()))?;
            let values: Vec<&str> = values.split(',').map(str::trim).collect();
            if values == [""] {
                return Err(format!("`{}` needs at least one value", word.trim()));
            }
            return values.into_iter().try_for_each(label_value);
        }
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some((key, value)) = r.split_once(op) {
            label_key(key.trim())?;
            let value = value.trim();
            if matches!(op, ">" | "<") {
                return value
                    .parse::<i64>()
                    .map(|_| ())
                    .map_err(|_| format!("`{op}` needs an integer, not {value:?}"));
            }
            return label_value(value);
        }
    }
    label_key(r)
}

/// `[prefix/]name`: a DNS subdomain prefix, a name of at most 63 characters.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(format!("{p:?} is not a DNS subdomain (the key's prefix)"));
        }
    }
    if name.is_empty() {
        return Err("a key cannot be empty".into());
    }
    name_like(name).map_err(|e| format!("key {key:?}: {e}"))
}

/// Empty, or what a key's name may be.
fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    name_like(value).map_err(|e| format!("value {value:?}: {e}"))
}

fn name_like(s: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    if s.len() > 63 {
        return Err("longer than 63 characters".into());
    }
    let ok = s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(()),
        false => {
            Err("must be alphanumeric, `-`, `_` or `.`, and begin and end alphanumeric".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_servers_selectors_pass() {
        for ok in [
            "team=a",
            "team==a,env!=prod",
            "app.kubernetes.io/name=web",
            "team",
            "!legacy",
            "env in (prod, staging)",
            "env notin (dev)",
            "tier=",
            "replicas>2",
            "team=a,env in (a,b),!x",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_it_rejects_is_named() {
        for bad in [
            "\"team=a\"",
            "team=a b",
            "team=a,",
            "env in (a",
            "env in ()",
            "env in a",
            "Team.Example/x=y",
            "x=-a",
            "n>two",
            &format!("k={}", "v".repeat(64)),
        ] {
            assert!(check(bad).is_err(), "{bad} accepted");
        }
        let e = check("team=a,env=@").unwrap_err();
        assert!(e.contains("env=@") && e.contains("value"), "{e}");
    }
}
