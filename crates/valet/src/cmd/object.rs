//! `valet object create|add-field|list`: custom objects and fields of the REST data API.
//! Each definition becomes real DDL (`CREATE TABLE` / `ALTER TABLE ... ADD COLUMN`) in the
//! same transaction as its registry row; a running server sees it on its next request.

use std::sync::Arc;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::json;
use valet_core::clock::SystemClock;
use valet_core::rand::OsRandom;
use valet_data::{DataApi, DataError, NewField, NewObject};

use crate::cli::JsonArg;
use crate::config::Config;
use crate::output;
use crate::{setup, CliResult};

#[derive(Debug, Subcommand)]
pub enum ObjectCmd {
    /// Define a custom object, e.g. `valet object create Widget__c --label Widget`
    Create(ObjectCreate),
    /// Add a custom field, e.g. `valet object add-field Widget__c Price__c --type currency`
    AddField(ObjectAddField),
    /// List custom objects (and standard objects with custom fields)
    List(ObjectList),
}

#[derive(Debug, Args)]
pub struct ObjectCreate {
    /// API name ending in __c
    pub name: String,
    /// Label [default: the name without __c]
    #[arg(long)]
    pub label: Option<String>,
    /// Plural label [default: label + "s"]
    #[arg(long)]
    pub plural: Option<String>,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct ObjectAddField {
    /// The object (custom, or a standard one such as Account)
    pub object: String,
    /// Field API name ending in __c
    pub name: String,
    /// text, textarea, number, currency, percent, checkbox, date, datetime, email, phone, url,
    /// picklist or lookup
    #[arg(long = "type", value_name = "TYPE")]
    pub field_type: String,
    #[arg(long)]
    pub label: Option<String>,
    /// Maximum length of text fields [default: 255; textarea 32768]
    #[arg(long)]
    pub length: Option<u32>,
    /// Total digits of numbers [default: 18]
    #[arg(long)]
    pub precision: Option<u32>,
    /// Digits after the point [default: 0; currency 2]
    #[arg(long)]
    pub scale: Option<u32>,
    /// Required on create and update
    #[arg(long)]
    pub required: bool,
    /// Picklist values, comma-separated
    #[arg(long, value_delimiter = ',')]
    pub values: Vec<String>,
    /// Target object of a lookup
    #[arg(long = "to", value_name = "OBJECT")]
    pub reference_to: Option<String>,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct ObjectList {
    /// Include every standard object
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

fn data_err(e: DataError) -> anyhow::Error {
    anyhow!("{}", e.message)
}

pub async fn run(cfg: &Config, cmd: ObjectCmd) -> CliResult<()> {
    let engine = setup::admin_engine(cfg).await?;
    let org = engine.default_org().await?;
    let store = setup::open_store(cfg).await?;
    let data = DataApi::new(&store, Arc::new(SystemClock), Arc::new(OsRandom));
    let result = match cmd {
        ObjectCmd::Create(a) => {
            let o = data
                .create_object(&org.id, NewObject { name: a.name, label: a.label, label_plural: a.plural })
                .await
                .map_err(data_err)?;
            if a.out.json {
                output::print_json(
                    &json!({"name": o.name, "label": o.label, "label_plural": o.label_plural, "key_prefix": o.key_prefix, "table": o.table}),
                );
            } else {
                println!("Created {} (key prefix {}, table {}).", o.name, o.key_prefix, o.table);
            }
            Ok(())
        }
        ObjectCmd::AddField(a) => {
            let object = a.object.clone();
            let f = data
                .add_field(
                    &org.id,
                    NewField {
                        object: a.object,
                        name: a.name,
                        label: a.label,
                        field_type: a.field_type,
                        length: a.length,
                        precision: a.precision,
                        scale: a.scale,
                        required: a.required,
                        picklist_values: a.values,
                        reference_to: a.reference_to,
                    },
                )
                .await
                .map_err(data_err)?;
            if a.out.json {
                output::print_json(
                    &json!({"object": object, "name": f.name, "type": f.ftype.stored_name(), "column": f.column_name(), "required": f.required, "reference_to": f.reference_to, "relationship_name": f.relationship_name}),
                );
            } else {
                println!("Added {object}.{} ({}).", f.name, f.ftype.stored_name());
            }
            Ok(())
        }
        ObjectCmd::List(a) => {
            let list = data.list_objects(&org.id, a.all).await.map_err(data_err)?;
            if a.out.json {
                output::print_json(&serde_json::to_value(&list)?);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|o| {
                        let fields: Vec<String> = o
                            .fields
                            .iter()
                            .map(|f| format!("{}:{}{}", f.name, f.field_type, if f.required { "*" } else { "" }))
                            .collect();
                        vec![o.name.clone(), o.key_prefix.clone(), o.table.clone(), fields.join(" ")]
                    })
                    .collect();
                output::print_table(&["OBJECT", "PREFIX", "TABLE", "FIELDS"], &rows);
            }
            Ok(())
        }
    };
    store.close().await;
    result
}
