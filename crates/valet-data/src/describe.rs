//! `describeGlobal`, `sObject describe` and basic information, in Salesforce's shapes (salesforce-wire.md
//! §9.3, §9.4). Clients pass most flags through, so the common ones are all present.

use serde_json::{json, Value as Json};

use crate::error::DataResult;
use crate::records::object;
use crate::schema::{FieldDef, FieldType, ObjectDef, Storage};
use crate::{Caller, DataApi};

fn urls(o: &ObjectDef, version: &str) -> Json {
    let base = format!("/services/data/v{version}/sobjects/{}", o.name);
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

/// The entry of an object in describeGlobal (also `objectDescribe` of basic information).
pub fn global_entry(o: &ObjectDef, version: &str) -> Json {
    let w = !o.read_only();
    json!({
        "activateable": false,
        "associateEntityType": null,
        "associateParentEntity": null,
        "createable": w,
        "custom": o.custom,
        "customSetting": false,
        "deepCloneable": false,
        "deletable": w,
        "deprecatedAndHidden": false,
        "feedEnabled": false,
        "hasSubtypes": false,
        "isInterface": false,
        "isSubtype": false,
        "keyPrefix": o.key_prefix,
        "label": o.label,
        "labelPlural": o.label_plural,
        "layoutable": true,
        "mergeable": w && !o.custom,
        "mruEnabled": true,
        "name": o.name,
        "queryable": true,
        "replicateable": true,
        "retrieveable": true,
        "searchable": true,
        "triggerable": true,
        "undeletable": w,
        "updateable": w,
        "urls": urls(o, version),
    })
}

fn field_json(o: &ObjectDef, f: &FieldDef) -> Json {
    let text = f.storage() == Storage::Text;
    let id_like = f.storage() == Storage::Id;
    let numeric = matches!(f.storage(), Storage::Int | Storage::Real);
    let length = if text || id_like { f.length } else { 0 };
    let picklist: Vec<Json> = f
        .picklist
        .iter()
        .map(|v| {
            let is_default = matches!(&f.default, Some(crate::schema::DefaultValue::Text(d)) if d == v);
            json!({"active": true, "defaultValue": is_default, "label": v, "validFor": null, "value": v})
        })
        .collect();
    json!({
        "aggregatable": f.ftype != FieldType::TextArea,
        "autoNumber": f.auto == crate::schema::Auto::CaseNumber,
        "byteLength": if text || id_like { length * 3 } else { 0 },
        "calculated": false,
        "caseSensitive": false,
        "createable": f.createable && !o.read_only(),
        "custom": f.custom,
        "defaultValue": match &f.default {
            Some(crate::schema::DefaultValue::Bool(b)) => json!(b),
            _ => Json::Null,
        },
        "defaultedOnCreate": f.default.is_some() || f.is("OwnerId") || !f.createable && f.required,
        "dependentPicklist": false,
        "digits": if f.ftype == FieldType::Int { f.precision } else { 0 },
        "externalId": false,
        "filterable": f.ftype != FieldType::TextArea,
        "groupable": !numeric && f.ftype != FieldType::TextArea && f.storage() != Storage::DateTime,
        "htmlFormatted": false,
        "idLookup": f.is("Id") || (f.name_field && f.createable && o.name == "User"),
        "label": f.label,
        "length": length,
        "name": f.name,
        "nameField": f.name_field,
        "namePointing": false,
        "nillable": !f.required,
        "permissionable": !f.required,
        "picklistValues": picklist,
        "polymorphicForeignKey": false,
        "precision": if matches!(f.storage(), Storage::Real) { f.precision } else { 0 },
        "referenceTo": f.reference_to.iter().collect::<Vec<_>>(),
        "relationshipName": f.relationship_name,
        "restrictedPicklist": f.restricted_picklist,
        "scale": if matches!(f.storage(), Storage::Real) { f.scale } else { 0 },
        "soapType": f.ftype.soap_type(),
        "sortable": f.ftype != FieldType::TextArea,
        "type": f.ftype.describe_name(),
        "unique": f.is("Id"),
        "updateable": f.updateable && !o.read_only(),
    })
}

impl DataApi {
    /// `GET /sobjects`.
    pub async fn describe_global(&self, caller: &Caller, version: &str) -> DataResult<Json> {
        let schema = self.schema(&caller.org_id).await?;
        let mut objs: Vec<&ObjectDef> = schema.objects.iter().collect();
        objs.sort_by_key(|o| o.name.to_ascii_lowercase());
        Ok(json!({
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": objs.iter().map(|o| global_entry(o, version)).collect::<Vec<_>>(),
        }))
    }

    /// `GET /sobjects/<Type>/describe`.
    pub async fn describe(&self, caller: &Caller, name: &str, version: &str) -> DataResult<Json> {
        let schema = self.schema(&caller.org_id).await?;
        let o = object(&schema, name)?;
        let mut d = global_entry(o, version);
        let children: Vec<Json> = schema
            .objects
            .iter()
            .flat_map(|c| {
                c.fields
                    .iter()
                    .filter(move |f| {
                        f.reference_to.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(&o.name)) && !c.read_only()
                    })
                    .map(move |f| {
                        json!({
                            "cascadeDelete": false,
                            "childSObject": c.name,
                            "deprecatedAndHidden": false,
                            "field": f.name,
                            "relationshipName": null,
                            "restrictedDelete": false,
                        })
                    })
            })
            .collect();
        if let Json::Object(m) = &mut d {
            m.insert("fields".into(), Json::Array(o.fields.iter().map(|f| field_json(o, f)).collect()));
            m.insert("childRelationships".into(), Json::Array(children));
            m.insert("recordTypeInfos".into(), json!([]));
            m.insert(
                "supportedScopes".into(),
                json!([{"label": format!("All {}", o.label_plural), "name": "everything"}]),
            );
        }
        Ok(d)
    }

    /// `GET /sobjects/<Type>`: the describeGlobal entry and the ten most recent records.
    pub async fn basic_info(&self, caller: &Caller, name: &str, version: &str) -> DataResult<Json> {
        let schema = self.schema(&caller.org_id).await?;
        let o = object(&schema, name)?;
        let recent = self.recent_items(caller, o, version).await?;
        Ok(json!({"objectDescribe": global_entry(o, version), "recentItems": recent}))
    }
}
