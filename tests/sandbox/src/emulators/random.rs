//! Random values in the exact shapes the emulated products generate (tokens, secrets, passwords).

use rand::Rng;
use sha2::{Digest, Sha256};

/// A Gitea personal access token: `hex(20 random bytes)` (`models/auth/access_token.go`).
pub fn gitea_access_token() -> String {
    hex::encode(rand::random::<[u8; 20]>())
}

/// A Gitea OAuth2 client secret: `gto_` + base32 (lowercase, unpadded) of 32 random bytes.
pub fn gitea_client_secret() -> String {
    format!("gto_{}", base32_lower(&rand::random::<[u8; 32]>()))
}

/// Mixed-case alphanumeric text, used for generated passwords and Kanidm basic secrets.
pub fn alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Fingerprint of a secret for snapshots: tests compare it with the hash of what a Secret holds,
/// so no secret value ever leaves the emulator through a snapshot.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32_lower(b"f"), "my");
    }

    #[test]
    fn shapes_are_those_of_the_products() {
        let token = gitea_access_token();
        assert_eq!(token.len(), 40);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let secret = gitea_client_secret();
        assert_eq!(secret.len(), 4 + 52);
        assert!(
            secret[4..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
        assert_ne!(gitea_client_secret(), secret);
    }
}
