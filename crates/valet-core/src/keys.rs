//! Signing keys: RSA keys generated and held by aws-lc-rs (parsed once, never per token),
//! encrypted at rest under the master key, published as a JWKS.

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use valet_proto::oidc::{Jwk, Jwks};

use crate::clock::Millis;
use crate::model::SigningKeyRecord;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key must be 32 bytes (64 hex characters)")]
    BadMasterKey,
    #[error("a signing key could not be decrypted: wrong master key?")]
    Decrypt,
    #[error("key generation or signing failed")]
    Crypto,
}

/// The key that encrypts private signing keys at rest.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(s.trim()).map_err(|_| KeyError::BadMasterKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadMasterKey)?;
        Ok(MasterKey(arr))
    }
    pub fn generate(rng: &dyn crate::rand::Random) -> Self {
        let mut k = [0u8; 32];
        rng.fill(&mut k);
        MasterKey(k)
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// The HMAC key used for the `signature` of responses to clients without a secret.
    pub fn derive(&self, label: &str) -> Vec<u8> {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        aws_lc_rs::hmac::sign(&k, label.as_bytes()).as_ref().to_vec()
    }

    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.seal_for(b"valet-signing-key", plaintext)
    }

    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.open_for(b"valet-signing-key", sealed)
    }

    /// AES-256-GCM with a random nonce; `purpose` is bound as associated data so a value
    /// sealed for one use cannot be opened as another.
    pub fn seal_for(&self, purpose: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, &self.0).map_err(|_| KeyError::Crypto)?;
        let mut buf = plaintext.to_vec();
        let nonce = key.seal_in_place_append_tag(Aad::from(purpose), &mut buf).map_err(|_| KeyError::Crypto)?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open_for(&self, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Decrypt);
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, &self.0).map_err(|_| KeyError::Crypto)?;
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Decrypt)?;
        let mut buf = ct.to_vec();
        let pt = key.open_in_place(nonce, Aad::from(purpose), &mut buf).map_err(|_| KeyError::Decrypt)?;
        Ok(pt.to_vec())
    }
}

/// A parsed RSA signing key, ready to sign.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pair: Arc<KeyPair>,
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

impl SigningKey {
    /// Generates an RSA-2048 key and its encrypted record.
    pub fn generate(kid: String, master: &MasterKey, now: Millis) -> Result<(SigningKey, SigningKeyRecord), KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto)?;
        let der = pair.as_der().map_err(|_| KeyError::Crypto)?;
        let record = SigningKeyRecord {
            kid: kid.clone(),
            alg: "RS256".into(),
            private_der_encrypted: master.seal(der.as_ref())?,
            created_at: now,
            active: true,
        };
        Ok((SigningKey::from_pair(kid, pair), record))
    }

    pub fn from_record(record: &SigningKeyRecord, master: &MasterKey) -> Result<SigningKey, KeyError> {
        let der = master.open(&record.private_der_encrypted)?;
        let pair = KeyPair::from_pkcs8(&der).map_err(|_| KeyError::Decrypt)?;
        Ok(SigningKey::from_pair(record.kid.clone(), pair))
    }

    fn from_pair(kid: String, pair: KeyPair) -> SigningKey {
        let public = pair.public_key();
        let jwk = Jwk {
            kty: "RSA".into(),
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            alg: "RS256".into(),
            use_: "sig".into(),
            kid: kid.clone(),
        };
        SigningKey { kid, pair: Arc::new(pair), jwk }
    }

    /// Signs `claims` as a compact RS256 JWT with this key's `kid`.
    pub fn sign_jwt(&self, claims: &serde_json::Value) -> Result<String, KeyError> {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        self.sign_jwt_with_header(&header, claims)
    }

    pub fn sign_jwt_with_header(&self, header: &serde_json::Value, claims: &serde_json::Value) -> Result<String, KeyError> {
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).map_err(|_| KeyError::Crypto)?;
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(input)
    }

    /// Verifies a compact JWT signed by this key and returns its claims.
    pub fn verify_jwt(&self, jwt: &str) -> Option<serde_json::Value> {
        let (signing_input, sig) = jwt.rsplit_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            self.pair.public_key().as_ref(),
        );
        public.verify(signing_input.as_bytes(), &sig).ok()?;
        let (header, claims) = signing_input.split_once('.')?;
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "RS256" {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
    }
}

/// The published keys and the one that signs.
#[derive(Debug, Clone)]
pub struct KeyRing {
    pub active: SigningKey,
    pub all: Vec<SigningKey>,
}

impl KeyRing {
    pub fn jwks(&self) -> Jwks {
        Jwks { keys: self.all.iter().map(|k| k.jwk.clone()).collect() }
    }
    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.all.iter().find(|k| k.kid == kid)
    }
}

/// base64url(left half of SHA-256(value)): OIDC's `at_hash` / `c_hash` for RS256.
pub fn half_hash(value: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_roundtrip_through_encryption_and_sign() {
        let rng = crate::rand::OsRandom;
        let master = MasterKey::generate(&rng);
        let (key, rec) = SigningKey::generate("190".into(), &master, 0).unwrap();
        let again = SigningKey::from_record(&rec, &master).unwrap();
        assert_eq!(key.jwk, again.jwk);
        let jwt = again.sign_jwt(&serde_json::json!({"sub": "x"})).unwrap();
        assert_eq!(key.verify_jwt(&jwt).unwrap()["sub"], "x");
        let mut tampered = jwt.clone();
        tampered.insert(jwt.find('.').unwrap() + 2, 'A');
        assert!(key.verify_jwt(&tampered).is_none());
        let other = MasterKey::generate(&rng);
        assert!(SigningKey::from_record(&rec, &other).is_err());
    }
}
