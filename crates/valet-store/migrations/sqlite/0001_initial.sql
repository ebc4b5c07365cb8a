-- Valet's initial schema (SQLite). Keep in step with ../postgres/0001_initial.sql: the same
-- queries run against both, so names and column meanings must match exactly.
--
-- Conventions: times are epoch milliseconds (BIGINT), booleans are 0/1 integers, scope sets
-- are space-separated text, structured settings are JSON text, hashes are lowercase hex.
-- Declared types stay within INTEGER/BIGINT/TEXT/BLOB because sqlx's Any driver rejects
-- columns declared BOOLEAN, DATETIME and the like.

CREATE TABLE orgs (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT NOT NULL PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id),
    username        TEXT NOT NULL,
    -- Usernames compare case-insensitively; lowering in Rust keeps both backends identical.
    username_lower  TEXT NOT NULL CONSTRAINT users_username_lower_key UNIQUE,
    email           TEXT NOT NULL,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    active          BIGINT NOT NULL,
    is_admin        BIGINT NOT NULL,
    timezone        TEXT NOT NULL,
    locale          TEXT NOT NULL,
    language        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX users_org_id_idx ON users (org_id);

CREATE TABLE apps (
    id             TEXT NOT NULL PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs (id),
    name           TEXT NOT NULL,
    consumer_key   TEXT NOT NULL CONSTRAINT apps_consumer_key_key UNIQUE,
    is_public      BIGINT NOT NULL,
    callback_urls  TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    policy         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX apps_org_id_idx ON apps (org_id);

CREATE TABLE app_secrets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id       TEXT NOT NULL REFERENCES apps (id),
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT
);
CREATE INDEX app_secrets_app_id_idx ON app_secrets (app_id);

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id),
    app_id      TEXT NOT NULL REFERENCES apps (id),
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
CREATE INDEX consents_app_id_idx ON consents (app_id);

-- family_id has no foreign key: it is written at redemption and a code may outlive the
-- family that a sweep or a lost race removed; a dangling id only means "nothing to revoke".
CREATE TABLE auth_codes (
    code_hash              TEXT NOT NULL PRIMARY KEY,
    org_id                 TEXT NOT NULL,
    app_id                 TEXT NOT NULL REFERENCES apps (id),
    user_id                TEXT NOT NULL REFERENCES users (id),
    redirect_uri           TEXT NOT NULL,
    scopes                 TEXT NOT NULL,
    code_challenge         TEXT,
    code_challenge_method  TEXT,
    nonce                  TEXT,
    auth_time              BIGINT NOT NULL,
    created_at             BIGINT NOT NULL,
    expires_at             BIGINT NOT NULL,
    consumed_at            BIGINT,
    family_id              TEXT
);
CREATE INDEX auth_codes_expires_at_idx ON auth_codes (expires_at);
CREATE INDEX auth_codes_app_id_idx ON auth_codes (app_id);
CREATE INDEX auth_codes_user_id_idx ON auth_codes (user_id);
CREATE INDEX auth_codes_family_id_idx ON auth_codes (family_id);

-- `grant` is an SQL keyword, hence grant_type.
CREATE TABLE token_families (
    id          TEXT NOT NULL PRIMARY KEY,
    org_id      TEXT NOT NULL,
    app_id      TEXT NOT NULL REFERENCES apps (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    scopes      TEXT NOT NULL,
    grant_type  TEXT NOT NULL,
    auth_time   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX token_families_user_id_idx ON token_families (user_id);
CREATE INDEX token_families_app_id_idx ON token_families (app_id);
CREATE INDEX token_families_created_at_idx ON token_families (created_at);

CREATE TABLE access_tokens (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES token_families (id),
    org_id      TEXT NOT NULL,
    app_id      TEXT NOT NULL REFERENCES apps (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX access_tokens_family_id_idx ON access_tokens (family_id);
CREATE INDEX access_tokens_app_id_idx ON access_tokens (app_id);
CREATE INDEX access_tokens_user_id_idx ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash    TEXT NOT NULL PRIMARY KEY,
    family_id     TEXT NOT NULL REFERENCES token_families (id),
    org_id        TEXT NOT NULL,
    app_id        TEXT NOT NULL REFERENCES apps (id),
    user_id       TEXT NOT NULL REFERENCES users (id),
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    replaced_by   TEXT
);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_app_id_idx ON refresh_tokens (app_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_revoked_at_idx ON refresh_tokens (revoked_at);

CREATE TABLE sessions (
    id_hash     TEXT NOT NULL PRIMARY KEY,
    org_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    auth_time   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE signing_keys (
    kid                    TEXT NOT NULL PRIMARY KEY,
    alg                    TEXT NOT NULL,
    private_der_encrypted  BLOB NOT NULL,
    created_at             BIGINT NOT NULL,
    active                 BIGINT NOT NULL
);

CREATE TABLE meta (
    key    TEXT NOT NULL PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('changes', 0);
