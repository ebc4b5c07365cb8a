//! `valet permset ...`: permission sets, which pre-authorize users for admin-approved apps and
//! grant custom permissions.

use clap::{Args, Subcommand};

use crate::cli::JsonArg;
use crate::config::Config;
use crate::output;
use crate::{setup, CliResult};

#[derive(Debug, Subcommand)]
pub enum PermsetCmd {
    /// Create a permission set (list its name in an app's `permission_sets` policy)
    Create(PermsetCreate),
    /// List permission sets
    List(JsonArg),
    /// Delete a permission set and its assignments
    Delete(PermsetKey),
    /// Assign a permission set to a user
    Assign(PermsetAssign),
    /// Remove a permission set from a user
    Unassign(PermsetAssign),
    /// Let a permission set grant a custom permission (see `valet custom-permission`)
    GrantPermission(PermsetGrant),
    /// Stop a permission set granting a custom permission
    RevokePermission(PermsetGrant),
    /// List the custom permissions a permission set grants
    Permissions(PermsetShow),
}

#[derive(Debug, Args)]
pub struct PermsetCreate {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub label: Option<String>,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct PermsetKey {
    /// Permission set name or id
    pub permset: String,
}

#[derive(Debug, Args)]
pub struct PermsetAssign {
    /// Permission set name or id
    pub permset: String,
    /// Username or user id
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct PermsetGrant {
    /// Permission set name or id
    pub permset: String,
    /// Custom permission name or id
    pub permission: String,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct PermsetShow {
    /// Permission set name or id
    pub permset: String,
    #[command(flatten)]
    pub out: JsonArg,
}

pub async fn run(cfg: &Config, cmd: PermsetCmd) -> CliResult<()> {
    let engine = setup::admin_engine(cfg).await?;
    match cmd {
        PermsetCmd::Create(a) => {
            let ps = engine.create_permission_set(&a.name, a.label.as_deref()).await?;
            if a.out.json {
                output::print_json(&serde_json::json!({"id": ps.id.as_str(), "name": ps.name, "label": ps.label}));
            } else {
                println!("Created permission set {} ({}).", ps.name, ps.id);
            }
        }
        PermsetCmd::List(out) => {
            let all = engine.list_permission_sets().await?;
            if out.json {
                output::print_json(&serde_json::Value::Array(
                    all.iter()
                        .map(|p| serde_json::json!({"id": p.id.as_str(), "name": p.name, "label": p.label}))
                        .collect(),
                ));
            } else {
                let rows: Vec<Vec<String>> =
                    all.iter().map(|p| vec![p.name.clone(), p.label.clone(), p.id.to_string()]).collect();
                output::print_table(&["NAME", "LABEL", "ID"], &rows);
            }
        }
        PermsetCmd::Delete(k) => {
            let ps = engine.delete_permission_set(&k.permset).await?;
            println!("Deleted permission set {}.", ps.name);
        }
        PermsetCmd::Assign(a) => assign(&engine, a, true).await?,
        PermsetCmd::Unassign(a) => assign(&engine, a, false).await?,
        PermsetCmd::GrantPermission(a) => grant(&engine, a, true).await?,
        PermsetCmd::RevokePermission(a) => grant(&engine, a, false).await?,
        PermsetCmd::Permissions(a) => {
            let names = engine.permission_set_custom_permissions(&a.permset).await?;
            print_grants(&a.permset, &names, a.out.json);
        }
    }
    Ok(())
}

async fn assign(engine: &valet_core::Engine, a: PermsetAssign, on: bool) -> CliResult<()> {
    let held = engine.assign_permission_set(&a.user, &a.permset, on).await?;
    if a.out.json {
        output::print_json(&serde_json::json!({"user": a.user, "permission_sets": held}));
    } else {
        println!("{} now holds: {}", a.user, if held.is_empty() { "(none)".to_string() } else { held.join(", ") });
    }
    Ok(())
}

async fn grant(engine: &valet_core::Engine, a: PermsetGrant, on: bool) -> CliResult<()> {
    let names = engine.grant_custom_permission(&a.permset, &a.permission, on).await?;
    print_grants(&a.permset, &names, a.out.json);
    Ok(())
}

fn print_grants(permset: &str, names: &[String], json: bool) {
    if json {
        output::print_json(&serde_json::json!({"permission_set": permset, "custom_permissions": names}));
    } else {
        println!("{permset} grants: {}", if names.is_empty() { "(none)".to_string() } else { names.join(", ") });
    }
}
