//! Property tests: annotation parsing never panics on any input, and env-var names and
//! hashes agree with independent reference implementations written here from stakater's
//! description (a SHA-1 and a base64 of our own, not the crates the code uses).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use kube_reloader::{
    operator::{
        apply::markers::{convert_to_env_var_name, env_var_name},
        model::{
            annotations::{AnnotationKeys, NamePatterns, WorkloadRules},
            hash,
            kinds::ConfigKind,
        },
    },
    shared::go::{parse_go_duration, regexp},
};
use proptest::prelude::*;

/// SHA-1 (FIPS 180-4), lowercase hex.
fn reference_sha1(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[i * 4..i * 4 + 4].try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// Standard base64 with padding.
fn reference_base64(data: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Stakater's hash as described: `k=v` entries (binaryData base64-encoded), sorted by
/// bytes, joined by `;`, SHA-1.
fn reference_configmap_hash(
    data: &BTreeMap<String, String>,
    binary: &BTreeMap<String, Vec<u8>>,
) -> String {
    let mut entries: Vec<Vec<u8>> = data
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    entries.extend(
        binary
            .iter()
            .map(|(k, v)| format!("{k}={}", reference_base64(v)).into_bytes()),
    );
    entries.sort();
    reference_sha1(&entries.join(&b';'))
}

fn reference_secret_hash(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut entries: Vec<Vec<u8>> = data
        .iter()
        .map(|(k, v)| [k.as_bytes(), b"=", v].concat())
        .collect();
    entries.sort();
    reference_sha1(&entries.join(&b';'))
}

/// Stakater's ConvertToEnvVarName: uppercase; keep [A-Z0-9]; any other run becomes one `_`,
/// written only after a kept character.
fn reference_env_name(text: &str) -> String {
    let mut out = String::new();
    let mut last_kept = false;
    for b in text.to_uppercase().bytes() {
        if b.is_ascii_uppercase() || b.is_ascii_digit() {
            out.push(b as char);
            last_kept = true;
        } else if last_kept {
            out.push('_');
            last_kept = false;
        }
    }
    out
}

#[test]
fn references_match_known_vectors() {
    assert_eq!(
        reference_sha1(b""),
        "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    );
    assert_eq!(
        reference_sha1(b"abc"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(reference_base64(b"hello"), "aGVsbG8=");
    assert_eq!(reference_env_name("www.stakater.com"), "WWW_STAKATER_COM");
}

/// `pattern` between start and end of text, joined as syntax trees rather than text.
fn fully_anchored(pattern: &str) -> Option<regex_automata::meta::Regex> {
    use regex_syntax::hir::{Hir, Look};
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let whole = Hir::concat(vec![Hir::look(Look::Start), hir, Hir::look(Look::End)]);
    regex_automata::meta::Regex::builder()
        .build_from_hir(&whole)
        .ok()
}

fn key_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn configmap_hash_agrees(
        data in prop::collection::btree_map(key_strategy(), ".{0,40}", 0..6),
        binary in prop::collection::btree_map(key_strategy(), prop::collection::vec(any::<u8>(), 0..40), 0..4),
    ) {
        let bin: BTreeMap<String, ByteString> =
            binary.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect();
        let ours = hash::configmap_hash(Some(&data), Some(&bin)).to_string();
        prop_assert_eq!(ours, reference_configmap_hash(&data, &binary));
    }

    #[test]
    fn secret_hash_agrees(
        data in prop::collection::btree_map(key_strategy(), prop::collection::vec(any::<u8>(), 0..60), 0..6),
    ) {
        let raw: BTreeMap<String, ByteString> =
            data.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect();
        prop_assert_eq!(hash::secret_hash(Some(&raw)).to_string(), reference_secret_hash(&data));
    }

    // Object names are ASCII (DNS-1123), so the property ranges over printable ASCII; Go's
    // per-rune uppercase differs from Rust's only outside it (ß, ı).
    #[test]
    fn env_names_agree(name in "[ -~]{0,40}") {
        prop_assert_eq!(convert_to_env_var_name(&name), reference_env_name(&name));
        let full = env_var_name(ConfigKind::Secret, &name);
        prop_assert_eq!(full, format!("STAKATER_{}_SECRET", reference_env_name(&name)));
    }

    #[test]
    fn reload_lists_never_panic_and_literals_match_themselves(value in ".{0,200}") {
        let p = NamePatterns::parse(&value);
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if regex::escape(item) == item {
                prop_assert!(p.matches(item), "literal {:?} does not match itself", item);
            }
        }
    }

    // Stakater anchors every item as a regex; ours skips the regex for items that can only
    // match themselves. Both must pick the same names.
    #[test]
    fn a_reload_list_matches_what_its_anchored_regexes_match(
        item in "[a-z0-9.*+?()|\\[\\]{}^$&~#-]{1,10}",
        names in prop::collection::vec("[a-z0-9.&~#-]{1,10}", 8),
    ) {
        let p = NamePatterns::parse(&item);
        if let Some(re) = regexp::anchored(&item).ok().and_then(|r| regex::Regex::new(&r).ok()) {
            for name in names.iter().chain([&item]) {
                prop_assert_eq!(p.matches(name), re.is_match(name), "item {:?}, name {:?}", item, name);
            }
        }
    }

    // No item escapes its anchoring: the list matches a name only if the item alone,
    // anchored as a syntax tree (start, item, end), matches the whole name. An item that
    // does not compile alone matches nothing.
    #[test]
    fn no_item_matches_beyond_itself_fully_anchored(
        item in "[ab.*+?()|\\[\\]{}^$\\\\QE,-]{1,12}",
        names in prop::collection::vec("[ab.()|,QE-]{0,6}", 12),
    ) {
        // A list item never holds a comma; a leading repetition has its own rule.
        let item = item.replace(',', "");
        prop_assume!(!item.trim().is_empty() && !item.starts_with(['*', '+', '?', '{']));
        let p = NamePatterns::parse(&item);
        match regexp::translate_alone(item.trim()) {
            Err(_) => {
                for name in names.iter().chain([&item]) {
                    prop_assert!(!p.matches(name), "invalid {:?} matched {:?}", item, name);
                }
            }
            Ok(alone) => {
                let Some(anchored) = fully_anchored(&alone) else {
                    return Ok(()); // over the size limit
                };
                for name in names.iter().chain([&item]) {
                    prop_assert_eq!(p.matches(name), anchored.is_match(name), "item {:?}, name {:?}", item, name);
                }
            }
        }
    }

    #[test]
    fn workload_annotations_never_panic(
        values in prop::collection::vec(".{0,60}", 12),
        durations in ".{0,20}",
    ) {
        let keys = AnnotationKeys::default();
        let names = [
            &keys.auto, &keys.configmap_auto, &keys.secret_auto, &keys.configmap_reload,
            &keys.secret_reload, &keys.search, &keys.configmap_exclude, &keys.secret_exclude,
            &keys.rollout_strategy, &keys.cronjob_strategy, &keys.spc_reload, &keys.spc_exclude,
        ];
        let mut ann: BTreeMap<String, String> =
            names.iter().zip(&values).map(|(k, v)| ((*k).clone(), v.clone())).collect();
        ann.insert(keys.pause_period.clone(), durations.clone());
        let rules = WorkloadRules::parse(&keys, Some(&ann), Some(&ann));
        let _ = rules.problems(&keys);
        let _ = parse_go_duration(&durations);
    }
}
