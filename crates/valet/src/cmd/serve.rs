//! `valet serve`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use valet_core::engine::admin::{AdminError, Bootstrap, NewApp, NewUser};
use valet_core::model::AppPolicy;
use valet_core::scope::ScopeSet;
use valet_core::secret::Secret;
use valet_core::store::Store;
use valet_core::Engine;

use crate::cli::{GlobalArgs, ServeArgs};
use crate::config::{derive_public_url, Config, Env, Purpose, Tls};
use crate::{output, setup, CliResult};

pub const DEMO_APP: &str = "Demo App";
pub const DEMO_USER: &str = "demo@valet.local";
const DEMO_SCOPES: &str = "api refresh_token openid id profile email web";
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The first sweep waits this long after start-up, so that it does not compete with the first
/// requests (and a burst of restarts does not sweep on every one).
const SWEEP_FIRST_AFTER: Duration = Duration::from_secs(5);

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> CliResult<()> {
    let env = Env::from_process()?;
    let cfg = Config::load(global, Some(&args.net), &env, Purpose::Server)?;
    // Held to the end: the last lines are written when it drops.
    let _log = setup::init_server_logging(&cfg);
    let net = cfg.net.clone().ok_or_else(|| anyhow!("listener settings missing"))?;

    // TLS before anything else binds or writes, so a bad certificate fails fast.
    let (tls, ca) = match &net.tls.value {
        Tls::Off => (None, None),
        Tls::Files { cert, key } => {
            (Some(valet_server::tls::from_pem_files(cert, key).context("cannot load the TLS certificate")?), None)
        }
        Tls::SelfSigned => {
            setup::create_private_dir(&cfg.data_dir.value)
                .with_context(|| format!("cannot create the data directory {}", cfg.data_dir.value.display()))?;
            let s = valet_server::tls::self_signed(&cfg.data_dir.value)
                .context("cannot set up the self-signed certificate")?;
            (Some(s.config), Some((s.ca_path, s.created_ca)))
        }
    };

    let listener = tokio::net::TcpListener::bind(net.listen.value)
        .await
        .with_context(|| format!("cannot listen on {}", net.listen.value))?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    let public_url = match &net.public_url {
        Some(u) => u.value.clone(),
        None => derive_public_url(local, net.scheme()),
    };

    let (engine, sql) = setup::engine(&cfg, &public_url).await?;
    let boot = engine.bootstrap(cfg.admin_password.clone()).await?;

    if boot.created_org {
        print_first_start(&boot, &public_url);
    }
    if let Some((ca_path, created_ca)) = &ca {
        if *created_ca || boot.created_org || args.demo {
            print_tls_trust(ca_path, &public_url);
        } else {
            tracing::info!(ca = %ca_path.display(), "serving TLS with the local CA's certificate");
        }
    }
    if args.demo {
        demo(&engine, &public_url, ca.as_ref().map(|(p, _)| p.as_path())).await?;
    }

    let sweeper = tokio::spawn(sweep_loop(engine.store().clone()));
    let data = Arc::new(valet_data::DataApi::new(&sql, engine.clock().clone(), Arc::new(valet_core::rand::OsRandom)));
    let app = valet_server::app(
        engine.clone(),
        data,
        valet_server::HttpOptions {
            public_url: public_url.clone(),
            secure_cookies: public_url.starts_with("https://"),
        },
    );
    tracing::info!(
        listen = %local,
        public_url = %public_url,
        database = %sql.backend(),
        tls = tls.is_some(),
        "Valet is listening"
    );
    let served = valet_server::serve::serve(listener, app, tls, shutdown_signal()).await;
    sweeper.abort();
    drop(engine);
    if tokio::time::timeout(Duration::from_secs(5), sql.close()).await.is_err() {
        tracing::warn!("database connections still busy at exit");
    }
    served.context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

fn print_first_start(boot: &Bootstrap, public_url: &str) {
    let org_id = boot.org.as_ref().map(|o| o.id.as_str().to_string()).unwrap_or_default();
    let password = match &boot.generated_admin_password {
        Some(p) => format!("{}\n{:18}(generated: it won't be shown again; change it with `valet user set-password {} --password-stdin`)", p.expose(), "", boot.admin_username),
        None => "(from VALET_ADMIN_PASSWORD)".to_string(),
    };
    println!("Valet's first start: created the org and its admin user.\n");
    output::print_fields(&[
        ("  Org id", org_id),
        ("  Admin username", boot.admin_username.clone()),
        ("  Admin password", password),
        ("  Login", format!("{public_url}/login")),
        ("  Discovery", format!("{public_url}/.well-known/openid-configuration")),
    ]);
    println!();
}

fn print_tls_trust(ca_path: &Path, public_url: &str) {
    let ca = ca_path.display();
    println!("TLS uses a certificate signed by a local certificate authority that Valet created:");
    println!("  {ca}");
    println!("Trust it in your clients:");
    println!("  curl:            curl --cacert {ca} {public_url}/.well-known/openid-configuration");
    println!("  Python requests: export REQUESTS_CA_BUNDLE={ca}   (replaces the default bundle for that shell)");
    println!("  Node.js:         export NODE_EXTRA_CA_CERTS={ca}");
    println!("  Browsers:        import it as a trusted authority, or accept the warning once.");
    println!();
}

/// Creates the demo app and user once and prints how to try the web server flow.
async fn demo(engine: &Engine, public_url: &str, ca: Option<&Path>) -> CliResult<()> {
    let org = engine.default_org().await?;
    let success = format!("{public_url}/services/oauth2/success");
    let mut notes = Vec::new();
    let (app, secret): (_, Option<Secret>) = match engine.find_app(DEMO_APP).await {
        Ok(app) if !app.callback_urls.contains(&success) => {
            // The public URL changed since the demo app was made (another port...).
            let mut urls = app.callback_urls.clone();
            urls.insert(0, success.clone());
            let patch = valet_core::store::AppPatch { callback_urls: Some(urls), ..Default::default() };
            let app = engine.update_app(app.id.as_str(), patch).await.context("cannot update the demo app")?;
            notes.push(format!("  Added {success} to its callback URLs."));
            (app, None)
        }
        Ok(app) => (app, None),
        Err(AdminError::NotFound(_)) => {
            let created = engine
                .create_app(
                    &org.id,
                    NewApp {
                        name: DEMO_APP.into(),
                        callback_urls: vec![success.clone(), "http://localhost:8080/callback".into()],
                        scopes: ScopeSet::parse(DEMO_SCOPES).map_err(|e| anyhow!("{e}"))?,
                        is_public: false,
                        policy: AppPolicy::default(),
                        consumer_key: None,
                    },
                )
                .await
                .context("cannot create the demo app")?;
            (created.app, created.consumer_secret)
        }
        Err(e) => return Err(e.into()),
    };
    let demo_password = match engine.find_user(DEMO_USER).await {
        Ok(_) => None,
        Err(AdminError::NotFound(_)) => {
            let password = super::generate_password();
            engine
                .create_user(
                    &org.id,
                    NewUser {
                        username: DEMO_USER.into(),
                        password: password.clone(),
                        email: Some(DEMO_USER.into()),
                        first_name: "Demo".into(),
                        last_name: "User".into(),
                        is_admin: false,
                    },
                )
                .await
                .context("cannot create the demo user")?;
            Some(password)
        }
        Err(e) => return Err(e.into()),
    };

    let redirect = if app.callback_urls.contains(&success) {
        success.clone()
    } else {
        app.callback_urls.first().cloned().unwrap_or(success.clone())
    };
    let authorize = format!(
        "{public_url}/services/oauth2/authorize?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &app.consumer_key)
            .append_pair("redirect_uri", &redirect)
            .append_pair("scope", "api refresh_token openid")
            .append_pair("state", "demo")
            .finish()
    );
    let curl = match ca {
        Some(ca) => format!("curl --cacert {}", shell_quote(&ca.display().to_string())),
        None => "curl".to_string(),
    };
    let secret_text = match &secret {
        Some(s) => s.expose().to_string(),
        None => "YOUR_CONSUMER_SECRET".to_string(),
    };

    println!("Demo mode");
    match &secret {
        Some(_) => println!("  Created the app {DEMO_APP:?}."),
        None => println!(
            "  The app {DEMO_APP:?} already exists; its secret was shown when it was created \
             (`valet app rotate-secret '{DEMO_APP}' --retire-old` makes a new one)."
        ),
    }
    for n in &notes {
        println!("{n}");
    }
    match &demo_password {
        Some(_) => println!("  Created the user {DEMO_USER}."),
        None => println!(
            "  The user {DEMO_USER} already exists; its password was shown when it was created \
             (`valet user set-password {DEMO_USER}` makes a new one)."
        ),
    }
    println!();
    output::print_fields(&[
        ("  Consumer key", app.consumer_key.clone()),
        (
            "  Consumer secret",
            match &secret {
                Some(s) => format!("{}  (shown once)", s.expose()),
                None => "(not shown again)".into(),
            },
        ),
        ("  Callback URLs", app.callback_urls.join(", ")),
        ("  Demo user", DEMO_USER.to_string()),
        (
            "  Demo password",
            match &demo_password {
                Some(p) => format!("{p}  (shown once)"),
                None => "(not shown again)".into(),
            },
        ),
    ]);
    println!();
    println!("Try the web server flow:");
    println!();
    println!("1. Open this URL in a browser and log in as {DEMO_USER}:");
    println!();
    println!("   {authorize}");
    println!();
    println!("   After you allow access, the browser lands on {redirect}?code=...&state=demo.");
    println!("   Copy the code from the address bar:");
    println!();
    println!("   CODE='paste the code here'");
    println!();
    println!("2. Exchange the code for tokens:");
    println!();
    println!("   {curl} -s {public_url}/services/oauth2/token \\");
    println!("     -d grant_type=authorization_code \\");
    println!("     -d \"code=$CODE\" \\");
    println!("     -d client_id={} \\", app.consumer_key);
    println!("     -d client_secret={secret_text} \\");
    println!("     --data-urlencode redirect_uri={}", shell_quote(&redirect));
    println!();
    println!("   The JSON answer holds access_token, refresh_token, id_token and instance_url:");
    println!();
    println!("   TOKEN='paste the access_token here'");
    println!();
    println!("3. Ask who you are:");
    println!();
    println!("   {curl} -s {public_url}/services/oauth2/userinfo -H \"Authorization: Bearer $TOKEN\"");
    println!();
    println!("4. Revoke the token (a 200 with an empty body means done):");
    println!();
    println!("   {curl} -s -i {public_url}/services/oauth2/revoke --data-urlencode \"token=$TOKEN\"");
    println!();
    Ok(())
}

/// Single-quotes a word for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

async fn sweep_loop(store: Arc<dyn Store>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_FIRST_AFTER, SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = valet_core::clock::Clock::now_ms(&valet_core::clock::SystemClock);
        match store.sweep_expired(now).await {
            Ok(r) => tracing::debug!(
                codes = r.codes,
                access_tokens = r.access_tokens,
                refresh_tokens = r.refresh_tokens,
                sessions = r.sessions,
                "swept expired records"
            ),
            Err(e) => tracing::warn!(error = %e, "sweeping expired records failed"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("interrupted; shutting down"),
        () = term => tracing::info!("terminated; shutting down"),
    }
}
