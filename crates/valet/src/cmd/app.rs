//! `valet app ...`.

use serde_json::{json, Value};
use valet_core::clock::iso8601;
use valet_core::engine::admin::NewApp;
use valet_core::model::AppPolicy;
use valet_core::scope::ScopeSet;
use valet_core::store::AppPatch;

use crate::cli::{AppCmd, AppCreate, AppUpdate};
use crate::config::Config;
use crate::output::{self, app_json};
use crate::{policy, setup, usage, CliResult, Failure};

pub async fn run(cfg: &Config, cmd: AppCmd) -> CliResult<()> {
    // Arguments are checked before the database is opened.
    match cmd {
        AppCmd::Create(args) => {
            let new = new_app(&args)?;
            let engine = setup::admin_engine(cfg).await?;
            let org = engine.default_org().await?;
            let created = engine.create_app(&org.id, new).await?;
            let secret = created.consumer_secret.as_ref();
            if args.out.json {
                output::print_json(&app_json(&created.app, secret));
            } else {
                println!("Created app {}.", created.app.name);
                output::print_app(&created.app, false);
                println!();
                output::print_fields(&[
                    ("Consumer key", created.app.consumer_key.clone()),
                    (
                        "Consumer secret",
                        match secret {
                            Some(s) => format!("{}\n                 (shown once: store it now; `valet app rotate-secret` makes a new one)", s.expose()),
                            None => "(none: public client)".into(),
                        },
                    ),
                ]);
            }
            Ok(())
        }
        AppCmd::List(out) => {
            let engine = setup::admin_engine(cfg).await?;
            let org = engine.default_org().await?;
            let apps = engine.store().list_apps(&org.id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if out.json {
                output::print_json(&Value::Array(apps.iter().map(|a| app_json(a, None)).collect()));
            } else {
                let rows: Vec<Vec<String>> = apps
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            if a.is_public { "public" } else { "confidential" }.into(),
                            iso8601(a.created_at),
                            a.consumer_key.clone(),
                        ]
                    })
                    .collect();
                output::print_table(&["NAME", "TYPE", "CREATED", "CONSUMER KEY"], &rows);
            }
            Ok(())
        }
        AppCmd::Show(key) => {
            let engine = setup::admin_engine(cfg).await?;
            let app = engine.find_app(&key.app).await?;
            if key.out.json {
                output::print_json(&app_json(&app, None));
            } else {
                output::print_app(&app, true);
            }
            Ok(())
        }
        AppCmd::Update(args) => update(cfg, args).await,
        AppCmd::Delete(key) => {
            let engine = setup::admin_engine(cfg).await?;
            let app = engine.delete_app(&key.app).await?;
            if key.out.json {
                output::print_json(&app_json(&app, None));
            } else {
                println!("Deleted app {} ({}) and everything issued to it.", app.name, app.consumer_key);
            }
            Ok(())
        }
        AppCmd::RotateSecret(args) => {
            let engine = setup::admin_engine(cfg).await?;
            let (app, secret) = engine.rotate_secret(&args.app, args.retire_old).await?;
            if args.out.json {
                let mut v = app_json(&app, Some(&secret));
                if let Some(o) = v.as_object_mut() {
                    o.insert("retired_old".into(), json!(args.retire_old));
                }
                output::print_json(&v);
            } else {
                println!("New consumer secret for {} (shown once):", app.name);
                println!("  {}", secret.expose());
                if args.retire_old {
                    println!("Every older secret was retired.");
                } else {
                    println!("The older secrets stay valid until `valet app retire-old-secrets {}`.", app.consumer_key);
                }
            }
            Ok(())
        }
        AppCmd::RotateKey(key) => {
            let engine = setup::admin_engine(cfg).await?;
            let app = engine.rotate_consumer_key(&key.app).await?;
            if key.out.json {
                output::print_json(&app_json(&app, None));
            } else {
                println!("New consumer key (the previous one stays valid until `valet app retire-old-key`):");
                println!("  {}", app.consumer_key);
            }
            Ok(())
        }
        AppCmd::RetireOldKey(key) => {
            let engine = setup::admin_engine(cfg).await?;
            let app = engine.retire_previous_consumer_key(&key.app).await?;
            if key.out.json {
                output::print_json(&app_json(&app, None));
            } else {
                println!("Only {} identifies the app now.", app.consumer_key);
            }
            Ok(())
        }
        AppCmd::RetireOldSecrets(key) => {
            let engine = setup::admin_engine(cfg).await?;
            let retired = engine.retire_old_secrets(&key.app).await?;
            if key.out.json {
                output::print_json(&json!({ "retired": retired }));
            } else {
                println!("Retired {retired} older secret(s); only the newest stays valid.");
            }
            Ok(())
        }
    }
}

fn parse_scopes(s: &str) -> CliResult<ScopeSet> {
    let scopes = ScopeSet::parse(s).map_err(|e| usage(format!("--scopes: {e}")))?;
    if scopes.is_empty() {
        return Err(usage("--scopes: an app needs at least one scope"));
    }
    Ok(scopes)
}

fn new_app(args: &AppCreate) -> CliResult<NewApp> {
    let scopes = parse_scopes(&args.scopes)?;
    let mut base = AppPolicy::default();
    if args.public || args.no_require_secret {
        base.require_secret_for_web_server_flow = false;
        base.require_secret_for_refresh_token_flow = false;
    }
    if args.require_pkce {
        base.require_pkce = true;
    }
    let policy =
        policy::apply(&base, args.policy.policy_json.as_deref(), &args.policy.set_policy).map_err(Failure::Usage)?;
    Ok(NewApp {
        name: args.name.clone(),
        callback_urls: args.callback_urls.clone(),
        scopes,
        is_public: args.public,
        policy,
        consumer_key: None,
    })
}

async fn update(cfg: &Config, args: AppUpdate) -> CliResult<()> {
    let scopes = args.scopes.as_deref().map(parse_scopes).transpose()?;
    let name = args.name.as_deref().map(str::trim).map(str::to_string);
    if name.as_ref().is_some_and(|n| n.is_empty() || n.len() > 255) {
        return Err(usage("--name: an app name must be 1 to 255 characters"));
    }
    let edits_policy = args.policy.policy_json.is_some() || !args.policy.set_policy.is_empty();
    if name.is_none() && args.callback_urls.is_empty() && scopes.is_none() && !edits_policy {
        return Err(usage("nothing to update: give --name, --callback-url, --scopes, --set-policy or --policy-json"));
    }
    // Check the policy edits against the default policy before touching the database, so a
    // bad key is a usage error whatever the app holds.
    if edits_policy {
        policy::apply(&AppPolicy::default(), args.policy.policy_json.as_deref(), &args.policy.set_policy)
            .map_err(Failure::Usage)?;
    }
    let engine = setup::admin_engine(cfg).await?;
    let app = engine.find_app(&args.app).await?;
    let policy = if edits_policy {
        Some(
            policy::apply(&app.policy, args.policy.policy_json.as_deref(), &args.policy.set_policy)
                .map_err(Failure::Usage)?,
        )
    } else {
        None
    };
    let patch = AppPatch {
        name,
        callback_urls: (!args.callback_urls.is_empty()).then_some(args.callback_urls),
        scopes,
        policy,
        is_public: None,
    };
    let updated = engine.update_app(app.id.as_str(), patch).await?;
    if args.out.json {
        output::print_json(&app_json(&updated, None));
    } else {
        println!("Updated app {}.", updated.name);
        output::print_app(&updated, true);
    }
    Ok(())
}
