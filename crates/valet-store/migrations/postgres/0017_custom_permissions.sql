-- Custom permissions and the permission sets that grant them (PostgreSQL).
-- Keep in step with ../sqlite/0017_custom_permissions.sql.

CREATE TABLE custom_permissions (
    id           TEXT NOT NULL PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (id),
    name         TEXT NOT NULL,
    label        TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL
);
-- API names are unique in the org whatever their case, as Salesforce's (names are ASCII).
CREATE UNIQUE INDEX custom_permissions_org_name_key ON custom_permissions (org_id, lower(name));

CREATE TABLE permission_set_custom_permissions (
    ps_id  TEXT NOT NULL REFERENCES permission_sets (id),
    cp_id  TEXT NOT NULL REFERENCES custom_permissions (id),
    PRIMARY KEY (ps_id, cp_id)
);
CREATE INDEX permission_set_custom_permissions_cp_idx ON permission_set_custom_permissions (cp_id);
