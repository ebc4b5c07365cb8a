//! Custom permissions (Setup > Custom Permissions): named capabilities an org defines, users
//! hold through the permission sets that grant them, and apps list (the connected app's
//! "Custom Permissions" related list). With the app's `include_custom_permissions` switch, its
//! ID tokens, identity and userinfo answers (and asset tokens, by their own switch) carry
//! `custom_permissions`: each permission the app lists, true when the user holds it.

use serde_json::{Map, Value};

use crate::ids::{KeyPrefix, SfId};
use crate::model::*;

use super::admin::AdminError;
use super::{Engine, EngineError};

/// Salesforce's limit on API names.
const MAX_NAME: usize = 40;
const MAX_LABEL: usize = 80;
const MAX_DESCRIPTION: usize = 255;

/// An API name as Salesforce allows: a letter first, then letters, digits and single
/// underscores, not ending in one.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !name.contains("__")
        && !name.ends_with('_')
}

fn invalid_name(name: &str) -> AdminError {
    AdminError::Invalid(format!(
        "{name:?} is not a custom permission name: up to {MAX_NAME} letters, digits and single underscores, \
         starting with a letter and not ending with an underscore"
    ))
}

/// Trimmed free text of `min..=max` characters without control characters.
fn text(field: &str, s: &str, min: usize, max: usize) -> Result<String, AdminError> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min || n > max || t.chars().any(char::is_control) {
        return Err(AdminError::Invalid(format!(
            "{field} must be {min} to {max} characters without control characters"
        )));
    }
    Ok(t.to_string())
}

fn description(d: Option<&str>) -> Result<Option<String>, AdminError> {
    let d = d.map(|d| text("description", d, 0, MAX_DESCRIPTION)).transpose()?;
    Ok(d.filter(|d| !d.is_empty()))
}

impl Engine {
    /// Defines a custom permission; the label defaults to the name.
    pub async fn create_custom_permission(
        &self,
        name: &str,
        label: Option<&str>,
        desc: Option<&str>,
    ) -> Result<CustomPermission, AdminError> {
        let name = name.trim();
        if !valid_name(name) {
            return Err(invalid_name(name));
        }
        let label = text("label", label.unwrap_or(name), 1, MAX_LABEL)?;
        let org = self.default_org().await?;
        let cp = CustomPermission {
            id: SfId::generate(KeyPrefix::CustomPermission, self.rng()),
            org_id: org.id,
            name: name.to_string(),
            label,
            description: description(desc)?,
            created_at: self.clock.now_ms(),
        };
        self.store.insert_custom_permission(&cp).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => AdminError::Conflict(format!("custom permission {name}")),
            other => other.into(),
        })?;
        Ok(cp)
    }

    pub async fn list_custom_permissions(&self) -> Result<Vec<CustomPermission>, AdminError> {
        let org = self.default_org().await?;
        Ok(self.store.list_custom_permissions(&org.id).await?)
    }

    /// By id or API name (names compare ignoring case, as they are unique that way).
    pub async fn find_custom_permission(&self, key: &str) -> Result<CustomPermission, AdminError> {
        self.list_custom_permissions()
            .await?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(key) || c.id.as_str() == key)
            .ok_or_else(|| AdminError::NotFound(format!("custom permission {key}")))
    }

    /// Changes the label and, when `desc` is given, the description (an empty one removes it).
    pub async fn update_custom_permission(
        &self,
        key: &str,
        label: Option<&str>,
        desc: Option<&str>,
    ) -> Result<CustomPermission, AdminError> {
        let mut cp = self.find_custom_permission(key).await?;
        if let Some(l) = label {
            cp.label = text("label", l, 1, MAX_LABEL)?;
        }
        if desc.is_some() {
            cp.description = description(desc)?;
        }
        self.store.update_custom_permission(&cp).await?;
        Ok(cp)
    }

    /// Deletes the permission, its grants, and its place in every app's list (as Salesforce
    /// removes a deleted permission from connected apps).
    pub async fn delete_custom_permission(&self, key: &str) -> Result<CustomPermission, AdminError> {
        let cp = self.find_custom_permission(key).await?;
        self.store.delete_custom_permission(&cp.id).await?;
        let now = self.clock.now_ms();
        for app in self.store.list_apps(&cp.org_id).await? {
            if app.policy.custom_permissions.iter().any(|n| n.eq_ignore_ascii_case(&cp.name)) {
                let mut policy = app.policy;
                policy.custom_permissions.retain(|n| !n.eq_ignore_ascii_case(&cp.name));
                let patch = crate::store::AppPatch { policy: Some(policy), ..Default::default() };
                self.store.update_app(&app.id, &patch, now).await?;
            }
        }
        Ok(cp)
    }

    /// Grants (or with `grant` false, revokes) a custom permission through a permission set;
    /// both are idempotent. Returns the names the set grants afterwards.
    pub async fn grant_custom_permission(
        &self,
        permset: &str,
        permission: &str,
        grant: bool,
    ) -> Result<Vec<String>, AdminError> {
        let ps = self.find_permission_set(permset).await?;
        let cp = self.find_custom_permission(permission).await?;
        if grant {
            self.store.grant_custom_permission(&ps.id, &cp.id).await?;
        } else {
            self.store.revoke_custom_permission(&ps.id, &cp.id).await?;
        }
        Ok(self.store.permission_set_custom_permissions(&ps.id).await?)
    }

    /// The names of the custom permissions a permission set grants.
    pub async fn permission_set_custom_permissions(&self, permset: &str) -> Result<Vec<String>, AdminError> {
        let ps = self.find_permission_set(permset).await?;
        Ok(self.store.permission_set_custom_permissions(&ps.id).await?)
    }

    /// The `custom_permissions` claim for this app and user: every permission the app lists,
    /// `true` when one of the user's permission sets grants it. `None` when the app lists none
    /// (the claim is then left out). Whether to include it is the caller's switch.
    pub async fn custom_permissions_claim(
        &self,
        app: &App,
        user: &User,
    ) -> Result<Option<Map<String, Value>>, EngineError> {
        if app.policy.custom_permissions.is_empty() {
            return Ok(None);
        }
        let held = self.store.user_custom_permissions(&user.id).await?;
        let claim = app
            .policy
            .custom_permissions
            .iter()
            .map(|name| (name.clone(), Value::Bool(held.iter().any(|h| h.eq_ignore_ascii_case(name)))))
            .collect();
        Ok(Some(claim))
    }

    /// The `custom_permissions` member of identity and userinfo answers: present when the
    /// token's app has `id_token.include_custom_permissions` on, or (as on Salesforce) when the
    /// token carries the `custom_permissions` scope.
    pub(crate) async fn identity_custom_permissions(
        &self,
        app_id: &SfId,
        scopes: &crate::scope::ScopeSet,
        user: &User,
    ) -> Result<Option<Map<String, Value>>, EngineError> {
        let Some(app) = self.store.get_app(app_id).await? else { return Ok(None) };
        if !(app.policy.id_token.include_custom_permissions || scopes.contains("custom_permissions")) {
            return Ok(None);
        }
        self.custom_permissions_claim(&app, user).await
    }

    /// Checks an app policy's `custom_permissions` against the org's definitions and spells
    /// each name as defined, dropping repeats. Names the app already listed (`current`) pass
    /// even when no longer defined, so a stale entry never blocks an unrelated edit.
    pub(crate) async fn resolve_app_custom_permissions(
        &self,
        org: &SfId,
        policy: &mut AppPolicy,
        current: &[String],
    ) -> Result<(), AdminError> {
        if policy.custom_permissions.is_empty() {
            return Ok(());
        }
        if let Some(bad) = policy.custom_permissions.iter().find(|n| !valid_name(n)) {
            return Err(invalid_name(bad));
        }
        let defined = self.store.list_custom_permissions(org).await?;
        let mut resolved: Vec<String> = Vec::with_capacity(policy.custom_permissions.len());
        for name in &policy.custom_permissions {
            let spelled = match defined.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
                Some(c) => c.name.clone(),
                None if current.iter().any(|c| c == name) => name.clone(),
                None => {
                    return Err(AdminError::Invalid(format!(
                        "custom_permissions: {name} is not a custom permission of the org (create it first)"
                    )))
                }
            };
            if !resolved.iter().any(|r| r.eq_ignore_ascii_case(&spelled)) {
                resolved.push(spelled);
            }
        }
        policy.custom_permissions = resolved;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_salesforce_api_names() {
        for ok in ["Can_Approve", "A", "x1", "Edit_2_Records", &"a".repeat(40)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "_a", "a_", "a__b", "Can Approve", "Can-Approve", "é", &"a".repeat(41)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
