//! One module per command group.

pub mod admin_token;
pub mod app;
pub mod config;
pub mod custom_permission;
pub mod migrate;
pub mod object;
pub mod org;
pub mod permset;
pub mod registration;
pub mod serve;
pub mod user;

use std::io::BufRead;

use anyhow::Context;

use crate::cli::{Cli, Command, ConfigCmd, GlobalArgs};
use crate::config::{Config, Env, Purpose};
use crate::{usage, CliResult};

pub async fn run(cli: Cli) -> CliResult<()> {
    let Cli { global, command } = cli;
    match command {
        Command::Serve(args) => serve::run(&global, args).await,
        Command::Config(ConfigCmd::Check(args)) => config::check(&global, args),
        Command::Migrate(out) => migrate::run(&admin_config(&global)?, out).await,
        Command::User(cmd) => user::run(&admin_config(&global)?, cmd).await,
        Command::App(cmd) => app::run(&admin_config(&global)?, cmd).await,
        Command::AdminToken(cmd) => admin_token::run(&admin_config(&global)?, cmd).await,
        Command::Org(cmd) => org::run(&admin_config(&global)?, cmd).await,
        Command::Permset(cmd) => permset::run(&admin_config(&global)?, cmd).await,
        Command::CustomPermission(cmd) => custom_permission::run(&admin_config(&global)?, cmd).await,
        Command::RegistrationToken(cmd) => registration::run(&admin_config(&global)?, cmd).await,
        Command::Object(cmd) => object::run(&admin_config(&global)?, cmd).await,
    }
}

/// The configuration of `migrate` and the admin commands, with logging set up.
fn admin_config(global: &GlobalArgs) -> CliResult<Config> {
    let env = Env::from_process()?;
    let cfg = Config::load(global, None, &env, Purpose::Admin)?;
    crate::setup::init_logging(&cfg);
    Ok(cfg)
}

/// The first line of standard input, without its line ending.
pub fn read_password_stdin() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        return Err(usage("--password-stdin: standard input held no password"));
    }
    Ok(pw)
}

/// A password Valet makes up: 20 alphanumerics (about 119 bits).
pub fn generate_password() -> String {
    valet_core::rand::alnum(&valet_core::rand::OsRandom, 20)
}
