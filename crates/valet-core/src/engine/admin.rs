//! Administration: the first start, users, apps and secrets. The CLI and (later) the admin
//! API call these same functions.

use crate::ids::{KeyPrefix, SfId};
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret};
use crate::store::{AppPatch, StoreError, UserPatch};

use super::{password, Engine, EngineError};

/// The sf CLI's built-in public client id (salesforce-wire.md §2.6, §10.3).
pub const PLATFORM_CLI: &str = "PlatformCLI";
pub const ADMIN_USERNAME: &str = "admin@valet.local";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AdminError::Conflict(what),
            StoreError::NotFound => AdminError::NotFound("record".into()),
            other => AdminError::Engine(EngineError::Store(other)),
        }
    }
}

/// What the first start created, for printing once.
#[derive(Debug, Default)]
pub struct Bootstrap {
    pub org: Option<Org>,
    pub created_org: bool,
    pub admin_username: String,
    /// Set only when Valet generated the password (shown once, never stored in clear).
    pub generated_admin_password: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: String,
    pub callback_urls: Vec<String>,
    pub scopes: ScopeSet,
    pub is_public: bool,
    pub policy: AppPolicy,
    /// Only for built-in clients such as `PlatformCLI`.
    pub consumer_key: Option<String>,
}

/// An app with the consumer secret that was just generated (shown once).
#[derive(Debug)]
pub struct CreatedApp {
    pub app: App,
    pub consumer_secret: Option<Secret>,
}

impl Engine {
    /// Creates the org, the admin user and the built-in `PlatformCLI` client on an empty
    /// database. Does nothing on later starts.
    pub async fn bootstrap(&self, admin_password: Option<String>) -> Result<Bootstrap, AdminError> {
        if let Some(org) = self.store.default_org().await? {
            return Ok(Bootstrap {
                org: Some(org),
                created_org: false,
                admin_username: ADMIN_USERNAME.into(),
                generated_admin_password: None,
            });
        }
        let now = self.clock.now_ms();
        let org = Org {
            id: SfId::generate(KeyPrefix::Organization, self.rng()),
            name: "Valet".into(),
            settings: OrgSettings::default(),
            created_at: now,
        };
        self.store.insert_org(&org).await?;
        let (pw, generated) = match admin_password {
            Some(p) => (p, None),
            None => {
                let p = crate::rand::alnum(self.rng(), 20);
                (p.clone(), Some(Secret::new(p)))
            }
        };
        self.create_user(
            &org.id,
            NewUser {
                username: ADMIN_USERNAME.into(),
                password: pw,
                email: Some(ADMIN_USERNAME.into()),
                first_name: "Valet".into(),
                last_name: "Admin".into(),
                is_admin: true,
            },
        )
        .await?;
        let cli_policy = AppPolicy {
            require_secret_for_web_server_flow: false,
            require_secret_for_refresh_token_flow: false,
            enable_device_flow: true,
            ..AppPolicy::default()
        };
        self.create_app(
            &org.id,
            NewApp {
                name: "Salesforce CLI".into(),
                callback_urls: vec!["http://localhost:1717/OauthRedirect".into()],
                scopes: ScopeSet::from_stored(
                    "api web refresh_token offline_access openid id profile email address phone full chatter_api",
                ),
                is_public: true,
                policy: cli_policy,
                consumer_key: Some(PLATFORM_CLI.into()),
            },
        )
        .await?;
        Ok(Bootstrap {
            org: Some(org),
            created_org: true,
            admin_username: ADMIN_USERNAME.into(),
            generated_admin_password: generated,
        })
    }

    pub async fn default_org(&self) -> Result<Org, AdminError> {
        self.store
            .default_org()
            .await?
            .ok_or_else(|| AdminError::NotFound("org (run `valet serve` or `valet migrate` first)".into()))
    }

    /// Replaces the org-wide settings (flow blocks, PKCE requirement).
    pub async fn set_org_settings(&self, settings: OrgSettings) -> Result<Org, AdminError> {
        let org = self.default_org().await?;
        self.store.update_org_settings(&org.id, &settings, self.clock.now_ms()).await?;
        self.default_org().await
    }

    pub async fn create_user(&self, org: &SfId, new: NewUser) -> Result<User, AdminError> {
        let username = validate_username(&new.username)?;
        password::check_strength(&new.password).map_err(AdminError::Invalid)?;
        if self.store.get_user_by_username(&username).await?.is_some() {
            return Err(AdminError::Conflict(format!("user {username}")));
        }
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt);
        let hash = password::hash(new.password, salt).await?;
        let now = self.clock.now_ms();
        let user = User {
            id: SfId::generate(KeyPrefix::User, self.rng()),
            org_id: org.clone(),
            email: new.email.unwrap_or_else(|| username.clone()),
            username,
            first_name: new.first_name,
            last_name: new.last_name,
            password_hash: hash,
            active: true,
            is_admin: new.is_admin,
            timezone: "America/Los_Angeles".into(),
            locale: "en_US".into(),
            language: "en_US".into(),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_user(&user).await?;
        Ok(user)
    }

    /// Finds a user by id (15 or 18 characters) or username.
    pub async fn find_user(&self, key: &str) -> Result<User, AdminError> {
        let found = match SfId::parse(key) {
            Ok(id) => self.store.get_user(&id).await?,
            Err(_) => None,
        };
        let found = match found {
            Some(u) => Some(u),
            None => self.store.get_user_by_username(key).await?,
        };
        found.ok_or_else(|| AdminError::NotFound(format!("user {key}")))
    }

    pub async fn set_password(&self, key: &str, new_password: String) -> Result<User, AdminError> {
        let user = self.find_user(key).await?;
        password::check_strength(&new_password).map_err(AdminError::Invalid)?;
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt);
        let hash = password::hash(new_password, salt).await?;
        let now = self.clock.now_ms();
        self.store.update_user(&user.id, &UserPatch { password_hash: Some(hash), ..Default::default() }, now).await?;
        // A new password ends the user's browser sessions; tokens stay (Salesforce's default).
        self.store.delete_user_sessions(&user.id).await?;
        self.find_user(user.id.as_str()).await
    }

    /// Disabling a user revokes every token and session they hold.
    pub async fn set_user_active(&self, key: &str, active: bool) -> Result<User, AdminError> {
        let user = self.find_user(key).await?;
        let now = self.clock.now_ms();
        self.store.update_user(&user.id, &UserPatch { active: Some(active), ..Default::default() }, now).await?;
        if !active {
            self.store.revoke_user_families(&user.id, None, now).await?;
            self.store.delete_user_sessions(&user.id).await?;
        }
        self.find_user(user.id.as_str()).await
    }

    pub async fn create_app(&self, org: &SfId, mut new: NewApp) -> Result<CreatedApp, AdminError> {
        let name = new.name.trim().to_string();
        if name.is_empty() || name.len() > 255 {
            return Err(AdminError::Invalid("app name must be 1 to 255 characters".into()));
        }
        validate_callback_urls(&new.callback_urls, new.is_public)?;
        validate_policy(&new.policy, new.is_public, self.config.allow_private_outbound)?;
        self.resolve_app_custom_permissions(org, &mut new.policy, &[]).await?;
        if new.scopes.is_empty() {
            return Err(AdminError::Invalid("an app needs at least one scope".into()));
        }
        let now = self.clock.now_ms();
        let app = App {
            id: SfId::generate(KeyPrefix::ConnectedApp, self.rng()),
            org_id: org.clone(),
            name,
            consumer_key: new.consumer_key.unwrap_or_else(|| secret::new_consumer_key(self.rng())),
            previous_consumer_key: None,
            is_public: new.is_public,
            callback_urls: new.callback_urls,
            scopes: new.scopes,
            policy: new.policy,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_app(&app).await?;
        let consumer_secret = if app.is_public {
            None
        } else {
            let s = secret::new_consumer_secret(self.rng());
            self.store.insert_app_secret(&app.id, &s.hash(), &self.seal_secret(&s)?, now).await?;
            Some(s)
        };
        Ok(CreatedApp { app, consumer_secret })
    }

    /// Finds an app by id, consumer key or exact name.
    pub async fn find_app(&self, key: &str) -> Result<App, AdminError> {
        if let Ok(id) = SfId::parse(key) {
            if let Some(a) = self.store.get_app(&id).await? {
                return Ok(a);
            }
        }
        if let Some(a) = self.store.get_app_by_consumer_key(key).await? {
            return Ok(a);
        }
        let org = self.default_org().await?;
        let mut by_name: Vec<App> =
            self.store.list_apps(&org.id).await?.into_iter().filter(|a| a.name == key).collect();
        match by_name.len() {
            0 => Err(AdminError::NotFound(format!("app {key}"))),
            1 => Ok(by_name.remove(0)),
            _ => Err(AdminError::Invalid(format!("several apps are named {key}; use the consumer key or id"))),
        }
    }

    pub async fn update_app(&self, key: &str, mut patch: AppPatch) -> Result<App, AdminError> {
        let app = self.find_app(key).await?;
        let is_public = patch.is_public.unwrap_or(app.is_public);
        if patch.callback_urls.is_some() || patch.is_public.is_some() {
            validate_callback_urls(patch.callback_urls.as_ref().unwrap_or(&app.callback_urls), is_public)?;
        }
        if patch.policy.is_some() || patch.is_public.is_some() {
            validate_policy(
                patch.policy.as_ref().unwrap_or(&app.policy),
                is_public,
                self.config.allow_private_outbound,
            )?;
        }
        if let Some(p) = &mut patch.policy {
            self.resolve_app_custom_permissions(&app.org_id, p, &app.policy.custom_permissions).await?;
        }
        if let Some(s) = &patch.scopes {
            if s.is_empty() {
                return Err(AdminError::Invalid("an app needs at least one scope".into()));
            }
        }
        self.store.update_app(&app.id, &patch, self.clock.now_ms()).await?;
        self.find_app(app.id.as_str()).await
    }

    pub async fn delete_app(&self, key: &str) -> Result<App, AdminError> {
        let app = self.find_app(key).await?;
        self.store.delete_app(&app.id).await?;
        Ok(app)
    }

    /// Staged rotation: adds a new secret while the old ones stay valid, or with
    /// `retire_old`, retires every other secret at once.
    pub async fn rotate_secret(&self, key: &str, retire_old: bool) -> Result<(App, Secret), AdminError> {
        let app = self.find_app(key).await?;
        if app.is_public {
            return Err(AdminError::Invalid("a public app has no consumer secret".into()));
        }
        let now = self.clock.now_ms();
        let s = secret::new_consumer_secret(self.rng());
        let id = self.store.insert_app_secret(&app.id, &s.hash(), &self.seal_secret(&s)?, now).await?;
        if retire_old {
            self.store.retire_app_secrets_except(&app.id, id, now).await?;
        }
        Ok((app, s))
    }

    /// Creates a permission set; assigning it to users pre-authorizes them for admin-approved
    /// apps that list its name.
    pub async fn create_permission_set(&self, name: &str, label: Option<&str>) -> Result<PermissionSet, AdminError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 80 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(AdminError::Invalid("permission set names are 1-80 letters, digits or underscores".into()));
        }
        let org = self.default_org().await?;
        let ps = PermissionSet {
            id: SfId::generate(KeyPrefix::PermissionSet, self.rng()),
            org_id: org.id,
            name: name.to_string(),
            label: label.unwrap_or(name).to_string(),
            created_at: self.clock.now_ms(),
        };
        self.store.insert_permission_set(&ps).await?;
        Ok(ps)
    }

    pub async fn list_permission_sets(&self) -> Result<Vec<PermissionSet>, AdminError> {
        let org = self.default_org().await?;
        Ok(self.store.list_permission_sets(&org.id).await?)
    }

    pub(crate) async fn find_permission_set(&self, key: &str) -> Result<PermissionSet, AdminError> {
        self.list_permission_sets()
            .await?
            .into_iter()
            .find(|p| p.name == key || p.id.as_str() == key)
            .ok_or_else(|| AdminError::NotFound(format!("permission set {key}")))
    }

    pub async fn delete_permission_set(&self, key: &str) -> Result<PermissionSet, AdminError> {
        let ps = self.find_permission_set(key).await?;
        self.store.delete_permission_set(&ps.id).await?;
        Ok(ps)
    }

    pub async fn assign_permission_set(&self, user: &str, key: &str, assign: bool) -> Result<Vec<String>, AdminError> {
        let user = self.find_user(user).await?;
        let ps = self.find_permission_set(key).await?;
        if assign {
            self.store.assign_permission_set(&user.id, &ps.id).await?;
        } else {
            self.store.unassign_permission_set(&user.id, &ps.id).await?;
        }
        Ok(self.store.user_permission_sets(&user.id).await?)
    }

    pub async fn user_permission_sets(&self, user: &str) -> Result<Vec<String>, AdminError> {
        let user = self.find_user(user).await?;
        Ok(self.store.user_permission_sets(&user.id).await?)
    }

    /// Staged consumer-key rotation: a new key identifies the app and the old one keeps
    /// working until [`Engine::retire_previous_consumer_key`].
    pub async fn rotate_consumer_key(&self, key: &str) -> Result<App, AdminError> {
        let app = self.find_app(key).await?;
        if app.consumer_key == PLATFORM_CLI {
            return Err(AdminError::Invalid("the built-in PlatformCLI client keeps its key".into()));
        }
        if app.previous_consumer_key.is_some() {
            return Err(AdminError::Invalid("a key rotation is already staged; retire the previous key first".into()));
        }
        self.store.rotate_consumer_key(&app.id, &secret::new_consumer_key(self.rng()), self.clock.now_ms()).await?;
        self.find_app(app.id.as_str()).await
    }

    pub async fn retire_previous_consumer_key(&self, key: &str) -> Result<App, AdminError> {
        let app = self.find_app(key).await?;
        self.store.retire_previous_consumer_key(&app.id, self.clock.now_ms()).await?;
        self.find_app(app.id.as_str()).await
    }

    /// Ends a staged rotation: only the newest secret stays valid.
    pub async fn retire_old_secrets(&self, key: &str) -> Result<u64, AdminError> {
        let app = self.find_app(key).await?;
        let live = self.store.live_app_secrets(&app.id).await?;
        match live.first() {
            Some(newest) => Ok(self.store.retire_app_secrets_except(&app.id, newest.id, self.clock.now_ms()).await?),
            None => Ok(0),
        }
    }
}

impl Engine {
    fn seal_secret(&self, s: &Secret) -> Result<Vec<u8>, AdminError> {
        self.master.seal_for(CLIENT_SECRET_PURPOSE, s.expose().as_bytes()).map_err(|e| AdminError::Engine(e.into()))
    }
}

/// Associated data for sealed consumer secrets.
pub(crate) const CLIENT_SECRET_PURPOSE: &[u8] = b"valet-client-secret";

fn validate_username(u: &str) -> Result<String, AdminError> {
    let u = u.trim();
    let ok = (3..=80).contains(&u.len())
        && u.contains('@')
        && !u.starts_with('@')
        && !u.ends_with('@')
        && u.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(u.to_string())
    } else {
        Err(AdminError::Invalid(
            "username must look like an email address (3-80 characters, e.g. jane@example.com)".into(),
        ))
    }
}

/// Callback URLs (salesforce-wire.md §3.1, §8.5): exact strings, https or a custom scheme, http only for
/// loopback; no fragment; 2000 characters in all.
/// Callback URL rules (RFC 6749 §3.1.2, RFC 9700 §2.6): absolute, no fragment, no wildcard,
/// `https` (plain `http` only on loopback), and custom schemes (`com.example.app:/cb`) only for
/// public apps, the native apps they exist for (RFC 8252 §7.1).
pub fn validate_callback_urls(urls: &[String], is_public: bool) -> Result<(), AdminError> {
    if urls.is_empty() {
        return Err(AdminError::Invalid("an app needs at least one callback URL".into()));
    }
    let total: usize = urls.iter().map(|u| u.len()).sum::<usize>() + urls.len().saturating_sub(1);
    if total > 2000 {
        return Err(AdminError::Invalid("callback URLs exceed 2000 characters in all".into()));
    }
    for u in urls {
        validate_callback_url(u, is_public).map_err(|why| AdminError::Invalid(format!("callback URL {u:?}: {why}")))?;
    }
    Ok(())
}

fn validate_callback_url(u: &str, is_public: bool) -> Result<(), &'static str> {
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace");
    }
    if u.contains('#') {
        return Err("must not contain a fragment");
    }
    if u.contains('*') {
        return Err("wildcards are not allowed");
    }
    let parsed = url::Url::parse(u).map_err(|_| "is not an absolute URL")?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host_str() {
            Some("localhost") | Some("127.0.0.1") | Some("[::1]") => Ok(()),
            _ => Err("http is allowed only for localhost, 127.0.0.1 and [::1]; use https"),
        },
        "javascript" | "data" | "vbscript" | "file" | "ftp" | "ws" | "wss" => Err("this scheme is not allowed"),
        // Custom schemes for native apps (com.example.app:/cb): any app on the device can
        // claim one, so they belong to public apps, which keep no secret anyway.
        _ if is_public => Ok(()),
        _ => Err("custom schemes are allowed only for public (native) apps"),
    }
}

fn validate_policy(p: &AppPolicy, is_public: bool, allow_private_outbound: bool) -> Result<(), AdminError> {
    if !(1..=720).contains(&p.id_token.valid_minutes) {
        return Err(AdminError::Invalid("id_token.valid_minutes must be between 1 and 720".into()));
    }
    if p.session_timeout_minutes == 0 || p.session_timeout_minutes > 60 * 24 * 365 {
        return Err(AdminError::Invalid("session_timeout_minutes must be between 1 and 525600".into()));
    }
    if ![1, 5, 10, 15, 30].contains(&p.jwt_access_token_minutes) {
        return Err(AdminError::Invalid("jwt_access_token_minutes must be 1, 5, 10, 15 or 30".into()));
    }
    if let Some(bad) = p.ip_ranges.iter().find(|r| !super::ip::valid_range(r)) {
        return Err(AdminError::Invalid(format!("ip_ranges: {bad:?} is not an address, CIDR range or a-b span")));
    }
    if let Some(pem) = &p.jwt_certificate_pem {
        if pem.len() > 4000 {
            return Err(AdminError::Invalid("the certificate is limited to 4,000 characters".into()));
        }
    }
    for u in p.single_logout_url.iter() {
        if !u.starts_with("https://") {
            return Err(AdminError::Invalid("single_logout_url must use https".into()));
        }
    }
    if let Some(u) = &p.backchannel_logout_url {
        super::ip::check_outbound_url(u, allow_private_outbound)
            .map_err(|why| AdminError::Invalid(format!("backchannel_logout_url {why}")))?;
    }
    if !p.post_logout_redirect_uris.is_empty() {
        validate_callback_urls(&p.post_logout_redirect_uris, is_public)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_rules() {
        let ok = |u: &str| validate_callback_urls(&[u.to_string()], true).is_ok();
        assert!(ok("https://app.example.com/cb"));
        assert!(ok("http://localhost:1717/OauthRedirect"));
        assert!(ok("http://127.0.0.1/cb"));
        assert!(ok("com.example.app:/cb"));
        assert!(!ok("http://app.example.com/cb"));
        assert!(!ok("https://app.example.com/cb#x"));
        assert!(!ok("javascript:alert(1)"));
        assert!(!ok("https://*.example.com/cb"));
        assert!(!ok("/cb"));
        assert!(!ok(&format!("https://a.example/{}", "x".repeat(2000))));
        assert!(validate_callback_urls(&["com.example.app:/cb".to_string()], false).is_err());
        assert!(validate_callback_urls(&["https://app.example.com/cb".to_string()], false).is_ok());
    }
}
