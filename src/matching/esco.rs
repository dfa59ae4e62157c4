//! The ESCO subset shipped with Jol (`data/esco/subset.v1.json`): the occupations returnees
//! actually hold (construction trades, drivers, agriculture, services, sewing, welding, care,
//! retail, IT basics), the skills they need with their real ESCO URIs, labels in English (ESCO's)
//! and in Russian and Kyrgyz (Jol's), and the ISCO-08 groups above them. Schemas accept any
//! ESCO URI; labels come from here where known. Source and licence are in the file.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const SUBSET: &str = include_str!("../../data/esco/subset.v1.json");

/// A label in ky, ru and en.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Labels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ky: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ru: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) en: Option<String>,
}

/// An ESCO occupation of the subset.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Occupation {
    /// Its ESCO URI.
    pub uri: String,
    /// The ISCO-08 unit group it belongs to.
    pub isco08: String,
    /// Its name in each language.
    pub label: Labels,
    /// The ESCO URIs of the skills it needs.
    pub essential_skills: Vec<String>,
    /// The ESCO URIs of the skills that help in it.
    pub optional_skills: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Skill {
    uri: String,
    label: Labels,
}

#[derive(Debug, Deserialize)]
struct File {
    source: String,
    licence: String,
    occupations: Vec<Occupation>,
    skills: Vec<Skill>,
    isco08: HashMap<String, Labels>,
}

/// The code lists, parsed once.
#[derive(Debug)]
pub struct CodeLists {
    /// Where the subset comes from (ESCO's release).
    pub source: String,
    /// The licence it is used under.
    pub licence: String,
    /// The occupations of the subset.
    pub occupations: Vec<Occupation>,
    skills: HashMap<String, Labels>,
    isco08: HashMap<String, Labels>,
}

impl CodeLists {
    /// The shipped subset.
    pub fn get() -> &'static CodeLists {
        static LISTS: OnceLock<CodeLists> = OnceLock::new();
        LISTS.get_or_init(|| {
            let f: File = serde_json::from_str(SUBSET).unwrap_or_else(|e| {
                // The file is part of the binary and checked by the tests below.
                panic!("data/esco/subset.v1.json does not parse: {e}")
            });
            CodeLists {
                source: f.source,
                licence: f.licence,
                occupations: f.occupations,
                skills: f.skills.into_iter().map(|s| (s.uri, s.label)).collect(),
                isco08: f.isco08,
            }
        })
    }

    /// A skill's labels, if the subset has it.
    pub fn skill(&self, uri: &str) -> Option<&Labels> {
        self.skills.get(uri)
    }

    /// Every skill URI of the subset.
    pub fn skill_uris(&self) -> impl Iterator<Item = &String> {
        self.skills.keys()
    }

    /// An ISCO-08 group's labels (1 to 4 digits).
    pub fn isco(&self, code: &str) -> Option<&Labels> {
        self.isco08.get(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subset_is_consistent_and_states_its_source() {
        let c = CodeLists::get();
        assert!(c.source.contains("ESCO") && c.licence.contains("CC BY 4.0"));
        assert!(c.occupations.len() >= 20);
        for o in &c.occupations {
            assert!(o.uri.starts_with("http://data.europa.eu/esco/occupation/"));
            assert_eq!(o.isco08.len(), 4, "{}", o.uri);
            for level in 1..=4 {
                assert!(
                    c.isco(&o.isco08[..level]).is_some(),
                    "ISCO {}",
                    &o.isco08[..level]
                );
            }
            for s in o.essential_skills.iter().chain(&o.optional_skills) {
                let l = c.skill(s).unwrap_or_else(|| panic!("{s} has no labels"));
                assert!(l.en.is_some() && l.ru.is_some() && l.ky.is_some(), "{s}");
            }
        }
    }
}
