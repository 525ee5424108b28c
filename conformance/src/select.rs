//! [`Selection`]: which cases a run covers — `--only GLOB` and `--skip GLOB` (repeatable), with
//! `*`, `?` and `[…]` as in shell globs, matched against case ids (`rest.register.*`).
//!
//! The vectors are selected before they run. The live `seed` and `pod` suites run in groups
//! that share their setup (a registered key, a contact in the routing table), so there the
//! selection filters the report: the cases still run, and a case skipped this way is neither
//! counted nor listed.

use serde_json::Value;

/// Case-id patterns to keep and to leave out.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    only: Vec<glob::Pattern>,
    skip: Vec<glob::Pattern>,
}

impl Selection {
    /// Parses the patterns; a bad one is an error naming it.
    pub fn new(only: &[String], skip: &[String]) -> Result<Selection, String> {
        let parse = |globs: &[String], flag: &str| {
            globs
                .iter()
                .map(|g| {
                    glob::Pattern::new(g).map_err(|e| format!("{flag} {g:?}: not a glob: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Selection {
            only: parse(only, "--only")?,
            skip: parse(skip, "--skip")?,
        })
    }

    /// Whether the case `id` is in the run: it matches an `--only` pattern (when any is given)
    /// and no `--skip` pattern.
    pub fn covers(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| p.matches(id)))
            && !self.skip.iter().any(|p| p.matches(id))
    }

    /// Keeps, in every loaded vector document, only the cases covered.
    pub fn apply(&self, files: &mut [(String, Value)]) {
        for (_, doc) in files.iter_mut() {
            if let Some(cases) = doc.get_mut("cases").and_then(Value::as_array_mut) {
                cases.retain(|c| self.covers(c["id"].as_str().unwrap_or_default()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_and_skip_globs_select_case_ids() {
        let s = Selection::new(
            &["rest.*".into(), "wire.datagram.empty".into()],
            &["rest.ws.*".into()],
        )
        .unwrap();
        assert!(s.covers("rest.register.ok"));
        assert!(s.covers("wire.datagram.empty"));
        assert!(!s.covers("rest.ws.binary-4401"));
        assert!(!s.covers("wire.datagram.not-json"));
        assert!(Selection::default().covers("anything"));
        let err = Selection::new(&["rest.[".into()], &[]).unwrap_err();
        assert!(err.contains("--only \"rest.[\""), "{err}");
    }
}
