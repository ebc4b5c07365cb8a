//! Admin tokens and the admin API's view of who may administer Valet.
//!
//! An admin token is an ordinary opaque Valet access token, issued through a built-in public
//! app (`ValetAdmin`) to an admin user with the scopes `api full valet_admin`. Reusing the token
//! machinery means revocation, expiry, disabling the user and the sweeper all apply to admin
//! tokens with no code of their own. The rule is: an active admin user *and* the `valet_admin`
//! scope, which only apps an admin configured with it can request (never a dynamically
//! registered client; `full` alone is not enough).
//!
//! The profile edits of users (email, names) live here too because the admin API is their
//! first caller; `admin.rs` has no such function yet.

use crate::clock::Millis;
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::Secret;

use super::admin::{AdminError, NewApp, ADMIN_USERNAME};
use super::issue::Issue;
use super::resource::TokenContext;
use super::token::{Client, TokenError};
use super::{Engine, EngineError};
use crate::store::UserPatch;

/// The consumer key of the built-in app admin tokens are issued through.
pub const ADMIN_APP_KEY: &str = "ValetAdmin";
/// The scope that makes an admin user's token an admin credential. `full` is not enough: an
/// app an admin once allowed `full` (a dynamically registered one, say) must not become an
/// admin console. Only apps an admin gave this scope can carry it.
pub const ADMIN_SCOPE: &str = "valet_admin";
/// What an admin token carries.
const ADMIN_TOKEN_SCOPES: &str = "api full valet_admin";
/// Admin tokens live one year (the longest session timeout a policy allows).
pub const ADMIN_TOKEN_MINUTES: u32 = 60 * 24 * 365;

/// A freshly minted admin token: the value is shown once and stored only as a hash.
#[derive(Debug)]
pub struct AdminToken {
    pub token: Secret,
    pub user: User,
    pub scopes: ScopeSet,
    pub expires_at: Millis,
}

/// What a bearer token is worth at the admin API. Kept apart from HTTP so the rule is the
/// engine's: the handler only maps `Unauthenticated` to 401 and `Forbidden` to 403.
#[derive(Debug)]
pub enum AdminAccess {
    /// A live token of an active admin user, with the `valet_admin` scope.
    Granted(Box<TokenContext>),
    /// A valid token that does not confer admin rights (not an admin, or no `valet_admin`).
    Forbidden,
    /// Unknown, expired or revoked, or its user is disabled.
    Unauthenticated,
}

/// Changes to a user's profile; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ProfilePatch {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl Engine {
    /// Mints an admin token for `username` (the bootstrap admin by default). Refuses users who
    /// are not active administrators, so the CLI cannot hand out admin rights by mistake.
    pub async fn mint_admin_token(&self, username: Option<&str>) -> Result<AdminToken, AdminError> {
        let user = self.find_user(username.unwrap_or(ADMIN_USERNAME)).await?;
        if !user.is_admin {
            return Err(AdminError::Invalid(format!("{} is not an administrator", user.username)));
        }
        if !user.active {
            return Err(AdminError::Invalid(format!("{} is disabled", user.username)));
        }
        let app = self.admin_app().await?;
        let scopes = ScopeSet::from_stored(ADMIN_TOKEN_SCOPES);
        let family = self.new_family(&app, &user, scopes.clone(), "admin_token", None);
        let client = Client { app, secret: None };
        let issued =
            self.issue_tokens(Issue::new(&family, &user, &client).without_id_token()).await.map_err(token_fault)?;
        let expires_at = family.created_at + ADMIN_TOKEN_MINUTES as i64 * 60_000;
        Ok(AdminToken { token: Secret::new(issued.access_token), user, scopes, expires_at })
    }

    /// The admin API's access rule for a bearer value, checked on every request: disabling an
    /// admin or revoking the token through Valet takes effect at once (the cache is emptied by
    /// the write); done by another process, within the change poll.
    pub async fn admin_access(&self, token: &str) -> Result<AdminAccess, EngineError> {
        let Some(ctx) = self.authenticate_bearer(token).await? else { return Ok(AdminAccess::Unauthenticated) };
        if ctx.user.is_admin && ctx.scopes.contains(ADMIN_SCOPE) {
            Ok(AdminAccess::Granted(Box::new(ctx)))
        } else {
            Ok(AdminAccess::Forbidden)
        }
    }

    /// The built-in app admin tokens are issued through, created on first use. It is public
    /// (there is no secret to leak) and has every browser and device flow switched off, so the
    /// only way to get a token for it is [`Engine::mint_admin_token`].
    pub async fn admin_app(&self) -> Result<App, AdminError> {
        if let Some(app) = self.store.get_app_by_consumer_key(ADMIN_APP_KEY).await? {
            return Ok(app);
        }
        let org = self.default_org().await?;
        let policy = AppPolicy {
            permitted_users: PermittedUsers::AdminApprovedPreAuthorized,
            session_timeout_minutes: ADMIN_TOKEN_MINUTES,
            require_secret_for_web_server_flow: false,
            require_secret_for_refresh_token_flow: false,
            enable_authorization_code_flow: false,
            enable_user_agent_flow: false,
            enable_device_flow: false,
            ..AppPolicy::default()
        };
        let created = self
            .create_app(
                &org.id,
                NewApp {
                    name: "Valet Admin API".into(),
                    callback_urls: vec!["http://localhost/valet-admin".into()],
                    scopes: ScopeSet::from_stored(ADMIN_TOKEN_SCOPES),
                    is_public: true,
                    policy,
                    consumer_key: Some(ADMIN_APP_KEY.into()),
                },
            )
            .await;
        match created {
            Ok(c) => Ok(c.app),
            // Two first uses at once: the other one created it.
            Err(AdminError::Conflict(_)) => self
                .store
                .get_app_by_consumer_key(ADMIN_APP_KEY)
                .await?
                .ok_or_else(|| AdminError::NotFound(format!("app {ADMIN_APP_KEY}"))),
            Err(e) => Err(e),
        }
    }

    /// Changes a user's email and names. The username (the login) never changes here.
    pub async fn update_user_profile(&self, key: &str, patch: ProfilePatch) -> Result<User, AdminError> {
        let user = self.find_user(key).await?;
        let patch = UserPatch {
            email: patch.email.as_deref().map(parse_email).transpose()?,
            first_name: patch.first_name.as_deref().map(|n| parse_person_name("first_name", n, 40)).transpose()?,
            last_name: patch.last_name.as_deref().map(|n| parse_person_name("last_name", n, 80)).transpose()?,
            ..Default::default()
        };
        if patch.email.is_none() && patch.first_name.is_none() && patch.last_name.is_none() {
            return Ok(user);
        }
        self.store.update_user(&user.id, &patch, self.clock.now_ms()).await?;
        self.find_user(user.id.as_str()).await
    }
}

/// An email address as Salesforce's User.Email takes it: 3 to 80 printable ASCII characters
/// with an `@` inside. Control characters matter beyond taste: PostgreSQL refuses NUL in text.
pub fn parse_email(s: &str) -> Result<String, AdminError> {
    let s = s.trim();
    let ok = (3..=80).contains(&s.len())
        && s.contains('@')
        && !s.starts_with('@')
        && !s.ends_with('@')
        && s.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(s.to_string())
    } else {
        Err(AdminError::Invalid(
            "email must look like an email address (3-80 characters, e.g. jane@example.com)".into(),
        ))
    }
}

/// A first or last name: at most `max` characters (Salesforce: 40 and 80), no control
/// characters; empty is allowed (Salesforce's FirstName is optional).
pub fn parse_person_name(field: &str, s: &str, max: usize) -> Result<String, AdminError> {
    let s = s.trim();
    if s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(AdminError::Invalid(format!(
            "{field} must be at most {max} characters, without control characters"
        )));
    }
    Ok(s.to_string())
}

/// Issuing through the built-in app cannot fail with an OAuth error; if it ever does, it is a
/// fault of Valet, not of the caller.
fn token_fault(e: TokenError) -> AdminError {
    match e {
        TokenError::Fault(f) => AdminError::Engine(f),
        TokenError::OAuth(o) => {
            AdminError::Engine(EngineError::Internal(format!("admin token issuance refused: {}", o.error)))
        }
    }
}
