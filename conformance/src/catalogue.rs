//! The catalogue of the live suites: every case id the `seed` and `pod` suites can report,
//! with its rule and a one-line description, as data (`cases/seed.json`, `cases/pod.json`,
//! embedded in the binary).
//!
//! The live suites are programs (a case often needs the state an earlier one left: a
//! registered key, a contact in the routing table), but what they check is listed here, so
//! that `muttr-conformance list seed` shows every case without a target, `--only`/`--skip`
//! globs can be checked against real ids, and a run whose target stops answering still
//! reports every case — those it could not reach as `not-judged` ([`complete`]).
//!
//! The catalogue cannot drift from the code: the live-suite tests run each suite against this
//! implementation and require exactly the catalogue's ids, in the catalogue's order
//! ([`check_run`]).

use serde::Deserialize;

use crate::report::{CaseResult, Strength, Verdict};

/// One case of a live suite.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The case id (`seed.ping.reply.type`).
    pub id: String,
    /// The PROFILE rule it checks (`P-W2`).
    pub rule: String,
    /// What it checks, in one line.
    pub description: String,
    /// How binding the rule is (`MUST` when not given); read by table-driven rows.
    #[serde(default)]
    pub strength: Strength,
    /// For a table-driven row: what to send (the seed suite's `table` module says how it
    /// is read).
    #[serde(default)]
    pub send: Option<serde_json::Value>,
    /// For a table-driven row: what must happen (`no-reply`, `accepted`, `refused`).
    #[serde(default)]
    pub expect: Option<String>,
}

/// A live suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// The seed suite over UDP (PROFILE §1–§3).
    Seed,
    /// The pod suite over HTTP and WebSocket (PROFILE §3–§7).
    Pod,
}

impl Live {
    /// Both live suites.
    pub const ALL: [Live; 2] = [Live::Seed, Live::Pod];

    /// The suite's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Live::Seed => "seed",
            Live::Pod => "pod",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Live::Seed => include_str!("../cases/seed.json"),
            Live::Pod => include_str!("../cases/pod.json"),
        }
    }
}

/// The suite's cases, in the order a run reports them (parsed once).
pub fn entries(suite: Live) -> &'static [Entry] {
    static SEED: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    static POD: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    let cell = match suite {
        Live::Seed => &SEED,
        Live::Pod => &POD,
    };
    cell.get_or_init(|| {
        // The files are part of this crate and parsed by its tests, so a parse error here is
        // a build defect; it still ends as an empty list rather than a panic.
        serde_json::from_str(suite.text()).unwrap_or_else(|e| {
            eprintln!("muttr-conformance: cases/{}.json: {e}", suite.name());
            Vec::new()
        })
    })
}

/// Adds a `not-judged` result, with `why`, for every catalogue case the run did not report,
/// in catalogue order after the ones it did.
pub fn complete(suite: Live, cases: &mut Vec<CaseResult>, why: &str) {
    let seen: std::collections::HashSet<String> = cases.iter().map(|c| c.id.clone()).collect();
    for e in entries(suite) {
        if !seen.contains(&e.id) {
            cases.push(CaseResult::with(
                e.id.clone(),
                &e.rule,
                Verdict::NotJudged,
                why.to_string(),
            ));
        }
    }
}

/// Where a live target stopped answering, and what that makes of the cases recorded after.
///
/// The first case recorded once the target is found dead is where it stopped: its verdict
/// stands, with a note on how that was found; every later case is `not-judged`, and at the
/// end [`Stopped::finish`] adds the catalogue cases the run never reached.
#[derive(Debug, Default)]
pub struct Stopped {
    at: Option<String>,
}

impl Stopped {
    /// `c` as it is to be recorded; `dead` tells whether the target has been found dead,
    /// `how` says how (for the note, asked only then), `what` names the target ("the seed").
    pub fn record(
        &mut self,
        dead: bool,
        mut c: CaseResult,
        what: &str,
        how: impl FnOnce() -> String,
    ) -> CaseResult {
        if !dead {
            return c;
        }
        match &self.at {
            None => {
                c.detail = format!("{} — {what} stopped answering here: {}", c.detail, how());
                self.at = Some(c.id.clone());
                c
            }
            Some(at) => CaseResult::with(
                c.id,
                &c.rule,
                Verdict::NotJudged,
                format!("not judged: {what} stopped answering at {at}"),
            ),
        }
    }

    /// At the end of a run: when the target stopped, every catalogue case not reported is
    /// added as `not-judged` ([`complete`]).
    pub fn finish(&self, suite: Live, cases: &mut Vec<CaseResult>, what: &str) {
        if let Some(at) = &self.at {
            let why = format!("not judged: {what} stopped answering at {at}");
            complete(suite, cases, &why);
        }
    }
}

/// Adds the refinements of cases that did not run: a case `x.json-error` checks the error
/// body of case `x`, so when `x` is not-applicable (or not-judged) so is `x.json-error`, with
/// the same verdict and the reason, right after it.
pub fn complete_refinements(suite: Live, cases: &mut Vec<CaseResult>) {
    for e in entries(suite) {
        if cases.iter().any(|c| c.id == e.id) {
            continue;
        }
        let parent = cases.iter().rposition(|c| {
            e.id.starts_with(&format!("{}.", c.id))
                && matches!(c.verdict, Verdict::NotApplicable | Verdict::NotJudged)
        });
        if let Some(at) = parent {
            let p = &cases[at];
            let child = CaseResult::with(
                e.id.clone(),
                &e.rule,
                p.verdict,
                format!(
                    "{} did not run, so neither does this refinement of it: {}",
                    p.id, p.detail
                ),
            );
            cases.insert(at + 1, child);
        }
    }
}

/// Compares a run's case ids with the catalogue (as sets: some groups run concurrently, so
/// the order within a group varies): `Err` lists the ids missing from the catalogue and those
/// the run did not report.
pub fn check_run(suite: Live, cases: &[CaseResult]) -> Result<(), String> {
    let want: Vec<String> = entries(suite).iter().map(|e| e.id.clone()).collect();
    let got: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    let extra: Vec<&String> = got.iter().filter(|id| !want.contains(id)).collect();
    let missing: Vec<&String> = want.iter().filter(|id| !got.contains(id)).collect();
    if extra.is_empty() && missing.is_empty() && want.len() == got.len() {
        return Ok(());
    }
    Err(format!(
        "cases/{}.json and the run differ: not in the catalogue {extra:?}; not reported {missing:?}; {} reported for {} in the catalogue",
        suite.name(),
        got.len(),
        want.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogues_parse_with_unique_ids_and_known_rules() {
        for suite in Live::ALL {
            let all = entries(suite);
            assert!(all.len() > 200, "{}: {}", suite.name(), all.len());
            let ids: std::collections::HashSet<&str> = all.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(ids.len(), all.len(), "duplicate ids in {}", suite.name());
            for e in all {
                // The pod suite runs the REST vectors too (`rest.*`).
                assert!(
                    e.id.starts_with(&format!("{}.", suite.name()))
                        || (suite == Live::Pod && e.id.starts_with("rest.")),
                    "{}",
                    e.id
                );
                assert!(
                    crate::profile::section_of(&e.rule).is_some(),
                    "{}: {}",
                    e.id,
                    e.rule
                );
                assert!(!e.description.trim().is_empty(), "{}", e.id);
            }
        }
    }

    #[test]
    fn complete_adds_the_unreported_cases_as_not_judged() {
        let first = &entries(Live::Seed)[0];
        let mut cases = vec![CaseResult::pass(&first.id, &first.rule, "ok")];
        complete(Live::Seed, &mut cases, "the seed stopped answering");
        assert_eq!(cases.len(), entries(Live::Seed).len());
        assert_eq!(cases[0].verdict, Verdict::Pass);
        assert!(cases[1..].iter().all(|c| c.verdict == Verdict::NotJudged));
        assert!(check_run(Live::Seed, &cases).is_ok());
        cases.swap(1, 2);
        assert!(check_run(Live::Seed, &cases).is_ok(), "order is free");
        let last = cases.pop().unwrap();
        let err = check_run(Live::Seed, &cases).unwrap_err();
        assert!(
            err.contains(&format!("not reported [{:?}]", last.id)),
            "{err}"
        );
        cases.push(last.clone());
        cases.push(last);
        let err = check_run(Live::Seed, &cases).unwrap_err();
        assert!(err.contains("reported for"), "a duplicate: {err}");
    }

    #[test]
    fn refinements_of_a_case_that_did_not_run_follow_it() {
        let all = entries(Live::Pod);
        let child = all
            .iter()
            .find(|e| e.id.ends_with(".json-error"))
            .expect("the pod suite has refinements");
        let parent = child.id.trim_end_matches(".json-error");
        let mut cases = vec![CaseResult::with(
            parent,
            "P-A6",
            Verdict::NotApplicable,
            "waits 31 s: run with --slow",
        )];
        complete_refinements(Live::Pod, &mut cases);
        assert_eq!(cases.len(), 2, "{cases:#?}");
        assert_eq!(cases[1].id, child.id);
        assert_eq!(cases[1].verdict, Verdict::NotApplicable);
        assert!(cases[1].detail.contains("--slow"), "{}", cases[1].detail);
        // A passing parent's refinement is not made up.
        cases = vec![CaseResult::pass(parent, "P-A6", "ok")];
        complete_refinements(Live::Pod, &mut cases);
        assert_eq!(cases.len(), 1);
    }
}
