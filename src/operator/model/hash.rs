//! The config hash, byte-identical to stakater/Reloader's: SHA-1 over the sorted `k=v`
//! entries joined by `;`. ConfigMap `binaryData` values are base64-encoded first; Secret
//! values are the raw (decoded) bytes. Empty data hashes the empty string.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use sha1::{Digest, Sha1};

/// A 40-hex-digit SHA-1, as stakater writes it into env vars and annotations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigHash([u8; 20]);

impl ConfigHash {
    /// The hash of no data at all (`da39a3ee…`).
    pub fn empty() -> Self {
        hash_entries(Vec::new())
    }

    /// No config's hash (SHA-1 gives all zeros to nothing we could hash): what the persisted
    /// state holds for a config with a change not yet applied and no earlier entry, so the
    /// next operator sees it as changed.
    pub const UNAPPLIED: ConfigHash = ConfigHash([0; 20]);

    /// Parses 40 lowercase or uppercase hex digits.
    pub fn parse(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(ConfigHash(out))
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_owned()
    }
}

impl std::fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ConfigHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigHash({self})")
    }
}

/// SHA-1 of one string, as stakater's `GenerateSHA`.
pub fn of_str(s: &str) -> ConfigHash {
    hash_entries(vec![s.as_bytes().to_vec()])
}

/// SHA-1 of the byte strings sorted and joined by `;` (Go's `sort.Strings` is byte order).
fn hash_entries(mut entries: Vec<Vec<u8>>) -> ConfigHash {
    entries.sort_unstable();
    let mut hasher = Sha1::new();
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            hasher.update(b";");
        }
        hasher.update(entry);
    }
    ConfigHash(hasher.finalize().into())
}

fn entry(key: &str, value: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + 1 + value.len());
    e.extend_from_slice(key.as_bytes());
    e.push(b'=');
    e.extend_from_slice(value);
    e
}

/// Hash of a ConfigMap's `data` and `binaryData`.
pub fn configmap_hash(
    data: Option<&BTreeMap<String, String>>,
    binary: Option<&BTreeMap<String, ByteString>>,
) -> ConfigHash {
    let mut entries = Vec::new();
    for (k, v) in data.into_iter().flatten() {
        entries.push(entry(k, v.as_bytes()));
    }
    for (k, v) in binary.into_iter().flatten() {
        entries.push(entry(k, STANDARD.encode(&v.0).as_bytes()));
    }
    hash_entries(entries)
}

/// Hash of a Secret's decoded `data` (`stringData`, type, labels and annotations are ignored,
/// as in stakater).
pub fn secret_hash(data: Option<&BTreeMap<String, ByteString>>) -> ConfigHash {
    hash_entries(
        data.into_iter()
            .flatten()
            .map(|(k, v)| entry(k, &v.0))
            .collect(),
    )
}

pub fn of_configmap(cm: &ConfigMap) -> ConfigHash {
    configmap_hash(cm.data.as_ref(), cm.binary_data.as_ref())
}

pub fn of_secret(secret: &Secret) -> ConfigHash {
    secret_hash(secret.data.as_ref())
}

/// Hash of a CSI SecretProviderClassPodStatus: every mounted object as `id=version`, plus
/// `SecretProviderClassName=<name>`, sorted and joined as for the other kinds.
pub fn spc_status_hash<'a>(
    class_name: &str,
    objects: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> ConfigHash {
    let mut entries: Vec<Vec<u8>> = objects
        .into_iter()
        .map(|(id, version)| entry(id, version.as_bytes()))
        .collect();
    entries.push(entry("SecretProviderClassName", class_name.as_bytes()));
    hash_entries(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<V>(pairs: &[(&str, V)]) -> BTreeMap<String, V>
    where
        V: Clone,
    {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn empty_data_is_sha1_of_nothing() {
        // stakater internal/pkg/crypto/sha_test.go
        assert_eq!(
            ConfigHash::empty().to_string(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(configmap_hash(None, None), ConfigHash::empty());
        assert_eq!(secret_hash(Some(&BTreeMap::new())), ConfigHash::empty());
    }

    #[test]
    fn stakater_generate_sha_vector() {
        // The input of stakater's GenerateSHA test, hashed as one entry; the expected value
        // is sha1sum's.
        let h = of_str("www.stakater.com");
        assert_eq!(h.to_string(), "abd4ed82fb04548388a6cf3c339fd9dc84d275df");
    }

    #[test]
    fn configmap_entries_are_sorted_and_joined() {
        // SHA-1("a=1;b=2"): order of insertion must not matter.
        let cm = configmap_hash(Some(&map(&[("b", "2".into()), ("a", "1".into())])), None);
        // sha1sum of the literal "a=1;b=2".
        assert_eq!(cm.to_string(), "f83e99e324ba68ccc373a58ef1eb42f8ab88646a");
    }

    #[test]
    fn configmap_binary_data_is_base64_encoded() {
        let bin = map(&[("blob", ByteString(vec![0, 1, 2, 255]))]);
        let h = configmap_hash(Some(&map(&[("a", "x".to_string())])), Some(&bin));
        assert_eq!(
            h,
            hash_entries(vec![b"a=x".to_vec(), b"blob=AAEC/w==".to_vec()])
        );
    }

    #[test]
    fn secret_values_are_raw_bytes() {
        let data = map(&[("pw", ByteString(b"s3cr3t".to_vec()))]);
        assert_eq!(
            secret_hash(Some(&data)),
            hash_entries(vec![b"pw=s3cr3t".to_vec()])
        );
        // A ConfigMap with the same text hashes the same: the encodings only differ for binary.
        assert_eq!(
            secret_hash(Some(&data)),
            configmap_hash(Some(&map(&[("pw", "s3cr3t".to_string())])), None)
        );
    }

    #[test]
    fn sorting_is_byte_order_of_whole_entries() {
        // "a=1" vs "a.b=2": '.' (0x2e) sorts before '=' (0x3d), so "a.b=2" comes first.
        let h = configmap_hash(
            Some(&map(&[("a", "1".to_string()), ("a.b", "2".to_string())])),
            None,
        );
        assert_eq!(h, hash_entries(vec![b"a.b=2;a=1".to_vec()]));
    }

    #[test]
    fn parse_round_trips() {
        let h = ConfigHash::empty();
        assert_eq!(ConfigHash::parse(&h.to_string()), Some(h));
        assert_eq!(ConfigHash::parse(&h.to_string().to_uppercase()), Some(h));
        assert_eq!(ConfigHash::parse("xyz"), None);
        assert_eq!(h.short(), "da39a3ee");
    }

    #[test]
    fn spc_status_entries_include_the_class_name() {
        let h = spc_status_hash("vault-db", [("secret/b", "v2"), ("secret/a", "7")]);
        assert_eq!(
            h,
            of_str("SecretProviderClassName=vault-db;secret/a=7;secret/b=v2")
        );
        assert_ne!(h, spc_status_hash("vault-db", [("secret/a", "7")]));
    }
}
