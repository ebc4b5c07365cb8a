//! Injected randomness, so tests can substitute it and nothing reaches for a global RNG.

/// A source of cryptographically secure random bytes.
pub trait Random: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (through aws-lc-rs).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        use aws_lc_rs::rand::SecureRandom;
        // The system RNG failing is unrecoverable; aws-lc aborts internally in that case anyway.
        if aws_lc_rs::rand::SystemRandom::new().fill(buf).is_err() {
            panic!("system random number generator failed");
        }
    }
}

/// Characters of Salesforce-style opaque tokens: `[A-Za-z0-9._]`.
const TOKEN_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` characters of `[A-Za-z0-9._]`, 6 bits of entropy each.
pub fn token_chars(rng: &dyn Random, n: usize) -> String {
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf);
    buf.iter().map(|b| TOKEN_CHARS[(b & 63) as usize] as char).collect()
}

/// `n` alphanumeric characters (rejection-sampled, so uniform).
pub fn alnum(rng: &dyn Random, n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill(&mut buf);
        for b in buf {
            if b < 248 && out.len() < n {
                out.push(ALNUM[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// `n` random bytes as uppercase hex.
pub fn hex_upper(rng: &dyn Random, n: usize) -> String {
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf);
    hex::encode_upper(buf)
}
