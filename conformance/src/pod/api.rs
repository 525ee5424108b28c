//! The pod API document as a checker: every answer the pod suite gets is matched to its
//! operation in `pod/openapi.json` (the document this repository's pod serves at
//! `/openapi.json`, embedded here), and judged against it — the status must be one the
//! operation documents, the media type one documented for that status, and a JSON body must
//! validate against the documented schema (the `jsonschema` crate).
//!
//! One case per documented operation, `pod.openapi.<method>-<path>`: it passes when every
//! answer of that operation the suite saw matches, fails with the first that does not (what
//! was asked, what came back, what the document says), and is not-applicable when the suite
//! never called that operation. Answers to undocumented routes and methods (the 404/405
//! cases) are left to the cases that ask for them.
//!
//! The document is OpenAPI 3.0: its schemas are JSON Schema but for `nullable`, which is
//! rewritten as a `null` type before validation.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::report::{CaseResult, Verdict};

/// One answer the suite got: what was asked and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request method, uppercase.
    pub method: String,
    /// The request path, query included.
    pub path: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's media type without parameters, lowercase.
    pub essence: String,
    /// The answer's body (lossy UTF-8).
    pub body: String,
}

/// Where the suite's HTTP client writes every answer it gets.
pub type Log = Arc<Mutex<Vec<Exchange>>>;

/// One documented operation.
struct Operation {
    method: String,
    template: String,
    responses: Value,
}

impl Operation {
    /// `pod.openapi.get-messages-hash` for `GET /messages/{hash}`.
    fn case_id(&self) -> String {
        let path: String = self
            .template
            .trim_matches('/')
            .chars()
            .filter(|c| !matches!(c, '{' | '}'))
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = if path.is_empty() { "root".into() } else { path };
        format!("pod.openapi.{}-{path}", self.method.to_ascii_lowercase())
    }

    /// P-X3 for the operations endpoints, P-A5 (the shape of answers) for the rest.
    fn rule(&self) -> &'static str {
        if self.template == "/healthz" || self.template == "/readyz" {
            "P-X3"
        } else {
            "P-A5"
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let path = path.split('?').next().unwrap_or_default();
        let want: Vec<&str> = self.template.split('/').collect();
        let got: Vec<&str> = path.split('/').collect();
        want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| {
                if w.starts_with('{') && w.ends_with('}') {
                    !g.is_empty()
                } else {
                    w == g
                }
            })
    }
}

/// The pod API document, ready to judge answers.
pub struct Api {
    components: Value,
    operations: Vec<Operation>,
}

impl Api {
    /// The document of this repository's pod (`pod/openapi.json`).
    pub fn ours() -> Result<Api, String> {
        let doc: Value = serde_json::from_str(muttr_pod::openapi::DOCUMENT)
            .map_err(|e| format!("pod/openapi.json: {e}"))?;
        Ok(Api::from_document(&doc))
    }

    /// The operations of any OpenAPI 3.0 document.
    pub fn from_document(doc: &Value) -> Api {
        let mut operations = Vec::new();
        for (template, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    operations.push(Operation {
                        method: method.to_ascii_uppercase(),
                        template: template.clone(),
                        responses: op["responses"].clone(),
                    });
                }
            }
        }
        Api {
            components: nullable_as_type(&doc["components"]),
            operations,
        }
    }

    /// The case ids, one per operation, in document order.
    pub fn case_ids(&self) -> Vec<String> {
        self.operations.iter().map(Operation::case_id).collect()
    }

    /// Whether `answer` matches what the document says of its operation; `None` when the
    /// document has no such operation.
    fn judge_one(&self, op: &Operation, answer: &Exchange) -> Result<(), String> {
        let status = answer.status.to_string();
        let Some(response) = op
            .responses
            .get(&status)
            .or_else(|| op.responses.get("default"))
        else {
            let documented: Vec<&String> = op
                .responses
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            return Err(format!(
                "status {status} is not among the documented answers {documented:?}"
            ));
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            return Ok(()); // no body documented (101)
        };
        let Some(media) = content.get(&answer.essence) else {
            let documented: Vec<&String> = content.keys().collect();
            return Err(format!(
                "media type {:?} is not documented for {status} (documented: {documented:?})",
                answer.essence
            ));
        };
        if answer.essence != "application/json" {
            return Ok(());
        }
        let body: Value =
            serde_json::from_str(&answer.body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let Some(schema) = media.get("schema") else {
            return Ok(());
        };
        let mut root = match nullable_as_type(schema) {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("allOf".into(), json!([other]));
                m
            }
        };
        root.insert("components".into(), self.components.clone());
        let validator = jsonschema::validator_for(&Value::Object(root))
            .map_err(|e| format!("the document's schema does not compile: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .take(3)
            .map(|e| format!("{} at {:?}", e, e.instance_path.to_string()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the body does not match the documented schema: {}",
                errors.join("; ")
            ))
        }
    }

    /// One case per documented operation over every answer in `log`.
    pub fn judge(&self, log: &[Exchange]) -> Vec<CaseResult> {
        let mut cases = Vec::new();
        for op in &self.operations {
            let id = op.case_id();
            let what = format!("{} {}", op.method, op.template);
            let answers: Vec<&Exchange> = log
                .iter()
                .filter(|a| op.matches(&a.method, &a.path))
                .collect();
            if answers.is_empty() {
                cases.push(CaseResult::with(
                    id,
                    op.rule(),
                    Verdict::NotApplicable,
                    format!("the suite made no {what} request"),
                ));
                continue;
            }
            let first_bad = answers
                .iter()
                .find_map(|a| self.judge_one(op, a).err().map(|e| (a, e)));
            cases.push(match first_bad {
                None => CaseResult::pass(
                    id,
                    op.rule(),
                    format!(
                        "all {} answers to {what} match pod/openapi.json (status, media type, JSON body)",
                        answers.len()
                    ),
                ),
                Some((a, e)) => CaseResult::with(
                    id,
                    op.rule(),
                    Verdict::Fail,
                    format!("{what}: {e}"),
                )
                .evidence(
                    Some(json!({"method": a.method, "path": a.path})),
                    Some(json!({
                        "status": a.status,
                        "content_type": a.essence,
                        "body": super::http::clip(&a.body),
                    })),
                    json!(format!("an answer documented for {what} in pod/openapi.json")),
                ),
            });
        }
        cases
    }
}

/// The schema with OpenAPI 3.0's `"nullable": true` turned into a `null` type (JSON Schema
/// has no `nullable`), recursively.
fn nullable_as_type(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "nullable")
                .map(|(k, v)| (k.clone(), nullable_as_type(v)))
                .collect();
            if m.get("nullable") == Some(&Value::Bool(true)) {
                match out.get("type").cloned() {
                    Some(Value::String(t)) => {
                        out.insert("type".into(), json!([t, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(out);
                        return json!({"anyOf": [inner, {"type": "null"}]});
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(nullable_as_type).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(method: &str, path: &str, status: u16, essence: &str, body: &str) -> Exchange {
        Exchange {
            method: method.into(),
            path: path.into(),
            status,
            essence: essence.into(),
            body: body.into(),
        }
    }

    fn verdict_of(cases: &[CaseResult], id: &str) -> (Verdict, String) {
        let c = cases.iter().find(|c| c.id == id).expect(id);
        (c.verdict, c.detail.clone())
    }

    #[test]
    fn every_operation_gets_a_case_and_paths_match_templates() {
        let api = Api::ours().unwrap();
        let ids = api.case_ids();
        assert!(
            ids.contains(&"pod.openapi.get-messages-hash".to_string()),
            "{ids:?}"
        );
        assert!(ids.contains(&"pod.openapi.get-root".to_string()), "{ids:?}");
        assert!(
            ids.contains(&"pod.openapi.post-inboxes-alias".to_string()),
            "{ids:?}"
        );
        let op = api
            .operations
            .iter()
            .find(|o| o.template == "/messages/{hash}")
            .unwrap();
        assert!(op.matches("GET", "/messages/abc?x=1"));
        assert!(!op.matches("GET", "/messages/"));
        assert!(!op.matches("GET", "/messages/a/b"));
        assert!(!op.matches("POST", "/messages/abc"));
    }

    #[test]
    fn answers_are_judged_by_status_media_type_and_schema() {
        let api = Api::ours().unwrap();
        let good = [
            answer(
                "GET",
                "/aliases/bob",
                404,
                "application/json",
                r#"{"error":"no such alias"}"#,
            ),
            answer(
                "POST",
                "/tokens",
                200,
                "application/json",
                r#"{"token":{"issued":1764800000000,"method":"GET","resource":"/inboxes","value":"0123456789abcdef0123456789abcdef"}}"#,
            ),
        ];
        let cases = api.judge(&good);
        assert_eq!(
            verdict_of(&cases, "pod.openapi.get-aliases-alias").0,
            Verdict::Pass
        );
        assert_eq!(
            verdict_of(&cases, "pod.openapi.post-tokens").0,
            Verdict::Pass
        );
        assert_eq!(
            verdict_of(&cases, "pod.openapi.get-healthz").0,
            Verdict::NotApplicable
        );
        // An error body without "error", an undocumented status, a wrong media type.
        let bad = [
            (
                answer(
                    "GET",
                    "/aliases/bob",
                    404,
                    "application/json",
                    r#"{"message":"nope"}"#,
                ),
                "pod.openapi.get-aliases-alias",
                "documented schema",
            ),
            (
                answer("POST", "/tokens", 302, "application/json", "{}"),
                "pod.openapi.post-tokens",
                "status 302",
            ),
            (
                answer("POST", "/tokens", 401, "text/html", "<p>no</p>"),
                "pod.openapi.post-tokens",
                "text/html",
            ),
            (
                answer("POST", "/tokens", 200, "application/json", "not json"),
                "pod.openapi.post-tokens",
                "not JSON",
            ),
        ];
        for (a, id, why) in bad {
            let (v, detail) = verdict_of(&api.judge(std::slice::from_ref(&a)), id);
            assert_eq!(v, Verdict::Fail, "{a:?}");
            assert!(detail.contains(why), "{why}: {detail}");
        }
    }

    #[test]
    fn nullable_becomes_a_null_type() {
        let s = nullable_as_type(
            &json!({"type": "object", "nullable": true, "properties": {"a": {"type": "string", "nullable": true}}}),
        );
        assert_eq!(s["type"], json!(["object", "null"]));
        assert_eq!(s["properties"]["a"]["type"], json!(["string", "null"]));
        assert!(s.get("nullable").is_none());
    }
}
