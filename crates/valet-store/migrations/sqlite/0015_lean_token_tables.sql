-- Storing a token is the hot write (bench/README.md): every B-tree a row goes into is pages
-- to dirty and write to the WAL at each commit. Access and refresh tokens become WITHOUT
-- ROWID tables keyed by their time-ordered storage key alone (one B-tree, not a rowid table
-- plus a primary-key index), lose their app_id / user_id indexes (revocation by user or app
-- goes through token_families, whose app and user are the token's) and the foreign keys
-- behind those columns (the family's own keys hold them; a parent's delete would have
-- scanned these tables without the indexes), and index expiry and revocation only where set.
-- A client-credentials token: 11 B-trees → 8; a refresh token: 7 → 2 or 3.

CREATE TABLE access_tokens_new (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES token_families (id),
    org_id      TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
) WITHOUT ROWID;
INSERT INTO access_tokens_new (token_hash, family_id, org_id, app_id, user_id, scopes, created_at, expires_at, revoked_at)
    SELECT token_hash, family_id, org_id, app_id, user_id, scopes, created_at, expires_at, revoked_at FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_family_id_idx ON access_tokens (family_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at);

CREATE TABLE refresh_tokens_new (
    token_hash        TEXT NOT NULL PRIMARY KEY,
    family_id         TEXT NOT NULL REFERENCES token_families (id),
    org_id            TEXT NOT NULL,
    app_id            TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_used_at      BIGINT NOT NULL,
    expires_at        BIGINT,
    revoked_at        BIGINT,
    replaced_by       TEXT,
    successor_sealed  BLOB
) WITHOUT ROWID;
INSERT INTO refresh_tokens_new (token_hash, family_id, org_id, app_id, user_id, scopes, created_at, last_used_at, expires_at, revoked_at, replaced_by, successor_sealed)
    SELECT token_hash, family_id, org_id, app_id, user_id, scopes, created_at, last_used_at, expires_at, revoked_at, replaced_by, successor_sealed FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
-- Partial: the sweeper's `col > $1 AND col <= $2` implies NOT NULL, so it still uses them.
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX refresh_tokens_revoked_at_idx ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
