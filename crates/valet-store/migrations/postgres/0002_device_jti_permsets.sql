-- Device authorizations, assertion replay protection and permission sets (PostgreSQL).
-- Keep in step with ../sqlite/0002_device_jti_permsets.sql.

CREATE TABLE device_codes (
    device_code_hash  TEXT NOT NULL PRIMARY KEY,
    user_code_hash    TEXT NOT NULL CONSTRAINT device_codes_user_code_key UNIQUE,
    org_id            TEXT NOT NULL REFERENCES orgs (id),
    app_id            TEXT NOT NULL REFERENCES apps (id),
    scopes            TEXT NOT NULL,
    status            TEXT NOT NULL,
    user_id           TEXT,
    interval_secs     BIGINT NOT NULL,
    last_polled_at    BIGINT,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX device_codes_expires_at_idx ON device_codes (expires_at);
CREATE INDEX device_codes_app_id_idx ON device_codes (app_id);

CREATE TABLE seen_jtis (
    issuer      TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX seen_jtis_expires_at_idx ON seen_jtis (expires_at);

CREATE TABLE permission_sets (
    id          TEXT NOT NULL PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT permission_sets_org_name_key UNIQUE (org_id, name)
);

CREATE TABLE permission_set_assignments (
    user_id  TEXT NOT NULL REFERENCES users (id),
    ps_id    TEXT NOT NULL REFERENCES permission_sets (id),
    PRIMARY KEY (user_id, ps_id)
);
CREATE INDEX permission_set_assignments_ps_idx ON permission_set_assignments (ps_id);
