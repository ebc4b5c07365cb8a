//! `valet user ...`.

use serde_json::{json, Value};
use valet_core::clock::iso8601;
use valet_core::engine::admin::NewUser;

use crate::cli::{UserCmd, UserCreate, UserSetPassword};
use crate::config::Config;
use crate::output::{self, user_json};
use crate::{setup, CliResult};

pub async fn run(cfg: &Config, cmd: UserCmd) -> CliResult<()> {
    let engine = setup::admin_engine(cfg).await?;
    match cmd {
        UserCmd::Create(args) => create(&engine, args).await,
        UserCmd::List(out) => {
            let org = engine.default_org().await?;
            let users = engine.store().list_users(&org.id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if out.json {
                output::print_json(&Value::Array(users.iter().map(user_json).collect()));
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.username.clone(),
                            u.id.as_str().to_string(),
                            if u.active { "active" } else { "disabled" }.into(),
                            output::yes_no(u.is_admin),
                            u.display_name(),
                            iso8601(u.created_at),
                        ]
                    })
                    .collect();
                output::print_table(&["USERNAME", "ID", "STATUS", "ADMIN", "NAME", "CREATED"], &rows);
            }
            Ok(())
        }
        UserCmd::Show(key) => {
            let u = engine.find_user(&key.user).await?;
            if key.out.json {
                output::print_json(&user_json(&u));
            } else {
                output::print_user(&u);
            }
            Ok(())
        }
        UserCmd::Disable(key) => {
            let u = engine.set_user_active(&key.user, false).await?;
            if key.out.json {
                output::print_json(&user_json(&u));
            } else {
                println!("Disabled {}; their tokens and sessions were revoked.", u.username);
            }
            Ok(())
        }
        UserCmd::Enable(key) => {
            let u = engine.set_user_active(&key.user, true).await?;
            if key.out.json {
                output::print_json(&user_json(&u));
            } else {
                println!("Enabled {}.", u.username);
            }
            Ok(())
        }
        UserCmd::SetPassword(args) => set_password(&engine, args).await,
    }
}

async fn create(engine: &valet_core::Engine, args: UserCreate) -> CliResult<()> {
    let (password, generated) =
        if args.password_stdin { (super::read_password_stdin()?, false) } else { (super::generate_password(), true) };
    let org = engine.default_org().await?;
    let user = engine
        .create_user(
            &org.id,
            NewUser {
                username: args.username,
                password: password.clone(),
                email: args.email,
                first_name: args.first_name,
                last_name: args.last_name,
                is_admin: args.admin,
            },
        )
        .await?;
    if args.out.json {
        let mut v = user_json(&user);
        if let (true, Some(o)) = (generated, v.as_object_mut()) {
            o.insert("password".into(), json!(password));
        }
        output::print_json(&v);
    } else {
        println!("Created user {}.", user.username);
        output::print_user(&user);
        if generated {
            println!("\nPassword: {password}\n(generated; it won't be shown again)");
        }
    }
    Ok(())
}

async fn set_password(engine: &valet_core::Engine, args: UserSetPassword) -> CliResult<()> {
    let (password, generated) =
        if args.password_stdin { (super::read_password_stdin()?, false) } else { (super::generate_password(), true) };
    let user = engine.set_password(&args.user, password.clone()).await?;
    if args.out.json {
        let mut v = user_json(&user);
        if let (true, Some(o)) = (generated, v.as_object_mut()) {
            o.insert("password".into(), json!(password));
        }
        output::print_json(&v);
    } else {
        println!("Set the password of {}; their browser sessions were ended.", user.username);
        if generated {
            println!("Password: {password}\n(generated; it won't be shown again)");
        }
    }
    Ok(())
}
