//! TLS configuration: certificates from PEM files, or a self-signed local CA and a leaf for
//! `127.0.0.1`, `::1` and `localhost` kept in the data directory.
//!
//! Both answer ALPN `h2` and `http/1.1`. The rustls provider is chosen explicitly (aws-lc-rs),
//! so the process-wide default never matters, whichever other providers are compiled in.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The leaf is valid this long.
const LEAF_DAYS: i64 = 365;
/// The local CA is valid this long (trusting it again every year would be a chore).
const CA_DAYS: i64 = 10 * 365;
/// A leaf this close to its expiry is replaced at start.
const RENEW_BEFORE_DAYS: i64 = 7;
const CA_COMMON_NAME: &str = "Valet Local Development CA";

/// Midnight UTC of a day given as days since the epoch (a macro because the date type
/// belongs to a crate that is only rcgen's dependency).
macro_rules! date {
    ($days:expr) => {{
        let (y, m, d) = civil_from_days($days);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {why}", path.display())]
    Pem { path: PathBuf, why: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS configuration made from the self-signed local CA.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub config: Arc<ServerConfig>,
    /// The CA certificate clients must trust (`data_dir/tls/ca.pem`).
    pub ca_path: PathBuf,
    /// True when this call created a new CA (a client that trusted the old one must trust
    /// the new one).
    pub created_ca: bool,
}

/// Loads a certificate chain and its private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(cert)?;
    let key = read_key(key)?;
    server_config(certs, key)
}

/// Creates (on first use) or reuses the local CA in `data_dir/tls/` and a leaf certificate it
/// signed, and returns a server configuration for the leaf. The leaf is regenerated when it is
/// missing, unreadable or about to expire, and whenever the CA is new.
pub fn self_signed(data_dir: &Path) -> Result<SelfSigned, TlsError> {
    let dir = data_dir.join("tls");
    fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let ca_pem_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let leaf_pem_path = dir.join("leaf.pem");
    let leaf_key_path = dir.join("leaf.key");
    let today = today_days();

    let existing_ca = if ca_pem_path.exists() && ca_key_path.exists() {
        let key_pem = fs::read_to_string(&ca_key_path).map_err(|e| io_err(&ca_key_path, e))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| pem_err(&ca_key_path, e))?;
        let ca_certs = read_certs(&ca_pem_path)?;
        let ca_valid =
            ca_certs.first().and_then(|c| not_after_days(c.as_ref())).is_some_and(|d| d > today + RENEW_BEFORE_DAYS);
        ca_valid.then_some(key)
    } else {
        None
    };
    let (ca_key, created_ca) = match existing_ca {
        Some(key) => (key, false),
        None => {
            let key = KeyPair::generate().map_err(gen_err)?;
            let cert = ca_params(today)?.self_signed(&key).map_err(gen_err)?;
            write_file(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
            write_file(&ca_pem_path, cert.pem().as_bytes(), false)?;
            (key, true)
        }
    };

    let leaf_usable = !created_ca
        && leaf_key_path.exists()
        && read_certs(&leaf_pem_path)
            .ok()
            .and_then(|c| c.first().and_then(|c| not_after_days(c.as_ref())))
            .is_some_and(|d| d > today + RENEW_BEFORE_DAYS);
    if !leaf_usable {
        // The issuer certificate is rebuilt from the same name and key: the leaf's issuer name
        // and authority key identifier depend only on those, so it chains to ca.pem.
        let issuer = ca_params(today)?.self_signed(&ca_key).map_err(gen_err)?;
        let key = KeyPair::generate().map_err(gen_err)?;
        let leaf = leaf_params(today)?.signed_by(&key, &issuer, &ca_key).map_err(gen_err)?;
        write_file(&leaf_key_path, key.serialize_pem().as_bytes(), true)?;
        write_file(&leaf_pem_path, leaf.pem().as_bytes(), false)?;
    }

    let certs = read_certs(&leaf_pem_path)?;
    let key = read_key(&leaf_key_path)?;
    let config = match server_config(certs, key) {
        Ok(c) => c,
        Err(e) if !created_ca => {
            // A leaf that rustls refuses (edited by hand, from another CA...): make a new one.
            let _ = fs::remove_file(&leaf_pem_path);
            tracing::warn!(error = %e, "the self-signed leaf certificate was unusable; regenerating it");
            return self_signed(data_dir);
        }
        Err(e) => return Err(e),
    };
    Ok(SelfSigned { config, ca_path: ca_pem_path, created_ca })
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn ca_params(today: i64) -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "Valet");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = date!(today - 1);
    p.not_after = date!(today + CA_DAYS);
    Ok(p)
}

fn leaf_params(today: i64) -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])
        .map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    dn.push(DnType::OrganizationName, "Valet");
    p.distinguished_name = dn;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = date!(today - 1);
    p.not_after = date!(today + LEAF_DAYS);
    // A fresh serial each time, so browsers that cached an older leaf do not complain.
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| TlsError::Generate("random serial".into()))?;
    serial[0] &= 0x7f;
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    Ok(p)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = fs::read(path).map_err(|e| io_err(path, e))?;
    let certs = CertificateDer::pem_slice_iter(&data).collect::<Result<Vec<_>, _>>().map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.to_path_buf(), why: "no CERTIFICATE block found".into() });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = fs::read(path).map_err(|e| io_err(path, e))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::Pem { path: path.to_path_buf(), why: "no private key block found".into() }
        }
        other => pem_err(path, other),
    })
}

/// Writes a file atomically (temporary file, then rename); keys get mode 0600.
fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io { path: path.to_path_buf(), source }
}

fn pem_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem { path: path.to_path_buf(), why: e.to_string() }
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// Days since the Unix epoch, today (UTC).
fn today_days() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        // A clock set before 1970 reads as 1970: certificates are then dated from it.
        .unwrap_or_default();
    secs.div_euclid(86_400)
}

// Howard Hinnant's algorithms between days since the epoch and civil dates.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day (since the epoch) of a DER certificate's `notAfter`, read with a minimal DER walk:
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
/// signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }.
fn not_after_days(der: &[u8]) -> Option<i64> {
    let (tag, cert, _) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = der_tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for _ in 0..3 {
        // serial, signature algorithm, issuer
        rest = der_tlv(rest)?.2;
    }
    let (tag, validity, _) = der_tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_not_before) = der_tlv(validity)?;
    let (tag, time, _) = der_tlv(after_not_before)?;
    let s = std::str::from_utf8(time).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let month: u32 = rest.get(0..2)?.parse().ok()?;
    let day: u32 = rest.get(2..4)?.parse().ok()?;
    Some(days_from_civil(year, month, day))
}

/// One DER tag-length-value: (tag, value, remaining input).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let value = input.get(header..header.checked_add(len)?)?;
    Some((tag, value, &input[header + len..]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn dates_round_trip() {
        for d in [0, 1, 59, 365, 10_957, 19_000, 20_000, 50_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn self_signed_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed(dir.path()).unwrap();
        assert!(first.created_ca);
        assert_eq!(first.ca_path, dir.path().join("tls/ca.pem"));
        assert_eq!(first.config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let ca = fs::read(dir.path().join("tls/ca.pem")).unwrap();
        let leaf = fs::read(dir.path().join("tls/leaf.pem")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for k in ["ca.key", "leaf.key"] {
                let mode = fs::metadata(dir.path().join("tls").join(k)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{k}");
            }
        }
        let leaf_der = read_certs(&dir.path().join("tls/leaf.pem")).unwrap();
        let expires = not_after_days(leaf_der[0].as_ref()).unwrap();
        assert!((today_days() + 360..=today_days() + 366).contains(&expires), "{expires}");

        // The second start reuses both.
        let second = self_signed(dir.path()).unwrap();
        assert!(!second.created_ca);
        assert_eq!(fs::read(dir.path().join("tls/ca.pem")).unwrap(), ca);
        assert_eq!(fs::read(dir.path().join("tls/leaf.pem")).unwrap(), leaf);

        // A missing leaf is regenerated under the same CA.
        fs::remove_file(dir.path().join("tls/leaf.pem")).unwrap();
        let third = self_signed(dir.path()).unwrap();
        assert!(!third.created_ca);
        assert_eq!(fs::read(dir.path().join("tls/ca.pem")).unwrap(), ca);
        assert_ne!(fs::read(dir.path().join("tls/leaf.pem")).unwrap(), leaf);

        // And the files load as plain PEM files too.
        from_pem_files(&dir.path().join("tls/leaf.pem"), &dir.path().join("tls/leaf.key")).unwrap();
    }

    #[test]
    fn bad_pem_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        fs::write(&cert, "not a certificate").unwrap();
        let err = from_pem_files(&cert, &dir.path().join("missing.key")).unwrap_err().to_string();
        assert!(err.contains("cert.pem"), "{err}");
    }
}
