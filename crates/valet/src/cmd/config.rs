//! `valet config check`.

use serde_json::{Map, Value};

use crate::cli::{ConfigCheck, GlobalArgs};
use crate::config::{Config, Env, Purpose, ENV_VARS};
use crate::output;
use crate::CliResult;

pub fn check(global: &GlobalArgs, args: ConfigCheck) -> CliResult<()> {
    let env = Env::from_process()?;
    let cfg = Config::load(global, Some(&args.net), &env, Purpose::Server)?;
    let mut warnings = cfg.warnings.clone();
    // A misspelt variable is silently ignored otherwise.
    for (name, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
        if name.starts_with("VALET_")
            && !ENV_VARS.contains(&name.as_str())
            && !name.starts_with("VALET_E2E")
            && name != "VALET_BIN"
        {
            warnings.push(format!("{name} is not a Valet setting (ignored)"));
        }
    }
    let described = cfg.describe();
    if args.out.json {
        let mut m = Map::new();
        for (k, v, source) in &described {
            let mut entry = Map::new();
            entry.insert("value".into(), Value::String(v.clone()));
            if !source.is_empty() {
                entry.insert("source".into(), Value::String(source.clone()));
            }
            m.insert(k.to_string(), Value::Object(entry));
        }
        m.insert("warnings".into(), Value::Array(warnings.into_iter().map(Value::String).collect()));
        m.insert("valid".into(), Value::Bool(true));
        output::print_json(&Value::Object(m));
    } else {
        let rows: Vec<(&str, String)> = described
            .iter()
            .map(|(k, v, s)| (*k, if s.is_empty() { v.clone() } else { format!("{v}  ({s})") }))
            .collect();
        output::print_fields(&rows);
        for w in &warnings {
            println!("warning: {w}");
        }
        println!("configuration OK");
    }
    Ok(())
}
