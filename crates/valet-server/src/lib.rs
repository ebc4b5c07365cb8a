//! Valet's HTTP surface: the OAuth endpoints on Salesforce's paths, the login and consent
//! pages, and operations (health, readiness, metrics). Handlers parse the request into typed
//! values, call one engine method, and render the result.

pub mod admin;
pub mod api;
pub mod http;
pub mod oauth;
pub mod ops;
pub mod outbound;
pub mod serve;
pub mod tls;
pub mod ui;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use valet_core::Engine;

pub use ops::Metrics;

/// Deployment settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub public_url: String,
    /// Mark cookies `Secure` (when Valet is served over https).
    pub secure_cookies: bool,
}

/// Shared state of every handler: one reference count to clone (axum clones the state for
/// every extractor and middleware of every request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub opts: HttpOptions,
    pub metrics: Metrics,
    /// Outbound HTTP to client-chosen URLs (back-channel logout): public addresses only,
    /// short timeouts, no redirects (`outbound`). `None` if it could not be built (then
    /// back-channel logouts are logged as not sent).
    pub http: Option<reqwest::Client>,
    /// The REST data API's engine (`/services/data`).
    pub data: Arc<valet_data::DataApi>,
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl Shared {
    /// A cookie's name as sent: over https with the `__Host-` prefix, which browsers accept
    /// only with `Secure`, `Path=/` and no `Domain`, so no sibling host can set or shadow it.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.opts.secure_cookies {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Builds the whole application.
pub fn app(engine: Arc<Engine>, data: Arc<valet_data::DataApi>, opts: HttpOptions) -> Router {
    // The JWKS of trusted issuers are fetched from URLs an admin configured (an identity
    // provider may well be on a private network): no address guard, but the same time bound
    // and no redirects.
    match outbound::client(true) {
        Ok(c) => engine.set_fetcher(Arc::new(http::Outbound(c))),
        Err(e) => tracing::error!(error = %e, "no HTTP client: issuers' JWKS URLs cannot be fetched"),
    }
    let http = outbound::client(engine.config().allow_private_outbound)
        .map_err(|e| tracing::error!(error = %e, "no HTTP client: back-channel logouts cannot be sent"))
        .ok();
    let state = AppState::new(Shared { engine, opts, metrics: Metrics::default(), http, data });
    router(state)
}

pub fn router(state: AppState) -> Router {
    let oauth = Router::new()
        .route("/services/oauth2/authorize", get(oauth::authorize::authorize).post(oauth::authorize::authorize_post))
        .route("/services/oauth2/authorize/consent", post(oauth::authorize::consent))
        .route("/services/oauth2/device_authorization", post(oauth::token::device_authorization))
        .route("/services/oauth2/token", post(oauth::token::token).get(oauth::token::token_get))
        .route("/services/oauth2/revoke", get(oauth::revoke::revoke_get).post(oauth::revoke::revoke_post))
        .route("/services/oauth2/introspect", post(oauth::introspect::introspect))
        .route("/services/oauth2/register", post(oauth::register::register))
        .route(
            "/services/oauth2/register/{client_id}",
            get(oauth::register::read).put(oauth::register::update).delete(oauth::register::delete),
        )
        .route("/services/oauth2/userinfo", get(oauth::userinfo::userinfo).post(oauth::userinfo::userinfo))
        .route("/services/oauth2/success", get(ui::pages::success))
        .route("/id/keys", get(oauth::discovery::jwks))
        .route("/id/{org}/{user}", get(oauth::userinfo::identity).post(oauth::userinfo::identity))
        .route("/.well-known/openid-configuration", get(oauth::discovery::discovery));
    let pages = Router::new()
        .route("/", get(ui::pages::home))
        .route("/login", get(ui::pages::login_form).post(ui::pages::login_submit))
        .route("/logout", get(ui::pages::logout_form).post(ui::pages::logout_submit))
        .route("/services/auth/idp/oidc/logout", get(ui::pages::logout_form))
        .route("/setup/connect", get(ui::device::form).post(ui::device::submit))
        .route("/setup/connect/approve", post(ui::device::approve))
        .route("/static/valet.css", get(ui::pages::stylesheet));
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    oauth
        .merge(pages)
        .merge(ops)
        .merge(admin::router())
        .merge(api::router())
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::observe))
        .layer(axum::extract::DefaultBodyLimit::max(http::MAX_BODY))
        .with_state(state)
}
