//! `valet org show|set`: the org-wide settings (flow blocks, PKCE requirement).

use clap::{Args, Subcommand};
use valet_core::model::OrgSettings;

use crate::cli::JsonArg;
use crate::config::Config;
use crate::output;
use crate::{setup, usage, CliResult};

#[derive(Debug, Subcommand)]
pub enum OrgCmd {
    /// Show the org and its settings
    Show(JsonArg),
    /// Change settings, e.g. `valet org set allow_username_password_flow=true`
    Set(OrgSet),
}

#[derive(Debug, Args)]
pub struct OrgSet {
    /// KEY=VALUE pairs (keys: allow_username_password_flow, allow_user_agent_flow,
    /// allow_code_credentials_flow, require_pkce, idle_refresh_token_ttl_days)
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
    #[command(flatten)]
    pub out: JsonArg,
}

fn show(org: &valet_core::model::Org, json: bool) {
    // OrgSettings is a struct of booleans and numbers: serde_json always serializes it.
    let settings = serde_json::to_value(&org.settings).unwrap_or_default();
    if json {
        output::print_json(&serde_json::json!({ "id": org.id.as_str(), "name": org.name, "settings": settings }));
    } else {
        let mut fields = vec![("Org id", org.id.to_string()), ("Name", org.name.clone())];
        let rendered: Vec<(String, String)> = settings
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
            .unwrap_or_default();
        let leaked: Vec<(&str, String)> = rendered.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        fields.extend(leaked);
        output::print_fields(&fields);
    }
}

pub async fn run(cfg: &Config, cmd: OrgCmd) -> CliResult<()> {
    match cmd {
        OrgCmd::Show(out) => {
            let engine = setup::admin_engine(cfg).await?;
            show(&engine.default_org().await?, out.json);
        }
        OrgCmd::Set(args) => {
            // Parse everything before touching the database.
            let mut changes = serde_json::Map::new();
            for pair in &args.pairs {
                let (k, v) = pair.split_once('=').ok_or_else(|| usage(format!("expected KEY=VALUE, got {pair:?}")))?;
                let value: serde_json::Value =
                    serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
                changes.insert(k.to_string(), value);
            }
            let engine = setup::admin_engine(cfg).await?;
            let org = engine.default_org().await?;
            let mut current = serde_json::to_value(&org.settings)?;
            if let Some(obj) = current.as_object_mut() {
                for (k, v) in changes {
                    obj.insert(k, v);
                }
            }
            let settings: OrgSettings =
                serde_json::from_value(current).map_err(|e| usage(format!("org settings: {e}")))?;
            show(&engine.set_org_settings(settings).await?, args.out.json);
        }
    }
    Ok(())
}
