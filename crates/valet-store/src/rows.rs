//! Row decoding. Column lists live next to their decoders so a SELECT and the code reading it
//! cannot drift apart. A decoder reads a [`Cols`]: a row of sqlx's pool or of the SQLite read
//! connections (`sqlite_reader`), so each table has one decoder whichever way it was read.

use sqlx::any::AnyRow;
use sqlx::Row;
use valet_core::ids::SfId;
use valet_core::model::*;
use valet_core::scope::ScopeSet;
use valet_core::secret::TokenHash;
use valet_core::store::{StoreError, StoreResult};

/// A result row, by column name. NULL is `None`.
pub(crate) trait Cols {
    fn int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn text(&self, name: &str) -> StoreResult<Option<String>>;
    fn blob(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
}

fn col_err(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("reading column {name}: {e}"))
}

impl Cols for AnyRow {
    fn int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.try_get(name).map_err(|e| col_err(name, e))
    }
    fn text(&self, name: &str) -> StoreResult<Option<String>> {
        self.try_get(name).map_err(|e| col_err(name, e))
    }
    fn blob(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.try_get(name).map_err(|e| col_err(name, e))
    }
}

impl Cols for rusqlite::Row<'_> {
    fn int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.get(name).map_err(|e| col_err(name, e))
    }
    fn text(&self, name: &str) -> StoreResult<Option<String>> {
        self.get(name).map_err(|e| col_err(name, e))
    }
    fn blob(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.get(name).map_err(|e| col_err(name, e))
    }
}

/// The Rust types the schema's columns decode to.
pub(crate) trait ColValue: Sized {
    fn read(row: &dyn Cols, name: &str) -> StoreResult<Self>;
}

fn not_null<T>(v: Option<T>, name: &str) -> StoreResult<T> {
    v.ok_or_else(|| col_err(name, "unexpected NULL"))
}

impl ColValue for i64 {
    fn read(row: &dyn Cols, name: &str) -> StoreResult<i64> {
        not_null(row.int(name)?, name)
    }
}
impl ColValue for Option<i64> {
    fn read(row: &dyn Cols, name: &str) -> StoreResult<Option<i64>> {
        row.int(name)
    }
}
impl ColValue for String {
    fn read(row: &dyn Cols, name: &str) -> StoreResult<String> {
        not_null(row.text(name)?, name)
    }
}
impl ColValue for Option<String> {
    fn read(row: &dyn Cols, name: &str) -> StoreResult<Option<String>> {
        row.text(name)
    }
}
impl ColValue for Vec<u8> {
    fn read(row: &dyn Cols, name: &str) -> StoreResult<Vec<u8>> {
        not_null(row.blob(name)?, name)
    }
}
impl ColValue for Option<Vec<u8>> {
    fn read(row: &dyn Cols, name: &str) -> StoreResult<Option<Vec<u8>>> {
        row.blob(name)
    }
}

pub(crate) fn col<T: ColValue>(row: &dyn Cols, name: &str) -> StoreResult<T> {
    T::read(row, name)
}

/// Booleans are stored as 0/1 integers: `Any` decodes SQLite integers as bool unreliably and
/// PostgreSQL BOOLEAN not at all like SQLite, so both sides agree on BIGINT.
fn flag(row: &dyn Cols, name: &str) -> StoreResult<bool> {
    Ok(col::<i64>(row, name)? != 0)
}

pub(crate) fn id(row: &dyn Cols, name: &str) -> StoreResult<SfId> {
    stored_id(&col::<String>(row, name)?, name)
}

/// An id column's value; a damaged one is an error, never a panic.
fn stored_id(s: &str, column: &str) -> StoreResult<SfId> {
    SfId::from_trusted(s).map_err(|_| StoreError::Backend(format!("malformed id in column {column}")))
}

fn hash(row: &dyn Cols, name: &str) -> StoreResult<TokenHash> {
    Ok(TokenHash::from_stored(col(row, name)?))
}

fn scopes(row: &dyn Cols, name: &str) -> StoreResult<ScopeSet> {
    Ok(ScopeSet::from_stored(&col::<String>(row, name)?))
}

fn json<T: serde::de::DeserializeOwned>(row: &dyn Cols, name: &str) -> StoreResult<T> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Backend(format!("column {name} holds invalid JSON: {e}")))
}

/// Settings objects written by Valet: keys added by a newer version are tolerated.
fn stored_json<T: serde::de::DeserializeOwned + serde::Serialize + Default>(
    row: &dyn Cols,
    name: &str,
) -> StoreResult<T> {
    let text: String = col(row, name)?;
    valet_core::model::from_stored_json(&text)
        .map_err(|e| StoreError::Backend(format!("column {name} holds invalid JSON: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))
}

pub(crate) fn bool_int(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) const ORG_COLS: &str = "id, name, settings, created_at";

pub(crate) fn org(row: &dyn Cols) -> StoreResult<Org> {
    Ok(Org {
        id: id(row, "id")?,
        name: col(row, "name")?,
        settings: stored_json(row, "settings")?,
        created_at: col(row, "created_at")?,
    })
}

pub(crate) const USER_COLS: &str = "id, org_id, username, email, first_name, last_name, password_hash, active, \
     is_admin, timezone, locale, language, created_at, updated_at";

pub(crate) fn user(row: &dyn Cols) -> StoreResult<User> {
    Ok(User {
        id: id(row, "id")?,
        org_id: id(row, "org_id")?,
        username: col(row, "username")?,
        email: col(row, "email")?,
        first_name: col(row, "first_name")?,
        last_name: col(row, "last_name")?,
        password_hash: col(row, "password_hash")?,
        active: flag(row, "active")?,
        is_admin: flag(row, "is_admin")?,
        timezone: col(row, "timezone")?,
        locale: col(row, "locale")?,
        language: col(row, "language")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub(crate) const APP_COLS: &str =
    "id, org_id, name, consumer_key, previous_consumer_key, is_public, callback_urls, scopes, policy, created_at, updated_at";

pub(crate) fn app(row: &dyn Cols) -> StoreResult<App> {
    Ok(App {
        id: id(row, "id")?,
        org_id: id(row, "org_id")?,
        name: col(row, "name")?,
        consumer_key: col(row, "consumer_key")?,
        previous_consumer_key: col(row, "previous_consumer_key")?,
        is_public: flag(row, "is_public")?,
        callback_urls: json(row, "callback_urls")?,
        scopes: scopes(row, "scopes")?,
        policy: stored_json(row, "policy")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub(crate) const APP_SECRET_COLS: &str = "id, app_id, secret_hash, secret_sealed, created_at, retired_at";

pub(crate) fn app_secret(row: &dyn Cols) -> StoreResult<AppSecret> {
    Ok(AppSecret {
        id: col(row, "id")?,
        app_id: id(row, "app_id")?,
        secret_hash: hash(row, "secret_hash")?,
        secret_sealed: col::<Option<Vec<u8>>>(row, "secret_sealed")?.unwrap_or_default(),
        created_at: col(row, "created_at")?,
        retired_at: col(row, "retired_at")?,
    })
}

pub(crate) const CONSENT_COLS: &str = "user_id, app_id, scopes, created_at";

pub(crate) fn consent(row: &dyn Cols) -> StoreResult<Consent> {
    Ok(Consent {
        user_id: id(row, "user_id")?,
        app_id: id(row, "app_id")?,
        scopes: scopes(row, "scopes")?,
        created_at: col(row, "created_at")?,
    })
}

pub(crate) const CODE_COLS: &str = "code_hash, org_id, app_id, user_id, redirect_uri, scopes, code_challenge, \
     code_challenge_method, nonce, auth_time, created_at, expires_at, consumed_at, family_id";

pub(crate) fn auth_code(row: &dyn Cols) -> StoreResult<AuthCode> {
    let method: Option<String> = col(row, "code_challenge_method")?;
    let code_challenge_method = match method {
        None => None,
        Some(m) => Some(
            PkceMethod::from_stored(&m)
                .ok_or_else(|| StoreError::Backend("unknown code_challenge_method in auth_codes".into()))?,
        ),
    };
    Ok(AuthCode {
        code_hash: hash(row, "code_hash")?,
        org_id: id(row, "org_id")?,
        app_id: id(row, "app_id")?,
        user_id: id(row, "user_id")?,
        redirect_uri: col(row, "redirect_uri")?,
        scopes: scopes(row, "scopes")?,
        code_challenge: col(row, "code_challenge")?,
        code_challenge_method,
        nonce: col(row, "nonce")?,
        auth_time: col(row, "auth_time")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
        consumed_at: col(row, "consumed_at")?,
        family_id: col(row, "family_id")?,
    })
}

pub(crate) const FAMILY_COLS: &str =
    "id, org_id, app_id, user_id, scopes, grant_type, auth_time, created_at, revoked_at";

pub(crate) fn family(row: &dyn Cols) -> StoreResult<TokenFamily> {
    Ok(TokenFamily {
        id: col(row, "id")?,
        org_id: id(row, "org_id")?,
        app_id: id(row, "app_id")?,
        user_id: id(row, "user_id")?,
        scopes: scopes(row, "scopes")?,
        grant: col(row, "grant_type")?,
        auth_time: col(row, "auth_time")?,
        created_at: col(row, "created_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

/// [`FAMILY_COLS`] of `token_families f`, each as `f_<name>` (read through [`Prefixed`]), for a
/// read that returns a token and its family in one row.
pub(crate) const FAMILY_COLS_AS_F: &str = "f.id AS f_id, f.org_id AS f_org_id, f.app_id AS f_app_id, f.user_id AS f_user_id, \
     f.scopes AS f_scopes, f.grant_type AS f_grant_type, f.auth_time AS f_auth_time, f.created_at AS f_created_at, f.revoked_at AS f_revoked_at";

/// A row's columns named `<prefix><name>`, read by `<name>`: one decoder serves a table's own
/// rows and its columns inside a join.
pub(crate) struct Prefixed<'a>(pub &'a dyn Cols, pub &'static str);

impl Cols for Prefixed<'_> {
    fn int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.0.int(&format!("{}{name}", self.1))
    }
    fn text(&self, name: &str) -> StoreResult<Option<String>> {
        self.0.text(&format!("{}{name}", self.1))
    }
    fn blob(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.0.blob(&format!("{}{name}", self.1))
    }
}

/// Selected from `access_tokens t LEFT JOIN token_families f`: the family's revocation is
/// folded into `revoked_at` so that no caller can forget to check the family.
pub(crate) const ACCESS_COLS_FOLDED: &str = "t.token_hash, t.family_id, t.org_id, t.app_id, t.user_id, t.scopes, \
     t.created_at, t.expires_at, COALESCE(t.revoked_at, f.revoked_at) AS revoked_at";

pub(crate) fn access_token(row: &dyn Cols) -> StoreResult<AccessToken> {
    Ok(AccessToken {
        token_hash: hash(row, "token_hash")?,
        family_id: col(row, "family_id")?,
        org_id: id(row, "org_id")?,
        app_id: id(row, "app_id")?,
        user_id: id(row, "user_id")?,
        scopes: scopes(row, "scopes")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

/// As [`ACCESS_COLS_FOLDED`], for `refresh_tokens t`.
pub(crate) const REFRESH_COLS_FOLDED: &str = "t.token_hash, t.family_id, t.org_id, t.app_id, t.user_id, t.scopes, \
     t.created_at, t.last_used_at, t.expires_at, COALESCE(t.revoked_at, f.revoked_at) AS revoked_at, t.replaced_by, t.successor_sealed";

pub(crate) fn refresh_token(row: &dyn Cols) -> StoreResult<RefreshToken> {
    let replaced_by: Option<String> = col(row, "replaced_by")?;
    Ok(RefreshToken {
        token_hash: hash(row, "token_hash")?,
        family_id: col(row, "family_id")?,
        org_id: id(row, "org_id")?,
        app_id: id(row, "app_id")?,
        user_id: id(row, "user_id")?,
        scopes: scopes(row, "scopes")?,
        created_at: col(row, "created_at")?,
        last_used_at: col(row, "last_used_at")?,
        expires_at: col(row, "expires_at")?,
        revoked_at: col(row, "revoked_at")?,
        replaced_by: replaced_by.map(TokenHash::from_stored),
        successor_sealed: col(row, "successor_sealed")?,
    })
}

/// A refresh token ([`REFRESH_COLS_FOLDED`]) and its family ([`FAMILY_COLS_AS_F`]; `None` when
/// the join found none) from one row.
pub(crate) fn refresh_token_and_family(row: &dyn Cols) -> StoreResult<(RefreshToken, Option<TokenFamily>)> {
    let token = refresh_token(row)?;
    let f = Prefixed(row, "f_");
    let family = if f.text("id")?.is_some() { Some(family(&f)?) } else { None };
    Ok((token, family))
}

pub(crate) const SESSION_COLS: &str = "id_hash, org_id, user_id, auth_time, created_at, expires_at";

pub(crate) fn session(row: &dyn Cols) -> StoreResult<Session> {
    Ok(Session {
        id_hash: hash(row, "id_hash")?,
        org_id: id(row, "org_id")?,
        user_id: id(row, "user_id")?,
        auth_time: col(row, "auth_time")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

pub(crate) const SIGNING_KEY_COLS: &str = "kid, alg, private_der_encrypted, created_at, active";

pub(crate) fn signing_key(row: &dyn Cols) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: col(row, "kid")?,
        alg: col(row, "alg")?,
        private_der_encrypted: col(row, "private_der_encrypted")?,
        created_at: col(row, "created_at")?,
        active: flag(row, "active")?,
    })
}

pub(crate) const DEVICE_COLS: &str = "device_code_hash, user_code_hash, org_id, app_id, scopes, status, user_id, \
     interval_secs, last_polled_at, created_at, expires_at";

pub(crate) fn device_code(row: &dyn Cols) -> StoreResult<DeviceCode> {
    let status: String = col(row, "status")?;
    let user: Option<String> = col(row, "user_id")?;
    Ok(DeviceCode {
        device_code_hash: hash(row, "device_code_hash")?,
        user_code_hash: hash(row, "user_code_hash")?,
        org_id: id(row, "org_id")?,
        app_id: id(row, "app_id")?,
        scopes: scopes(row, "scopes")?,
        status: DeviceStatus::from_stored(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown device status {status}")))?,
        user_id: user.as_deref().map(|u| stored_id(u, "user_id")).transpose()?,
        interval_secs: col(row, "interval_secs")?,
        last_polled_at: col(row, "last_polled_at")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

pub(crate) fn permission_set(row: &dyn Cols) -> StoreResult<PermissionSet> {
    Ok(PermissionSet {
        id: id(row, "id")?,
        org_id: id(row, "org_id")?,
        name: col(row, "name")?,
        label: col(row, "label")?,
        created_at: col(row, "created_at")?,
    })
}

pub(crate) fn custom_permission(row: &dyn Cols) -> StoreResult<CustomPermission> {
    Ok(CustomPermission {
        id: id(row, "id")?,
        org_id: id(row, "org_id")?,
        name: col(row, "name")?,
        label: col(row, "label")?,
        description: col(row, "description")?,
        created_at: col(row, "created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The aliased list names every family column, in order.
    #[test]
    fn family_cols_as_f_follow_family_cols() {
        let made: Vec<String> = FAMILY_COLS.split(", ").map(|c| format!("f.{c} AS f_{c}")).collect();
        let listed: Vec<&str> = FAMILY_COLS_AS_F.split(", ").map(str::trim).collect();
        assert_eq!(listed, made);
    }
}
