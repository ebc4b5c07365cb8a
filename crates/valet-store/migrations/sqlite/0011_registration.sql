-- Dynamic client registration (RFC 7591/7592): initial access tokens issued to a registrar
-- app by an admin, and one registration access token per registered app. Hashes only.
CREATE TABLE initial_access_tokens (
    token_hash   TEXT NOT NULL PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (id),
    registrar_id TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT
);

CREATE TABLE registration_tokens (
    app_id      TEXT NOT NULL PRIMARY KEY,
    token_hash  TEXT NOT NULL CONSTRAINT registration_tokens_hash_key UNIQUE,
    created_at  BIGINT NOT NULL
);
