//! `valet migrate`: migrations, then the first-start bootstrap, then exit.

use serde_json::json;

use crate::cli::JsonArg;
use crate::config::Config;
use crate::{output, setup, CliResult};

pub async fn run(cfg: &Config, out: JsonArg) -> CliResult<()> {
    let (engine, sql) = setup::engine(cfg, "http://127.0.0.1:8080").await?;
    let boot = engine.bootstrap(cfg.admin_password.clone()).await?;
    let org_id = boot.org.as_ref().map(|o| o.id.as_str().to_string()).unwrap_or_default();
    if out.json {
        let mut v = json!({
            "backend": sql.backend().as_str(),
            "migrated": true,
            "created_org": boot.created_org,
            "org_id": org_id,
            "admin_username": boot.admin_username,
        });
        if let (Some(p), Some(o)) = (&boot.generated_admin_password, v.as_object_mut()) {
            o.insert("admin_password".into(), json!(p.expose()));
        }
        output::print_json(&v);
    } else {
        println!("Migrations applied ({} database).", sql.backend());
        if boot.created_org {
            let mut fields = vec![("Org id", org_id), ("Admin username", boot.admin_username.clone())];
            match &boot.generated_admin_password {
                Some(p) => {
                    fields.push(("Admin password", format!("{}  (generated; it won't be shown again)", p.expose())))
                }
                None => fields.push(("Admin password", "(from VALET_ADMIN_PASSWORD)".into())),
            }
            println!("Created the org and its admin user:");
            output::print_fields(&fields.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>());
        } else {
            println!("The org {org_id} already exists.");
        }
    }
    sql.close().await;
    Ok(())
}
