//! Signing keys: RSA (RS256) and EC P-256 (ES256) keys generated and held by aws-lc-rs (parsed
//! once, never per token), encrypted at rest under the master key, published as a JWKS.

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use valet_proto::oidc::{Jwk, Jwks};

use crate::clock::Millis;
use crate::model::{JwsAlg, SigningKeyRecord};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key must be 32 bytes (64 hex characters)")]
    BadMasterKey,
    #[error("a signing key could not be decrypted: wrong master key?")]
    Decrypt,
    #[error("key generation or signing failed")]
    Crypto,
    #[error("a stored signing key has an unsupported algorithm {0:?}")]
    UnknownAlg(String),
    #[error("no {0} signing key is stored")]
    Missing(&'static str),
    #[error("a JWT header names another algorithm than its signing key's")]
    AlgMismatch,
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

/// The private key as aws-lc-rs holds it, parsed once at start-up.
enum Pair {
    Rsa(KeyPair),
    /// P-256, signing JWS's fixed-width `r || s` (64 bytes), not ASN.1 DER.
    Ec(EcdsaKeyPair),
}

/// A parsed signing key, ready to sign: RSA-2048 for RS256 or P-256 for ES256.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pair: Arc<Pair>,
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {})", self.kid, self.alg().as_str())
    }
}

impl SigningKey {
    /// Generates a key for `alg` and its encrypted record.
    pub fn generate(
        alg: JwsAlg,
        kid: String,
        master: &MasterKey,
        now: Millis,
    ) -> Result<(SigningKey, SigningKeyRecord), KeyError> {
        let (pair, der) = match alg {
            JwsAlg::Rs256 => {
                let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto)?;
                let der = pair.as_der().map_err(|_| KeyError::Crypto)?.as_ref().to_vec();
                (Pair::Rsa(pair), der)
            }
            JwsAlg::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Crypto)?;
                let der = pair.to_pkcs8v1().map_err(|_| KeyError::Crypto)?.as_ref().to_vec();
                (Pair::Ec(pair), der)
            }
        };
        let record = SigningKeyRecord {
            kid: kid.clone(),
            alg: alg.as_str().into(),
            private_der_encrypted: master.seal(&der)?,
            created_at: now,
            active: true,
        };
        Ok((SigningKey::from_pair(kid, pair), record))
    }

    pub fn from_record(record: &SigningKeyRecord, master: &MasterKey) -> Result<SigningKey, KeyError> {
        let alg = JwsAlg::parse(&record.alg).ok_or_else(|| KeyError::UnknownAlg(record.alg.clone()))?;
        let der = master.open(&record.private_der_encrypted)?;
        let pair = match alg {
            JwsAlg::Rs256 => Pair::Rsa(KeyPair::from_pkcs8(&der).map_err(|_| KeyError::Decrypt)?),
            JwsAlg::Es256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(|_| KeyError::Decrypt)?,
            ),
        };
        Ok(SigningKey::from_pair(record.kid.clone(), pair))
    }

    fn from_pair(kid: String, pair: Pair) -> SigningKey {
        let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let blank = Jwk {
            kty: String::new(),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
            alg: String::new(),
            use_: "sig".into(),
            kid: kid.clone(),
        };
        let jwk = match &pair {
            Pair::Rsa(p) => {
                let public = p.public_key();
                let (n, e) = (
                    public.modulus().big_endian_without_leading_zero(),
                    public.exponent().big_endian_without_leading_zero(),
                );
                Jwk { kty: "RSA".into(), n: b64(n), e: b64(e), alg: JwsAlg::Rs256.as_str().into(), ..blank }
            }
            Pair::Ec(p) => {
                // The public key is the uncompressed point 0x04 || x || y.
                // An uncompressed P-256 point: 0x04, then x and y (always 65 bytes).
                let xy = p.public_key().as_ref().get(1..).unwrap_or_default();
                let (x, y) = xy.split_at(xy.len() / 2);
                Jwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: b64(x),
                    y: b64(y),
                    alg: JwsAlg::Es256.as_str().into(),
                    ..blank
                }
            }
        };
        SigningKey { kid, pair: Arc::new(pair), jwk }
    }

    pub fn alg(&self) -> JwsAlg {
        match *self.pair {
            Pair::Rsa(_) => JwsAlg::Rs256,
            Pair::Ec(_) => JwsAlg::Es256,
        }
    }

    /// Signs `claims` as a compact JWT with this key's `alg` and `kid`.
    pub fn sign_jwt(&self, claims: &serde_json::Value) -> Result<String, KeyError> {
        let header = serde_json::json!({"alg": self.alg().as_str(), "typ": "JWT", "kid": self.kid});
        self.sign_jwt_with_header(&header, claims)
    }

    /// Signs with a header of the caller's; its `alg` must be this key's, or no verifier
    /// would accept the token.
    pub fn sign_jwt_with_header(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, KeyError> {
        if header.get("alg").and_then(|a| a.as_str()) != Some(self.alg().as_str()) {
            return Err(KeyError::AlgMismatch);
        }
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = match &*self.pair {
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).map_err(|_| KeyError::Crypto)?;
                URL_SAFE_NO_PAD.encode(sig)
            }
            Pair::Ec(p) => URL_SAFE_NO_PAD.encode(p.sign(&rng, input.as_bytes()).map_err(|_| KeyError::Crypto)?),
        };
        input.push('.');
        input.push_str(&sig);
        Ok(input)
    }

    /// Verifies a compact JWT signed by this key and returns its claims. The header's `alg`
    /// must be this key's: an RS256 key never checks an ES256 header, nor the reverse.
    pub fn verify_jwt(&self, jwt: &str) -> Option<serde_json::Value> {
        let (signing_input, sig) = jwt.rsplit_once('.')?;
        let (header, claims) = signing_input.split_once('.')?;
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != self.alg().as_str() {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let (alg, public): (&'static dyn VerificationAlgorithm, &[u8]) = match &*self.pair {
            Pair::Rsa(p) => (&RSA_PKCS1_2048_8192_SHA256, p.public_key().as_ref()),
            Pair::Ec(p) => (&ECDSA_P256_SHA256_FIXED, p.public_key().as_ref()),
        };
        UnparsedPublicKey::new(alg, public).verify(signing_input.as_bytes(), &sig).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
    }
}

/// The published keys and the ones that sign.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// The RS256 key: ID tokens, logout tokens, asset tokens and RS256 access tokens.
    pub active: SigningKey,
    /// The ES256 key, for the apps whose JWT access tokens are ES256.
    pub active_es256: SigningKey,
    /// Every key, RSA first: a client that takes the first key of the JWKS gets the ID-token key.
    pub all: Vec<SigningKey>,
}

impl KeyRing {
    /// The ring of the stored keys (newest first, as the store lists them): for each algorithm
    /// the first key marked active, else its newest key.
    pub fn from_records(records: &[SigningKeyRecord], master: &MasterKey) -> Result<KeyRing, KeyError> {
        let keys = records
            .iter()
            .map(|r| SigningKey::from_record(r, master).map(|k| (k, r.active)))
            .collect::<Result<Vec<_>, _>>()?;
        let active = |alg: JwsAlg| {
            let of_alg = || keys.iter().filter(move |(k, _)| k.alg() == alg);
            of_alg()
                .find(|(_, active)| *active)
                .or_else(|| of_alg().next())
                .map(|(k, _)| k.clone())
                .ok_or(KeyError::Missing(alg.as_str()))
        };
        let (active, active_es256) = (active(JwsAlg::Rs256)?, active(JwsAlg::Es256)?);
        let mut all: Vec<SigningKey> = keys.into_iter().map(|(k, _)| k).collect();
        all.sort_by_key(|k| k.alg() != JwsAlg::Rs256);
        Ok(KeyRing { active, active_es256, all })
    }

    /// The key that signs JWT access tokens of `alg`.
    pub fn signer(&self, alg: JwsAlg) -> &SigningKey {
        match alg {
            JwsAlg::Rs256 => &self.active,
            JwsAlg::Es256 => &self.active_es256,
        }
    }

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
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn roundtrip(alg: JwsAlg) {
        let rng = crate::rand::OsRandom;
        let master = MasterKey::generate(&rng);
        let (key, rec) = SigningKey::generate(alg, "190".into(), &master, 0).unwrap();
        assert_eq!((rec.alg.as_str(), key.alg()), (alg.as_str(), alg));
        let again = SigningKey::from_record(&rec, &master).unwrap();
        assert_eq!(key.jwk, again.jwk);
        let jwt = again.sign_jwt(&serde_json::json!({"sub": "x"})).unwrap();
        assert_eq!(key.verify_jwt(&jwt).unwrap()["sub"], "x");
        let mut tampered = jwt.clone();
        tampered.insert(jwt.find('.').unwrap() + 2, 'A');
        assert!(key.verify_jwt(&tampered).is_none());
        let other = MasterKey::generate(&rng);
        assert!(SigningKey::from_record(&rec, &other).is_err());
        let relabelled = SigningKeyRecord { alg: "PS256".into(), ..rec };
        assert!(matches!(SigningKey::from_record(&relabelled, &master), Err(KeyError::UnknownAlg(_))));
    }

    #[test]
    fn rsa_keys_roundtrip_through_encryption_and_sign() {
        roundtrip(JwsAlg::Rs256);
    }

    #[test]
    fn ec_keys_roundtrip_through_encryption_and_sign() {
        roundtrip(JwsAlg::Es256);
    }

    #[test]
    fn a_record_labelled_with_the_other_algorithm_does_not_parse() {
        let master = MasterKey::generate(&crate::rand::OsRandom);
        let (_, rec) = SigningKey::generate(JwsAlg::Es256, "2".into(), &master, 0).unwrap();
        let as_rsa = SigningKeyRecord { alg: "RS256".into(), ..rec };
        assert!(SigningKey::from_record(&as_rsa, &master).is_err());
    }

    #[test]
    fn jwk_shapes() {
        let master = MasterKey::generate(&crate::rand::OsRandom);
        let (rsa, _) = SigningKey::generate(JwsAlg::Rs256, "1".into(), &master, 0).unwrap();
        let (ec, _) = SigningKey::generate(JwsAlg::Es256, "2".into(), &master, 0).unwrap();
        let names = |k: &SigningKey| {
            serde_json::to_value(&k.jwk).unwrap().as_object().unwrap().keys().cloned().collect::<Vec<_>>()
        };
        let rsa_json = serde_json::to_string(&rsa.jwk).unwrap();
        assert!(
            rsa_json.starts_with(r#"{"kty":"RSA","n":""#)
                && rsa_json.ends_with(r#"","e":"AQAB","alg":"RS256","use":"sig","kid":"1"}"#),
            "{rsa_json}"
        );
        assert_eq!(names(&ec), ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        let jwk = serde_json::to_value(&ec.jwk).unwrap();
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()),
            (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
        );
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
        assert_eq!((x.len(), y.len()), (32, 32));
        // A verifier that knows only the JWK accepts the token: the fixed 64-byte r || s.
        let jwt = ec.sign_jwt(&serde_json::json!({"sub": "x"})).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        let point = [&[4u8][..], &x, &y].concat();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).verify(input.as_bytes(), &sig).unwrap();
        let back: Jwk = serde_json::from_value(jwk).unwrap();
        assert_eq!(back, ec.jwk);
    }

    #[test]
    fn no_algorithm_confusion() {
        let master = MasterKey::generate(&crate::rand::OsRandom);
        let (rsa, _) = SigningKey::generate(JwsAlg::Rs256, "1".into(), &master, 0).unwrap();
        let (ec, _) = SigningKey::generate(JwsAlg::Es256, "2".into(), &master, 0).unwrap();
        let claims = serde_json::json!({"sub": "x"});
        assert!(ec.verify_jwt(&rsa.sign_jwt(&claims).unwrap()).is_none());
        assert!(rsa.verify_jwt(&ec.sign_jwt(&claims).unwrap()).is_none());
        // A header may not name another algorithm than its key's, when signing or verifying.
        let lying = serde_json::json!({"alg": "RS256", "kid": "2"});
        assert!(matches!(ec.sign_jwt_with_header(&lying, &claims), Err(KeyError::AlgMismatch)));
        let Pair::Ec(pair) = &*ec.pair else { panic!("an EC key") };
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(lying.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = pair.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).unwrap();
        assert!(ec.verify_jwt(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))).is_none());
    }

    #[test]
    fn key_ring_picks_the_active_key_of_each_algorithm() {
        let master = MasterKey::generate(&crate::rand::OsRandom);
        let (_, ec) = SigningKey::generate(JwsAlg::Es256, "3".into(), &master, 3).unwrap();
        let (_, old_ec) = SigningKey::generate(JwsAlg::Es256, "2".into(), &master, 2).unwrap();
        let (_, rsa) = SigningKey::generate(JwsAlg::Rs256, "1".into(), &master, 1).unwrap();
        let old_ec = SigningKeyRecord { active: false, ..old_ec };
        // Newest first, as the store lists them.
        let ring = KeyRing::from_records(&[ec.clone(), old_ec.clone(), rsa.clone()], &master).unwrap();
        assert_eq!((ring.active.kid.as_str(), ring.active_es256.kid.as_str()), ("1", "3"));
        assert_eq!(ring.signer(JwsAlg::Es256).kid, "3");
        assert_eq!(ring.all.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["1", "3", "2"], "RSA first");
        assert_eq!(ring.jwks().keys.len(), 3);
        assert!(matches!(KeyRing::from_records(&[rsa], &master), Err(KeyError::Missing("ES256"))));
    }
}
