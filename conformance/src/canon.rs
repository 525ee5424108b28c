//! A canonical JSON writer: object keys sorted, fixed indentation, so vector files and
//! datagrams built by the generator are byte-for-byte reproducible whatever features
//! `serde_json` is compiled with (its map type keeps insertion order under `preserve_order`).

use serde_json::Value;

/// Compact form, keys sorted (used for datagrams).
pub fn compact(v: &Value) -> String {
    let mut out = String::new();
    write(v, None, 0, &mut out);
    out
}

/// Pretty form with two-space indentation, keys sorted, and a final newline (vector files).
pub fn pretty(v: &Value) -> String {
    let mut out = String::new();
    write(v, Some(2), 0, &mut out);
    out.push('\n');
    out
}

fn write(v: &Value, indent: Option<usize>, depth: usize, out: &mut String) {
    let nl = |out: &mut String, d: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * d));
        }
    };
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write(item, indent, depth + 1, out);
            }
            nl(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write(&map[*k], indent, depth + 1, out);
            }
            nl(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": null, "y": "é\n"}], "c": []}});
        assert_eq!(
            compact(&v),
            r#"{"a":{"c":[],"d":[1,{"y":"é\n","z":null}]},"b":1}"#
        );
        let p = pretty(&v);
        assert!(p.starts_with("{\n  \"a\": {\n    \"c\": [],"));
        assert_eq!(serde_json::from_str::<Value>(&p).unwrap(), v);
    }
}
