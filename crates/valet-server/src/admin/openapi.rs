//! The OpenAPI 3.1 document of the admin API, written by hand as JSON. Hand-written because the
//! wire shapes are few and the policy object needs its merge semantics explained anyway; the
//! tests keep it honest: the policy and settings schemas are compared with the Rust types'
//! serialized fields, every route is compared with the router, and a snapshot catches drift.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use valet_core::scope::KNOWN_SCOPES;

use super::json_response;

/// `GET /admin/api/openapi.json`, without authentication: the document describes the API, it
/// holds no data.
pub async fn serve() -> Response {
    json_response(StatusCode::OK, document())
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

/// Every operation as (method, path), for the tests that compare the document with the router.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/admin/api/v1/apps"),
    ("post", "/admin/api/v1/apps"),
    ("get", "/admin/api/v1/apps/{id}"),
    ("patch", "/admin/api/v1/apps/{id}"),
    ("delete", "/admin/api/v1/apps/{id}"),
    ("post", "/admin/api/v1/apps/{id}/rotate-secret"),
    ("post", "/admin/api/v1/apps/{id}/retire-old-secrets"),
    ("post", "/admin/api/v1/apps/{id}/rotate-key"),
    ("post", "/admin/api/v1/apps/{id}/retire-old-key"),
    ("post", "/admin/api/v1/apps/{id}/registration-tokens"),
    ("get", "/admin/api/v1/users"),
    ("post", "/admin/api/v1/users"),
    ("get", "/admin/api/v1/users/{id}"),
    ("patch", "/admin/api/v1/users/{id}"),
    ("post", "/admin/api/v1/users/{id}/password"),
    ("get", "/admin/api/v1/users/{id}/permission-sets"),
    ("get", "/admin/api/v1/users/{id}/permission-sets/{name}"),
    ("put", "/admin/api/v1/users/{id}/permission-sets/{name}"),
    ("delete", "/admin/api/v1/users/{id}/permission-sets/{name}"),
    ("get", "/admin/api/v1/permission-sets"),
    ("post", "/admin/api/v1/permission-sets"),
    ("get", "/admin/api/v1/permission-sets/{name}"),
    ("delete", "/admin/api/v1/permission-sets/{name}"),
    ("get", "/admin/api/v1/permission-sets/{name}/custom-permissions"),
    ("get", "/admin/api/v1/permission-sets/{name}/custom-permissions/{permission}"),
    ("put", "/admin/api/v1/permission-sets/{name}/custom-permissions/{permission}"),
    ("delete", "/admin/api/v1/permission-sets/{name}/custom-permissions/{permission}"),
    ("get", "/admin/api/v1/custom-permissions"),
    ("post", "/admin/api/v1/custom-permissions"),
    ("get", "/admin/api/v1/custom-permissions/{name}"),
    ("patch", "/admin/api/v1/custom-permissions/{name}"),
    ("delete", "/admin/api/v1/custom-permissions/{name}"),
    ("get", "/admin/api/v1/org/settings"),
    ("put", "/admin/api/v1/org/settings"),
    ("patch", "/admin/api/v1/org/settings"),
    ("get", "/admin/api/v1/objects"),
    ("post", "/admin/api/v1/objects"),
    ("get", "/admin/api/v1/objects/{name}"),
    ("post", "/admin/api/v1/objects/{name}/fields"),
];

/// Text without control characters (C0, DEL, C1), which every string field refuses.
const NO_CONTROLS: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(schema: &str, required: bool) -> Value {
    json!({ "required": required, "content": { "application/json": { "schema": r(schema) } } })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": r(schema) } } })
}

fn err(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// One operation. `success` is (status, response object); the error responses every
/// authenticated operation can give are added, plus `extra` ones.
fn op(
    id: &str,
    tag: &str,
    summary: &str,
    params: &[&str],
    request: Option<Value>,
    success: (&str, Value),
    extra: &[&str],
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(success.0.to_string(), success.1);
    // An app key that is a name shared by several apps is ambiguous: 422 asks for the id.
    let ambiguous: &[&str] = if params.contains(&"AppId") { &["422"] } else { &[] };
    for e in ["400", "401", "403"].iter().chain(extra.iter()).chain(ambiguous.iter()) {
        let name = match *e {
            "400" => "BadRequest",
            "401" => "Unauthorized",
            "403" => "Forbidden",
            "404" => "NotFound",
            "409" => "Conflict",
            "413" => "PayloadTooLarge",
            "415" => "UnsupportedMediaType",
            _ => "Unprocessable",
        };
        responses.insert(e.to_string(), err(name));
    }
    let mut o = json!({
        "operationId": id,
        "tags": [tag],
        "summary": summary,
        "parameters": params.iter().map(|p| param(p)).collect::<Vec<_>>(),
        "responses": responses,
    });
    if let (Some(req), Some(m)) = (request, o.as_object_mut()) {
        m.insert("requestBody".into(), req);
    }
    o
}

const BODY_ERRORS: &[&str] = &["413", "415", "422"];

fn paths() -> Value {
    let no_content = |d: &str| json!({ "description": d });
    json!({
        "/admin/api/v1/apps": {
            "get": op("listApps", "apps", "List apps", &[], None, ("200", ok("Every app of the org", "AppList")), &[]),
            "post": op("createApp", "apps", "Create an app; the consumer secret is returned once", &[], Some(body("AppCreate", true)),
                ("201", ok("The app, with its consumer secret (null for a public app)", "AppCreated")), &["409", "413", "415", "422"]),
        },
        "/admin/api/v1/apps/{id}": {
            "get": op("getApp", "apps", "Show an app", &["AppId"], None, ("200", ok("The app", "App")), &["404"]),
            "patch": op("updateApp", "apps", "Change an app's name, callback URLs, scopes or policy (merged)", &["AppId"], Some(body("AppUpdate", true)),
                ("200", ok("The updated app", "App")), &["404", "413", "415", "422"]),
            "delete": op("deleteApp", "apps", "Delete an app and everything issued to it", &["AppId"], None, ("204", no_content("Deleted")), &["404", "409"]),
        },
        "/admin/api/v1/apps/{id}/rotate-secret": {
            "post": op("rotateAppSecret", "apps", "Add a consumer secret (returned once); older ones stay valid unless retire_old", &["AppId"],
                Some(body("RotateSecret", false)), ("200", ok("The new secret", "SecretRotated")), &["404", "413", "415", "422"]),
        },
        "/admin/api/v1/apps/{id}/retire-old-secrets": {
            "post": op("retireOldAppSecrets", "apps", "Retire every consumer secret but the newest", &["AppId"], None,
                ("200", ok("How many secrets were retired", "SecretsRetired")), &["404"]),
        },
        "/admin/api/v1/apps/{id}/rotate-key": {
            "post": op("rotateAppKey", "apps", "Stage a consumer-key rotation: a new key identifies the app, the old one (previous_consumer_key) stays accepted until retire-old-key", &["AppId"], None,
                ("200", ok("The app with its new consumer_key and previous_consumer_key", "App")), &["404", "409"]),
        },
        "/admin/api/v1/apps/{id}/retire-old-key": {
            "post": op("retireOldAppKey", "apps", "End a staged key rotation: only the current consumer key identifies the app (idempotent)", &["AppId"], None,
                ("200", ok("The app, previous_consumer_key null", "App")), &["404"]),
        },
        "/admin/api/v1/apps/{id}/registration-tokens": {
            "post": op("createRegistrationToken", "apps", "Issue an initial access token for dynamic client registration (RFC 7591) with this app as registrar; the token is returned once", &["AppId"],
                Some(body("RegistrationTokenCreate", false)), ("201", ok("The token", "RegistrationTokenCreated")), &["404", "413", "415", "422"]),
        },
        "/admin/api/v1/users": {
            "get": op("listUsers", "users", "List users", &[], None, ("200", ok("Every user of the org", "UserList")), &[]),
            "post": op("createUser", "users", "Create a user (the password is never echoed)", &[], Some(body("UserCreate", true)),
                ("201", ok("The user", "User")), &["409", "413", "415", "422"]),
        },
        "/admin/api/v1/users/{id}": {
            "get": op("getUser", "users", "Show a user", &["UserId"], None, ("200", ok("The user", "User")), &["404"]),
            "patch": op("updateUser", "users", "Change a user's email, names or active flag (disabling revokes their tokens and sessions)", &["UserId"],
                Some(body("UserUpdate", true)), ("200", ok("The updated user", "User")), &["404", "409", "413", "415", "422"]),
        },
        "/admin/api/v1/users/{id}/password": {
            "post": op("setUserPassword", "users", "Set a user's password; ends their browser sessions", &["UserId"], Some(body("PasswordSet", true)),
                ("204", no_content("Password set")), &["404", "413", "415", "422"]),
        },
        "/admin/api/v1/users/{id}/permission-sets": {
            "get": op("listUserPermissionSets", "users", "The permission sets assigned to a user", &["UserId"], None,
                ("200", ok("The user's permission sets", "UserPermissionSets")), &["404"]),
        },
        "/admin/api/v1/users/{id}/permission-sets/{name}": {
            "get": op("getUserPermissionSet", "users", "Whether a permission set is assigned to a user (404 when not)", &["UserId", "PermissionSetName"], None,
                ("200", ok("Assigned; the user's permission sets", "UserPermissionSets")), &["404"]),
            "put": op("assignUserPermissionSet", "users", "Assign a permission set (idempotent)", &["UserId", "PermissionSetName"], None,
                ("200", ok("The user's permission sets", "UserPermissionSets")), &["404"]),
            "delete": op("unassignUserPermissionSet", "users", "Unassign a permission set (idempotent)", &["UserId", "PermissionSetName"], None,
                ("200", ok("The user's permission sets", "UserPermissionSets")), &["404"]),
        },
        "/admin/api/v1/permission-sets": {
            "get": op("listPermissionSets", "permission-sets", "List permission sets", &[], None, ("200", ok("Every permission set", "PermissionSetList")), &[]),
            "post": op("createPermissionSet", "permission-sets", "Create a permission set", &[], Some(body("PermissionSetCreate", true)),
                ("201", ok("The permission set", "PermissionSet")), &["409", "413", "415", "422"]),
        },
        "/admin/api/v1/permission-sets/{name}": {
            "get": op("getPermissionSet", "permission-sets", "Show a permission set", &["PermissionSetName"], None,
                ("200", ok("The permission set", "PermissionSet")), &["404"]),
            "delete": op("deletePermissionSet", "permission-sets", "Delete a permission set and its assignments", &["PermissionSetName"], None,
                ("204", no_content("Deleted")), &["404"]),
        },
        "/admin/api/v1/permission-sets/{name}/custom-permissions": {
            "get": op("listPermissionSetCustomPermissions", "permission-sets", "The custom permissions a permission set grants", &["PermissionSetName"], None,
                ("200", ok("The set's custom permissions", "PermissionSetCustomPermissions")), &["404"]),
        },
        "/admin/api/v1/permission-sets/{name}/custom-permissions/{permission}": {
            "get": op("getPermissionSetCustomPermission", "permission-sets", "Whether a permission set grants a custom permission (404 when not)", &["PermissionSetName", "GrantedCustomPermission"], None,
                ("200", ok("Granted; the set's custom permissions", "PermissionSetCustomPermissions")), &["404"]),
            "put": op("grantCustomPermission", "permission-sets", "Grant a custom permission through a permission set (idempotent); its holders' next tokens show it", &["PermissionSetName", "GrantedCustomPermission"], None,
                ("200", ok("The set's custom permissions", "PermissionSetCustomPermissions")), &["404"]),
            "delete": op("revokeCustomPermission", "permission-sets", "Stop granting a custom permission through a permission set (idempotent)", &["PermissionSetName", "GrantedCustomPermission"], None,
                ("200", ok("The set's custom permissions", "PermissionSetCustomPermissions")), &["404"]),
        },
        "/admin/api/v1/custom-permissions": {
            "get": op("listCustomPermissions", "custom-permissions", "List custom permissions", &[], None, ("200", ok("Every custom permission of the org", "CustomPermissionList")), &[]),
            "post": op("createCustomPermission", "custom-permissions", "Define a custom permission; apps list the ones they use in policy.custom_permissions", &[], Some(body("CustomPermissionCreate", true)),
                ("201", ok("The custom permission", "CustomPermission")), &["409", "413", "415", "422"]),
        },
        "/admin/api/v1/custom-permissions/{name}": {
            "get": op("getCustomPermission", "custom-permissions", "Show a custom permission", &["CustomPermissionName"], None,
                ("200", ok("The custom permission", "CustomPermission")), &["404"]),
            "patch": op("updateCustomPermission", "custom-permissions", "Change a custom permission's label or description", &["CustomPermissionName"], Some(body("CustomPermissionUpdate", true)),
                ("200", ok("The custom permission", "CustomPermission")), &["404", "413", "415", "422"]),
            "delete": op("deleteCustomPermission", "custom-permissions", "Delete a custom permission, its grants and its place in every app's custom_permissions", &["CustomPermissionName"], None,
                ("204", no_content("Deleted")), &["404"]),
        },
        "/admin/api/v1/org/settings": {
            "get": op("getOrgSettings", "org", "The org-wide OAuth settings", &[], None, ("200", ok("The settings", "OrgSettings")), &[]),
            "put": op("replaceOrgSettings", "org", "Replace the org-wide settings (absent fields take their defaults)", &[], Some(body("OrgSettings", true)),
                ("200", ok("The settings", "OrgSettings")), BODY_ERRORS),
            "patch": op("updateOrgSettings", "org", "Merge a partial object into the org-wide settings", &[], Some(body("OrgSettingsPatch", true)),
                ("200", ok("The settings", "OrgSettings")), BODY_ERRORS),
        },
        "/admin/api/v1/objects": {
            "get": op("listObjects", "objects", "List custom objects and standard objects with custom fields (every standard object too with all=true)", &["AllObjects"], None,
                ("200", ok("The objects with their custom fields (every field with all=true)", "ObjectSummaryList")), &[]),
            "post": op("createObject", "objects", "Define a custom object: a new table with the system fields and Name", &[], Some(body("ObjectCreate", true)),
                ("201", ok("The object", "Object")), &["409", "413", "415", "422"]),
        },
        "/admin/api/v1/objects/{name}": {
            "get": op("getObject", "objects", "Show a custom or standard object with every field", &["ObjectName"], None, ("200", ok("The object", "Object")), &["404"]),
        },
        "/admin/api/v1/objects/{name}/fields": {
            "post": op("addObjectField", "objects", "Add a custom field to a custom or standard object (a new column)", &["ObjectName"], Some(body("FieldCreate", true)),
                ("201", ok("The field", "FieldAdded")), &["404", "409", "413", "415", "422"]),
        },
    })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": r("Error") } } })
}

fn components() -> Value {
    let key = |d: &str| json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_CONTROLS, "description": d });
    json!({
        "securitySchemes": {
            "adminToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "An admin token from `valet admin-token create`, or any Valet access token of an admin user that carries the `full` scope.",
            }
        },
        "parameters": {
            "AppId": { "name": "id", "in": "path", "required": true, "schema": key("App id (15 or 18 characters), consumer key, or exact name") },
            "UserId": { "name": "id", "in": "path", "required": true, "schema": key("User id (15 or 18 characters) or username") },
            "PermissionSetName": { "name": "name", "in": "path", "required": true, "schema": key("Permission set name or id") },
            "CustomPermissionName": { "name": "name", "in": "path", "required": true, "schema": key("Custom permission API name (case-insensitive) or id") },
            "GrantedCustomPermission": { "name": "permission", "in": "path", "required": true, "schema": key("Custom permission API name (case-insensitive) or id") },
            "ObjectName": { "name": "name", "in": "path", "required": true, "schema": key("Object API name (Widget__c, Account), case-insensitive") },
            "AllObjects": { "name": "all", "in": "query", "required": false, "schema": { "type": "boolean", "default": false }, "description": "Also list every standard object, with all its fields" },
        },
        "responses": {
            "BadRequest": error_response("The request is malformed: invalid JSON, a wrong type, an unknown key (named in `field`), or a bad path parameter"),
            "Unauthorized": {
                "description": "No token, or the token is invalid, expired or revoked",
                "headers": { "WWW-Authenticate": { "schema": { "type": "string" }, "description": "`Bearer realm=\"valet-admin\"`" } },
                "content": { "application/json": { "schema": r("Error") } },
            },
            "Forbidden": error_response("The token is valid but not an admin credential (not an admin user, or no `full` scope)"),
            "NotFound": error_response("No such record"),
            "Conflict": error_response("The record (or an object or field of that name) already exists; or the built-in admin app cannot be deleted; or a built-in app's key cannot be rotated, or a key rotation is already staged; or an admin tried to disable their own account"),
            "PayloadTooLarge": error_response("The body exceeds 64 KiB"),
            "UnsupportedMediaType": error_response("The body is not application/json"),
            "Unprocessable": error_response("Well-formed, but the values are refused (a weak password, an http callback URL, an out-of-range lifetime), or an app name names several apps"),
        },
        "schemas": schemas(),
    })
}

fn schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let scopes: Vec<&str> = KNOWN_SCOPES.iter().map(|(k, _)| *k).collect();
    let list = |item: &str| json!({ "type": "object", "required": ["items"], "properties": { "items": { "type": "array", "items": r(item) } } });
    let app_props = json!({
        "id": { "type": "string", "description": "18-character id" },
        "name": { "type": "string" },
        "consumer_key": { "type": "string" },
        "previous_consumer_key": { "type": ["string", "null"], "description": "During a staged key rotation (rotate-key), the old key, still accepted until retire-old-key" },
        "is_public": { "type": "boolean", "description": "A public client has no consumer secret" },
        "callback_urls": { "type": "array", "items": { "type": "string" } },
        "scopes": { "type": "array", "items": r("Scope") },
        "policy": r("AppPolicy"),
        "created_at": time,
        "updated_at": time,
    });
    let app_required = [
        "id",
        "name",
        "consumer_key",
        "previous_consumer_key",
        "is_public",
        "callback_urls",
        "scopes",
        "policy",
        "created_at",
        "updated_at",
    ];
    let mut created_props = app_props.clone();
    if let Some(m) = created_props.as_object_mut() {
        m.insert("consumer_secret".into(), json!({ "type": ["string", "null"], "description": "Shown only here and by rotate-secret; null for a public app" }));
    }
    let mut created_required: Vec<&str> = app_required.to_vec();
    created_required.push("consumer_secret");
    let callback_urls = json!({
        "type": "array", "minItems": 1, "maxItems": 20,
        "items": { "type": "string", "minLength": 1, "maxLength": 2000, "pattern": "^(https://[a-z0-9.-]+|http://localhost(:[0-9]{1,5})?|[a-z][a-z0-9.]*:)/[A-Za-z0-9/._~-]*$" },
        "description": "Exact URLs: https, a custom scheme, or http on localhost/127.0.0.1/[::1]; no fragment, no wildcard; 2000 characters in all",
    });
    let name = json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_CONTROLS });
    let first_name = json!({ "type": "string", "maxLength": 40, "pattern": NO_CONTROLS });
    let last_name = json!({ "type": "string", "maxLength": 80, "pattern": NO_CONTROLS });
    let scope_list = json!({ "type": "array", "minItems": 1, "items": r("Scope") });
    let policy_patch = json!({
        "anyOf": [r("AppPolicyPatch"), { "type": "null" }],
        "description": "A full or partial policy, merged into the current one (JSON merge patch: objects merge, null resets a key to its default; a string for refresh_token_policy sets its kind). Unknown keys are refused with 400 naming the key.",
    });
    let user_props = json!({
        "id": { "type": "string" },
        "org_id": { "type": "string" },
        "username": { "type": "string" },
        "email": { "type": "string" },
        "first_name": { "type": "string" },
        "last_name": { "type": "string" },
        "active": { "type": "boolean" },
        "is_admin": { "type": "boolean" },
        "created_at": time,
        "updated_at": time,
    });
    let password = json!({ "type": "string", "minLength": 8, "maxLength": 1024, "writeOnly": true, "description": "Never echoed" });
    let email = json!({ "type": "string", "minLength": 3, "maxLength": 80, "pattern": "^[!-?A-~]+@[!-?A-~]+$", "description": "Printable ASCII with an @" });
    let minutes = json!({ "type": "integer", "minimum": 0, "maximum": 5270400 });
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let opt_string = json!({ "type": ["string", "null"] });
    let mut m = serde_json::Map::new();
    m.insert("Error".into(), json!({
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": { "type": "string", "enum": ["invalid_request", "invalid_json", "unauthorized", "forbidden", "not_found", "conflict", "payload_too_large", "unsupported_media_type", "validation_failed", "internal_error"] },
                "message": { "type": "string" },
                "field": { "type": "string", "description": "The request field at fault, as a dotted path (policy.id_token.valid_minutes)" },
            },
        }));
    m.insert("Scope".into(), json!({ "type": "string", "enum": scopes }));
    m.insert("App".into(), json!({ "type": "object", "required": app_required, "properties": app_props }));
    m.insert(
        "AppCreated".into(),
        json!({ "type": "object", "required": created_required, "properties": created_props }),
    );
    m.insert("AppList".into(), json!(list("App")));
    m.insert("AppCreate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "callback_urls"],
            "properties": {
                "name": name,
                "callback_urls": callback_urls,
                "scopes": { "anyOf": [scope_list, { "type": "null" }], "description": "Default: api refresh_token openid" },
                "is_public": { "type": "boolean", "default": false, "description": "No consumer secret; the secret requirements of the policy default to off" },
                "policy": policy_patch,
            },
        }));
    m.insert("AppUpdate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "properties": { "name": nullable(&name), "callback_urls": nullable(&callback_urls), "scopes": nullable(&scope_list), "policy": policy_patch },
        }));
    m.insert("RotateSecret".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "properties": { "retire_old": { "type": "boolean", "default": false, "description": "Retire every other secret at once" } },
        }));
    m.insert("SecretRotated".into(), json!({
            "type": "object",
            "required": ["app_id", "consumer_key", "consumer_secret", "retired_old"],
            "properties": { "app_id": { "type": "string" }, "consumer_key": { "type": "string" }, "consumer_secret": { "type": "string" }, "retired_old": { "type": "boolean" } },
        }));
    m.insert(
        "SecretsRetired".into(),
        json!({
            "type": "object",
            "required": ["app_id", "retired"],
            "properties": { "app_id": { "type": "string" }, "retired": { "type": "integer", "minimum": 0 } },
        }),
    );
    // Added below, apart: one more key in the AppPolicy json! would pass the macro's recursion limit.
    let custom_permissions = json!({ "type": "array", "items": { "type": "string" }, "description": "The custom permissions the app uses (each must be defined in the org; spelled as defined, repeats dropped). With id_token.include_custom_permissions, ID tokens, userinfo and the identity URL carry custom_permissions: each of these, true when the user holds it through a permission set (userinfo and the identity URL also for tokens with the custom_permissions scope); asset_tokens.include_custom_permissions does the same for asset tokens" });
    m.insert("AppPolicy".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "description": "Every per-app setting (docs/salesforce-wire.md §8.5). Absent keys take their defaults.",
            "properties": {
                "permitted_users": r("PermittedUsers"),
                "permission_sets": { "allOf": [strings], "description": "Permission sets whose users are pre-authorized (admin-approved apps)" },
                "ip_relaxation": r("IpRelaxation"),
                "refresh_token_policy": r("RefreshTokenPolicy"),
                "refresh_token_rotation": { "type": "boolean", "default": false },
                "refresh_token_grace_seconds": { "type": "integer", "minimum": 0, "maximum": 4294967295u64, "default": 30, "description": "With rotation: how long a retry with the previous token still gets the same successor instead of revoking the family" },
                "session_timeout_minutes": { "type": "integer", "minimum": 1, "maximum": 525600, "default": 120, "description": "Access-token lifetime" },
                "require_secret_for_web_server_flow": { "type": "boolean", "default": true },
                "require_secret_for_refresh_token_flow": { "type": "boolean", "default": true },
                "require_pkce": { "type": "boolean", "default": false },
                "enable_authorization_code_flow": { "type": "boolean", "default": true },
                "enable_user_agent_flow": { "type": "boolean", "default": true },
                "enable_device_flow": { "type": "boolean", "default": false },
                "enable_client_credentials_flow": { "type": "boolean", "default": false },
                "client_credentials_user": { "allOf": [opt_string], "description": "Username of the Run-As user of the client credentials flow" },
                "enable_code_credentials_flow": { "type": "boolean", "default": false },
                "enable_token_exchange_flow": { "type": "boolean", "default": false },
                "token_exchange_require_secret": { "type": "boolean", "default": true },
                "token_exchange_issuers": { "type": "array", "items": r("TrustedIssuer"), "description": "External identity providers whose tokens this app may exchange for Valet tokens (RFC 8693)" },
                "enable_jwt_bearer_flow": { "type": "boolean", "default": false },
                "jwt_certificate_pem": { "type": ["string", "null"], "maxLength": 4000, "description": "PEM certificate for the JWT bearer flow" },
                "jwt_access_tokens": { "type": "boolean", "default": false },
                "jwt_access_token_minutes": { "type": "integer", "enum": [1, 5, 10, 15, 30], "default": 30 },
                "jwt_access_token_alg": { "type": "string", "enum": ["RS256", "ES256"], "default": "RS256", "description": "How JWT access tokens are signed: RS256 as Salesforce, or ES256 (P-256, far cheaper to sign). ID tokens are RS256 either way" },
                "introspect_all_tokens": { "type": "boolean", "default": false },
                "id_token": r("IdTokenSettings"),
                "asset_tokens": r("AssetTokenSettings"),
                "single_logout_url": { "type": ["string", "null"], "pattern": "^https://", "description": "https only" },
                "post_logout_redirect_uris": { "type": "array", "items": { "type": "string" }, "description": "Where RP-initiated logout may send the browser afterwards (exact match; the callback URL rules apply)" },
        "backchannel_logout_url": { "type": ["string", "null"], "description": "https (http only for loopback)" },
        "registered_by": { "allOf": [opt_string], "description": "The registrar app whose initial access token registered this app (RFC 7591)" },
                "custom_attributes": { "type": "object", "additionalProperties": { "type": "string" } },
                "ip_ranges": { "allOf": [strings], "description": "a.b.c.d-e.f.g.h or CIDR" },
                "loopback_redirect_any_port": { "type": "boolean", "default": false, "description": "RFC 8252: an http loopback IP callback matches on any port" },
            },
        }));
    if let Some(props) = m.get_mut("AppPolicy").and_then(|p| p.get_mut("properties")).and_then(Value::as_object_mut) {
        props.insert("custom_permissions".into(), custom_permissions);
    }
    m.insert("TrustedIssuer".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["issuer"],
            "description": "An external issuer trusted for token exchange: its signing keys (jwks_url, jwks or certificate_pem), the audience its tokens must carry, and the claim that names the Valet user",
            "properties": {
                "issuer": { "type": "string" },
                "audience": opt_string,
                "user_claim": { "type": "string", "default": "sub" },
                "jwks_url": { "type": ["string", "null"], "description": "Fetched and cached for five minutes" },
                "jwks": { "description": "A static JWK set ({\"keys\": [...]}), kept as given" },
                "certificate_pem": opt_string,
            },
        }));
    m.insert("PermittedUsers".into(), json!({
            "type": "string",
            "enum": ["AllSelfAuthorized", "AdminApprovedPreAuthorized"],
            "default": "AllSelfAuthorized",
            "description": "AllSelfAuthorized: users approve the app on first use. AdminApprovedPreAuthorized: only users with one of permission_sets may use it.",
        }));
    m.insert("IpRelaxation".into(), json!({ "type": "string", "enum": ["Enforce", "EnforceRelaxRefresh", "Bypass2Factor", "Bypass"], "default": "Enforce" }));
    m.insert("RefreshTokenPolicy".into(), json!({
            "description": "How long refresh tokens live. A bare string sets only the kind.",
            "oneOf": [
                { "type": "object", "additionalProperties": false, "required": ["kind"], "properties": { "kind": { "const": "valid_until_revoked" } } },
                { "type": "object", "additionalProperties": false, "required": ["kind"], "properties": { "kind": { "const": "expire_immediately" } } },
                { "type": "object", "additionalProperties": false, "required": ["kind", "minutes"], "properties": { "kind": { "const": "expire_after" }, "minutes": minutes } },
                { "type": "object", "additionalProperties": false, "required": ["kind", "minutes"], "properties": { "kind": { "const": "expire_if_unused" }, "minutes": minutes } },
                { "type": "string", "enum": ["valid_until_revoked", "expire_immediately", "expire_after", "expire_if_unused"] },
            ],
        }));
    m.insert(
        "IdTokenSettings".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "valid_minutes": { "type": "integer", "minimum": 1, "maximum": 720, "default": 2 },
                "audiences": { "allOf": [strings], "description": "Audiences beside the consumer key" },
                "include_standard_claims": { "type": "boolean", "default": false },
                "include_custom_attributes": { "type": "boolean", "default": false },
                "include_custom_permissions": { "type": "boolean", "default": false },
            },
        }),
    );
    m.insert(
        "AssetTokenSettings".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "enabled": { "type": "boolean", "default": false },
                "valid_minutes": { "type": "integer", "minimum": 0, "maximum": 4294967295u64, "default": 1 },
                "audiences": strings,
                "include_custom_attributes": { "type": "boolean", "default": false },
                "include_custom_permissions": { "type": "boolean", "default": false },
            },
        }),
    );
    m.insert("User".into(), json!({
            "type": "object",
            "required": ["id", "org_id", "username", "email", "first_name", "last_name", "active", "is_admin", "created_at", "updated_at"],
            "properties": user_props,
        }));
    m.insert("UserList".into(), json!(list("User")));
    m.insert("UserCreate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["username", "password"],
            "properties": {
                "username": { "type": "string", "minLength": 3, "maxLength": 80, "pattern": "^[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+$", "description": "Shaped like an email address" },
                "password": password,
                "email": { "anyOf": [email, { "type": "null" }], "description": "Default: the username" },
                "first_name": nullable(&first_name),
                "last_name": nullable(&last_name),
                "is_admin": { "type": "boolean", "default": false },
            },
        }));
    m.insert("UserUpdate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "email": nullable(&email),
                "first_name": nullable(&first_name),
                "last_name": nullable(&last_name),
                "active": { "type": ["boolean", "null"], "description": "false revokes every token and session of the user" },
            },
        }));
    m.insert("PasswordSet".into(), json!({ "type": "object", "additionalProperties": false, "required": ["password"], "properties": { "password": password } }));
    m.insert("UserPermissionSets".into(), json!({
            "type": "object",
            "required": ["user_id", "username", "permission_sets"],
            "properties": { "user_id": { "type": "string" }, "username": { "type": "string" }, "permission_sets": strings },
        }));
    m.insert("PermissionSet".into(), json!({
            "type": "object",
            "required": ["id", "name", "label", "created_at"],
            "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "label": { "type": "string" }, "created_at": time },
        }));
    m.insert("PermissionSetList".into(), json!(list("PermissionSet")));
    m.insert("PermissionSetCreate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": 80, "pattern": "^[A-Za-z0-9_]+$" },
                "label": { "anyOf": [{ "type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_CONTROLS }, { "type": "null" }], "description": "Default: the name" },
            },
        }));
    let cp_name = json!({ "type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$", "description": "API name: a letter, then letters, digits and single underscores, not ending with one; unique in the org whatever its case" });
    let cp_label = json!({ "type": "string", "minLength": 1, "maxLength": 80, "pattern": NO_CONTROLS });
    let cp_description = json!({ "type": "string", "maxLength": 255, "pattern": NO_CONTROLS });
    m.insert("CustomPermission".into(), json!({
            "type": "object",
            "required": ["id", "name", "label", "description", "created_at"],
            "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "label": { "type": "string" }, "description": opt_string, "created_at": time },
        }));
    m.insert("CustomPermissionList".into(), json!(list("CustomPermission")));
    m.insert(
        "CustomPermissionCreate".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": cp_name,
                "label": { "anyOf": [cp_label, { "type": "null" }], "description": "Default: the name" },
                "description": { "anyOf": [cp_description, { "type": "null" }] },
            },
        }),
    );
    m.insert("CustomPermissionUpdate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "label": { "anyOf": [cp_label, { "type": "null" }], "description": "Absent or null: unchanged" },
                "description": { "anyOf": [cp_description, { "type": "null" }], "description": "Absent: unchanged; null or empty: removed" },
            },
        }));
    m.insert(
        "PermissionSetCustomPermissions".into(),
        json!({
            "type": "object",
            "required": ["permission_set", "custom_permissions"],
            "properties": { "permission_set": { "type": "string" }, "custom_permissions": strings },
        }),
    );
    m.insert("OrgSettings".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "description": "Setup > OAuth and OpenID Connect Settings",
            "properties": {
                "allow_username_password_flow": { "type": "boolean", "default": false },
                "allow_user_agent_flow": { "type": "boolean", "default": true, "description": "Blocking it also blocks the hybrid token flow" },
                "allow_code_credentials_flow": { "type": "boolean", "default": false },
                "require_pkce": { "type": "boolean", "default": false, "description": "Require PKCE for supported authorization flows, org-wide" },
                "idle_refresh_token_ttl_days": { "type": ["integer", "null"], "minimum": 0, "maximum": 4294967295u64 },
            },
        }));
    m.insert("RegistrationTokenCreate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "properties": { "valid_minutes": { "type": ["integer", "null"], "minimum": 1, "maximum": 5270400, "description": "Lifetime; absent or null: no expiry" } },
        }));
    m.insert("RegistrationTokenCreated".into(), json!({
            "type": "object",
            "required": ["registrar_id", "registrar_consumer_key", "initial_access_token", "valid_minutes"],
            "properties": {
                "registrar_id": { "type": "string" },
                "registrar_consumer_key": { "type": "string" },
                "initial_access_token": { "type": "string", "description": "Shown only here: `Authorization: Bearer <token>` on POST /services/oauth2/register" },
                "valid_minutes": { "type": ["integer", "null"] },
            },
        }));
    let custom_name = json!({ "type": "string", "minLength": 4, "maxLength": 40, "pattern": "^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c$", "description": "Letters, digits and single underscores, starting with a letter, ending in __c, at most 40 characters" });
    let label = json!({ "type": "string", "minLength": 1, "maxLength": 40, "pattern": NO_CONTROLS });
    let field_types = [
        "text", "textarea", "number", "currency", "percent", "checkbox", "date", "datetime", "email", "phone", "url",
        "picklist", "lookup",
    ];
    m.insert("ObjectSummary".into(), json!({
            "type": "object",
            "required": ["name", "label", "key_prefix", "table", "custom", "fields"],
            "properties": {
                "name": { "type": "string" },
                "label": { "type": "string" },
                "key_prefix": { "type": "string", "description": "The first three characters of its record IDs" },
                "table": { "type": "string" },
                "custom": { "type": "boolean" },
                "fields": { "type": "array", "items": r("FieldSummary"), "description": "Custom fields (and Name of a custom object); every field with all=true" },
            },
        }));
    m.insert("FieldSummary".into(), json!({
            "type": "object",
            "required": ["name", "type", "required", "reference_to"],
            "properties": { "name": { "type": "string" }, "type": { "type": "string" }, "required": { "type": "boolean" }, "reference_to": opt_string },
        }));
    m.insert("ObjectSummaryList".into(), json!(list("ObjectSummary")));
    m.insert("Object".into(), json!({
            "type": "object",
            "required": ["name", "label", "label_plural", "key_prefix", "table", "custom", "read_only", "fields"],
            "properties": {
                "name": { "type": "string" },
                "label": { "type": "string" },
                "label_plural": { "type": "string" },
                "key_prefix": { "type": "string", "description": "The first three characters of its record IDs" },
                "table": { "type": "string" },
                "custom": { "type": "boolean" },
                "read_only": { "type": "boolean", "description": "User and Organization reflect Valet's own tables and take no fields" },
                "fields": { "type": "array", "items": r("Field"), "description": "Every field: system, standard and custom" },
            },
        }));
    let field_props = json!({
        "name": { "type": "string" },
        "label": { "type": "string" },
        "type": { "type": "string", "description": "The add-field vocabulary (text, number, checkbox, lookup, ...); system fields also show id and int" },
        "custom": { "type": "boolean" },
        "required": { "type": "boolean", "description": "Checkboxes are always required (never null)" },
        "length": { "type": "integer", "minimum": 0, "description": "Characters, for text types; 0 otherwise" },
        "precision": { "type": "integer", "minimum": 0, "description": "Total digits, for numbers; 0 otherwise" },
        "scale": { "type": "integer", "minimum": 0, "description": "Digits after the point, for numbers" },
        "values": strings,
        "reference_to": opt_string,
        "relationship_name": opt_string,
    });
    let field_required = [
        "name",
        "label",
        "type",
        "custom",
        "required",
        "length",
        "precision",
        "scale",
        "values",
        "reference_to",
        "relationship_name",
    ];
    let mut added_props = field_props.clone();
    if let Some(p) = added_props.as_object_mut() {
        p.insert("object".into(), json!({ "type": "string", "description": "The object's API name as defined" }));
    }
    let mut added_required = field_required.to_vec();
    added_required.push("object");
    m.insert("Field".into(), json!({ "type": "object", "required": field_required, "properties": field_props }));
    m.insert("FieldAdded".into(), json!({ "type": "object", "required": added_required, "properties": added_props }));
    m.insert("ObjectCreate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": custom_name,
                "label": { "anyOf": [label, { "type": "null" }], "description": "Default: the name without __c, underscores as spaces" },
                "label_plural": { "anyOf": [label, { "type": "null" }], "description": "Default: the label + \"s\"" },
            },
        }));
    m.insert("FieldCreate".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "type"],
            "properties": {
                "name": custom_name,
                "type": { "type": "string", "enum": field_types, "description": "As `valet object add-field --type`, which also accepts string, double, int, integer, boolean and reference" },
                "label": { "anyOf": [label, { "type": "null" }], "description": "Default: the name without __c, underscores as spaces" },
                "length": { "type": ["integer", "null"], "minimum": 1, "maximum": 131072, "description": "Text types: at most 255 (textarea 131072); default 255, email 80, textarea 32768" },
                "precision": { "type": ["integer", "null"], "minimum": 1, "maximum": 18, "description": "Numbers: total digits; default 18" },
                "scale": { "type": ["integer", "null"], "minimum": 0, "maximum": 18, "description": "Numbers: digits after the point, at most the precision; default 0, currency 2" },
                "required": { "type": "boolean", "default": false, "description": "Required on create and update" },
                "values": { "anyOf": [{ "type": "array", "items": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_CONTROLS } }, { "type": "null" }], "description": "Picklist values (required for a picklist; a restricted picklist)" },
                "reference_to": { "anyOf": [{ "type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_CONTROLS }, { "type": "null" }], "description": "The target object of a lookup (required for a lookup)" },
            },
        }));
    for (full, patch) in [("AppPolicy", "AppPolicyPatch"), ("OrgSettings", "OrgSettingsPatch")] {
        if let Some(schema) = m.get(full).map(patch_schema) {
            m.insert(patch.into(), schema);
        }
    }
    Value::Object(m)
}

/// `v` or null.
fn nullable(v: &Value) -> Value {
    json!({ "anyOf": [v, { "type": "null" }] })
}

/// The merge-patch form of an object schema: every property may also be null, which resets it
/// to its default.
fn patch_schema(full: &Value) -> Value {
    let mut s = full.clone();
    if let Some(obj) = s.as_object_mut() {
        obj.remove("required");
        obj.insert("description".into(), json!("A partial object merged into the current one (JSON merge patch): absent keys stay, null resets a key to its default, nested objects merge. Unknown keys are refused with 400 naming the key."));
        if let Some(Value::Object(props)) = obj.get_mut("properties") {
            for v in props.values_mut() {
                *v = nullable(v);
            }
        }
    }
    s
}

fn build() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Valet admin API",
            "version": "1",
            "description": "Manage apps, users, permission sets, custom permissions, org settings and the data API's custom objects. Every change goes through the same engine functions as the `valet` CLI. Errors are {\"error\", \"message\", \"field\"?}.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "adminToken": [] }],
        "tags": [
            { "name": "apps" }, { "name": "users" }, { "name": "permission-sets" }, { "name": "custom-permissions" }, { "name": "org" }, { "name": "objects" },
        ],
        "paths": paths(),
        "components": components(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use valet_core::model::{AppPolicy, OrgSettings};

    fn props(schema: &str) -> Vec<String> {
        let mut v: Vec<String> =
            document()["components"]["schemas"][schema]["properties"].as_object().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    fn fields<T: serde::Serialize>(t: &T) -> Vec<String> {
        let mut v: Vec<String> = serde_json::to_value(t).unwrap().as_object().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    #[test]
    fn schemas_name_every_field_of_the_rust_types() {
        let p = AppPolicy::default();
        assert_eq!(props("AppPolicy"), fields(&p));
        assert_eq!(props("IdTokenSettings"), fields(&p.id_token));
        assert_eq!(props("AssetTokenSettings"), fields(&p.asset_tokens));
        assert_eq!(props("OrgSettings"), fields(&OrgSettings::default()));
        let issuer: valet_core::model::TrustedIssuer =
            serde_json::from_value(serde_json::json!({"issuer": "https://idp.example"})).unwrap();
        assert_eq!(props("TrustedIssuer"), fields(&issuer));
        assert_eq!(props("AppPolicyPatch"), props("AppPolicy"));
    }

    #[test]
    fn response_schemas_name_every_field_of_the_views() {
        use crate::admin::views::*;
        use valet_data::registry::{FieldSummary, ObjectSummary};
        let app = AppView {
            id: String::new(),
            name: String::new(),
            consumer_key: String::new(),
            previous_consumer_key: Some(String::new()),
            is_public: false,
            callback_urls: vec![],
            scopes: vec![],
            policy: AppPolicy::default(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        assert_eq!(props("App"), fields(&app));
        assert_eq!(props("AppCreated"), fields(&AppCreated { app, consumer_secret: None }));
        let objects = valet_data::schema::standard_objects();
        let object = ObjectView::from(&objects[0]);
        assert_eq!(props("Object"), fields(&object));
        let field = FieldView::from(&objects[0].fields[0]);
        assert_eq!(props("Field"), fields(&field));
        assert_eq!(props("FieldAdded"), fields(&FieldAdded { object: String::new(), field }));
        let summary = ObjectSummary {
            name: String::new(),
            label: String::new(),
            key_prefix: String::new(),
            table: String::new(),
            custom: true,
            fields: vec![FieldSummary {
                name: String::new(),
                field_type: String::new(),
                required: false,
                reference_to: None,
            }],
        };
        let view = ObjectSummaryView::from(&summary);
        assert_eq!(props("ObjectSummary"), fields(&view));
        assert_eq!(props("FieldSummary"), fields(&view.fields[0]));
        let token = RegistrationTokenCreated {
            registrar_id: String::new(),
            registrar_consumer_key: String::new(),
            initial_access_token: String::new(),
            valid_minutes: None,
        };
        assert_eq!(props("RegistrationTokenCreated"), fields(&token));
        let cp = CustomPermissionView {
            id: String::new(),
            name: String::new(),
            label: String::new(),
            description: None,
            created_at: String::new(),
        };
        assert_eq!(props("CustomPermission"), fields(&cp));
        let granted = PermissionSetCustomPermissions { permission_set: String::new(), custom_permissions: vec![] };
        assert_eq!(props("PermissionSetCustomPermissions"), fields(&granted));
    }

    #[test]
    fn required_lists_name_documented_properties() {
        for (name, schema) in document()["components"]["schemas"].as_object().unwrap() {
            let Some(required) = schema["required"].as_array() else { continue };
            for r in required {
                assert!(
                    schema["properties"].get(r.as_str().unwrap()).is_some(),
                    "{name}: required {r} is not a property"
                );
            }
        }
    }

    #[test]
    fn every_operation_is_documented() {
        let paths = document()["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut expected: Vec<(String, String)> =
            OPERATIONS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        expected.sort();
        assert_eq!(documented, expected);
    }
}
