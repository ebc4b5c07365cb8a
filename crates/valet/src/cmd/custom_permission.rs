//! `valet custom-permission ...`: the org's custom permissions. Permission sets grant them
//! (`valet permset grant-permission`); apps list the ones they use in their policy's
//! `custom_permissions`, and with `id_token.include_custom_permissions` their tokens say which
//! of those the user holds.

use clap::{Args, Subcommand};
use valet_core::model::CustomPermission;

use crate::cli::JsonArg;
use crate::config::Config;
use crate::output;
use crate::{setup, CliResult};

#[derive(Debug, Subcommand)]
pub enum CustomPermissionCmd {
    /// Define a custom permission (API name like Can_Approve)
    Create(CpCreate),
    /// List custom permissions
    List(JsonArg),
    /// Show a custom permission
    Show(CpShow),
    /// Change a custom permission's label or description
    Update(CpCreate),
    /// Delete a custom permission, its grants and its place in every app's list
    Delete(CpKey),
}

#[derive(Debug, Args)]
pub struct CpCreate {
    /// API name: letters, digits and single underscores, starting with a letter (Can_Approve)
    pub name: String,
    /// Label (default: the name)
    #[arg(long)]
    pub label: Option<String>,
    /// Description (with `update`, an empty one removes it)
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct CpShow {
    /// Custom permission name or id
    pub permission: String,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct CpKey {
    /// Custom permission name or id
    pub permission: String,
}

fn to_json(c: &CustomPermission) -> serde_json::Value {
    serde_json::json!({
        "id": c.id.as_str(),
        "name": c.name,
        "label": c.label,
        "description": c.description,
        "created_at": valet_core::clock::iso8601(c.created_at),
    })
}

fn print(c: &CustomPermission, json: bool) {
    if json {
        output::print_json(&to_json(c));
    } else {
        output::print_fields(&[
            ("id", c.id.to_string()),
            ("name", c.name.clone()),
            ("label", c.label.clone()),
            ("description", c.description.clone().unwrap_or_default()),
        ]);
    }
}

pub async fn run(cfg: &Config, cmd: CustomPermissionCmd) -> CliResult<()> {
    let engine = setup::admin_engine(cfg).await?;
    match cmd {
        CustomPermissionCmd::Create(a) => {
            let cp = engine.create_custom_permission(&a.name, a.label.as_deref(), a.description.as_deref()).await?;
            if a.out.json {
                output::print_json(&to_json(&cp));
            } else {
                println!("Created custom permission {} ({}).", cp.name, cp.id);
            }
        }
        CustomPermissionCmd::List(out) => {
            let all = engine.list_custom_permissions().await?;
            if out.json {
                output::print_json(&serde_json::Value::Array(all.iter().map(to_json).collect()));
            } else {
                let rows: Vec<Vec<String>> =
                    all.iter().map(|c| vec![c.name.clone(), c.label.clone(), c.id.to_string()]).collect();
                output::print_table(&["NAME", "LABEL", "ID"], &rows);
            }
        }
        CustomPermissionCmd::Show(a) => print(&engine.find_custom_permission(&a.permission).await?, a.out.json),
        CustomPermissionCmd::Update(a) => {
            let cp = engine.update_custom_permission(&a.name, a.label.as_deref(), a.description.as_deref()).await?;
            print(&cp, a.out.json);
        }
        CustomPermissionCmd::Delete(k) => {
            let cp = engine.delete_custom_permission(&k.permission).await?;
            println!("Deleted custom permission {}.", cp.name);
        }
    }
    Ok(())
}
