//! A label selector read with the API server's grammar (apimachinery's `labels.Parse`):
//! checked at start-up (stakater exits on a selector it cannot parse, and a watch given one
//! would be refused on every retry, never ready), and matched here where the API server
//! does not filter for us (`--workload-selector`, and `explain`).

use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    text: String,
}

impl LabelSelector {
    /// `Err` names what is wrong (after stakater's `k:v` forms are rewritten).
    pub fn parse(selector: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if !selector.trim().is_empty() {
            for req in split_top_level(selector)? {
                requirements.push(requirement(req.trim()).map_err(|e| format!("{req:?}: {e}"))?);
            }
        }
        Ok(LabelSelector {
            requirements,
            text: selector.to_owned(),
        })
    }

    /// Whether `labels` satisfy every requirement, as apimachinery's `Matches` decides
    /// (`!=` and `notin` hold for a missing label; `>` and `<` need an integer value).
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::Gt(k, n) => get(k).and_then(|v| v.parse::<i64>().ok()) > Some(*n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }

    /// The selector as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `Err` names what is wrong with `selector`.
pub fn check(selector: &str) -> Result<(), String> {
    LabelSelector::parse(selector).map(|_| ())
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

fn requirement(r: &str) -> Result<Requirement, String> {
    if r.is_empty() {
        return Err("an empty requirement".into());
    }
    if let Some(key) = r.strip_prefix('!') {
        let key = key.trim();
        label_key(key)?;
        return Ok(Requirement::NotExists(key.to_owned()));
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
            values.iter().copied().try_for_each(label_value)?;
            let (key, values) = (key.trim().to_owned(), values.into_iter().map(String::from));
            return Ok(match word {
                " in " => Requirement::In(key, values.collect()),
                _ => Requirement::NotIn(key, values.collect()),
            });
        }
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some((key, value)) = r.split_once(op) {
            label_key(key.trim())?;
            let (key, value) = (key.trim().to_owned(), value.trim());
            if matches!(op, ">" | "<") {
                let n = value
                    .parse::<i64>()
                    .map_err(|_| format!("`{op}` needs an integer, not {value:?}"))?;
                return Ok(match op {
                    ">" => Requirement::Gt(key, n),
                    _ => Requirement::Lt(key, n),
                });
            }
            label_value(value)?;
            let values = vec![value.to_owned()];
            return Ok(match op {
                "!=" => Requirement::NotIn(key, values),
                _ => Requirement::In(key, values),
            });
        }
    }
    label_key(r)?;
    Ok(Requirement::Exists(r.to_owned()))
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

    #[test]
    fn matching_follows_apimachinery() {
        let labels: BTreeMap<String, String> = [("team", "a"), ("env", "prod"), ("n", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&labels));
        for yes in [
            "",
            "team=a",
            "team==a",
            "team",
            "!legacy",
            "env in (prod,dev)",
            "env notin (dev)",
            "other!=x",
            "other notin (x)",
            "n>2",
            "n<4",
            "team=a,env!=dev",
        ] {
            assert!(m(yes), "{yes} should match");
        }
        for no in [
            "team=b",
            "legacy",
            "!team",
            "env in (dev)",
            "env notin (prod)",
            "env!=prod",
            "n>3",
            "team>1",
            "other<5",
            "team=a,env=dev",
        ] {
            assert!(!m(no), "{no} should not match");
        }
        let none = LabelSelector::parse("!team").unwrap();
        assert!(none.matches(None), "no labels: only absence holds");
        assert!(!LabelSelector::parse("team").unwrap().matches(None));
    }
}
