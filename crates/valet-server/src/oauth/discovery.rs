//! `/.well-known/openid-configuration` and `/id/keys` (salesforce-wire.md §6.5, §6.6).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use valet_core::scope::KNOWN_SCOPES;
use valet_proto::oidc::Discovery;

use crate::http;
use crate::AppState;

pub fn discovery_document(issuer: &str) -> Discovery {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Discovery {
        issuer: issuer.to_string(),
        authorization_endpoint: format!("{issuer}/services/oauth2/authorize"),
        token_endpoint: format!("{issuer}/services/oauth2/token"),
        revocation_endpoint: format!("{issuer}/services/oauth2/revoke"),
        userinfo_endpoint: format!("{issuer}/services/oauth2/userinfo"),
        jwks_uri: format!("{issuer}/id/keys"),
        introspection_endpoint: format!("{issuer}/services/oauth2/introspect"),
        registration_endpoint: format!("{issuer}/services/oauth2/register"),
        end_session_endpoint: format!("{issuer}/services/auth/idp/oidc/logout"),
        scopes_supported: KNOWN_SCOPES.iter().map(|(k, _)| k.to_string()).collect(),
        response_types_supported: s(&["code", "token", "token id_token"]),
        grant_types_supported: s(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ]),
        device_authorization_endpoint: format!("{issuer}/services/oauth2/device_authorization"),
        subject_types_supported: s(&["public"]),
        id_token_signing_alg_values_supported: s(&["RS256"]),
        display_values_supported: s(&["page", "popup", "touch"]),
        token_endpoint_auth_methods_supported: s(&[
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
            "client_secret_jwt",
        ]),
        code_challenge_methods_supported: s(&["S256", "plain"]),
        claims_supported: s(&[
            "active",
            "address",
            "email",
            "email_verified",
            "family_name",
            "given_name",
            "is_app_installed",
            "language",
            "locale",
            "name",
            "nickname",
            "organization_id",
            "phone_number",
            "phone_number_verified",
            "photos",
            "picture",
            "preferred_username",
            "profile",
            "sub",
            "updated_at",
            "urls",
            "user_id",
            "user_type",
            "zoneinfo",
        ]),
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: false,
        frontchannel_logout_supported: true,
        frontchannel_logout_session_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
    }
}

pub async fn discovery(State(state): State<AppState>) -> Response {
    http::json(StatusCode::OK, &discovery_document(&state.engine.config().issuer))
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    http::json(StatusCode::OK, &state.engine.keys().jwks())
}
