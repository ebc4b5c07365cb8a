//! Discovery and the small fixed resources: versions, resources by version, limits, and the
//! Connect API's `chatter/users/me`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::auth::Authed;
use super::{json_response, latest, ApiResult, Version, OLDEST_VERSION};
use crate::AppState;

/// Salesforce's release name of a version: three releases a year, Winter '11 = v20.0.
fn label(v: u32) -> String {
    let k = v - OLDEST_VERSION;
    let season = match k % 3 {
        0 => "Winter",
        1 => "Spring",
        _ => "Summer",
    };
    let year = 11 + k / 3;
    format!("{season} '{:02}", year % 100)
}

/// `GET /services/data`: every version served, oldest first (salesforce-wire.md §9.1).
pub fn versions(headers: &HeaderMap) -> Response {
    let list: Vec<Value> = (OLDEST_VERSION..=latest())
        .map(|v| json!({"label": label(v), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")}))
        .collect();
    json_response(StatusCode::OK, headers, &list)
}

/// `GET /services/data/vNN.0/`: resource name → URL; `identity` is absolute (jsforce reads it).
pub fn resources(state: &AppState, authed: &Authed, v: &Version, headers: &HeaderMap) -> Response {
    let base = format!("/services/data/v{}", v.as_str());
    let mut m = Map::new();
    for name in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "jsonxform",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "wave",
        "iot",
        "analytics",
        "search",
        "composite",
        "parameterizedSearch",
        "theme",
        "nouns",
        "recent",
        "licensing",
        "limits",
        "process",
        "query",
        "sobjects",
        "actions",
        "support",
        "connect",
    ] {
        m.insert(name.into(), json!(format!("{base}/{name}")));
    }
    m.insert("identity".into(), json!(state.engine.identity_url(&authed.ctx.org_id, &authed.ctx.user.id)));
    json_response(StatusCode::OK, headers, &Value::Object(m))
}

/// `GET /limits`: Valet does not meter the API; the shape is what clients read.
pub fn limits(headers: &HeaderMap) -> Response {
    let lim = |max: u64| json!({"Max": max, "Remaining": max});
    let body = json!({
        "ConcurrentAsyncGetReportInstances": lim(200),
        "ConcurrentSyncReportRuns": lim(20),
        "DailyApiRequests": lim(15000),
        "DailyAsyncApexExecutions": lim(250000),
        "DailyBulkApiBatches": lim(15000),
        "DailyBulkV2QueryJobs": lim(10000),
        "DailyStreamingApiEvents": lim(10000),
        "DataStorageMB": lim(5),
        "FileStorageMB": lim(20),
        "HourlyODataCallout": lim(10000),
        "SingleEmail": lim(15),
    });
    json_response(StatusCode::OK, headers, &body)
}

/// `GET /chatter/users/me`: the caller as a Connect API user.
pub async fn chatter_me(state: &AppState, authed: &Authed, v: &Version, headers: &HeaderMap) -> ApiResult {
    let u = &authed.ctx.user;
    let base = &state.engine.config().instance_url;
    let org = state
        .engine
        .store()
        .get_org(&authed.ctx.org_id)
        .await
        .map_err(|e| super::error::ApiError::from(valet_data::DataError::internal(e)))?;
    let nickname = u.username.split('@').next().unwrap_or(&u.username).to_string();
    let body = json!({
        "aboutMe": null,
        "additionalLabel": null,
        "address": null,
        "bannerPhoto": null,
        "communityNickname": nickname,
        "companyName": org.map(|o| o.name),
        "displayName": u.display_name(),
        "email": u.email,
        "firstName": u.first_name,
        "id": u.id.as_str(),
        "isActive": u.active,
        "isInThisCommunity": true,
        "lastName": u.last_name,
        "managerId": null,
        "managerName": null,
        "motif": {"color": "1797C0", "largeIconUrl": "/img/icon/profile64.png", "mediumIconUrl": "/img/icon/profile32.png", "smallIconUrl": "/img/icon/profile16.png", "svgIconUrl": null},
        "mySubscription": null,
        "name": u.display_name(),
        "outOfOffice": {"message": ""},
        "photo": {
            "fullEmailPhotoUrl": format!("{base}/profilephoto/005/F?u={}", u.id),
            "largePhotoUrl": format!("{base}/profilephoto/005/F?u={}", u.id),
            "photoVersionId": null,
            "smallPhotoUrl": format!("{base}/profilephoto/005/T?u={}", u.id),
            "standardEmailPhotoUrl": format!("{base}/profilephoto/005/T?u={}", u.id),
            "url": format!("/services/data/v{}/connect/user-profiles/{}/photo", v.as_str(), u.id),
        },
        "reputation": null,
        "title": null,
        "type": "User",
        "url": format!("/services/data/v{}/chatter/users/{}", v.as_str(), u.id),
        "userType": "Internal",
        "username": u.username,
    });
    Ok(json_response(StatusCode::OK, headers, &body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels() {
        assert_eq!(super::label(20), "Winter '11");
        assert_eq!(super::label(62), "Winter '25");
        assert_eq!(super::label(60), "Spring '24");
        assert_eq!(super::label(61), "Summer '24");
    }
}
