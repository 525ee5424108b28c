//! Case results, verdicts, expected-failure files and the three report formats (text, JSON,
//! JUnit XML).
//!
//! Grading follows Autobahn|Testsuite: a broken MUST is [`Verdict::Fail`], a broken SHOULD is
//! [`Verdict::NonStrict`] (reported, not failing), a case that cannot be observed against this
//! target is [`Verdict::NotApplicable`]. The exit status follows rustls' BoGo runner: a run
//! fails when a case fails that the `--expect` file does not list, and a listed case that now
//! passes is reported so the list can shrink.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How one case was graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The implementation did what the rule requires.
    Pass,
    /// A MUST was broken.
    Fail,
    /// A SHOULD was broken: reported, never failing the run.
    NonStrict,
    /// The case cannot be observed against this target (e.g. an IPv6-only check on IPv4, or
    /// an adapter that does not implement the operation).
    NotApplicable,
    /// Not run: the target stopped answering before this case (the first case it failed
    /// says why). Counted apart, so a crash reads as one failure, not hundreds.
    NotJudged,
}

impl Verdict {
    /// The report spelling (`"non-strict"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NonStrict => "non-strict",
            Verdict::NotApplicable => "not-applicable",
            Verdict::NotJudged => "not-judged",
        }
    }
}

/// The strength of the requirement a case checks (RFC 2119), which decides how a violation is
/// graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Strength {
    /// Violations are [`Verdict::Fail`].
    #[default]
    Must,
    /// Violations are [`Verdict::NonStrict`].
    Should,
}

impl Strength {
    /// The verdict of a violation of this strength.
    pub fn violated(self) -> Verdict {
        match self {
            Strength::Must => Verdict::Fail,
            Strength::Should => Verdict::NonStrict,
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Stable identifier (`seed.store.key-mismatch-refused`).
    pub id: String,
    /// The PROFILE rule checked (`P-V2`).
    pub rule: String,
    /// The grade.
    pub verdict: Verdict,
    /// One line on what was checked and, when not passing, what went wrong.
    pub detail: String,
    /// What was sent, when relevant.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sent: Option<Value>,
    /// What came back (`null` for silence), when relevant.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub received: Option<Value>,
    /// What the rule expects.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected: Option<Value>,
    /// When the result was made: the runners run one case after another, so the time since
    /// the previous result (or the start of the run) is what this case took.
    #[serde(skip)]
    pub finished: Option<std::time::Instant>,
}

impl CaseResult {
    /// A passing case.
    pub fn pass(id: impl Into<String>, rule: &str, detail: impl Into<String>) -> CaseResult {
        CaseResult {
            id: id.into(),
            rule: rule.to_string(),
            verdict: Verdict::Pass,
            detail: detail.into(),
            sent: None,
            received: None,
            expected: None,
            finished: Some(std::time::Instant::now()),
        }
    }

    /// A case with the given verdict.
    pub fn with(
        id: impl Into<String>,
        rule: &str,
        verdict: Verdict,
        detail: impl Into<String>,
    ) -> CaseResult {
        CaseResult {
            verdict,
            ..CaseResult::pass(id, rule, detail)
        }
    }

    /// Attaches what was sent, received and expected.
    pub fn evidence(
        mut self,
        sent: Option<Value>,
        received: Option<Value>,
        expected: Value,
    ) -> Self {
        self.sent = sent;
        self.received = received;
        self.expected = Some(expected);
        self
    }
}

/// Known failures: case id (or a prefix ending in `*`) → reason.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    entries: BTreeMap<String, String>,
}

impl Expectations {
    /// Parses an expect file: a JSON object `{"case.id": "reason", "seed.store.*": "reason"}`.
    pub fn parse(text: &str) -> Result<Expectations, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("expect file: {e}"))?;
        let Value::Object(map) = v else {
            return Err("expect file: must be a JSON object {\"case.id\": \"reason\"}".into());
        };
        let mut entries = BTreeMap::new();
        for (k, v) in map {
            let Value::String(reason) = v else {
                return Err(format!(
                    "expect file: the reason for {k:?} must be a string"
                ));
            };
            entries.insert(k, reason);
        }
        Ok(Expectations { entries })
    }

    /// The reason a case is expected to fail, if it is listed.
    pub fn reason(&self, id: &str) -> Option<&str> {
        if let Some(r) = self.entries.get(id) {
            return Some(r);
        }
        self.entries
            .iter()
            .filter(|(k, _)| k.ends_with('*') && id.starts_with(&k[..k.len() - 1]))
            .map(|(_, r)| r.as_str())
            .next()
    }
}

/// A graded run: its cases and what the expect file says about them.
#[derive(Debug, Clone)]
pub struct Report {
    /// The suite's name (`vectors`, `seed`).
    pub suite: String,
    /// Every case, in run order.
    pub cases: Vec<CaseResult>,
    expectations: Expectations,
    meta: Option<Meta>,
}

/// What was run, against what, when: the `meta` object of the JSON report.
#[derive(Debug, Clone)]
pub struct Meta {
    /// What was graded (`127.0.0.1:4000`, `http://pod.example`, an adapter command).
    pub target: String,
    /// When the run started.
    pub started: std::time::SystemTime,
    /// How long it took.
    pub duration: std::time::Duration,
    /// The start on the monotonic clock (cases' times are measured from it).
    pub start: std::time::Instant,
}

/// Counts of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cases run.
    pub total: usize,
    /// Passing cases.
    pub pass: usize,
    /// Failing cases (listed in the expect file or not).
    pub fail: usize,
    /// Broken SHOULDs.
    pub non_strict: usize,
    /// Cases that could not be observed.
    pub not_applicable: usize,
    /// Cases not run because the target had stopped answering.
    pub not_judged: usize,
    /// Failing cases that the expect file lists.
    pub expected_failures: Vec<String>,
    /// Failing cases that the expect file does not list: these fail the run.
    pub unexpected_failures: Vec<String>,
    /// Cases the expect file lists that did not fail: the list can shrink.
    pub fixed: Vec<String>,
    /// Failing cases of PROFILE §1–§6 (the whitepaper as PROFILE reads it).
    pub core_failures: usize,
    /// Failing cases of PROFILE §7 (extensions beyond the whitepaper, rules `P-X*`): a pod
    /// that follows only the whitepaper fails these and passes §1–§6.
    pub extension_failures: usize,
}

impl Summary {
    /// `493 cases: 480 pass, 3 fail (1 expected), 2 non-strict, 8 not-applicable`, with
    /// `, N not judged (the target stopped answering)` when some were not run.
    pub fn counts(&self) -> String {
        let mut line = format!(
            "{} cases: {} pass, {} fail ({} expected), {} non-strict, {} not-applicable",
            self.total,
            self.pass,
            self.fail,
            self.expected_failures.len(),
            self.non_strict,
            self.not_applicable
        );
        if self.not_judged > 0 {
            let _ = write!(
                line,
                ", {} not judged (the target stopped answering)",
                self.not_judged
            );
        }
        line
    }
}

impl Report {
    /// A report of `cases` under `expectations`.
    pub fn new(suite: &str, cases: Vec<CaseResult>, expectations: Expectations) -> Report {
        Report {
            suite: suite.to_string(),
            cases,
            expectations,
            meta: None,
        }
    }

    /// The same report with run metadata (target, start, duration) for the JSON report.
    pub fn with_meta(mut self, meta: Meta) -> Report {
        self.meta = Some(meta);
        self
    }

    /// How long each case took (in run order): the time from the previous case's result (or
    /// the start) to its own. `None` without run metadata.
    pub fn durations(&self) -> Vec<Option<std::time::Duration>> {
        let Some(meta) = &self.meta else {
            return vec![None; self.cases.len()];
        };
        let mut prev = meta.start;
        self.cases
            .iter()
            .map(|c| {
                c.finished.map(|t| {
                    let d = t.saturating_duration_since(prev);
                    prev = prev.max(t);
                    d
                })
            })
            .collect()
    }

    /// Verdict counts per PROFILE section (§1–§7, in order; rules the profile does not define
    /// under "other"): `(section label, link, pass, fail, non-strict, not-applicable + not-judged)`.
    pub fn per_section(&self) -> Vec<(String, String, [usize; 4])> {
        let sections = crate::profile::sections();
        let mut rows: Vec<(String, String, [usize; 4])> = sections
            .iter()
            .map(|s| (format!("§{} {}", s.number, s.title), s.link(), [0; 4]))
            .collect();
        let mut other = [0usize; 4];
        for c in &self.cases {
            let slot = match c.verdict {
                Verdict::Pass => 0,
                Verdict::Fail => 1,
                Verdict::NonStrict => 2,
                Verdict::NotApplicable | Verdict::NotJudged => 3,
            };
            match sections.iter().position(|s| s.rules.contains(&c.rule)) {
                Some(i) => rows[i].2[slot] += 1,
                None => other[slot] += 1,
            }
        }
        if other.iter().sum::<usize>() > 0 {
            rows.push(("other rules".into(), String::new(), other));
        }
        rows.retain(|r| r.2.iter().sum::<usize>() > 0);
        rows
    }

    /// The counts, and the split of failures into expected and unexpected.
    pub fn summary(&self) -> Summary {
        let count = |v: Verdict| self.cases.iter().filter(|c| c.verdict == v).count();
        let mut s = Summary {
            total: self.cases.len(),
            pass: count(Verdict::Pass),
            fail: count(Verdict::Fail),
            non_strict: count(Verdict::NonStrict),
            not_applicable: count(Verdict::NotApplicable),
            not_judged: count(Verdict::NotJudged),
            expected_failures: Vec::new(),
            unexpected_failures: Vec::new(),
            fixed: Vec::new(),
            core_failures: 0,
            extension_failures: 0,
        };
        for c in self.cases.iter().filter(|c| c.verdict == Verdict::Fail) {
            if c.rule.starts_with("P-X") {
                s.extension_failures += 1;
            } else {
                s.core_failures += 1;
            }
        }
        for c in &self.cases {
            let listed = self.expectations.reason(&c.id).is_some();
            match (c.verdict, listed) {
                (Verdict::Fail, true) => s.expected_failures.push(c.id.clone()),
                (Verdict::Fail, false) => s.unexpected_failures.push(c.id.clone()),
                (Verdict::Pass, true) => s.fixed.push(c.id.clone()),
                _ => {}
            }
        }
        s
    }

    /// True when no case failed unexpectedly.
    pub fn ok(&self) -> bool {
        self.summary().unexpected_failures.is_empty()
    }

    /// The human-readable report.
    pub fn text(&self, verbose: bool) -> String {
        let mut out = String::new();
        for c in &self.cases {
            let known = self.expectations.reason(&c.id);
            // Not-judged cases share one reason: listed only when verbose, summed up below.
            let show = verbose || !matches!(c.verdict, Verdict::Pass | Verdict::NotJudged);
            if !show {
                continue;
            }
            let _ = write!(out, "{:<15} {:<6} {}", c.verdict.as_str(), c.rule, c.id);
            if let (Verdict::Fail, Some(r)) = (c.verdict, known) {
                let _ = write!(out, "  [expected: {r}]");
            }
            let _ = writeln!(out);
            if c.verdict != Verdict::Pass || verbose {
                let _ = writeln!(out, "    {}", c.detail);
            }
            if c.verdict == Verdict::Fail || c.verdict == Verdict::NonStrict {
                for (label, v) in [
                    ("sent", &c.sent),
                    ("received", &c.received),
                    ("expected", &c.expected),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(out, "    {label}: {}", clip(&v.to_string(), 600));
                    }
                }
            }
        }
        let s = self.summary();
        if let Some(first) = self.cases.iter().find(|c| c.verdict == Verdict::NotJudged) {
            let _ = writeln!(
                out,
                "not-judged: {} cases from {} on ({})",
                s.not_judged, first.id, first.detail
            );
        }
        let _ = writeln!(out, "{} suite: {}", self.suite, s.counts());
        for (label, _, [pass, fail, non_strict, skipped]) in self.per_section() {
            let _ = writeln!(
                out,
                "  {label:<38} {pass:>4} pass {fail:>4} fail {non_strict:>4} non-strict {skipped:>4} not run"
            );
        }
        if s.fail > 0 {
            let _ = writeln!(
                out,
                "PROFILE §1–§6: {} fail; §7 (extensions, P-X*): {} fail",
                s.core_failures, s.extension_failures
            );
        }
        for id in &s.fixed {
            let _ = writeln!(
                out,
                "known failure now passes (remove it from the expect file): {id}"
            );
        }
        if s.unexpected_failures.is_empty() {
            let _ = writeln!(out, "result: OK");
        } else {
            let _ = writeln!(
                out,
                "result: FAILED ({} unexpected failures)",
                s.unexpected_failures.len()
            );
        }
        out
    }

    /// The JSON report: `{"suite", "cases": [{"id", "rule", "verdict", "detail", …}],
    /// "summary": {…}}`.
    pub fn json(&self) -> Value {
        let cases: Vec<Value> = self
            .cases
            .iter()
            .zip(self.durations())
            .map(|(c, d)| {
                let mut v = serde_json::to_value(c).expect("a case serialises");
                if let Some(d) = d {
                    v["duration_ms"] = json!((d.as_secs_f64() * 1e6).round() / 1e3);
                }
                if let Some(r) = self.expectations.reason(&c.id) {
                    v["expected_failure"] = Value::String(r.to_string());
                }
                if let Some(section) = crate::profile::section_of(&c.rule) {
                    v["rule_link"] = Value::String(section.link());
                }
                v
            })
            .collect();
        let sections: Vec<Value> = self
            .per_section()
            .into_iter()
            .map(|(label, link, [pass, fail, non_strict, not_run])| {
                json!({"section": label, "link": link, "pass": pass, "fail": fail,
                       "non_strict": non_strict, "not_run": not_run})
            })
            .collect();
        let mut meta = json!({
            "tool": "muttr-conformance",
            "version": env!("CARGO_PKG_VERSION"),
            "revision": muttr_node::GIT_REV,
            "profile": crate::profile::PATH,
        });
        if let Some(m) = &self.meta {
            meta["target"] = Value::String(m.target.clone());
            meta["started_at"] =
                Value::String(humantime::format_rfc3339_seconds(m.started).to_string());
            meta["duration_s"] = json!((m.duration.as_secs_f64() * 1000.0).round() / 1000.0);
        }
        json!({"suite": self.suite, "meta": meta, "cases": cases, "summary": self.summary(),
               "sections": sections})
    }

    /// A JUnit XML report (quick-junit): one `<testcase>` per case, named by its id, class the
    /// rule, with its time; `fail` is a `<failure>` with what was sent, received and expected
    /// (unless the expect file lists it: then `<skipped>` with the reason), `not-applicable`
    /// and `not-judged` are `<skipped>`, `non-strict` passes with its detail in
    /// `<system-out>`.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new(format!("muttr-conformance.{}", self.suite));
        for (c, d) in self.cases.iter().zip(self.durations()) {
            let status = match (c.verdict, self.expectations.reason(&c.id)) {
                (Verdict::Fail, Some(r)) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("expected failure: {r}"));
                    s
                }
                (Verdict::Fail, None) => {
                    let mut body = String::new();
                    for (label, v) in [
                        ("sent", &c.sent),
                        ("received", &c.received),
                        ("expected", &c.expected),
                    ] {
                        if let Some(v) = v {
                            let _ = writeln!(body, "{label}: {v}");
                        }
                    }
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(c.detail.clone()).set_description(body);
                    s
                }
                (Verdict::NotApplicable | Verdict::NotJudged, _) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(c.detail.clone());
                    s
                }
                (Verdict::NonStrict | Verdict::Pass, _) => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(c.id.clone(), status);
            case.set_classname(c.rule.clone());
            if let Some(d) = d {
                case.set_time(d);
            }
            if c.verdict == Verdict::NonStrict {
                case.set_system_out(format!("non-strict: {}", c.detail));
            }
            suite.add_test_case(case);
        }
        if let Some(m) = &self.meta {
            suite.set_time(m.duration);
        }
        let mut report = quick_junit::Report::new("muttr-conformance");
        report.add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- JUnit serialisation failed: {e} -->\n"))
    }
}

impl Report {
    /// One self-contained HTML page (no external files): the run's metadata, verdicts per
    /// PROFILE section with links to the rules, and every case — failures first, each with
    /// what was sent, received and expected — with a text filter and a verdict filter.
    pub fn html(&self) -> String {
        let s = self.summary();
        let mut out = String::new();
        let meta = self.json()["meta"].clone();
        let _ = write!(
            out,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>muttr-conformance {suite}: {result}</title><style>\
             body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}\
             .pass{{background:#dfd}}.fail{{background:#fcc}}.non-strict{{background:#ffd}}.not-applicable,.not-judged{{background:#eee}}\
             pre{{white-space:pre-wrap;max-width:70em;margin:2px 0}}</style></head><body>\
             <h1>muttr-conformance: {suite} suite — {result}</h1>",
            suite = html(&self.suite),
            result = if self.ok() { "OK" } else { "FAILED" },
        );
        let _ = write!(out, "<table>");
        for (k, v) in meta.as_object().into_iter().flatten() {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", html(k), html(&v));
        }
        let _ = write!(
            out,
            "<tr><th>cases</th><td>{}</td></tr></table>",
            html(&s.counts())
        );
        let _ = write!(
            out,
            "<h2>By PROFILE section</h2><table><tr><th>section</th><th>pass</th><th>fail</th><th>non-strict</th><th>not run</th></tr>"
        );
        for (label, link, [pass, fail, non_strict, not_run]) in self.per_section() {
            let _ = write!(
                out,
                "<tr class=\"{}\"><td><a href=\"{}\">{}</a></td><td>{pass}</td><td>{fail}</td><td>{non_strict}</td><td>{not_run}</td></tr>",
                if fail > 0 { "fail" } else { "pass" },
                html(&link),
                html(&label)
            );
        }
        let _ = write!(
            out,
            "</table><h2>Cases</h2><p><input id=\"q\" placeholder=\"filter: id, rule or text\" size=\"40\"> \
             <label><input type=\"checkbox\" class=\"v\" value=\"pass\"> pass</label> \
             <label><input type=\"checkbox\" class=\"v\" value=\"fail\" checked> fail</label> \
             <label><input type=\"checkbox\" class=\"v\" value=\"non-strict\" checked> non-strict</label> \
             <label><input type=\"checkbox\" class=\"v\" value=\"not-applicable\"> not-applicable</label> \
             <label><input type=\"checkbox\" class=\"v\" value=\"not-judged\"> not-judged</label></p>\
             <table id=\"cases\"><tr><th>verdict</th><th>rule</th><th>case</th><th>detail</th></tr>"
        );
        let mut order: Vec<&CaseResult> = self.cases.iter().collect();
        order.sort_by_key(|c| match c.verdict {
            Verdict::Fail => 0,
            Verdict::NonStrict => 1,
            Verdict::NotJudged => 2,
            Verdict::NotApplicable => 3,
            Verdict::Pass => 4,
        });
        for c in order {
            let link = crate::profile::section_of(&c.rule)
                .map(|sec| sec.link())
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr class=\"{v}\" data-v=\"{v}\"><td>{v}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}",
                html(&link),
                html(&c.rule),
                html(&c.id),
                html(&c.detail),
                v = c.verdict.as_str(),
            );
            if let Some(r) = self.expectations.reason(&c.id) {
                let _ = write!(out, " <em>[expected failure: {}]</em>", html(r));
            }
            for (label, v) in [
                ("sent", &c.sent),
                ("received", &c.received),
                ("expected", &c.expected),
            ] {
                if let Some(v) = v {
                    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
                    let _ = write!(
                        out,
                        "<pre><b>{label}</b> {}</pre>",
                        html(&clip(&pretty, 4000))
                    );
                }
            }
            let _ = write!(out, "</td></tr>");
        }
        out.push_str(
            "</table><script>\
             const q=document.getElementById('q'),boxes=[...document.querySelectorAll('.v')];\
             function f(){const on=new Set(boxes.filter(b=>b.checked).map(b=>b.value)),t=q.value.toLowerCase();\
             for(const r of document.querySelectorAll('#cases tr[data-v]'))\
             r.style.display=on.has(r.dataset.v)&&r.textContent.toLowerCase().includes(t)?'':'none';}\
             q.oninput=f;boxes.forEach(b=>b.onchange=f);f();</script></body></html>\n",
        );
        out
    }
}

/// Escapes text for HTML.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases() -> Vec<CaseResult> {
        vec![
            CaseResult::pass("a.pass", "P-W1", "ok"),
            CaseResult::with("a.fail", "P-W3", Verdict::Fail, "broke <it> & more"),
            CaseResult::with("a.known", "P-V2", Verdict::Fail, "known"),
            CaseResult::with("a.fixed", "P-V2", Verdict::Pass, "now fine"),
            CaseResult::with("b.should", "P-W8", Verdict::NonStrict, "should"),
            CaseResult::with("b.na", "P-W1", Verdict::NotApplicable, "ipv4"),
        ]
    }

    #[test]
    fn expectations_split_failures_and_report_fixed() {
        let exp =
            Expectations::parse(r#"{"a.known": "libmuttr key", "a.fix*": "was broken"}"#).unwrap();
        let r = Report::new("seed", cases(), exp);
        let s = r.summary();
        assert_eq!(
            (s.total, s.pass, s.fail, s.non_strict, s.not_applicable),
            (6, 2, 2, 1, 1)
        );
        assert_eq!(s.expected_failures, vec!["a.known"]);
        assert_eq!(s.unexpected_failures, vec!["a.fail"]);
        assert_eq!(s.fixed, vec!["a.fixed"]);
        assert!(!r.ok());
        let text = r.text(false);
        assert!(text.contains("known failure now passes"));
        assert!(text.contains("result: FAILED (1 unexpected failures)"));
    }

    #[test]
    fn all_failures_expected_is_ok() {
        let exp = Expectations::parse(r#"{"a.*": "whole group"}"#).unwrap();
        assert!(Report::new("seed", cases(), exp).ok());
    }

    #[test]
    fn bad_expect_files_are_errors() {
        assert!(Expectations::parse("[]").is_err());
        assert!(Expectations::parse(r#"{"a": 1}"#).is_err());
        assert!(Expectations::parse("nope").is_err());
    }

    #[test]
    fn json_and_junit_shapes() {
        let r = Report::new("seed", cases(), Expectations::default());
        let j = r.json();
        assert_eq!(j["cases"].as_array().unwrap().len(), 6);
        assert_eq!(j["cases"][1]["verdict"], "fail");
        assert_eq!(j["cases"][4]["verdict"], "non-strict");
        assert_eq!(j["summary"]["fail"], 2);
        let x = r.junit();
        assert!(x.contains("tests=\"6\""), "{x}");
        assert!(x.contains("failures=\"2\""), "{x}");
        assert_eq!(x.matches("<skipped").count(), 1, "{x}");
        assert!(x.contains("broke &lt;it&gt; &amp; more"));
        assert_eq!(x.matches("<testcase").count(), 6);
        // With run metadata, every case and the suite have a time.
        let start = std::time::Instant::now() - std::time::Duration::from_millis(1500);
        let r = Report::new("seed", cases(), Expectations::default()).with_meta(Meta {
            target: "127.0.0.1:4000".into(),
            started: std::time::SystemTime::now(),
            duration: std::time::Duration::from_millis(1500),
            start,
        });
        let x = r.junit();
        assert_eq!(x.matches(" time=\"").count(), 7, "{x}");
        assert!(x.contains("time=\"1.500\""), "{x}");
        let d = r.durations();
        assert!(
            d[0].unwrap() >= std::time::Duration::from_millis(1400),
            "{d:?}"
        );
        assert_eq!(r.json()["meta"]["target"], "127.0.0.1:4000");
    }
}
