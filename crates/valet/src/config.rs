//! Configuration: flags > `VALET_*` environment variables > TOML file > defaults, resolved
//! once at start and validated with messages that name the bad key and where it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use valet_core::keys::MasterKey;

use crate::cli::{GlobalArgs, LogFormatArg, NetArgs};

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_DATA_DIR: &str = "./valet-data";
pub const CONFIG_FILE_NAME: &str = "valet.toml";
pub const MASTER_KEY_FILE: &str = "master.key";

/// Every `VALET_*` variable Valet reads.
pub const ENV_VARS: &[&str] = &[
    "VALET_CONFIG",
    "VALET_LISTEN",
    "VALET_DATA_DIR",
    "VALET_PUBLIC_URL",
    "VALET_DATABASE_URL",
    "VALET_TLS_CERT",
    "VALET_TLS_KEY",
    "VALET_TLS_SELF_SIGNED",
    "VALET_LOG_FORMAT",
    "VALET_LOG_LEVEL",
    "VALET_ADMIN_PASSWORD",
    "VALET_MASTER_KEY",
];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    File(PathBuf),
    Default,
    Derived(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(name) => write!(f, "flag {name}"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Default => f.write_str("default"),
            Source::Derived(from) => write!(f, "derived from {from}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// A configuration error naming the key and where its bad value came from.
#[derive(Debug)]
pub struct ConfigError {
    pub key: String,
    pub source: Option<Source>,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, source: &Source, message: impl Into<String>) -> Self {
        ConfigError { key: key.into(), source: Some(source.clone()), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(s) => write!(f, "invalid configuration: {} (from {s}): {}", self.key, self.message),
            None => write!(f, "invalid configuration: {}: {}", self.key, self.message),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl LogFormat {
    fn parse(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{s:?} is not a log format; use pretty or json")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    Off,
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySetting {
    Env(MasterKey),
    /// `<data_dir>/master.key`; `None` until it is created on first start.
    File {
        path: PathBuf,
        key: Option<MasterKey>,
    },
}

/// Settings every command needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub data_dir: Setting<PathBuf>,
    pub database_url: Setting<String>,
    pub log_format: Setting<LogFormat>,
    /// The effective tracing filter.
    pub log_filter: Setting<String>,
    /// From VALET_ADMIN_PASSWORD only.
    pub admin_password: Option<String>,
    pub master_key: MasterKeySetting,
    /// Listener and TLS settings; resolved for `serve` and `config check` only.
    pub net: Option<NetConfig>,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or ranges); none by default.
    pub trusted_proxies: Setting<Vec<String>>,
    /// Back-channel logout to plain http and private addresses (development only).
    pub allow_private_outbound: Setting<bool>,
    /// Things worth saying that do not stop Valet (loose file modes...).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NetConfig {
    pub listen: Setting<SocketAddr>,
    /// `None`: derived from the address actually bound, see [`derive_public_url`].
    pub public_url: Option<Setting<String>>,
    pub tls: Setting<Tls>,
}

impl NetConfig {
    pub fn scheme(&self) -> &'static str {
        if self.tls.value == Tls::Off {
            "http"
        } else {
            "https"
        }
    }
}

/// A snapshot of the environment variables Valet reads (empty values count as unset).
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    pub fn from_process() -> Result<Env, ConfigError> {
        let mut map = BTreeMap::new();
        for name in ENV_VARS.iter().chain(["RUST_LOG"].iter()) {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => {
                    map.insert(name.to_string(), v);
                }
                Ok(_) | Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError { key: name.to_string(), source: None, message: "not valid UTF-8".into() })
                }
            }
        }
        Ok(Env(map))
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The keys a TOML file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    public_url: Option<String>,
    database_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
    log_format: Option<String>,
    log_level: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    allow_private_outbound: Option<bool>,
}

/// Which command the configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `serve` and `config check`: everything, with the listener and TLS.
    Server,
    /// `migrate` and the admin commands: the database, the master key and logging.
    Admin,
}

impl Config {
    pub fn load(
        global: &GlobalArgs,
        net: Option<&NetArgs>,
        env: &Env,
        purpose: Purpose,
    ) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();

        // The data directory as flags and environment give it decides where the default
        // configuration file is; the file may then move it.
        let pre_data_dir = first_of(
            global.data_dir.clone().map(|v| (v, Source::Flag("--data-dir"))),
            env.get("VALET_DATA_DIR").map(|v| (PathBuf::from(v), Source::Env("VALET_DATA_DIR"))),
        );
        let (file_path, file_explicit) = match (&global.config, env.get("VALET_CONFIG")) {
            (Some(p), _) => (Some((p.clone(), Source::Flag("--config"))), true),
            (None, Some(p)) => (Some((PathBuf::from(p), Source::Env("VALET_CONFIG"))), true),
            (None, None) => {
                let dir =
                    pre_data_dir.as_ref().map(|(d, _)| d.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
                let p = dir.join(CONFIG_FILE_NAME);
                (p.is_file().then_some((p, Source::Default)), false)
            }
        };
        let (file, config_file) = match file_path {
            Some((path, source)) => {
                if file_explicit && !path.is_file() {
                    return Err(ConfigError::new(
                        "config",
                        &source,
                        format!("{} does not exist or is not a file", path.display()),
                    ));
                }
                let path = absolute(&path);
                (read_file(&path)?, Some(path))
            }
            None => (FileConfig::default(), None),
        };
        let file_source = || Source::File(config_file.clone().unwrap_or_default());
        let file_dir = config_file.as_ref().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
        let from_file = |p: &Option<PathBuf>| p.as_ref().map(|p| (absolute(&file_dir.join(p)), file_source()));

        // data_dir
        let (data_dir, src) = pre_data_dir
            .map(|(d, s)| (absolute(&d), s))
            .or_else(|| from_file(&file.data_dir))
            .unwrap_or_else(|| (absolute(Path::new(DEFAULT_DATA_DIR)), Source::Default));
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(ConfigError::new("data_dir", &src, format!("{} is not a directory", data_dir.display())));
        }
        let data_dir = Setting { value: data_dir, source: src };

        // database_url
        let database_url = match pick(
            global.database_url.clone(),
            "--database-url",
            env,
            "VALET_DATABASE_URL",
            file.database_url.clone(),
            &file_source,
        ) {
            Some((url, source)) => {
                valet_store::Backend::from_url(&url).map_err(|_| {
                    ConfigError::new(
                        "database_url",
                        &source,
                        "expected sqlite://PATH?mode=rwc or postgres://USER:PASSWORD@HOST/DB",
                    )
                })?;
                Setting { value: url, source }
            }
            None => {
                let url = valet_store::sqlite_url(&data_dir.value.join("valet.db"))
                    .map_err(|e| ConfigError::new("data_dir", &data_dir.source, e.to_string()))?;
                Setting { value: url, source: Source::Derived("data_dir") }
            }
        };

        // log_format
        let log_format = match (global.log_format, env.get("VALET_LOG_FORMAT"), &file.log_format) {
            (Some(f), _, _) => Setting {
                value: match f {
                    LogFormatArg::Pretty => LogFormat::Pretty,
                    LogFormatArg::Json => LogFormat::Json,
                },
                source: Source::Flag("--log-format"),
            },
            (None, Some(v), _) => {
                let source = Source::Env("VALET_LOG_FORMAT");
                Setting { value: LogFormat::parse(v).map_err(|m| ConfigError::new("log_format", &source, m))?, source }
            }
            (None, None, Some(v)) => {
                let source = file_source();
                Setting { value: LogFormat::parse(v).map_err(|m| ConfigError::new("log_format", &source, m))?, source }
            }
            (None, None, None) => Setting { value: LogFormat::Pretty, source: Source::Default },
        };

        // log_level: the specific settings first, then RUST_LOG, then the file.
        let log_filter = match (&global.log_level, env.get("VALET_LOG_LEVEL"), env.get("RUST_LOG"), &file.log_level) {
            (Some(v), ..) => Setting { value: v.clone(), source: Source::Flag("--log-level") },
            (None, Some(v), ..) => Setting { value: v.to_string(), source: Source::Env("VALET_LOG_LEVEL") },
            (None, None, Some(v), _) => Setting { value: v.to_string(), source: Source::Env("RUST_LOG") },
            (None, None, None, Some(v)) => Setting { value: v.clone(), source: file_source() },
            (None, None, None, None) => Setting {
                value: if purpose == Purpose::Server { "info" } else { "warn" }.to_string(),
                source: Source::Default,
            },
        };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter.value) {
            return Err(ConfigError::new(
                "log_level",
                &log_filter.source,
                format!("{:?} is not a log filter: {e}", log_filter.value),
            ));
        }

        // trusted_proxies: comma-separated in the environment, a list in the file.
        let trusted_proxies = match (env.get("VALET_TRUSTED_PROXIES"), &file.trusted_proxies) {
            (Some(v), _) => Setting {
                value: v.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect(),
                source: Source::Env("VALET_TRUSTED_PROXIES"),
            },
            (None, Some(v)) => Setting { value: v.clone(), source: file_source() },
            (None, None) => Setting { value: Vec::new(), source: Source::Default },
        };
        if let Some(bad) = trusted_proxies.value.iter().find(|r| !valet_core::engine::ip::valid_range(r)) {
            return Err(ConfigError::new(
                "trusted_proxies",
                &trusted_proxies.source,
                format!("{bad:?} is not an address, CIDR range or a-b span"),
            ));
        }

        // allow_private_outbound
        let allow_private_outbound = match (env.get("VALET_ALLOW_PRIVATE_OUTBOUND"), file.allow_private_outbound) {
            (Some(v), _) => {
                let source = Source::Env("VALET_ALLOW_PRIVATE_OUTBOUND");
                Setting {
                    value: parse_bool(v).map_err(|m| ConfigError::new("allow_private_outbound", &source, m))?,
                    source,
                }
            }
            (None, Some(v)) => Setting { value: v, source: file_source() },
            (None, None) => Setting { value: false, source: Source::Default },
        };

        // admin_password
        let admin_password = env.get("VALET_ADMIN_PASSWORD").map(str::to_string);
        if let Some(p) = &admin_password {
            valet_core::engine::password::check_strength(p)
                .map_err(|m| ConfigError::new("admin_password", &Source::Env("VALET_ADMIN_PASSWORD"), m))?;
        }

        // master_key
        let master_key = match env.get("VALET_MASTER_KEY") {
            Some(hex) => MasterKeySetting::Env(MasterKey::from_hex(hex).map_err(|_| {
                ConfigError::new(
                    "master_key",
                    &Source::Env("VALET_MASTER_KEY"),
                    "must be 64 hexadecimal characters (32 bytes)",
                )
            })?),
            None => {
                let path = data_dir.value.join(MASTER_KEY_FILE);
                let key = read_master_key_file(&path, &mut warnings)?;
                MasterKeySetting::File { path, key }
            }
        };

        let net = match purpose {
            Purpose::Admin => None,
            Purpose::Server => {
                Some(resolve_net(net.cloned().unwrap_or_default(), env, &file, &file_source, &file_dir)?)
            }
        };
        if let Some(n) = &net {
            if let (Tls::Off, Some(url)) = (&n.tls.value, &n.public_url) {
                if url.value.starts_with("https://") {
                    // Fine behind a TLS-terminating proxy; say so in case it is a mistake.
                    warnings.push(format!(
                        "public_url is {} but Valet itself serves plain HTTP (expected behind a TLS-terminating proxy)",
                        url.value
                    ));
                }
            }
            if let (Tls::SelfSigned, Some(url)) = (&n.tls.value, &n.public_url) {
                let host =
                    url::Url::parse(&url.value).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
                if !["localhost", "127.0.0.1", "[::1]"].contains(&host.as_str()) {
                    warnings.push(format!(
                        "the self-signed certificate covers localhost, 127.0.0.1 and ::1 only, not {host}"
                    ));
                }
            }
        }

        Ok(Config {
            config_file,
            data_dir,
            database_url,
            log_format,
            log_filter,
            admin_password,
            master_key,
            net,
            trusted_proxies,
            allow_private_outbound,
            warnings,
        })
    }

    /// `key = value (source)` lines for `config check`, secrets redacted.
    pub fn describe(&self) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        out.push((
            "config",
            self.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(none)".into()),
            String::new(),
        ));
        if let Some(net) = &self.net {
            out.push(("listen", net.listen.value.to_string(), net.listen.source.to_string()));
            match &net.public_url {
                Some(u) => out.push(("public_url", u.value.clone(), u.source.to_string())),
                None => out.push((
                    "public_url",
                    derive_public_url(net.listen.value, net.scheme()),
                    "derived from listen".into(),
                )),
            }
        }
        out.push(("data_dir", self.data_dir.value.display().to_string(), self.data_dir.source.to_string()));
        out.push(("database_url", redact_url(&self.database_url.value), self.database_url.source.to_string()));
        if let Some(net) = &self.net {
            let (v, s) = match &net.tls.value {
                Tls::Off => ("off".to_string(), net.tls.source.to_string()),
                Tls::Files { cert, key } => {
                    (format!("cert {} key {}", cert.display(), key.display()), net.tls.source.to_string())
                }
                Tls::SelfSigned => (
                    format!("self-signed (CA in {})", self.data_dir.value.join("tls").display()),
                    net.tls.source.to_string(),
                ),
            };
            out.push(("tls", v, s));
        }
        out.push(("log_format", self.log_format.value.as_str().into(), self.log_format.source.to_string()));
        out.push(("log_level", self.log_filter.value.clone(), self.log_filter.source.to_string()));
        out.push((
            "trusted_proxies",
            if self.trusted_proxies.value.is_empty() { "(none)".into() } else { self.trusted_proxies.value.join(", ") },
            self.trusted_proxies.source.to_string(),
        ));
        out.push((
            "allow_private_outbound",
            self.allow_private_outbound.value.to_string(),
            self.allow_private_outbound.source.to_string(),
        ));
        out.push(match &self.admin_password {
            Some(_) => ("admin_password", "<redacted>".into(), "env VALET_ADMIN_PASSWORD".into()),
            None => ("admin_password", "(not set: generated and shown once on first start)".into(), String::new()),
        });
        out.push(match &self.master_key {
            MasterKeySetting::Env(_) => ("master_key", "<redacted>".into(), "env VALET_MASTER_KEY".into()),
            MasterKeySetting::File { path, key: Some(_) } => {
                ("master_key", "<redacted>".into(), format!("file {}", path.display()))
            }
            MasterKeySetting::File { path, key: None } => {
                ("master_key", format!("(created on first start in {})", path.display()), String::new())
            }
        });
        out
    }
}

fn resolve_net(
    net: NetArgs,
    env: &Env,
    file: &FileConfig,
    file_source: &dyn Fn() -> Source,
    file_dir: &Path,
) -> Result<NetConfig, ConfigError> {
    let listen = match pick(net.listen, "--listen", env, "VALET_LISTEN", file.listen.clone(), file_source) {
        Some((s, source)) => {
            Setting { value: parse_listen(&s).map_err(|m| ConfigError::new("listen", &source, m))?, source }
        }
        None => Setting { value: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)), source: Source::Default },
    };
    let public_url =
        match pick(net.public_url, "--public-url", env, "VALET_PUBLIC_URL", file.public_url.clone(), file_source) {
            Some((s, source)) => Some(Setting {
                value: normalize_public_url(&s).map_err(|m| ConfigError::new("public_url", &source, m))?,
                source,
            }),
            None => None,
        };

    // TLS: the first layer that says anything about it decides, so a flag can override a
    // file that configured certificates.
    let env_self_signed = match env.get("VALET_TLS_SELF_SIGNED") {
        Some(v) => Some(
            parse_bool(v).map_err(|m| ConfigError::new("tls_self_signed", &Source::Env("VALET_TLS_SELF_SIGNED"), m))?,
        ),
        None => None,
    };
    let env_cert = env.get("VALET_TLS_CERT").map(PathBuf::from);
    let env_key = env.get("VALET_TLS_KEY").map(PathBuf::from);
    let file_cert = file.tls_cert.as_ref().map(|p| file_dir.join(p));
    let file_key = file.tls_key.as_ref().map(|p| file_dir.join(p));
    struct TlsLayer {
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        self_signed: Option<bool>,
        source: Source,
        names: [&'static str; 3],
    }
    let layers = [
        TlsLayer {
            cert: net.tls_cert,
            key: net.tls_key,
            self_signed: net.tls_self_signed.then_some(true),
            source: Source::Flag("--tls-*"),
            names: ["--tls-cert", "--tls-key", "--tls-self-signed"],
        },
        TlsLayer {
            cert: env_cert,
            key: env_key,
            self_signed: env_self_signed,
            source: Source::Env("VALET_TLS_*"),
            names: ["VALET_TLS_CERT", "VALET_TLS_KEY", "VALET_TLS_SELF_SIGNED"],
        },
        TlsLayer {
            cert: file_cert,
            key: file_key,
            self_signed: file.tls_self_signed,
            source: file_source(),
            names: ["tls_cert", "tls_key", "tls_self_signed"],
        },
    ];
    let mut tls = Setting { value: Tls::Off, source: Source::Default };
    for TlsLayer { cert, key, self_signed, source, names: [cert_name, key_name, ss_name] } in layers {
        if cert.is_none() && key.is_none() && self_signed.is_none() {
            continue;
        }
        let value = match (cert, key, self_signed) {
            (Some(_), _, Some(true)) | (_, Some(_), Some(true)) => {
                return Err(ConfigError::new(
                    "tls",
                    &source,
                    format!("{cert_name}/{key_name} and {ss_name} exclude each other"),
                ))
            }
            (Some(cert), Some(key), _) => {
                for (name, p) in [("tls_cert", &cert), ("tls_key", &key)] {
                    if !p.is_file() {
                        return Err(ConfigError::new(
                            name,
                            &source,
                            format!("{} does not exist or is not a file", p.display()),
                        ));
                    }
                }
                Tls::Files { cert: absolute(&cert), key: absolute(&key) }
            }
            (Some(_), None, _) => {
                return Err(ConfigError::new("tls_key", &source, format!("{cert_name} needs {key_name}")))
            }
            (None, Some(_), _) => {
                return Err(ConfigError::new("tls_cert", &source, format!("{key_name} needs {cert_name}")))
            }
            (None, None, Some(true)) => Tls::SelfSigned,
            (None, None, _) => Tls::Off,
        };
        tls = Setting { value, source };
        break;
    }
    Ok(NetConfig { listen, public_url, tls })
}

/// The first of flag, environment variable and file value that is set, with its source.
fn pick(
    flag: Option<String>,
    flag_name: &'static str,
    env: &Env,
    env_name: &'static str,
    file: Option<String>,
    file_source: &dyn Fn() -> Source,
) -> Option<(String, Source)> {
    flag.map(|v| (v, Source::Flag(flag_name)))
        .or_else(|| env.get(env_name).map(|v| (v.to_string(), Source::Env(env_name))))
        .or_else(|| file.map(|v| (v, file_source())))
}

fn first_of<T>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.or(b)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let source = Source::File(path.to_path_buf());
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::new("config", &source, format!("cannot read: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError::new("config", &source, toml_message(&e)))?;
    for (key, env) in [("admin_password", "VALET_ADMIN_PASSWORD"), ("master_key", "VALET_MASTER_KEY")] {
        if table.contains_key(key) {
            return Err(ConfigError::new(
                key,
                &source,
                format!("secrets are not read from the file; set {env} in the environment"),
            ));
        }
    }
    toml::from_str::<FileConfig>(&text).map_err(|e| {
        // Name the offending key when toml knows it.
        let key = e
            .span()
            .and_then(|s| {
                let line_start = text.get(..s.start)?.rfind('\n').map_or(0, |i| i + 1);
                let line = text.get(line_start..)?.lines().next()?;
                let (k, _) = line.split_once('=')?;
                Some(k.trim().trim_matches('"').to_string())
            })
            .filter(|k| !k.is_empty() && k.len() < 64)
            .unwrap_or_else(|| "config".into());
        ConfigError::new(key, &source, toml_message(&e))
    })
}

/// toml's message with its position, on one line where possible.
fn toml_message(e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    let text = e.to_string();
    // "TOML parse error at line 3, column 1" is the first line of toml's rendering.
    match text.lines().next() {
        Some(first) if first.starts_with("TOML parse error at ") => {
            format!("{msg} ({})", first.trim_start_matches("TOML parse error at "))
        }
        _ => msg,
    }
}

fn read_master_key_file(path: &Path, warnings: &mut Vec<String>) -> Result<Option<MasterKey>, ConfigError> {
    let source = Source::File(path.to_path_buf());
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = MasterKey::from_hex(text.trim()).map_err(|_| {
                ConfigError::new("master_key", &source, "the file must hold 64 hexadecimal characters (32 bytes)")
            })?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(path) {
                    if meta.permissions().mode() & 0o077 != 0 {
                        warnings.push(format!("{} is readable by other users; chmod 600 it", path.display()));
                    }
                }
            }
            #[cfg(not(unix))]
            let _ = warnings;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new("master_key", &source, format!("cannot read: {e}"))),
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }
    Err(format!("{s:?} is not an address and port such as 127.0.0.1:8080, 0.0.0.0:8443 or [::1]:8080"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean; use true or false")),
    }
}

/// Checks a public URL and returns its origin (`https://login.example.com`, no trailing slash).
pub fn normalize_public_url(s: &str) -> Result<String, String> {
    let u = url::Url::parse(s.trim())
        .map_err(|e| format!("{s:?} is not a URL ({e}); expected e.g. https://login.example.com"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{s:?} must start with http:// or https://"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() || u.query().is_some() || u.fragment().is_some() {
        return Err(format!("{s:?} must be a bare origin: no user, query or fragment"));
    }
    if u.path() != "/" && !u.path().is_empty() {
        return Err(format!(
            "{s:?} must be a bare origin such as https://login.example.com (Valet serves at the root; no path)"
        ));
    }
    Ok(u.origin().ascii_serialization())
}

/// `http(s)://<address>` of a bound listener; an unspecified address becomes loopback.
pub fn derive_public_url(addr: SocketAddr, scheme: &str) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    match (ip, addr.port()) {
        (IpAddr::V4(v4), p) if p == default_port => format!("{scheme}://{v4}"),
        (IpAddr::V4(v4), p) => format!("{scheme}://{v4}:{p}"),
        (IpAddr::V6(v6), p) if p == default_port => format!("{scheme}://[{v6}]"),
        (IpAddr::V6(v6), p) => format!("{scheme}://[{v6}]:{p}"),
    }
}

/// A database URL with its password (in the authority or the query) replaced.
pub fn redact_url(s: &str) -> String {
    let Ok(mut u) = url::Url::parse(s) else {
        return s.to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("REDACTED"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") { "REDACTED".to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        if pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    u.to_string()
}

/// An absolute form of `p` (without resolving symlinks); `p` itself if that fails.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn load(global: GlobalArgs, net: NetArgs, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&global, Some(&net), &Env::from_pairs(env), Purpose::Server)
    }

    fn dir_args(dir: &Path) -> GlobalArgs {
        GlobalArgs { data_dir: Some(dir.to_path_buf()), ..Default::default() }
    }

    #[test]
    fn defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = load(dir_args(dir.path()), NetArgs::default(), &[]).unwrap();
        let net = c.net.as_ref().unwrap();
        assert_eq!(net.listen.value.to_string(), "127.0.0.1:8080");
        assert!(net.public_url.is_none());
        assert_eq!(net.tls.value, Tls::Off);
        assert!(c.database_url.value.starts_with("sqlite://"));
        assert_eq!(c.log_filter.value, "info");
        assert!(matches!(c.master_key, MasterKeySetting::File { key: None, .. }));
    }

    #[test]
    fn precedence_flag_env_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("valet.toml"),
            "listen = \"127.0.0.1:1\"\npublic_url = \"https://file.example\"\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let c = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_LISTEN", "127.0.0.1:2")]).unwrap();
        let net = c.net.unwrap();
        assert_eq!(net.listen.value.port(), 2);
        assert_eq!(net.listen.source, Source::Env("VALET_LISTEN"));
        assert_eq!(net.public_url.unwrap().value, "https://file.example");
        assert_eq!(c.log_filter.value, "debug");
        let c = load(
            dir_args(dir.path()),
            NetArgs { listen: Some("127.0.0.1:3".into()), ..Default::default() },
            &[("VALET_LISTEN", "127.0.0.1:2")],
        )
        .unwrap();
        assert_eq!(c.net.unwrap().listen.value.port(), 3);
    }

    #[test]
    fn trusted_proxies_and_private_outbound() {
        let dir = tempfile::tempdir().unwrap();
        let c = load(dir_args(dir.path()), NetArgs::default(), &[]).unwrap();
        assert!(c.trusted_proxies.value.is_empty() && !c.allow_private_outbound.value, "off by default");
        let env = [("VALET_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"), ("VALET_ALLOW_PRIVATE_OUTBOUND", "true")];
        let c = load(dir_args(dir.path()), NetArgs::default(), &env).unwrap();
        assert_eq!(c.trusted_proxies.value, ["10.0.0.0/8", "192.168.1.1"]);
        assert!(c.allow_private_outbound.value);
        std::fs::write(dir.path().join("valet.toml"), "trusted_proxies = [\"172.16.0.0/12\"]\n").unwrap();
        let c = load(dir_args(dir.path()), NetArgs::default(), &[]).unwrap();
        assert_eq!(c.trusted_proxies.value, ["172.16.0.0/12"]);
        std::fs::remove_file(dir.path().join("valet.toml")).unwrap();
        let e = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_TRUSTED_PROXIES", "proxy.example")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("trusted_proxies") && e.contains("VALET_TRUSTED_PROXIES"), "{e}");
        let e = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_ALLOW_PRIVATE_OUTBOUND", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_private_outbound"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("valet.toml"), "listen = \"127.0.0.1:1\"\nlisen = \"x\"\n").unwrap();
        let e = load(dir_args(dir.path()), NetArgs::default(), &[]).unwrap_err().to_string();
        assert!(e.contains("lisen") && e.contains("line 2"), "{e}");

        std::fs::write(dir.path().join("valet.toml"), "admin_password = \"x\"\n").unwrap();
        let e = load(dir_args(dir.path()), NetArgs::default(), &[]).unwrap_err().to_string();
        assert!(e.contains("admin_password") && e.contains("VALET_ADMIN_PASSWORD"), "{e}");
        std::fs::remove_file(dir.path().join("valet.toml")).unwrap();

        let e = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_LISTEN", "nope")]).unwrap_err().to_string();
        assert!(e.contains("listen") && e.contains("VALET_LISTEN"), "{e}");
        let e = load(
            dir_args(dir.path()),
            NetArgs { public_url: Some("https://x.example/path".into()), ..Default::default() },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("public_url") && e.contains("--public-url"), "{e}");
        let e = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_MASTER_KEY", "abc")]).unwrap_err().to_string();
        assert!(e.contains("master_key"), "{e}");
        let e = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_TLS_CERT", "/nonexistent.pem")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls_key"), "{e}");
        let e = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("database_url"), "{e}");
        let e = load(dir_args(dir.path()), NetArgs::default(), &[("VALET_ADMIN_PASSWORD", "short")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin_password"), "{e}");
    }

    #[test]
    fn public_urls() {
        assert_eq!(normalize_public_url("https://login.example.com/").unwrap(), "https://login.example.com");
        assert_eq!(normalize_public_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(normalize_public_url("ftp://x").is_err());
        assert!(normalize_public_url("https://x/y").is_err());
        assert_eq!(derive_public_url("0.0.0.0:8080".parse().unwrap(), "http"), "http://127.0.0.1:8080");
        assert_eq!(derive_public_url("[::]:8443".parse().unwrap(), "https"), "https://[::1]:8443");
        assert_eq!(derive_public_url("127.0.0.1:443".parse().unwrap(), "https"), "https://127.0.0.1");
    }

    #[test]
    fn redacts_database_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:REDACTED@h/db");
        assert!(!redact_url("postgres://h/db?user=u&password=secret").contains("secret"));
        assert_eq!(redact_url("sqlite:///tmp/x.db?mode=rwc"), "sqlite:///tmp/x.db?mode=rwc");
    }
}
