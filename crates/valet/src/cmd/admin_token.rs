//! `valet admin-token create`: mints a token for the admin API and prints it once. The token
//! is an ordinary Valet access token (stored only as a hash), so `valet user disable` or the
//! token's expiry ends it like any other.

use clap::{Args, Subcommand};
use serde_json::json;
use valet_core::clock::iso8601;

use crate::cli::JsonArg;
use crate::config::Config;
use crate::output;
use crate::{setup, CliResult};

#[derive(Debug, Subcommand)]
pub enum AdminTokenCmd {
    /// Mint an admin token (valid one year) for an admin user and print it once
    Create(AdminTokenCreate),
}

#[derive(Debug, Args)]
pub struct AdminTokenCreate {
    /// The admin user (username or id) [default: admin@valet.local]
    #[arg(long, value_name = "USERNAME")]
    pub username: Option<String>,
    #[command(flatten)]
    pub out: JsonArg,
}

pub async fn run(cfg: &Config, cmd: AdminTokenCmd) -> CliResult<()> {
    let AdminTokenCmd::Create(args) = cmd;
    let engine = setup::admin_engine(cfg).await?;
    let minted = engine.mint_admin_token(args.username.as_deref()).await?;
    if args.out.json {
        output::print_json(&json!({
            "access_token": minted.token.expose(),
            "token_type": "Bearer",
            "username": minted.user.username,
            "user_id": minted.user.id.as_str(),
            "scope": minted.scopes.to_string(),
            "expires_at": iso8601(minted.expires_at),
        }));
    } else {
        println!("Admin token for {} (shown once; valid until {}):", minted.user.username, iso8601(minted.expires_at));
        println!("  {}", minted.token.expose());
        println!("Use it as `Authorization: Bearer <token>` at /admin/api/v1 (see /admin/api/openapi.json).");
    }
    Ok(())
}
