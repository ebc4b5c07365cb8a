-- Storing a token is the hot write (bench/README.md): every index a row goes into is work at
-- each commit. Access and refresh tokens lose their app_id / user_id indexes (revocation by
-- user or app goes through token_families, whose app and user are the token's) and the
-- foreign keys behind those columns (the family's own keys hold them; a parent's delete
-- would have scanned these tables without the indexes); refresh tokens index expiry and
-- revocation only where set (the sweeper's `col > $1 AND col <= $2` implies NOT NULL).
-- SQLite's migration 0015 also makes both tables WITHOUT ROWID.
ALTER TABLE access_tokens DROP CONSTRAINT IF EXISTS access_tokens_app_id_fkey;
ALTER TABLE access_tokens DROP CONSTRAINT IF EXISTS access_tokens_user_id_fkey;
ALTER TABLE refresh_tokens DROP CONSTRAINT IF EXISTS refresh_tokens_app_id_fkey;
ALTER TABLE refresh_tokens DROP CONSTRAINT IF EXISTS refresh_tokens_user_id_fkey;
DROP INDEX IF EXISTS access_tokens_app_id_idx;
DROP INDEX IF EXISTS access_tokens_user_id_idx;
DROP INDEX IF EXISTS refresh_tokens_app_id_idx;
DROP INDEX IF EXISTS refresh_tokens_user_id_idx;
DROP INDEX IF EXISTS refresh_tokens_expires_at_idx;
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at) WHERE expires_at IS NOT NULL;
DROP INDEX IF EXISTS refresh_tokens_revoked_at_idx;
CREATE INDEX refresh_tokens_revoked_at_idx ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
