//! The profile the cases are judged against, embedded: `spec/PROFILE.md` (the project's
//! normative reading of the whitepaper, rule ids `P-W1` … `P-X3`). Reports link each case's
//! rule to its section ([`Section::link`]) and sum verdicts up per section (§1–§7).

/// The text of `spec/PROFILE.md` this suite was built with.
pub const TEXT: &str = include_str!("../../spec/PROFILE.md");

/// Where the profile is, relative to the repository root (reports link to it).
pub const PATH: &str = "spec/PROFILE.md";

/// One numbered section of the profile (`## 2. Kademlia`) and the rule ids defined in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its number (1–7).
    pub number: u32,
    /// Its title (`Kademlia`).
    pub title: String,
    /// Rule ids defined in it (list items starting with the id), in order.
    pub rules: Vec<String>,
}

impl Section {
    /// The heading's anchor as GitHub and most Markdown renderers make it (`2-kademlia`).
    pub fn anchor(&self) -> String {
        let heading = format!("{}. {}", self.number, self.title).to_lowercase();
        heading
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect()
    }

    /// `spec/PROFILE.md#2-kademlia`.
    pub fn link(&self) -> String {
        format!("{PATH}#{}", self.anchor())
    }
}

/// The numbered sections of [`TEXT`].
pub fn sections() -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in TEXT.lines() {
        if let Some(h) = line.strip_prefix("## ")
            && let Some((n, title)) = h.split_once(". ")
            && let Ok(number) = n.trim().parse()
        {
            out.push(Section {
                number,
                title: title.trim().to_string(),
                rules: Vec::new(),
            });
        } else if let Some(item) = line.strip_prefix("- P-")
            && let Some(section) = out.last_mut()
        {
            let id: String = item
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            section.rules.push(format!("P-{id}"));
        }
    }
    out
}

/// The section defining `rule` (`P-W3` → §1), if the profile has it.
pub fn section_of(rule: &str) -> Option<Section> {
    sections()
        .into_iter()
        .find(|s| s.rules.iter().any(|r| r == rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_has_seven_sections_and_every_rule_once() {
        let sections = sections();
        let numbers: Vec<u32> = sections.iter().map(|s| s.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7]);
        let rules: Vec<&String> = sections.iter().flat_map(|s| &s.rules).collect();
        assert!(rules.len() >= 35, "{rules:?}");
        let mut unique = rules.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), rules.len(), "a rule defined twice");
        let w3 = section_of("P-W3").unwrap();
        assert_eq!(w3.link(), "spec/PROFILE.md#1-seed-to-seed-datagrams");
        assert_eq!(section_of("P-X1").unwrap().number, 7);
        assert_eq!(section_of("P-Z9"), None);
    }
}
