//! Just enough JSON writing for bench.json: no serde for one file.

/// A JSON string literal.
pub use runner::json::quote as string;

/// A number, or null when there is none (JSON has no NaN).
pub fn number(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{}", (x * 1000.0).round() / 1000.0),
        _ => "null".into(),
    }
}

/// An object from (key, already-encoded value) pairs.
pub fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {v}", string(k)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

pub fn array(items: &[String]) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    format!("[\n    {}\n  ]", items.join(",\n    "))
}

/// The file's one object: a field a line.
pub fn top(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  {}: {v}", string(k)))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}
