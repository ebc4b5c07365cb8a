//! Logout: RP-initiated logout (OIDC RP-Initiated Logout 1.0), the apps' single logout URLs
//! (front-channel) and OIDC Back-Channel Logout 1.0 logout tokens.

use crate::model::{App, JwsAlg, User};

use super::{Engine, EngineError};

/// What an `id_token_hint` proved: which app asked, for which user.
#[derive(Debug, Clone)]
pub struct LogoutHint {
    pub app: App,
    pub subject: String,
}

/// The notifications a logout sends.
#[derive(Debug, Clone, Default)]
pub struct LogoutNotices {
    /// Single logout URLs for the browser to load (front-channel).
    pub front_channel: Vec<String>,
    /// (back-channel logout URL, signed logout token) pairs to POST.
    pub back_channel: Vec<(String, String)>,
}

impl Engine {
    /// Verifies an `id_token_hint`: our signature and issuer; an expired ID token is fine (it
    /// only names the session to end). `None` for anything else.
    pub async fn verify_id_token_hint(&self, hint: &str) -> Result<Option<LogoutHint>, EngineError> {
        if hint.len() > 8192 {
            return Ok(None);
        }
        let keys = self.keys();
        // ID tokens are RS256 only: an ES256 JWT (an access token) is never a hint.
        let Some(claims) = keys.all.iter().filter(|k| k.alg() == JwsAlg::Rs256).find_map(|k| k.verify_jwt(hint)) else {
            return Ok(None);
        };
        if claims.get("iss").and_then(|v| v.as_str()) != Some(self.config.issuer.as_str()) {
            return Ok(None);
        }
        let client_id = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a.clone(),
            Some(serde_json::Value::Array(v)) => match v.first().and_then(|x| x.as_str()) {
                Some(a) => a.to_string(),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let Some(app) = self.store.get_app_by_consumer_key(&client_id).await? else { return Ok(None) };
        let Some(subject) = claims.get("sub").and_then(|v| v.as_str()).map(str::to_string) else { return Ok(None) };
        Ok(Some(LogoutHint { app, subject }))
    }

    /// A post-logout redirect is allowed only to a URI registered for the app, compared exactly.
    pub fn post_logout_redirect_allowed(&self, app: &App, uri: &str) -> bool {
        app.policy.post_logout_redirect_uris.iter().any(|u| crate::secret::ct_eq_str(u, uri))
    }

    /// The apps to notify when `user` logs out: those holding live tokens of the user that
    /// have a single logout or back-channel logout URL.
    pub async fn logout_notices(&self, user: &User) -> Result<LogoutNotices, EngineError> {
        let mut notices = LogoutNotices::default();
        for app in self.store.list_apps(&user.org_id).await? {
            let (slo, bcl) = (&app.policy.single_logout_url, &app.policy.backchannel_logout_url);
            if slo.is_none() && bcl.is_none() {
                continue;
            }
            if !self.store.user_has_live_family(&user.id, &app.id, self.clock.now_ms()).await? {
                continue;
            }
            if let Some(u) = slo {
                notices.front_channel.push(u.clone());
            }
            if let Some(u) = bcl {
                notices.back_channel.push((u.clone(), self.logout_token(&app, user)?));
            }
        }
        Ok(notices)
    }

    /// A logout token (Back-Channel Logout 1.0 §2.4): no nonce, the back-channel event.
    fn logout_token(&self, app: &App, user: &User) -> Result<String, EngineError> {
        let now = self.clock.now_secs();
        let claims = serde_json::json!({
            "iss": self.config.issuer,
            "sub": self.identity_url(&user.org_id, &user.id),
            "aud": app.consumer_key,
            "iat": now,
            "exp": now + 120,
            "jti": crate::rand::alnum(self.rng(), 22),
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        let keys = self.keys();
        let header = serde_json::json!({"alg": "RS256", "typ": "logout+jwt", "kid": keys.active.kid});
        Ok(keys.active.sign_jwt_with_header(&header, &claims)?)
    }
}
