//! The command line, as clap types. Settings are resolved in `config`: flags win over `VALET_*`
//! environment variables, which win over the TOML file, which wins over the defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Configuration: flags > VALET_* environment variables > TOML file > defaults.
The file is --config FILE, or VALET_CONFIG, or <data-dir>/valet.toml when it exists; it takes
the keys listen, data_dir, public_url, database_url, tls_cert, tls_key, tls_self_signed,
log_format and log_level (relative paths are relative to the file).
Secrets come only from the environment or the data directory:
  VALET_ADMIN_PASSWORD  the admin's password on first start (else one is generated and shown once)
  VALET_MASTER_KEY      64 hex characters (else <data-dir>/master.key, created on first start)
Run `valet config check` to see the effective configuration.";

#[derive(Debug, Parser)]
#[command(
    name = "valet",
    version,
    about = "Valet: a self-hosted OAuth 2.0 / OpenID Connect authorization server that imitates Salesforce's login server.",
    after_help = AFTER_HELP,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command reads (where the database is, how to log).
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML configuration file [env: VALET_CONFIG] [default: <data-dir>/valet.toml if it exists]
    #[arg(long, global = true, value_name = "FILE", help_heading = "Global options")]
    pub config: Option<PathBuf>,
    /// Data directory: SQLite database, master key, TLS files [env: VALET_DATA_DIR] [default: ./valet-data]
    #[arg(long, global = true, value_name = "DIR", help_heading = "Global options")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH?mode=rwc or postgres://USER:PASS@HOST/DB [env: VALET_DATABASE_URL] [default: SQLite in the data directory]
    #[arg(long, global = true, value_name = "URL", help_heading = "Global options")]
    pub database_url: Option<String>,
    /// Log format [env: VALET_LOG_FORMAT] [default: pretty]
    #[arg(long, global = true, value_name = "FORMAT", help_heading = "Global options")]
    pub log_format: Option<LogFormatArg>,
    /// Log filter, e.g. info or valet_server=debug,info [env: VALET_LOG_LEVEL, then RUST_LOG] [default: info for serve, warn otherwise]
    #[arg(long, global = true, value_name = "FILTER", help_heading = "Global options")]
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database and creates the org and admin on first start)
    Serve(ServeArgs),
    /// Apply database migrations, create the org and admin user if missing, and exit
    Migrate(JsonArg),
    /// Manage users
    #[command(subcommand)]
    User(UserCmd),
    /// Manage apps (connected apps / external client apps)
    #[command(subcommand)]
    App(AppCmd),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Mint admin tokens for the admin API (/admin/api/v1)
    #[command(subcommand)]
    AdminToken(crate::cmd::admin_token::AdminTokenCmd),
    /// Org-wide settings (flow blocks, PKCE requirement)
    #[command(subcommand)]
    Org(crate::cmd::org::OrgCmd),
    /// Permission sets (pre-authorization for admin-approved apps, custom permission grants)
    #[command(subcommand)]
    Permset(crate::cmd::permset::PermsetCmd),
    /// Custom permissions (granted by permission sets, reported to the apps that list them)
    #[command(subcommand)]
    CustomPermission(crate::cmd::custom_permission::CustomPermissionCmd),
    /// Initial access tokens for dynamic client registration
    #[command(subcommand)]
    RegistrationToken(crate::cmd::registration::RegistrationTokenCmd),
    /// Custom objects and fields of the REST data API
    #[command(subcommand)]
    Object(crate::cmd::object::ObjectCmd),
}

/// Listener, public URL and TLS settings (for `serve` and `config check`).
#[derive(Debug, Clone, Default, Args)]
pub struct NetArgs {
    /// Address to listen on [env: VALET_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The URL clients use to reach Valet (issuer, login host) [env: VALET_PUBLIC_URL] [default: http(s)://<listen address>]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM) [env: VALET_TLS_CERT]
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) [env: VALET_TLS_KEY]
    #[arg(long, value_name = "FILE", requires = "tls_cert", conflicts_with = "tls_self_signed")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a local CA and certificate kept in <data-dir>/tls [env: VALET_TLS_SELF_SIGNED]
    #[arg(long)]
    pub tls_self_signed: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Also create a demo app and user (once) and print how to try the web server flow with curl
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Clone, Copy, Default, Args)]
pub struct JsonArg {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user (the password is read from stdin, or generated and printed once)
    Create(UserCreate),
    /// List users
    List(JsonArg),
    /// Show one user (by username or id)
    Show(UserKey),
    /// Disable a user, revoking their tokens and sessions
    Disable(UserKey),
    /// Enable a user
    Enable(UserKey),
    /// Set a user's password (read from stdin, or generated and printed once); ends their sessions
    SetPassword(UserSetPassword),
}

#[derive(Debug, Args)]
pub struct UserCreate {
    /// Username, shaped like an email address
    #[arg(long, value_name = "USERNAME")]
    pub username: String,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Email [default: the username]
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    #[arg(long, value_name = "NAME", default_value = "")]
    pub first_name: String,
    #[arg(long, value_name = "NAME", default_value = "")]
    pub last_name: String,
    /// Make the user an administrator
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct UserKey {
    /// Username or user id
    #[arg(value_name = "USER")]
    pub user: String,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct UserSetPassword {
    /// Username or user id
    #[arg(value_name = "USER")]
    pub user: String,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum AppCmd {
    /// Create an app; prints its consumer key and (once) its consumer secret
    Create(AppCreate),
    /// List apps
    List(JsonArg),
    /// Show one app (by consumer key, id or name)
    Show(AppKey),
    /// Change an app's name, callback URLs, scopes or policy
    Update(AppUpdate),
    /// Delete an app and everything issued to it
    Delete(AppKey),
    /// Add a new consumer secret (printed once); the old ones stay valid unless --retire-old
    RotateSecret(AppRotate),
    /// Retire every consumer secret but the newest (ends a staged rotation)
    RetireOldSecrets(AppKey),
    /// Stage a new consumer key; the old key keeps working until `retire-old-key`
    RotateKey(AppKey),
    /// End a staged key rotation: only the new consumer key stays valid
    RetireOldKey(AppKey),
}

/// Policy edits shared by `app create` and `app update`.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// Merge a JSON object (inline, or a file name) into the app policy
    #[arg(long, value_name = "FILE_OR_JSON")]
    pub policy_json: Option<String>,
    /// Set one policy field, e.g. require_pkce=true, id_token.valid_minutes=5,
    /// refresh_token_policy=expire_immediately (repeatable; values are JSON or plain strings)
    #[arg(long, value_name = "KEY=VALUE")]
    pub set_policy: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AppCreate {
    /// Display name
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Callback URL (repeatable): https, a custom scheme, or http on localhost
    #[arg(long = "callback-url", value_name = "URL", required = true)]
    pub callback_urls: Vec<String>,
    /// Space-separated scopes
    #[arg(long, value_name = "SCOPES", default_value = "api refresh_token openid")]
    pub scopes: String,
    /// A public client: no consumer secret
    #[arg(long)]
    pub public: bool,
    /// Do not require the secret in the web server and refresh token flows
    #[arg(long)]
    pub no_require_secret: bool,
    /// Require PKCE
    #[arg(long)]
    pub require_pkce: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct AppKey {
    /// Consumer key, app id or app name
    #[arg(value_name = "APP")]
    pub app: String,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct AppUpdate {
    /// Consumer key, app id or app name
    #[arg(value_name = "APP")]
    pub app: String,
    /// New display name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace the callback URLs (repeatable)
    #[arg(long = "callback-url", value_name = "URL")]
    pub callback_urls: Vec<String>,
    /// Replace the scopes (space-separated)
    #[arg(long, value_name = "SCOPES")]
    pub scopes: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct AppRotate {
    /// Consumer key, app id or app name
    #[arg(value_name = "APP")]
    pub app: String,
    /// Retire every other secret at once
    #[arg(long)]
    pub retire_old: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the effective configuration (secrets redacted); exit 2 if it is invalid
    Check(ConfigCheck),
}

#[derive(Debug, Args)]
pub struct ConfigCheck {
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
