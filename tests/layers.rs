//! The layers `docs/ARCHITECTURE.md` documents are the layers the code has: every reference to
//! `crate::FOLDER` in `src/` (outside comments and `#[cfg(test)]` modules) points to the same
//! folder or one documented below it, and every folder of `src/` is documented. So neither the
//! document nor the code can drift from the other unnoticed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The line of ARCHITECTURE.md that gives the order, bottom first.
const ORDER_PREFIX: &str = "Layers, bottom first:";

/// The documented layers: each folder (or leaf module) and its rank, bottom 0. Folders in one
/// `{…}` group share a rank and do not import each other.
fn documented() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let line = doc
        .lines()
        .find_map(|l| l.trim().strip_prefix(ORDER_PREFIX))
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no line starting {ORDER_PREFIX:?}"));
    let mut ranks = BTreeMap::new();
    for (rank, layer) in line.split('→').enumerate() {
        let layer = layer.trim().trim_end_matches('.');
        for name in layer.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim().trim_matches('`').trim_end_matches('/');
            assert!(!name.is_empty(), "an empty name in {line:?}");
            ranks.insert(name.to_string(), rank);
        }
    }
    ranks
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder (or leaf module) of `src/` a file belongs to.
fn owner(file: &Path) -> String {
    let rel = file.strip_prefix(root().join("src")).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with comments and `#[cfg(test)]` items removed (a test may build what it needs
/// from any layer).
fn code_of(text: &str) -> String {
    let without_comments: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = without_comments.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        rest = skip_item(&rest[at..]);
    }
    out.push_str(rest);
    out
}

/// `text` after the item that starts it: up to its `;` or its balanced `{…}`.
fn skip_item(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            ';' if depth == 0 => return &text[i + 1..],
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[i + 1..];
                }
            }
            _ => {}
        }
    }
    ""
}

/// Every folder named after `crate::` in `code`.
fn references(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn every_import_points_to_its_own_layer_or_one_below() {
    let ranks = documented();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut against = Vec::new();
    for file in &files {
        let from = owner(file);
        if from == "lib" || from == "main" {
            continue;
        }
        let Some(&own) = ranks.get(&from) else {
            panic!("src/{from} is not in the documented layers: add it to {ORDER_PREFIX:?} in docs/ARCHITECTURE.md");
        };
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for to in references(&code) {
            if to == from {
                continue;
            }
            let rank = *ranks.get(&to).unwrap_or_else(|| {
                panic!(
                    "{} names crate::{to}, which is not documented",
                    file.display()
                )
            });
            if rank >= own {
                against.push(format!(
                    "{} (layer {own}) uses crate::{to} (layer {rank})",
                    file.display()
                ));
            }
        }
    }
    against.sort();
    against.dedup();
    assert!(
        against.is_empty(),
        "imports against the documented order:\n{}",
        against.join("\n")
    );
}

#[test]
fn the_checker_sees_code_and_skips_comments_and_tests() {
    let text = "use crate::a::b;\n// crate::c\nfn f() { crate::d::e(); }\n#[cfg(test)]\nmod tests {\n    use crate::z;\n    fn g() { if true { crate::y(); } }\n}\nfn h() { crate::w(); }\n";
    assert_eq!(references(&code_of(text)), ["a", "d", "w"]);
}

/// Only the writer appends to the log: the capability the appending methods take
/// (`store::LogAppend`) is made, outside tests, only in `src/write/` (other crates cannot make one
/// at all: it has no public constructor).
#[test]
fn only_the_writer_makes_the_log_append_capability() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let makers: Vec<_> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("write")))
        .filter(|f| code_of(&std::fs::read_to_string(f).unwrap()).contains("LogAppend::writer("))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        makers.is_empty(),
        "only src/write/ may make a LogAppend: {makers:?}"
    );
}
