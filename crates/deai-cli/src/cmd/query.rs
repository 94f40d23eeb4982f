//! Listing and showing ledger entities (datasets, tasks, models) for the group commands.

use serde_json::Value;

use super::common::{NodeArgs, block_on};

/// `GET /v1/{what}` printed as a table or JSON.
pub fn list(node: &NodeArgs, what: &str) -> anyhow::Result<()> {
    let client = node.client();
    let path = format!("/v1/{what}");
    let v: Value = block_on(async move { client.get(&path).await })??;
    crate::output::emit(node.json, &v, |v| {
        let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
        if items.is_empty() {
            println!("no {what}");
        }
        for item in items {
            println!("{}", one_line(item));
        }
    })
}

/// `GET /v1/{what}/{id}` printed as JSON (the human form is the pretty JSON).
pub fn show(node: &NodeArgs, what: &str, id: u64) -> anyhow::Result<()> {
    let client = node.client();
    let path = format!("/v1/{what}/{id}");
    let v: Value = block_on(async move { client.get(&path).await })??;
    crate::output::emit(node.json, &v, |v| {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default())
    })
}

fn one_line(item: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(obj) = item.as_object() {
        for (k, v) in obj {
            if matches!(v, Value::Array(_) | Value::Object(_)) {
                continue;
            }
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join("  ")
}
