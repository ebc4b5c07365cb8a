//! The authorization endpoint (salesforce-wire.md §3): validating a request, deciding whether to ask for
//! consent, and issuing the code.

use valet_proto::{OAuthError, Params};

use crate::clock::Millis;
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret};

use super::{Engine, EngineError};

/// What the client asked for in `response_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Code,
    /// The user-agent flow: tokens in the fragment.
    Token,
    /// The user-agent flow with an ID token (`token id_token`).
    TokenIdToken,
    /// The Mobile SDK's hybrid user-agent flow.
    HybridToken,
    /// Headless "Authorization Code and Credentials" (salesforce-wire.md §4.8): the code comes back as JSON.
    CodeCredentials,
}

impl ResponseType {
    /// Token-bearing responses (and their errors) go in the fragment, never the query.
    pub fn uses_fragment(self) -> bool {
        !matches!(self, ResponseType::Code | ResponseType::CodeCredentials)
    }
}

/// `prompt` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub login: bool,
    pub consent: bool,
    pub none: bool,
}

/// A request whose client and redirect URI are trusted: errors after this point go back to
/// the redirect URI.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub app: App,
    pub response_type: ResponseType,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<(String, PkceMethod)>,
    pub prompt: Prompt,
    pub immediate: bool,
    pub login_hint: Option<String>,
    /// OIDC `max_age` in seconds: a session authenticated longer ago must log in again.
    pub max_age: Option<i64>,
}

/// Why an authorize request failed, and where the answer goes.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Page(OAuthError),
    /// Redirect to the validated redirect URI with the error (and `state`).
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError, fragment: bool },
}

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;

impl Engine {
    /// Validates `/services/oauth2/authorize` parameters (salesforce-wire.md §3.1, §3.6). `headless` is the
    /// Authorization Code and Credentials POST, the only place its response type belongs.
    /// The app's IP ranges are checked against `client_ip` here, for every way in (browser,
    /// consent form, headless POST).
    pub async fn parse_authorize(
        &self,
        p: &Params,
        headless: bool,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<AuthorizeRequest, AuthorizeErrorOrFault> {
        let page = |e: OAuthError| Err(AuthorizeErrorOrFault::Error(AuthorizeError::Page(e)));
        let client_id = match p.get("client_id") {
            Ok(Some(c)) => c,
            Ok(None) => return page(OAuthError::invalid_client_id()),
            Err(_) => return page(OAuthError::invalid_request("client_id is repeated")),
        };
        let app = match self.store.get_app_by_consumer_key(client_id).await.map_err(EngineError::from)? {
            Some(a) => a,
            None => return page(OAuthError::invalid_client_id()),
        };
        let redirect_uri = match p.get("redirect_uri") {
            Ok(Some("oob")) => return page(OAuthError::out_of_band()),
            Ok(Some(r)) => r.to_string(),
            Ok(None) => return page(OAuthError::redirect_uri_missing()),
            Err(_) => return page(OAuthError::invalid_request("redirect_uri is repeated")),
        };
        if !redirect_uri_registered(&app, &redirect_uri) {
            return page(OAuthError::redirect_uri_mismatch());
        }
        // From here on, errors go back to the client.
        let state = p.get_lenient("state").map(str::to_string);
        let fragment = matches!(p.get_lenient("response_type"), Some(rt) if rt != "code" && rt != "code_credentials");
        let org = self.store.get_org(&app.org_id).await.map_err(EngineError::from)?;
        let redirect_uri_for_error = redirect_uri.clone();
        let state_for_error = state.clone();
        trusted_request(p, app, org.as_ref(), redirect_uri, state, headless, client_ip).map_err(|error| {
            AuthorizeErrorOrFault::Error(AuthorizeError::Redirect {
                redirect_uri: redirect_uri_for_error,
                state: state_for_error,
                error,
                fragment,
            })
        })
    }

    /// Whether the signed-in session is good enough for this request: `prompt=login` and a
    /// session older than `max_age` need a new login (OIDC Core §3.1.2.1).
    pub fn needs_login(&self, req: &AuthorizeRequest, session_auth_time: Millis) -> bool {
        let too_old = req.max_age.is_some_and(|secs| self.clock.now_ms() - session_auth_time > secs * 1000);
        req.prompt.login || too_old
    }

    /// Whether the user must see the approval page for this request (salesforce-wire.md §3.2, §8.1), or an
    /// error if the user may not use the app at all.
    pub async fn consent_decision(&self, req: &AuthorizeRequest, user: &User) -> Result<ConsentDecision, EngineError> {
        match req.app.policy.permitted_users {
            PermittedUsers::AdminApprovedPreAuthorized => {
                if self.permitted(&req.app, user).await? {
                    Ok(ConsentDecision::Granted)
                } else {
                    Ok(ConsentDecision::NotPermitted)
                }
            }
            PermittedUsers::AllSelfAuthorized => {
                // A public client's identity cannot be assured (anyone can send its client id
                // with a redirect URI it controls on the user's machine), so a remembered
                // approval does not speak for it: ask every time (RFC 8252 §8.6).
                if req.prompt.consent || req.app.is_public {
                    return Ok(ConsentDecision::Ask);
                }
                let stored = self.store.get_consent(&user.id, &req.app.id).await?;
                Ok(match stored {
                    Some(c) if req.scopes.is_subset(&c.scopes) => ConsentDecision::Granted,
                    _ => ConsentDecision::Ask,
                })
            }
        }
    }

    /// Whether a user may use an app at all: any user for self-authorized apps; for
    /// admin-approved apps, users holding one of the app's permission sets (salesforce-wire.md §8.1).
    pub async fn permitted(&self, app: &App, user: &User) -> Result<bool, EngineError> {
        match app.policy.permitted_users {
            PermittedUsers::AllSelfAuthorized => Ok(true),
            PermittedUsers::AdminApprovedPreAuthorized => {
                if app.policy.permission_sets.is_empty() {
                    return Ok(false);
                }
                let held = self.store.user_permission_sets(&user.id).await?;
                Ok(held.iter().any(|h| app.policy.permission_sets.iter().any(|p| p == h)))
            }
        }
    }

    /// The tag that binds a consent form's pending request to the browser session that was
    /// shown it: the form posts the request back, and only an unaltered request from the same
    /// session is honoured (a changed `scope`, `client_id` or `redirect_uri` is refused).
    pub fn consent_request_tag(&self, session: &Session, request: &str) -> String {
        let message = format!("{}\n{}", session.id_hash.as_str(), request);
        secret::hmac_sha256_b64(&self.master.derive("consent-request"), &message)
    }

    /// Whether a posted consent request is the one [`Engine::consent_request_tag`] tagged for
    /// this session (compared in constant time).
    pub fn consent_request_intact(&self, session: &Session, request: &str, tag: &str) -> bool {
        secret::ct_eq_str(&self.consent_request_tag(session, request), tag)
    }

    /// Records the user's approval (merged with earlier approvals of the same app).
    pub async fn remember_consent(&self, req: &AuthorizeRequest, user: &User) -> Result<(), EngineError> {
        let mut scopes = req.scopes.clone();
        if let Some(old) = self.store.get_consent(&user.id, &req.app.id).await? {
            for s in old.scopes.iter() {
                scopes.insert(s);
            }
        }
        self.store
            .upsert_consent(&Consent {
                user_id: user.id.clone(),
                app_id: req.app.id.clone(),
                scopes,
                created_at: self.clock.now_ms(),
            })
            .await?;
        Ok(())
    }

    /// Finishes an approved request: a code in the query (web server flow) or tokens in the
    /// fragment (user-agent flows). Returns the redirect URL.
    pub async fn complete_authorization(
        &self,
        req: &AuthorizeRequest,
        user: &User,
        auth_time: Millis,
    ) -> Result<String, EngineError> {
        if matches!(req.response_type, ResponseType::Code | ResponseType::CodeCredentials) {
            return self.issue_code(req, user, auth_time).await;
        }
        let mut scopes = req.scopes.clone();
        // Refresh tokens go only to callbacks that can keep them: custom schemes and
        // Valet's own success page, never plain web callbacks (salesforce-wire.md §3.4).
        let keeps_secrets = !(req.redirect_uri.starts_with("https://") || req.redirect_uri.starts_with("http://"))
            || req.redirect_uri.ends_with("/services/oauth2/success");
        if !keeps_secrets {
            scopes = scopes.without_refresh();
        }
        let with_id_token = req.response_type == ResponseType::TokenIdToken || scopes.contains("openid");
        let family = self.new_family(&req.app, user, scopes, "user_agent", None);
        // Salesforce signs the fragment's `id` + `issued_at` with the app's consumer secret,
        // which the browser never sent: use the app's newest secret.
        let secret = self.current_consumer_secret(&req.app).await?;
        let client = super::token::Client { app: req.app.clone(), secret };
        let issue = super::issue::Issue::new(&family, user, &client).with_refresh().nonce(req.nonce.as_deref());
        let mut resp = match self.issue_tokens(issue).await {
            Ok(r) => r,
            Err(super::token::TokenError::Fault(f)) => return Err(f),
            Err(super::token::TokenError::OAuth(o)) => return Err(EngineError::Internal(o.to_string())),
        };
        if req.response_type == ResponseType::HybridToken {
            self.add_hybrid_fields(&mut resp);
        }
        let owned = resp.pairs();
        let mut pairs: Vec<(&str, String)> = owned
            .iter()
            .filter(|(k, _)| with_id_token || k != "id_token")
            .map(|(k, v)| (k.as_ref(), v.clone()))
            .collect();
        if let Some(s) = &req.state {
            pairs.push(("state", s.clone()));
        }
        Ok(append_fragment(&req.redirect_uri, &pairs))
    }

    /// Issues an authorization code and returns the redirect URL carrying it (salesforce-wire.md §3.3).
    pub async fn issue_code(
        &self,
        req: &AuthorizeRequest,
        user: &User,
        auth_time: Millis,
    ) -> Result<String, EngineError> {
        let code = self.new_code(req, user, auth_time).await?;
        let mut pairs = vec![("code", code.expose().to_string())];
        if let Some(s) = &req.state {
            pairs.push(("state", s.clone()));
        }
        Ok(append_query(&req.redirect_uri, &pairs))
    }

    /// The headless Authorization Code and Credentials flow (salesforce-wire.md §4.8): the user's
    /// credentials arrive with the request, and the code is returned in the body.
    pub async fn code_credentials(
        &self,
        req: &AuthorizeRequest,
        username: &str,
        password: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Result<Secret, OAuthError>, EngineError> {
        let user = match self.login(username, password, client_ip).await? {
            Ok(u) if u.org_id == req.app.org_id => u,
            Err(super::resource::LoginFailure::Throttled { .. }) => return Ok(Err(OAuthError::rate_limit_exceeded())),
            _ => return Ok(Err(OAuthError::login_error())),
        };
        if !self.permitted(&req.app, &user).await? {
            return Ok(Err(OAuthError::invalid_app_access()));
        }
        self.remember_consent(req, &user).await?;
        Ok(Ok(self.new_code(req, &user, self.clock.now_ms()).await?))
    }

    async fn new_code(&self, req: &AuthorizeRequest, user: &User, auth_time: Millis) -> Result<Secret, EngineError> {
        let now = self.clock.now_ms();
        let code = secret::new_authorization_code(now, self.rng());
        let record = AuthCode {
            code_hash: code.hash(),
            org_id: user.org_id.clone(),
            app_id: req.app.id.clone(),
            user_id: user.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            code_challenge: req.code_challenge.as_ref().map(|(c, _)| c.clone()),
            code_challenge_method: req.code_challenge.as_ref().map(|(_, m)| *m),
            nonce: req.nonce.clone(),
            auth_time,
            created_at: now,
            expires_at: now + self.config.code_lifetime_ms,
            consumed_at: None,
            family_id: None,
        };
        self.store.insert_code(&record).await?;
        Ok(code)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    Granted,
    Ask,
    NotPermitted,
}

/// A protocol error, or a fault (storage down) that becomes a 500.
#[derive(Debug)]
pub enum AuthorizeErrorOrFault {
    Error(AuthorizeError),
    Fault(EngineError),
}

impl From<EngineError> for AuthorizeErrorOrFault {
    fn from(e: EngineError) -> Self {
        AuthorizeErrorOrFault::Fault(e)
    }
}

/// Appends parameters to a URI's query, keeping the query it already has (RFC 6749 §3.1.2).
pub fn append_query(uri: &str, pairs: &[(&str, String)]) -> String {
    let encoded = form_encode(pairs);
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{encoded}")
}

fn form_encode(pairs: &[(&str, String)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// Puts parameters in a URI's fragment (the user-agent flow and its errors).
pub fn append_fragment(uri: &str, pairs: &[(&str, String)]) -> String {
    let encoded = form_encode(pairs);
    format!("{uri}#{encoded}")
}

/// Whether `presented` is one of the app's callback URLs: an exact, byte-for-byte match (RFC
/// 9700 §4.1.3), or, for apps that opt in, the same loopback URL on another port (RFC 8252
/// §7.3): both `http`, both an IP literal of the loopback interface (never `localhost`, never a
/// userinfo part), path and query equal.
pub fn redirect_uri_registered(app: &App, presented: &str) -> bool {
    if app.callback_urls.iter().any(|u| secret::ct_eq_str(u, presented)) {
        return true;
    }
    if !app.policy.loopback_redirect_any_port {
        return false;
    }
    let Some(presented) = loopback_without_port(presented) else { return false };
    app.callback_urls.iter().filter_map(|u| loopback_without_port(u)).any(|u| u == presented)
}

/// A loopback `http` URL with its port removed, or `None` if the URL is anything else.
fn loopback_without_port(u: &str) -> Option<url::Url> {
    let mut parsed = url::Url::parse(u).ok()?;
    let loopback = match parsed.host()? {
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
        url::Host::Domain(_) => false,
    };
    let plain = parsed.scheme() == "http" && parsed.username().is_empty() && parsed.password().is_none();
    if !(loopback && plain) || parsed.fragment().is_some() {
        return None;
    }
    parsed.set_port(None).ok()?;
    Some(parsed)
}

/// The rest of an authorize request, once its client and redirect URI are trusted: every
/// error here goes back to the redirect URI.
fn trusted_request(
    p: &Params,
    app: App,
    org: Option<&Org>,
    redirect_uri: String,
    state: Option<String>,
    headless: bool,
    client_ip: Option<std::net::IpAddr>,
) -> Result<AuthorizeRequest, OAuthError> {
    for name in
        ["response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age"]
    {
        if p.get(name).is_err() {
            return Err(OAuthError::invalid_request(format!("{name} is repeated")));
        }
    }
    super::ip::check(&app.policy, client_ip, super::ip::IpCheck::Login)?;
    // Request objects are not supported: say so rather than ignore them (OIDC Core §6).
    if p.get_lenient("request").is_some() {
        return Err(OAuthError::request_not_supported());
    }
    if p.get_lenient("request_uri").is_some() {
        return Err(OAuthError::request_uri_not_supported());
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(OAuthError::invalid_request("state is too long"));
    }
    let response_type = response_type(p, headless)?;
    flow_enabled(&app, org, response_type)?;
    let scopes = match p.get_lenient("scope") {
        None => app.scopes.clone(),
        // Salesforce grants the requested scopes the app allows and drops the rest.
        Some(s) => ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?.intersect(&app.scopes),
    };
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("none of the requested scopes is allowed for this app"));
    }
    let nonce = p.get_lenient("nonce").map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }
    if response_type == ResponseType::TokenIdToken && nonce.is_none() {
        return Err(OAuthError::invalid_request("nonce is required for token id_token"));
    }
    let code_challenge = code_challenge(p)?;
    if code_challenge.is_none() && matches!(response_type, ResponseType::Code | ResponseType::CodeCredentials) {
        let org_requires = org.is_some_and(|o| o.settings.require_pkce);
        if app.policy.require_pkce || org_requires {
            return Err(OAuthError::invalid_request("code challenge required"));
        }
    }
    let max_age = match p.get_lenient("max_age") {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(secs) if secs >= 0 => Some(secs),
            _ => return Err(OAuthError::invalid_request("max_age must be a non-negative integer")),
        },
    };
    Ok(AuthorizeRequest {
        app,
        response_type,
        redirect_uri,
        scopes,
        state,
        nonce,
        code_challenge,
        prompt: prompt(p)?,
        immediate: p.get_lenient("immediate") == Some("true"),
        login_hint: p.get_lenient("login_hint").map(|s| s.chars().take(80).collect()),
        max_age,
    })
}

fn response_type(p: &Params, headless: bool) -> Result<ResponseType, OAuthError> {
    match p.get_lenient("response_type") {
        Some("code") => Ok(ResponseType::Code),
        Some("token") => Ok(ResponseType::Token),
        Some("token id_token") | Some("id_token token") => Ok(ResponseType::TokenIdToken),
        Some("hybrid_token") => Ok(ResponseType::HybridToken),
        // The headless flow's response type belongs to its POST only, never to a browser.
        Some("code_credentials") if headless => Ok(ResponseType::CodeCredentials),
        Some(_) => Err(OAuthError::unsupported_response_type()),
        None => Err(OAuthError::invalid_request("response_type must be provided")),
    }
}

/// The app's flow switches and the org's blocks for a response type.
fn flow_enabled(app: &App, org: Option<&Org>, response_type: ResponseType) -> Result<(), OAuthError> {
    let enabled = match response_type {
        ResponseType::Code => app.policy.enable_authorization_code_flow,
        ResponseType::CodeCredentials => {
            org.is_some_and(|o| o.settings.allow_code_credentials_flow) && app.policy.enable_code_credentials_flow
        }
        // Blocking the user-agent flow org-wide also blocks the hybrid token flow (salesforce-wire.md §8.6).
        ResponseType::Token | ResponseType::TokenIdToken | ResponseType::HybridToken => {
            org.is_none_or(|o| o.settings.allow_user_agent_flow) && app.policy.enable_user_agent_flow
        }
    };
    if enabled {
        Ok(())
    } else {
        Err(OAuthError::oauth_flow_disabled())
    }
}

fn code_challenge(p: &Params) -> Result<Option<(String, PkceMethod)>, OAuthError> {
    match (p.get_lenient("code_challenge"), p.get_lenient("code_challenge_method")) {
        (None, None) => Ok(None),
        (None, Some(_)) => {
            Err(OAuthError::invalid_request("code_challenge must be provided with code_challenge_method"))
        }
        // Salesforce clients never send the method; Salesforce assumes S256 (salesforce-wire.md §3.1).
        (Some(c), None) | (Some(c), Some("S256")) if is_s256_challenge(c) => {
            Ok(Some((c.to_string(), PkceMethod::S256)))
        }
        (Some(_), None) | (Some(_), Some("S256")) => {
            Err(OAuthError::invalid_request("code_challenge must be 43 base64url characters"))
        }
        (Some(c), Some("plain")) if is_verifier_shape(c) => Ok(Some((c.to_string(), PkceMethod::Plain))),
        (Some(_), Some("plain")) => Err(OAuthError::invalid_request("invalid code_challenge")),
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("unsupported code_challenge_method")),
    }
}

fn prompt(p: &Params) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    for part in p.get_lenient("prompt").unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        match part {
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "none" => prompt.none = true,
            "select_account" => {}
            _ => return Err(OAuthError::invalid_request("unsupported prompt value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
    }
    Ok(prompt)
}

fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// PKCE verifiers: unreserved characters; 43 to 256 long because jsforce and the sf CLI send
/// 171-character verifiers, above RFC 7636's 128 (salesforce-wire.md §3.1).
pub fn is_verifier_shape(v: &str) -> bool {
    (43..=256).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}
