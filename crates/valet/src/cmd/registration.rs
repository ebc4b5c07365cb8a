//! `valet registration-token create`: initial access tokens for dynamic client registration
//! (RFC 7591), issued to a registrar app.

use clap::{Args, Subcommand};

use crate::cli::JsonArg;
use crate::config::Config;
use crate::output;
use crate::{setup, CliResult};

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCmd {
    /// Create an initial access token (shown once) for POST /services/oauth2/register
    Create(RegistrationTokenCreate),
}

#[derive(Debug, Args)]
pub struct RegistrationTokenCreate {
    /// The registrar app (consumer key, id or name); it may introspect the apps it registers
    #[arg(long, value_name = "APP")]
    pub registrar: String,
    /// Lifetime in minutes [default: no expiry]
    #[arg(long, value_name = "MINUTES")]
    pub valid_minutes: Option<i64>,
    #[command(flatten)]
    pub out: JsonArg,
}

pub async fn run(cfg: &Config, cmd: RegistrationTokenCmd) -> CliResult<()> {
    let RegistrationTokenCmd::Create(a) = cmd;
    let engine = setup::admin_engine(cfg).await?;
    let token = engine.create_initial_access_token(&a.registrar, a.valid_minutes).await?;
    if a.out.json {
        output::print_json(&serde_json::json!({ "initial_access_token": token.expose() }));
    } else {
        println!("Initial access token (shown once):\n  {}", token.expose());
        println!("Use it as `Authorization: Bearer <token>` on POST /services/oauth2/register.");
    }
    Ok(())
}
