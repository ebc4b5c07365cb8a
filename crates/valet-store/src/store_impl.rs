//! `Store` for [`SqlStore`]. Every statement here runs unchanged on SQLite and PostgreSQL.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::Row;
use valet_core::clock::Millis;
use valet_core::ids::SfId;
use valet_core::model::*;
use valet_core::scope::ScopeSet;
use valet_core::secret::TokenHash;
use valet_core::store::{AppPatch, Issuance, Store, StoreError, StoreResult, SweepReport, UserPatch};

use crate::rows::{self, bool_int, to_json, Cols};
use crate::sqlite_reader::{self, SqliteReader};
use crate::{
    db_err, foreign_key_violation, sqlite_writer, tokens, transient, unique_violation, write_err, Backend, SqlStore,
};

/// Revoked refresh tokens are kept this long so that a replayed (rotated-away) token is still
/// recognised as a replay, and its family revoked, rather than being an unknown token.
const REVOKED_REFRESH_RETENTION_MS: i64 = 86_400_000;

/// A family with no tokens left is removed once it is older than this (or was revoked longer
/// than [`REVOKED_REFRESH_RETENTION_MS`] ago). Nothing stored refers to it by then, but
/// self-contained credentials minted from it (JWT access tokens, at most 30 minutes; ID
/// tokens, at most 12 hours) may still be checked against it, and a family is created a
/// moment before its first token. A week is far beyond all of those.
const IDLE_FAMILY_RETENTION_MS: i64 = 7 * 86_400_000;

/// Bumps the change counter inside the caller's transaction, so another process that sees the
/// new value is guaranteed to also see the change.
async fn bump_changes(conn: &mut AnyConnection) -> StoreResult<()> {
    sqlx::query(BUMP_CHANGES).execute(conn).await.map_err(db_err)?;
    Ok(())
}

const BUMP_CHANGES: &str = "UPDATE meta SET value = value + 1 WHERE key = 'changes'";

/// Stores a code; shared by the pooled path and the SQLite writer (SQLite numbers `$N`
/// parameters in order of appearance, which here is their numeric order).
pub(crate) const INSERT_CODE: &str =
    "INSERT INTO auth_codes (code_hash, org_id, app_id, user_id, redirect_uri, scopes, code_challenge, \
     code_challenge_method, nonce, auth_time, created_at, expires_at, consumed_at, family_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// Consumes a code for a family: the conditional UPDATE is the whole race (see `consume_code`).
pub(crate) const CONSUME_CODE: &str =
    "UPDATE auth_codes SET consumed_at = $1, family_id = $2 WHERE code_hash = $3 AND consumed_at IS NULL";

/// PostgreSQL: a code consumed and its family stored in one statement (one round trip, one
/// commit instead of four). The family row goes in only when the conditional UPDATE won, and a
/// failing INSERT undoes the UPDATE (a statement is atomic). `auth_codes.family_id` has no
/// foreign key, so the order inside the statement does not matter. The app's row is locked
/// (`FOR KEY SHARE`, as the family's foreign key would) before the code's, the order
/// `delete_app` locks them in; an app deleted meanwhile leaves nothing to lock, and the code
/// is not consumed.
const CONSUME_CODE_WITH_FAMILY_PG: &str = "WITH won AS (UPDATE auth_codes SET consumed_at = $1, family_id = $2 \
     WHERE code_hash = $3 AND consumed_at IS NULL \
     AND EXISTS (SELECT 1 FROM apps WHERE id = $5 FOR KEY SHARE) RETURNING 1) \
     INSERT INTO token_families (id, org_id, app_id, user_id, scopes, grant_type, auth_time, created_at, revoked_at) \
     SELECT $2::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::bigint, $10::bigint, $11::bigint FROM won";

fn found(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn change_counter(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'changes'")
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => rows::col(&row, "value"),
            None => Err(StoreError::Backend("meta row 'changes' is missing; run migrations".into())),
        }
    }

    // ---- Orgs ----

    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO orgs (id, name, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(org.id.as_str())
            .bind(org.name.as_str())
            .bind(to_json(&org.settings)?)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| write_err(e, "org"))?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn default_org(&self) -> StoreResult<Option<Org>> {
        let sql = format!("SELECT {} FROM orgs ORDER BY created_at, id LIMIT 1", rows::ORG_COLS);
        let row = sqlx::query(&sql).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(|r| rows::org(r)).transpose()
    }

    async fn get_org(&self, id: &SfId) -> StoreResult<Option<Org>> {
        let sql = format!("SELECT {} FROM orgs WHERE id = $1", rows::ORG_COLS);
        self.fetch_opt(&sql, id.as_str(), rows::org).await
    }

    async fn update_org_settings(&self, id: &SfId, settings: &OrgSettings, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE orgs SET settings = $1, updated_at = $2 WHERE id = $3")
            .bind(to_json(settings)?)
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    // ---- Users ----

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, org_id, username, username_lower, email, first_name, last_name, \
             password_hash, active, is_admin, timezone, locale, language, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(user.id.as_str())
        .bind(user.org_id.as_str())
        .bind(user.username.as_str())
        .bind(user.username.to_lowercase())
        .bind(user.email.as_str())
        .bind(user.first_name.as_str())
        .bind(user.last_name.as_str())
        .bind(user.password_hash.as_str())
        .bind(bool_int(user.active))
        .bind(bool_int(user.is_admin))
        .bind(user.timezone.as_str())
        .bind(user.locale.as_str())
        .bind(user.language.as_str())
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(c) if c.contains("username") => StoreError::Conflict("username".into()),
            Some(_) => StoreError::Conflict("user id".into()),
            None => db_err(e),
        })?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_user(&self, id: &SfId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {} FROM users WHERE id = $1", rows::USER_COLS);
        self.fetch_opt(&sql, id.as_str(), rows::user).await
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {} FROM users WHERE username_lower = $1", rows::USER_COLS);
        self.fetch_opt(&sql, &username.to_lowercase(), rows::user).await
    }

    async fn list_users(&self, org_id: &SfId) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {} FROM users WHERE org_id = $1 ORDER BY username_lower", rows::USER_COLS);
        let all = sqlx::query(&sql).bind(org_id.as_str()).fetch_all(&self.pool).await.map_err(db_err)?;
        all.iter().map(|r| rows::user(r)).collect()
    }

    async fn update_user(&self, id: &SfId, patch: &UserPatch, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // COALESCE keeps one statement for every combination of patched fields.
        let done = sqlx::query(
            "UPDATE users SET email = COALESCE($1, email), first_name = COALESCE($2, first_name), \
             last_name = COALESCE($3, last_name), password_hash = COALESCE($4, password_hash), \
             active = COALESCE($5, active), is_admin = COALESCE($6, is_admin), updated_at = $7 \
             WHERE id = $8",
        )
        .bind(patch.email.as_deref())
        .bind(patch.first_name.as_deref())
        .bind(patch.last_name.as_deref())
        .bind(patch.password_hash.as_deref())
        .bind(patch.active.map(bool_int))
        .bind(patch.is_admin.map(bool_int))
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    // ---- Apps ----

    async fn insert_app(&self, app: &App) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO apps (id, org_id, name, consumer_key, is_public, callback_urls, scopes, policy, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(app.id.as_str())
        .bind(app.org_id.as_str())
        .bind(app.name.as_str())
        .bind(app.consumer_key.as_str())
        .bind(bool_int(app.is_public))
        .bind(to_json(&app.callback_urls)?)
        .bind(app.scopes.to_string())
        .bind(to_json(&app.policy)?)
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(c) if c.contains("consumer_key") => StoreError::Conflict("consumer key".into()),
            Some(_) => StoreError::Conflict("app id".into()),
            None => db_err(e),
        })?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_app(&self, id: &SfId) -> StoreResult<Option<App>> {
        let sql = format!("SELECT {} FROM apps WHERE id = $1", rows::APP_COLS);
        self.fetch_opt(&sql, id.as_str(), rows::app).await
    }

    async fn get_app_by_consumer_key(&self, key: &str) -> StoreResult<Option<App>> {
        let sql = format!("SELECT {} FROM apps WHERE consumer_key = $1 OR previous_consumer_key = $1", rows::APP_COLS);
        self.fetch_opt(&sql, key, rows::app).await
    }

    async fn list_apps(&self, org_id: &SfId) -> StoreResult<Vec<App>> {
        let sql = format!("SELECT {} FROM apps WHERE org_id = $1 ORDER BY created_at, id", rows::APP_COLS);
        let all = sqlx::query(&sql).bind(org_id.as_str()).fetch_all(&self.pool).await.map_err(db_err)?;
        all.iter().map(|r| rows::app(r)).collect()
    }

    async fn update_app(&self, id: &SfId, patch: &AppPatch, now: Millis) -> StoreResult<()> {
        let callback_urls = patch.callback_urls.as_ref().map(to_json).transpose()?;
        let policy = patch.policy.as_ref().map(to_json).transpose()?;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE apps SET name = COALESCE($1, name), callback_urls = COALESCE($2, callback_urls), \
             scopes = COALESCE($3, scopes), policy = COALESCE($4, policy), \
             is_public = COALESCE($5, is_public), updated_at = $6 WHERE id = $7",
        )
        .bind(patch.name.as_deref())
        .bind(callback_urls)
        .bind(patch.scopes.as_ref().map(ScopeSet::to_string))
        .bind(policy)
        .bind(patch.is_public.map(bool_int))
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_app(&self, id: &SfId) -> StoreResult<()> {
        // The locks make the delete wait for issuances in flight instead of deadlocking with
        // them; a retry covers any other writer that locks in another order (a deadlock
        // victim, or a token that still got in), so the delete wins rather than failing.
        let mut attempt = 1;
        loop {
            match self.delete_app_once(id).await {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(StoreError::NotFound),
                Err(e) if attempt < DELETE_APP_ATTEMPTS && (transient(&e) || foreign_key_violation(&e)) => {
                    tracing::warn!(error = %e, attempt, "deleting an app raced other writes; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(db_err(e)),
            }
        }
    }

    async fn rotate_consumer_key(&self, app_id: &SfId, new_key: &str, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE apps SET previous_consumer_key = consumer_key, consumer_key = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(new_key)
        .bind(now)
        .bind(app_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| write_err(e, "consumer key"))?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn retire_previous_consumer_key(&self, app_id: &SfId, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE apps SET previous_consumer_key = NULL, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(app_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    // ---- Consumer secrets ----

    async fn insert_app_secret(&self, app_id: &SfId, hash: &TokenHash, sealed: &[u8], now: Millis) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("INSERT INTO app_secrets (app_id, secret_hash, secret_sealed, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(app_id.as_str())
            .bind(hash.as_str())
            .bind(sealed)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(id)
    }

    async fn live_app_secrets(&self, app_id: &SfId) -> StoreResult<Vec<AppSecret>> {
        let sql = format!(
            "SELECT {} FROM app_secrets WHERE app_id = $1 AND retired_at IS NULL ORDER BY created_at DESC, id DESC",
            rows::APP_SECRET_COLS
        );
        let all = sqlx::query(&sql).bind(app_id.as_str()).fetch_all(&self.pool).await.map_err(db_err)?;
        all.iter().map(|r| rows::app_secret(r)).collect()
    }

    async fn retire_app_secrets_except(&self, app_id: &SfId, keep: i64, now: Millis) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE app_secrets SET retired_at = $1 WHERE app_id = $2 AND id <> $3 AND retired_at IS NULL")
                .bind(now)
                .bind(app_id.as_str())
                .bind(keep)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        let n = done.rows_affected();
        if n > 0 {
            bump_changes(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(n)
    }

    // ---- Consents ----

    async fn get_consent(&self, user_id: &SfId, app_id: &SfId) -> StoreResult<Option<Consent>> {
        let sql = format!("SELECT {} FROM consents WHERE user_id = $1 AND app_id = $2", rows::CONSENT_COLS);
        let row = sqlx::query(&sql)
            .bind(user_id.as_str())
            .bind(app_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(|r| rows::consent(r)).transpose()
    }

    async fn upsert_consent(&self, consent: &Consent) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO consents (user_id, app_id, scopes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, app_id) DO UPDATE SET scopes = excluded.scopes, created_at = excluded.created_at",
        )
        .bind(consent.user_id.as_str())
        .bind(consent.app_id.as_str())
        .bind(consent.scopes.to_string())
        .bind(consent.created_at)
        .execute(&mut *tx)
        .await
        // Unique violations cannot happen (the upsert); a vanished user or app is NotFound.
        .map_err(|e| write_err(e, "consent"))?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_consent(&self, user_id: &SfId, app_id: &SfId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND app_id = $2")
            .bind(user_id.as_str())
            .bind(app_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() > 0 {
            bump_changes(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    // ---- Authorization codes ----

    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()> {
        let owned = code.clone();
        if let Some(done) = self.tokens.on_sqlite_writer(move |c| sqlite_writer::insert_code(c, &owned)).await {
            return done;
        }
        sqlx::query(INSERT_CODE)
            .bind(code.code_hash.as_str())
            .bind(code.org_id.as_str())
            .bind(code.app_id.as_str())
            .bind(code.user_id.as_str())
            .bind(code.redirect_uri.as_str())
            .bind(code.scopes.to_string())
            .bind(code.code_challenge.as_deref())
            .bind(code.code_challenge_method.map(PkceMethod::as_str))
            .bind(code.nonce.as_deref())
            .bind(code.auth_time)
            .bind(code.created_at)
            .bind(code.expires_at)
            .bind(code.consumed_at)
            .bind(code.family_id.as_deref())
            .execute(&self.pool)
            .await
            .map_err(|e| write_err(e, "authorization code"))?;
        Ok(())
    }

    async fn get_code(&self, hash: &TokenHash) -> StoreResult<Option<AuthCode>> {
        let sql = format!("SELECT {} FROM auth_codes WHERE code_hash IN ($1, $2)", rows::CODE_COLS);
        self.fetch_by_token_key(&sql, hash, rows::auth_code).await
    }

    async fn consume_code(&self, hash: &TokenHash, family: &TokenFamily, now: Millis) -> StoreResult<bool> {
        // The family goes in first (in the same transaction) so that whoever sees the code
        // consumed can always find the family to revoke it on a replay. The conditional UPDATE
        // is the whole race: PostgreSQL re-checks `consumed_at IS NULL` after waiting for a
        // concurrent writer's row lock, and SQLite runs writers one at a time, so exactly one
        // caller sees a row affected; the others roll their family back.
        let (owned_hash, owned_family) = (hash.clone(), family.clone());
        if let Some(done) =
            self.tokens.on_sqlite_writer(move |c| sqlite_writer::consume_code(c, &owned_hash, &owned_family, now)).await
        {
            return done;
        }
        if self.backend == Backend::Postgres {
            let done = sqlx::query(CONSUME_CODE_WITH_FAMILY_PG)
                .bind(now)
                .bind(family.id.as_str())
                .bind(hash.as_str())
                .bind(family.org_id.as_str())
                .bind(family.app_id.as_str())
                .bind(family.user_id.as_str())
                .bind(family.scopes.to_string())
                .bind(family.grant.as_str())
                .bind(family.auth_time)
                .bind(family.created_at)
                .bind(family.revoked_at)
                .execute(&self.pool)
                .await
                .map_err(|e| write_err(e, "token family"))?;
            return Ok(done.rows_affected() == 1);
        }
        let mut tx = self.begin_write().await?;
        tokens::FAMILIES.insert(&mut tx, self.backend, &[family]).await?;
        let done = sqlx::query(CONSUME_CODE)
            .bind(now)
            .bind(family.id.as_str())
            .bind(hash.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(db_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    // ---- Token families, access and refresh tokens ----

    async fn insert_family(&self, family: &TokenFamily) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        tokens::FAMILIES.insert(&mut conn, self.backend, &[family]).await
    }

    async fn get_family(&self, id: &str) -> StoreResult<Option<TokenFamily>> {
        let sql = format!("SELECT {} FROM token_families WHERE id = $1", rows::FAMILY_COLS);
        self.fetch_opt(&sql, id, rows::family).await
    }

    async fn revoke_family(&self, id: &str, now: Millis) -> StoreResult<()> {
        // The token rows are marked too (not only the family) so that the sweeper's "revoked a
        // day ago" rule and any direct reader see the revocation; reads fold the family in
        // anyway, which covers a token inserted concurrently with this transaction.
        const STATEMENTS: &[&str] = &[
            "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            "UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        ];
        let mut tx = self.begin_write().await?;
        for sql in STATEMENTS {
            sqlx::query(sql).bind(now).bind(id).execute(&mut *tx).await.map_err(db_err)?;
        }
        // Revocations bump the change counter so that other processes drop cached tokens.
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn insert_access_token(&self, token: &AccessToken) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        tokens::ACCESS_TOKENS.insert(&mut conn, self.backend, &[token]).await
    }

    async fn store_issuance(&self, issuance: Issuance) -> StoreResult<()> {
        self.tokens.submit(issuance).await
    }

    async fn get_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>> {
        let sql = format!(
            "SELECT {} FROM access_tokens t LEFT JOIN token_families f ON f.id = t.family_id WHERE t.token_hash IN ($1, $2)",
            rows::ACCESS_COLS_FOLDED
        );
        self.fetch_by_token_key(&sql, hash, rows::access_token).await
    }

    async fn revoke_access_token(&self, hash: &TokenHash, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(hash.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        tokens::REFRESH_TOKENS.insert(&mut conn, self.backend, &[token]).await
    }

    async fn get_refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        let sql = format!(
            "SELECT {} FROM refresh_tokens t LEFT JOIN token_families f ON f.id = t.family_id WHERE t.token_hash IN ($1, $2)",
            rows::REFRESH_COLS_FOLDED
        );
        self.fetch_by_token_key(&sql, hash, rows::refresh_token).await
    }

    async fn get_refresh_token_and_family(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<(RefreshToken, Option<TokenFamily>)>> {
        let sql = format!(
            "SELECT {}, {} FROM refresh_tokens t LEFT JOIN token_families f ON f.id = t.family_id WHERE t.token_hash IN ($1, $2)",
            rows::REFRESH_COLS_FOLDED,
            rows::FAMILY_COLS_AS_F
        );
        self.fetch_by_token_key(&sql, hash, rows::refresh_token_and_family).await
    }

    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        new: &RefreshToken,
        successor_sealed: &[u8],
        now: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // The successor goes in first: on PostgreSQL its foreign key locks the family before
        // the UPDATE locks the old token, the order `delete_app` locks them in (the other
        // order deadlocks with it). The family gone (its app deleted) is `NotFound`.
        tokens::REFRESH_TOKENS.insert(&mut tx, self.backend, &[new]).await?;
        // The conditional UPDATE picks the single winner (as in `consume_code`); the family
        // check refuses rotation of a token whose family was revoked after it was inserted.
        let done = sqlx::query(
            "UPDATE refresh_tokens SET replaced_by = $1, revoked_at = $2, successor_sealed = $3 \
             WHERE token_hash = $4 AND replaced_by IS NULL AND revoked_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM token_families f \
                             WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NOT NULL)",
        )
        .bind(new.token_hash.as_str())
        .bind(now)
        .bind(successor_sealed)
        .bind(old.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() != 1 {
            // Another request rotated it first: its successor is not stored either.
            tx.rollback().await.map_err(db_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn revoke_user_families(&self, user_id: &SfId, app_id: Option<&SfId>, now: Millis) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let mut families = 0;
        let statements = if app_id.is_some() { REVOKE_ONE_APP } else { REVOKE_ALL_APPS };
        for (i, sql) in statements.iter().enumerate() {
            let mut q = sqlx::query(sql).bind(now).bind(user_id.as_str());
            if let Some(app_id) = app_id {
                q = q.bind(app_id.as_str());
            }
            let done = q.execute(&mut *tx).await.map_err(db_err)?;
            if i == 0 {
                families = done.rows_affected();
            }
        }
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(families)
    }

    // ---- Browser sessions ----

    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, org_id, user_id, auth_time, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.id_hash.as_str())
        .bind(session.org_id.as_str())
        .bind(session.user_id.as_str())
        .bind(session.auth_time)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| write_err(e, "session"))?;
        Ok(())
    }

    async fn get_session(&self, id_hash: &TokenHash) -> StoreResult<Option<Session>> {
        let sql = format!("SELECT {} FROM sessions WHERE id_hash = $1", rows::SESSION_COLS);
        self.fetch_opt(&sql, id_hash.as_str(), rows::session).await
    }

    async fn delete_session(&self, id_hash: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: &SfId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    // ---- Signing keys ----

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der_encrypted, created_at, active) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.private_der_encrypted.as_slice())
        .bind(key.created_at)
        .bind(bool_int(key.active))
        .execute(&self.pool)
        .await
        .map_err(|e| write_err(e, "signing key"))?;
        Ok(())
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let sql = format!("SELECT {} FROM signing_keys ORDER BY created_at DESC, kid DESC", rows::SIGNING_KEY_COLS);
        let all = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db_err)?;
        all.iter().map(|r| rows::signing_key(r)).collect()
    }

    async fn user_has_live_family(&self, user_id: &SfId, app_id: &SfId, now: Millis) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM token_families f WHERE f.user_id = $1 AND f.app_id = $2 AND f.revoked_at IS NULL AND ( \
             EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = f.id AND a.revoked_at IS NULL AND a.expires_at > $3) \
             OR EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.id AND r.revoked_at IS NULL)) LIMIT 1",
        )
        .bind(user_id.as_str())
        .bind(app_id.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn insert_initial_access_token(
        &self,
        hash: &TokenHash,
        org_id: &SfId,
        registrar_id: &SfId,
        now: Millis,
        expires_at: Option<Millis>,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO initial_access_tokens (token_hash, org_id, registrar_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash.as_str())
            .bind(org_id.as_str())
            .bind(registrar_id.as_str())
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(|e| write_err(e, "initial access token"))?;
        Ok(())
    }

    async fn get_initial_access_token(&self, hash: &TokenHash, now: Millis) -> StoreResult<Option<(SfId, SfId)>> {
        let row = sqlx::query("SELECT org_id, registrar_id FROM initial_access_tokens WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)")
            .bind(hash.as_str())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            Some(r) => Ok(Some((rows::id(&r, "org_id")?, rows::id(&r, "registrar_id")?))),
            None => Ok(None),
        }
    }

    async fn set_registration_token(&self, app_id: &SfId, hash: &TokenHash, now: Millis) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO registration_tokens (app_id, token_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (app_id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
        )
        .bind(app_id.as_str())
        .bind(hash.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn app_by_registration_token(&self, hash: &TokenHash) -> StoreResult<Option<SfId>> {
        let row = sqlx::query("SELECT app_id FROM registration_tokens WHERE token_hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            Some(r) => Ok(Some(rows::id(&r, "app_id")?)),
            None => Ok(None),
        }
    }

    async fn insert_device_code(&self, code: &DeviceCode) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO device_codes ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            rows::DEVICE_COLS
        );
        sqlx::query(&sql)
            .bind(code.device_code_hash.as_str())
            .bind(code.user_code_hash.as_str())
            .bind(code.org_id.as_str())
            .bind(code.app_id.as_str())
            .bind(code.scopes.to_string())
            .bind(code.status.as_str())
            .bind(code.user_id.as_ref().map(SfId::as_str))
            .bind(code.interval_secs)
            .bind(code.last_polled_at)
            .bind(code.created_at)
            .bind(code.expires_at)
            .execute(&self.pool)
            .await
            .map_err(|e| write_err(e, "device code"))?;
        Ok(())
    }

    async fn get_device_code(&self, device_code_hash: &TokenHash) -> StoreResult<Option<DeviceCode>> {
        let sql = format!("SELECT {} FROM device_codes WHERE device_code_hash = $1", rows::DEVICE_COLS);
        self.fetch_opt(&sql, device_code_hash.as_str(), rows::device_code).await
    }

    async fn get_device_code_by_user_code(&self, user_code_hash: &TokenHash) -> StoreResult<Option<DeviceCode>> {
        let sql = format!("SELECT {} FROM device_codes WHERE user_code_hash = $1", rows::DEVICE_COLS);
        self.fetch_opt(&sql, user_code_hash.as_str(), rows::device_code).await
    }

    async fn decide_device_code(
        &self,
        device_code_hash: &TokenHash,
        status: DeviceStatus,
        user_id: &SfId,
        now: Millis,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE device_codes SET status = $1, user_id = $2 WHERE device_code_hash = $3 AND status = 'pending' AND expires_at > $4",
        )
        .bind(status.as_str())
        .bind(user_id.as_str())
        .bind(device_code_hash.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn poll_device_code(&self, device_code_hash: &TokenHash, now: Millis) -> StoreResult<Option<Millis>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT last_polled_at FROM device_codes WHERE device_code_hash = $1")
            .bind(device_code_hash.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let previous: Option<Millis> = match &row {
            Some(r) => rows::col(r, "last_polled_at")?,
            None => None,
        };
        sqlx::query("UPDATE device_codes SET last_polled_at = $1 WHERE device_code_hash = $2")
            .bind(now)
            .bind(device_code_hash.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(previous)
    }

    async fn consume_device_code(&self, device_code_hash: &TokenHash, _now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE device_codes SET status = 'consumed' WHERE device_code_hash = $1 AND status = 'approved'",
        )
        .bind(device_code_hash.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn remember_jti(&self, issuer: &str, jti: &str, expires_at: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO seen_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (issuer, jti) DO NOTHING",
        )
        .bind(issuer)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_attempt(&self, key: &str, now: Millis, window_ms: i64) -> StoreResult<(u32, Millis)> {
        // One statement: the increment and the read are one atomic step, so concurrent
        // attempts cannot all read the same count (a check-then-count race).
        let row = sqlx::query(
            "INSERT INTO throttle_counters (key, count, expires_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN throttle_counters.expires_at <= $3 THEN 1 ELSE throttle_counters.count + 1 END, \
               expires_at = CASE WHEN throttle_counters.expires_at <= $3 THEN $2 ELSE throttle_counters.expires_at END \
             RETURNING count, expires_at",
        )
        .bind(key)
        .bind(now + window_ms)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let count: i64 = row.try_get("count").map_err(db_err)?;
        let ends: i64 = row.try_get("expires_at").map_err(db_err)?;
        Ok((u32::try_from(count).unwrap_or(u32::MAX), ends))
    }

    async fn attempts(&self, key: &str, now: Millis) -> StoreResult<u32> {
        let row = sqlx::query("SELECT count FROM throttle_counters WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            Some(r) => Ok(u32::try_from(r.try_get::<i64, _>("count").map_err(db_err)?).unwrap_or(u32::MAX)),
            None => Ok(0),
        }
    }

    async fn forgive_attempt(&self, key: &str, clear: bool) -> StoreResult<()> {
        let sql = if clear {
            "DELETE FROM throttle_counters WHERE key = $1"
        } else {
            "UPDATE throttle_counters SET count = count - 1 WHERE key = $1 AND count > 0"
        };
        sqlx::query(sql).bind(key).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn insert_permission_set(&self, ps: &PermissionSet) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO permission_sets (id, org_id, name, label, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(ps.id.as_str())
            .bind(ps.org_id.as_str())
            .bind(ps.name.as_str())
            .bind(ps.label.as_str())
            .bind(ps.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| write_err(e, "permission set"))?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_permission_sets(&self, org_id: &SfId) -> StoreResult<Vec<PermissionSet>> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, label, created_at FROM permission_sets WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| rows::permission_set(r)).collect()
    }

    async fn delete_permission_set(&self, id: &SfId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM permission_set_assignments WHERE ps_id = $1",
            "DELETE FROM permission_set_custom_permissions WHERE ps_id = $1",
        ] {
            sqlx::query(sql).bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
        }
        let done = sqlx::query("DELETE FROM permission_sets WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn assign_permission_set(&self, user_id: &SfId, ps_id: &SfId) -> StoreResult<()> {
        let sql = "INSERT INTO permission_set_assignments (user_id, ps_id) VALUES ($1, $2) \
                   ON CONFLICT (user_id, ps_id) DO NOTHING";
        self.write_link(sql, user_id, ps_id, "permission set assignment").await
    }

    async fn unassign_permission_set(&self, user_id: &SfId, ps_id: &SfId) -> StoreResult<()> {
        let sql = "DELETE FROM permission_set_assignments WHERE user_id = $1 AND ps_id = $2";
        self.write_link(sql, user_id, ps_id, "permission set assignment").await
    }

    async fn user_permission_sets(&self, user_id: &SfId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT p.name AS name FROM permission_set_assignments a JOIN permission_sets p ON p.id = a.ps_id WHERE a.user_id = $1 ORDER BY p.name",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| rows::col(r, "name")).collect()
    }

    async fn insert_custom_permission(&self, cp: &CustomPermission) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO custom_permissions (id, org_id, name, label, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(cp.id.as_str())
        .bind(cp.org_id.as_str())
        .bind(cp.name.as_str())
        .bind(cp.label.as_str())
        .bind(cp.description.as_deref())
        .bind(cp.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_err(e, "custom permission"))?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_custom_permissions(&self, org_id: &SfId) -> StoreResult<Vec<CustomPermission>> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, label, description, created_at FROM custom_permissions \
             WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| rows::custom_permission(r)).collect()
    }

    async fn update_custom_permission(&self, cp: &CustomPermission) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE custom_permissions SET label = $1, description = $2 WHERE id = $3")
            .bind(cp.label.as_str())
            .bind(cp.description.as_deref())
            .bind(cp.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_custom_permission(&self, id: &SfId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM permission_set_custom_permissions WHERE cp_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let done = sqlx::query("DELETE FROM custom_permissions WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn grant_custom_permission(&self, ps_id: &SfId, cp_id: &SfId) -> StoreResult<()> {
        let sql = "INSERT INTO permission_set_custom_permissions (ps_id, cp_id) VALUES ($1, $2) \
                   ON CONFLICT (ps_id, cp_id) DO NOTHING";
        self.write_link(sql, ps_id, cp_id, "custom permission grant").await
    }

    async fn revoke_custom_permission(&self, ps_id: &SfId, cp_id: &SfId) -> StoreResult<()> {
        let sql = "DELETE FROM permission_set_custom_permissions WHERE ps_id = $1 AND cp_id = $2";
        self.write_link(sql, ps_id, cp_id, "custom permission grant").await
    }

    async fn permission_set_custom_permissions(&self, ps_id: &SfId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT c.name AS name FROM permission_set_custom_permissions g \
             JOIN custom_permissions c ON c.id = g.cp_id WHERE g.ps_id = $1 ORDER BY c.name",
        )
        .bind(ps_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| rows::col(r, "name")).collect()
    }

    async fn user_custom_permissions(&self, user_id: &SfId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT c.name AS name FROM permission_set_assignments a \
             JOIN permission_set_custom_permissions g ON g.ps_id = a.ps_id \
             JOIN custom_permissions c ON c.id = g.cp_id WHERE a.user_id = $1 ORDER BY c.name",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| rows::col(r, "name")).collect()
    }

    async fn sweep_expired(&self, now: Millis) -> StoreResult<SweepReport> {
        // Rule by rule, window by window, each statement on its own (no transaction): each is
        // correct alone, and a long statement or transaction would hold SQLite's single write
        // lock against the live traffic. Refresh tokens and families have two rules each (the
        // two halves of an OR, which no single index serves); a row both match goes with the
        // first and is counted once.
        let codes = self.sweep_rule(&SWEEP_CODES, now).await?;
        let access_tokens = self.sweep_rule(&SWEEP_ACCESS_TOKENS, now).await?;
        let refresh_tokens = self.sweep_rule(&SWEEP_REFRESH_EXPIRED, now).await?
            + self.sweep_rule(&SWEEP_REFRESH_REVOKED, now - REVOKED_REFRESH_RETENTION_MS).await?;
        let sessions = self.sweep_rule(&SWEEP_SESSIONS, now).await?;
        let device_codes = self.sweep_rule(&SWEEP_DEVICE_CODES, now).await?;
        let jtis = self.sweep_rule(&SWEEP_JTIS, now).await?;
        // Families last, once the tokens that pinned them are gone.
        let families = self.sweep_rule(&SWEEP_FAMILIES_REVOKED, now - REVOKED_REFRESH_RETENTION_MS).await?
            + self.sweep_rule(&SWEEP_FAMILIES_IDLE, now - IDLE_FAMILY_RETENTION_MS).await?;
        tracing::debug!(codes, access_tokens, refresh_tokens, sessions, families, "swept expired rows");
        Ok(SweepReport { codes, device_codes, jtis, access_tokens, refresh_tokens, sessions })
    }
}

/// The sweeper looks at this many rows per statement at most (plus any that share the last
/// one's time), so that SQLite's write lock is held for milliseconds at a time however many
/// rows have expired or how many old families are still in use.
const SWEEP_WINDOW: i64 = 1000;

/// Between two windows of a rule the sweeper waits this long, so that writers queued on
/// SQLite's lock (which poll for it) get their turn.
const SWEEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// One sweeper rule: the rows of `table` whose `column` is below a cutoff go, or, with
/// `unless_used`, those that nothing refers to any more. `index` on `column` serves every
/// statement of the rule (the sweep test checks the plans).
struct SweepRule {
    table: &'static str,
    column: &'static str,
    index: &'static str,
    unless_used: Option<&'static str>,
}

/// How many times `delete_app` runs its transaction before giving up on concurrent writers.
const DELETE_APP_ATTEMPTS: u64 = 5;

/// PostgreSQL: what `delete_app` locks before deleting anything, in the order the issuing
/// transactions lock them: the app's row (a new family or code locks it through its foreign
/// key), then its families (a new token locks its family), then token rows (updated by a
/// refresh). Holding the app and its families, the delete waits for the issuances already
/// in flight and holds off new ones until it commits (they then find the app gone), so the
/// token rows it deletes are all there are. SQLite's `BEGIN IMMEDIATE` excludes every other
/// writer anyway.
const LOCK_APP_PG: &str = "SELECT id FROM apps WHERE id = $1 FOR UPDATE";
const LOCK_APP_FAMILIES_PG: &str = "SELECT id FROM token_families WHERE app_id = $1 ORDER BY id FOR UPDATE";

/// What `delete_app` deletes before the app: children first, or the foreign keys would
/// refuse the app's row.
const APP_CHILDREN: &[&str] = &[
    "DELETE FROM auth_codes WHERE app_id = $1",
    "DELETE FROM device_codes WHERE app_id = $1",
    "DELETE FROM registration_tokens WHERE app_id = $1",
    // Tokens by their family: their own app_id is not indexed (migration 0015).
    "DELETE FROM access_tokens WHERE family_id IN (SELECT id FROM token_families WHERE app_id = $1)",
    "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM token_families WHERE app_id = $1)",
    "DELETE FROM token_families WHERE app_id = $1",
    "DELETE FROM consents WHERE app_id = $1",
    "DELETE FROM app_secrets WHERE app_id = $1",
];

/// `revoke_user_families`, for every app and for one: two fixed statement sets rather than
/// `$3 IS NULL OR app_id = $3`, which PostgreSQL cannot plan around (it would scan every
/// family of the user either way). The tokens go through their families: their own user_id
/// and app_id are not indexed (migration 0015).
const REVOKE_ALL_APPS: &[&str] = &[
    "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    "UPDATE access_tokens SET revoked_at = $1 WHERE family_id IN (SELECT id FROM token_families WHERE user_id = $2) AND revoked_at IS NULL",
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id IN (SELECT id FROM token_families WHERE user_id = $2) AND revoked_at IS NULL",
];
const REVOKE_ONE_APP: &[&str] = &[
    "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND app_id = $3 AND revoked_at IS NULL",
    "UPDATE access_tokens SET revoked_at = $1 WHERE family_id IN (SELECT id FROM token_families WHERE user_id = $2 AND app_id = $3) AND revoked_at IS NULL",
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id IN (SELECT id FROM token_families WHERE user_id = $2 AND app_id = $3) AND revoked_at IS NULL",
];

/// A token family that no token or code refers to.
const FAMILY_UNUSED: &str = "NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = token_families.id) \
     AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = token_families.id) \
     AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.family_id = token_families.id)";

const fn expiry(table: &'static str, index: &'static str) -> SweepRule {
    SweepRule { table, column: "expires_at", index, unless_used: None }
}

const SWEEP_CODES: SweepRule = expiry("auth_codes", "auth_codes_expires_at_idx");
const SWEEP_ACCESS_TOKENS: SweepRule = expiry("access_tokens", "access_tokens_expires_at_idx");
/// Past their absolute expiry (NULL: none, which `<` never matches).
const SWEEP_REFRESH_EXPIRED: SweepRule = expiry("refresh_tokens", "refresh_tokens_expires_at_idx");
/// Revoked more than [`REVOKED_REFRESH_RETENTION_MS`] ago.
const SWEEP_REFRESH_REVOKED: SweepRule = SweepRule {
    table: "refresh_tokens",
    column: "revoked_at",
    index: "refresh_tokens_revoked_at_idx",
    unless_used: None,
};
const SWEEP_SESSIONS: SweepRule = expiry("sessions", "sessions_expires_at_idx");
const SWEEP_DEVICE_CODES: SweepRule = expiry("device_codes", "device_codes_expires_at_idx");
const SWEEP_JTIS: SweepRule = expiry("seen_jtis", "seen_jtis_expires_at_idx");
const SWEEP_THROTTLE: SweepRule = expiry("throttle_counters", "throttle_counters_expires_at_idx");
/// Unused and revoked more than [`REVOKED_REFRESH_RETENTION_MS`] ago (the partial index of
/// migration 0014 holds only revoked families).
const SWEEP_FAMILIES_REVOKED: SweepRule = SweepRule {
    table: "token_families",
    column: "revoked_at",
    index: "token_families_revoked_at_idx",
    unless_used: Some(FAMILY_UNUSED),
};
/// Unused and created more than [`IDLE_FAMILY_RETENTION_MS`] ago.
const SWEEP_FAMILIES_IDLE: SweepRule = SweepRule {
    table: "token_families",
    column: "created_at",
    index: "token_families_created_at_idx",
    unless_used: Some(FAMILY_UNUSED),
};

const SWEEP_RULES: [&SweepRule; 10] = [
    &SWEEP_CODES,
    &SWEEP_ACCESS_TOKENS,
    &SWEEP_REFRESH_EXPIRED,
    &SWEEP_REFRESH_REVOKED,
    &SWEEP_SESSIONS,
    &SWEEP_DEVICE_CODES,
    &SWEEP_JTIS,
    &SWEEP_THROTTLE,
    &SWEEP_FAMILIES_REVOKED,
    &SWEEP_FAMILIES_IDLE,
];

/// A rule's statements. Each takes a window of the column, `$1 < column <= $2`: an index range.
impl SweepRule {
    /// The column's value at the last row of the window that starts after `$1` (none if fewer
    /// rows than a window are left before `$2`): an index-only read.
    fn bound_sql(&self) -> String {
        let (t, c) = (self.table, self.column);
        format!("SELECT {c} FROM {t} WHERE {c} > $1 AND {c} <= $2 ORDER BY {c} LIMIT 1 OFFSET {}", SWEEP_WINDOW - 1)
    }

    /// Whether the window holds anything to delete, for rules with a condition: a read, so
    /// that windows of rows still in use are passed over without taking the write lock.
    fn probe_sql(&self) -> Option<String> {
        let (t, c) = (self.table, self.column);
        self.unless_used.map(|u| format!("SELECT 1 FROM {t} WHERE {c} > $1 AND {c} <= $2 AND {u} LIMIT 1"))
    }

    fn delete_sql(&self) -> String {
        let (t, c) = (self.table, self.column);
        match self.unless_used {
            Some(u) => format!("DELETE FROM {t} WHERE {c} > $1 AND {c} <= $2 AND {u}"),
            None => format!("DELETE FROM {t} WHERE {c} > $1 AND {c} <= $2"),
        }
    }
}

impl SqlStore {
    /// One statement on a link table (two ids: a permission set's assignments and grants), in
    /// a write transaction that bumps the change counter so every node's cache notices. A link
    /// to a row that is gone is `NotFound`.
    async fn write_link(&self, sql: &'static str, a: &SfId, b: &SfId, what: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(sql).bind(a.as_str()).bind(b.as_str()).execute(&mut *tx).await.map_err(|e| write_err(e, what))?;
        bump_changes(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }
}

impl SqlStore {
    /// One attempt at `delete_app`: false when there is no such app. The error is the
    /// driver's, so that the caller can tell a deadlock from a real failure.
    async fn delete_app_once(&self, id: &SfId) -> Result<bool, sqlx::Error> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        if self.backend == Backend::Postgres {
            if sqlx::query(LOCK_APP_PG).bind(id.as_str()).fetch_optional(&mut *tx).await?.is_none() {
                return Ok(false); // dropping the transaction rolls it back
            }
            sqlx::query(LOCK_APP_FAMILIES_PG).bind(id.as_str()).execute(&mut *tx).await?;
        }
        for sql in APP_CHILDREN {
            sqlx::query(sql).bind(id.as_str()).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM apps WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(BUMP_CHANGES).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the rows a rule selects below `cutoff`, one window of the column at a time.
    /// Times are whole milliseconds, so "below `cutoff`" is "at most `cutoff - 1`".
    async fn sweep_rule(&self, rule: &SweepRule, cutoff: i64) -> StoreResult<u64> {
        let last = cutoff.saturating_sub(1);
        let (bound, probe, delete) = (rule.bound_sql(), rule.probe_sql(), rule.delete_sql());
        let mut after = i64::MIN;
        let mut deleted = 0;
        loop {
            let bound: Option<i64> =
                sqlx::query_scalar(&bound).bind(after).bind(last).fetch_optional(&self.pool).await.map_err(db_err)?;
            let upto = bound.unwrap_or(last);
            let wanted = match &probe {
                Some(p) => {
                    sqlx::query(p).bind(after).bind(upto).fetch_optional(&self.pool).await.map_err(db_err)?.is_some()
                }
                None => true,
            };
            if wanted {
                deleted += sqlx::query(&delete)
                    .bind(after)
                    .bind(upto)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
            }
            if upto >= last {
                return Ok(deleted);
            }
            after = upto;
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
    }

    /// The statements that find rows by their owner (an app being deleted, a user's grants
    /// revoked). For the tests that check the plans: none may read a whole token table.
    #[doc(hidden)]
    pub fn by_owner_statements() -> Vec<&'static str> {
        APP_CHILDREN.iter().chain(REVOKE_ALL_APPS).chain(REVOKE_ONE_APP).copied().collect()
    }

    /// Every statement the sweeper runs, with the index that must serve it; each takes two
    /// times, `$1` and `$2`. For the tests that check the plans.
    #[doc(hidden)]
    pub fn sweep_statements() -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for rule in SWEEP_RULES {
            out.push((rule.bound_sql(), rule.index));
            out.extend(rule.probe_sql().map(|p| (p, rule.index)));
            out.push((rule.delete_sql(), rule.index));
        }
        out
    }
}

impl SqlStore {
    /// One row by one key, decoded: the shape of every single-row lookup here.
    async fn fetch_opt<T>(
        &self,
        sql: &str,
        key: &str,
        decode: fn(&dyn Cols) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        if let Some(done) = self.sqlite_reader().and_then(|r| read_one(r, sql, &[key], decode)) {
            return done;
        }
        let row = sqlx::query(sql).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(|r| decode(r)).transpose()
    }

    /// A row keyed by a bearer value's storage key, `IN ($1, $2)`: the key, and the bare digest
    /// a release before time-ordered keys stored the same value under (see `TokenHash::legacy`).
    async fn fetch_by_token_key<T>(
        &self,
        sql: &str,
        key: &TokenHash,
        decode: fn(&dyn Cols) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let legacy = key.legacy();
        let legacy = legacy.as_ref().unwrap_or(key).as_str();
        if let Some(done) = self.sqlite_reader().and_then(|r| read_one(r, sql, &[key.as_str(), legacy], decode)) {
            return done;
        }
        let row = sqlx::query(sql).bind(key.as_str()).bind(legacy).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(|r| decode(r)).transpose()
    }
}

/// The first row of a read by key on the SQLite read connections (on this thread: see
/// `sqlite_reader`), decoded; `None` when they are all busy (read through the pool then).
fn read_one<T>(
    reader: &SqliteReader,
    sql: &str,
    args: &[&str],
    decode: fn(&dyn Cols) -> StoreResult<T>,
) -> Option<StoreResult<Option<T>>> {
    let backend = |e: rusqlite::Error| StoreError::Backend(e.to_string());
    let done = reader.read(|c| {
        let mut stmt = c.prepare_cached(sql).map_err(backend)?;
        sqlite_reader::bind(&mut stmt, args).map_err(backend)?;
        let mut rows = stmt.raw_query();
        match rows.next().map_err(backend)? {
            Some(row) => decode(row).map(Some),
            None => Ok(None),
        }
    })?;
    Some(done.map_err(backend).and_then(|r| r))
}
