//! Dynamic client registration (RFC 7591) with an initial access token an admin issues to a
//! registrar app, and client management with a registration access token (RFC 7592).

use valet_proto::registration::{ClientInformation, ClientMetadata};
use valet_proto::OAuthError;

use crate::ids::SfId;
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret, TokenHash};
use crate::store::AppPatch;

use super::admin::{AdminError, NewApp};
use super::{Engine, EngineError};

/// Registration failures: an OAuth error for the client (status in `.0`), or a fault.
#[derive(Debug)]
pub enum RegistrationError {
    Client(u16, OAuthError),
    Fault(EngineError),
}

impl From<EngineError> for RegistrationError {
    fn from(e: EngineError) -> Self {
        RegistrationError::Fault(e)
    }
}
impl From<crate::store::StoreError> for RegistrationError {
    fn from(e: crate::store::StoreError) -> Self {
        RegistrationError::Fault(e.into())
    }
}

fn meta_error(code: &'static str, desc: impl Into<String>) -> RegistrationError {
    RegistrationError::Client(400, OAuthError::with_description(code, desc.into()))
}

fn invalid_token() -> RegistrationError {
    RegistrationError::Client(401, OAuthError::invalid_token())
}

impl From<AdminError> for RegistrationError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) if m.contains("callback URL") => meta_error("invalid_redirect_uri", m),
            AdminError::Invalid(m) | AdminError::Conflict(m) | AdminError::NotFound(m) => {
                meta_error("invalid_client_metadata", m)
            }
            AdminError::Engine(f) => RegistrationError::Fault(f),
        }
    }
}

impl Engine {
    /// Issues an initial access token for a registrar app (shown once).
    pub async fn create_initial_access_token(
        &self,
        registrar: &str,
        valid_minutes: Option<i64>,
    ) -> Result<Secret, AdminError> {
        let app = self.find_app(registrar).await?;
        let token = Secret::new(format!("vit_{}", crate::rand::token_chars(self.rng(), 48)));
        let now = self.clock.now_ms();
        self.store
            .insert_initial_access_token(
                &token.hash(),
                &app.org_id,
                &app.id,
                now,
                valid_minutes.map(|m| now + m * 60_000),
            )
            .await?;
        Ok(token)
    }

    /// `POST /services/oauth2/register`.
    pub async fn register_client(
        &self,
        initial_token: Option<&str>,
        meta: ClientMetadata,
    ) -> Result<ClientInformation, RegistrationError> {
        let token = initial_token.ok_or_else(invalid_token)?;
        let (org_id, registrar) = self
            .store
            .get_initial_access_token(&TokenHash::of(token), self.clock.now_ms())
            .await?
            .ok_or_else(invalid_token)?;
        let allowed = self.registrable_scopes(&registrar).await?;
        let (new, public) = self.app_from_metadata(&meta, None, &allowed)?;
        let mut new = new;
        new.policy.registered_by = Some(registrar.to_string());
        let created = self.create_app(&org_id, new).await?;
        let rat = Secret::new(format!("vrt_{}", crate::rand::token_chars(self.rng(), 48)));
        self.store.set_registration_token(&created.app.id, &rat.hash(), self.clock.now_ms()).await?;
        let mut info = self.client_information(&created.app, metadata_of(&created.app));
        info.client_secret = created.consumer_secret.map(|s| s.expose().to_string());
        info.client_secret_expires_at = (!public).then_some(0);
        info.registration_access_token = Some(rat.expose().to_string());
        Ok(info)
    }

    async fn registered_app(&self, client_id: &str, rat: Option<&str>) -> Result<App, RegistrationError> {
        let rat = rat.ok_or_else(invalid_token)?;
        let app_id = self.store.app_by_registration_token(&TokenHash::of(rat)).await?.ok_or_else(invalid_token)?;
        match self.store.get_app(&app_id).await? {
            Some(app) if secret::ct_eq_str(&app.consumer_key, client_id) => Ok(app),
            _ => Err(invalid_token()),
        }
    }

    /// `GET /services/oauth2/register/<client_id>` (RFC 7592 §2.1).
    pub async fn read_registration(
        &self,
        client_id: &str,
        rat: Option<&str>,
    ) -> Result<ClientInformation, RegistrationError> {
        let app = self.registered_app(client_id, rat).await?;
        Ok(self.client_information(&app, metadata_of(&app)))
    }

    /// `PUT` (RFC 7592 §2.2): replaces the metadata; the secret and client id stay.
    pub async fn update_registration(
        &self,
        client_id: &str,
        rat: Option<&str>,
        meta: ClientMetadata,
    ) -> Result<ClientInformation, RegistrationError> {
        let app = self.registered_app(client_id, rat).await?;
        if meta.client_id.as_deref().is_some_and(|c| c != app.consumer_key) {
            return Err(meta_error("invalid_client_metadata", "client_id does not match"));
        }
        let registrar = app.policy.registered_by.as_deref().and_then(|r| SfId::parse(r).ok());
        let allowed = match registrar {
            Some(r) => self.registrable_scopes(&r).await?,
            None => app.scopes.without_privileged(),
        };
        let (new, public) = self.app_from_metadata(&meta, Some(&app), &allowed)?;
        if public != app.is_public {
            return Err(meta_error(
                "invalid_client_metadata",
                "token_endpoint_auth_method cannot change between public and confidential",
            ));
        }
        let patch = AppPatch {
            name: Some(new.name),
            callback_urls: Some(new.callback_urls),
            scopes: Some(new.scopes),
            policy: Some(new.policy),
            is_public: None,
        };
        let app = self.update_app(app.id.as_str(), patch).await?;
        Ok(self.client_information(&app, metadata_of(&app)))
    }

    /// `DELETE` (RFC 7592 §2.3).
    pub async fn delete_registration(&self, client_id: &str, rat: Option<&str>) -> Result<(), RegistrationError> {
        let app = self.registered_app(client_id, rat).await?;
        self.delete_app(app.id.as_str()).await?;
        Ok(())
    }

    fn client_information(&self, app: &App, metadata: ClientMetadata) -> ClientInformation {
        ClientInformation {
            client_id: app.consumer_key.clone(),
            client_secret: None,
            client_id_issued_at: app.created_at.div_euclid(1000),
            client_secret_expires_at: None,
            registration_access_token: None,
            registration_client_uri: format!("{}/services/oauth2/register/{}", self.config.issuer, app.consumer_key),
            metadata,
        }
    }

    /// The scopes a client registered with `registrar`'s initial access token may have: the
    /// registrar app's own, never a privileged one (`full`, `valet_admin`; an admin can grant
    /// those afterwards by editing the app).
    async fn registrable_scopes(&self, registrar: &SfId) -> Result<ScopeSet, RegistrationError> {
        let app = self.store.get_app(registrar).await?.ok_or_else(invalid_token)?;
        let mut allowed = app.scopes.without_privileged();
        // `openid` and `id` describe the user to the client; every registrar may hand them out.
        allowed.insert("openid");
        allowed.insert("id");
        Ok(allowed)
    }

    /// Maps RFC 7591 metadata onto an app and its policy (the same data admins edit); the
    /// scopes asked for must be within `allowed`.
    fn app_from_metadata(
        &self,
        meta: &ClientMetadata,
        existing: Option<&App>,
        allowed: &ScopeSet,
    ) -> Result<(NewApp, bool), RegistrationError> {
        let method = meta.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic");
        let public = match method {
            "none" => true,
            "client_secret_basic" | "client_secret_post" | "client_secret_jwt" => false,
            other => {
                return Err(meta_error(
                    "invalid_client_metadata",
                    format!("unsupported token_endpoint_auth_method {other}"),
                ))
            }
        };
        let grants: Vec<&str> = if meta.grant_types.is_empty() {
            vec!["authorization_code"]
        } else {
            meta.grant_types.iter().map(String::as_str).collect()
        };
        let mut policy = existing.map(|a| a.policy.clone()).unwrap_or_default();
        policy.enable_authorization_code_flow = false;
        policy.enable_user_agent_flow = false;
        policy.enable_device_flow = false;
        policy.enable_client_credentials_flow = false;
        for g in &grants {
            match *g {
                "authorization_code" => policy.enable_authorization_code_flow = true,
                "implicit" => policy.enable_user_agent_flow = true,
                "refresh_token" => {}
                "urn:ietf:params:oauth:grant-type:device_code" => policy.enable_device_flow = true,
                "client_credentials" if !public => policy.enable_client_credentials_flow = true,
                other => return Err(meta_error("invalid_client_metadata", format!("unsupported grant type {other}"))),
            }
        }
        for rt in &meta.response_types {
            match rt.as_str() {
                "code" if policy.enable_authorization_code_flow => {}
                "token" if policy.enable_user_agent_flow => {}
                other => {
                    return Err(meta_error(
                        "invalid_client_metadata",
                        format!("response type {other} does not match the grant types"),
                    ))
                }
            }
        }
        let needs_redirect = policy.enable_authorization_code_flow || policy.enable_user_agent_flow;
        if needs_redirect && meta.redirect_uris.is_empty() {
            return Err(meta_error("invalid_redirect_uri", "redirect_uris must be provided"));
        }
        let mut scopes = match &meta.scope {
            Some(s) => ScopeSet::parse(s).map_err(|e| meta_error("invalid_client_metadata", e.to_string()))?,
            None => ScopeSet::from_stored("api id openid").intersect(allowed),
        };
        if let Some(extra) = scopes.iter().find(|s| !allowed.contains(s) && *s != "refresh_token") {
            return Err(meta_error(
                "invalid_client_metadata",
                format!("the scope {extra} cannot be registered with this initial access token"),
            ));
        }
        if grants.contains(&"refresh_token") {
            scopes.insert("refresh_token");
        }
        policy.require_secret_for_web_server_flow = !public;
        policy.require_secret_for_refresh_token_flow = !public;
        policy.post_logout_redirect_uris = meta.post_logout_redirect_uris.clone();
        if let Some(u) = &meta.backchannel_logout_uri {
            super::ip::check_outbound_url(u, self.config.allow_private_outbound)
                .map_err(|why| meta_error("invalid_client_metadata", format!("backchannel_logout_uri {why}")))?;
        }
        policy.backchannel_logout_url = meta.backchannel_logout_uri.clone();
        let callback_urls = if meta.redirect_uris.is_empty() {
            // Device-only and client-credentials clients have no callback; Salesforce fills in a placeholder.
            vec![format!("{}/services/oauth2/success", self.config.issuer)]
        } else {
            meta.redirect_uris.clone()
        };
        let name = meta
            .client_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Dynamically registered client".into());
        Ok((NewApp { name, callback_urls, scopes, is_public: public, policy, consumer_key: None }, public))
    }
}

/// The metadata that describes an existing app.
fn metadata_of(app: &App) -> ClientMetadata {
    let p = &app.policy;
    let mut grant_types = vec![];
    if p.enable_authorization_code_flow {
        grant_types.push("authorization_code".to_string());
    }
    if p.enable_user_agent_flow {
        grant_types.push("implicit".to_string());
    }
    if app.scopes.allows_refresh() {
        grant_types.push("refresh_token".to_string());
    }
    if p.enable_device_flow {
        grant_types.push("urn:ietf:params:oauth:grant-type:device_code".to_string());
    }
    if p.enable_client_credentials_flow {
        grant_types.push("client_credentials".to_string());
    }
    ClientMetadata {
        redirect_uris: app.callback_urls.clone(),
        token_endpoint_auth_method: Some(if app.is_public { "none" } else { "client_secret_basic" }.into()),
        response_types: if p.enable_authorization_code_flow { vec!["code".into()] } else { vec![] },
        grant_types,
        client_name: Some(app.name.clone()),
        scope: Some(app.scopes.to_string()),
        contacts: vec![],
        post_logout_redirect_uris: p.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: p.backchannel_logout_url.clone(),
        client_id: None,
    }
}
