//! What every command does before its own work: logging, the database, the master key and the
//! engine.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use tracing_subscriber::fmt::format;
use valet_core::clock::SystemClock;
use valet_core::keys::MasterKey;
use valet_core::rand::OsRandom;
use valet_core::store::Store;
use valet_core::{Engine, EngineConfig, EngineError};
use valet_store::SqlStore;

use crate::access_log::AccessAware;
use crate::config::{Config, LogFormat, MasterKeySetting, Source};
use crate::log_writer::{BatchedStderr, FlushOnDrop};
use crate::CliResult;

/// Logs go to stderr, so stdout carries only what a command prints for its user.
pub fn init_logging(cfg: &Config) {
    init_logging_to(cfg, std::io::stderr);
}

/// [`init_logging`] for `valet serve`: lines are batched into few writes
/// ([`BatchedStderr`]); the guard writes what is left when it is dropped.
pub fn init_server_logging(cfg: &Config) -> Option<FlushOnDrop> {
    match BatchedStderr::start() {
        Ok((writer, guard)) => {
            init_logging_to(cfg, writer);
            Some(guard)
        }
        Err(e) => {
            eprintln!("warning: cannot start the log writer ({e}); logging unbatched");
            init_logging(cfg);
            None
        }
    }
}

fn init_logging_to<W>(cfg: &Config, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_filter.value)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let result = match cfg.log_format.value {
        LogFormat::Pretty => builder.event_format(AccessAware::text(format())).try_init(),
        LogFormat::Json => builder
            .json()
            .event_format(AccessAware::json(format().json().flatten_event(true).with_current_span(false)))
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("warning: logging is not available: {e}");
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
}

/// Creates a directory (and its parents) with mode 0700 where it does not exist.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Connects to the database (creating the data directory for the default SQLite file) and
/// applies the migrations.
pub async fn open_store(cfg: &Config) -> CliResult<SqlStore> {
    if cfg.database_url.source == Source::Derived("data_dir") {
        create_private_dir(&cfg.data_dir.value)
            .with_context(|| format!("cannot create the data directory {}", cfg.data_dir.value.display()))?;
    }
    let store = SqlStore::connect(&cfg.database_url.value).await.map_err(|e| anyhow!("{e}"))?;
    store.migrate().await.map_err(|e| anyhow!("{e}"))?;
    // The data API's tables (standard objects, custom-object registry, query locators).
    valet_data::DataApi::new(&store, Arc::new(SystemClock), Arc::new(OsRandom))
        .migrate()
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok(store)
}

/// The master key from the environment or `<data_dir>/master.key`. A missing file is created
/// (mode 0600) only while the database holds no signing key: otherwise the keys were sealed
/// under a master key this process has not been given, and a new one could never open them.
pub async fn master_key(cfg: &Config, store: &dyn Store) -> CliResult<MasterKey> {
    let path = match &cfg.master_key {
        MasterKeySetting::Env(k) => return Ok(k.clone()),
        MasterKeySetting::File { key: Some(k), .. } => return Ok(k.clone()),
        MasterKeySetting::File { path, key: None } => path.clone(),
    };
    let existing = store.list_signing_keys().await.map_err(|e| anyhow!("{e}"))?;
    if !existing.is_empty() {
        return Err(anyhow!(
            "the database already holds signing keys, sealed with a master key that is neither in VALET_MASTER_KEY nor in {}: \
             set VALET_MASTER_KEY or restore that file",
            path.display()
        )
        .into());
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let key = MasterKey::generate(&OsRandom);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(format!("{}\n", key.to_hex()).as_bytes())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "created the master key");
            Ok(key)
        }
        // Another Valet process created it at the same moment: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            MasterKey::from_hex(text.trim())
                .map_err(|_| anyhow!("{}: not 64 hexadecimal characters", path.display()).into())
        }
        Err(e) => Err(anyhow!("cannot create {}: {e}", path.display()).into()),
    }
}

/// Opens the store, loads the master key and starts the engine.
pub async fn engine(cfg: &Config, public_url: &str) -> CliResult<(Arc<Engine>, SqlStore)> {
    let sql = open_store(cfg).await?;
    let store: Arc<dyn Store> = Arc::new(sql.clone());
    let master = master_key(cfg, store.as_ref()).await?;
    let mut config = EngineConfig::new(public_url);
    config.trusted_proxies = cfg.trusted_proxies.value.clone();
    config.allow_private_outbound = cfg.allow_private_outbound.value;
    let engine =
        Engine::start(store, Arc::new(SystemClock), Arc::new(OsRandom), master, config).await.map_err(|e| match e {
            EngineError::Key(valet_core::keys::KeyError::Decrypt) => anyhow!(
                "the signing keys in the database cannot be decrypted with this master key: \
                 is VALET_MASTER_KEY (or {}) the one this database was created with?",
                cfg.data_dir.value.join(crate::config::MASTER_KEY_FILE).display()
            ),
            other => anyhow!("{other}"),
        })?;
    Ok((Arc::new(engine), sql))
}

/// The engine for an admin command: the org must exist already.
pub async fn admin_engine(cfg: &Config) -> CliResult<Arc<Engine>> {
    // Admin functions sign nothing, so the issuer does not matter here.
    let (engine, _) = engine(cfg, "http://127.0.0.1:8080").await?;
    if engine.store().default_org().await.map_err(|e| anyhow!("{e}"))?.is_none() {
        return Err(
            anyhow!("this database is not initialised yet: run `valet migrate` (or `valet serve`) first").into()
        );
    }
    Ok(engine)
}
