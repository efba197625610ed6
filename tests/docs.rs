//! The book under `docs/` (built by `mdbook build docs` in `scripts/test.sh`): every page in
//! its summary exists, and every relative link of the book and the README reaches a file
//! and, with `#anchor`, a heading of it. mdbook itself builds a broken link without a word.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every Markdown file under `dir`.
fn pages(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pages(&path, found);
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
}

/// The targets of the inline links `[text](target)` in `text`, outside code and HTML
/// comments.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (mut in_fence, mut in_comment) = (false, false);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if line.trim_start().starts_with("<!--") {
            in_comment = true;
        }
        if in_comment {
            in_comment = !line.contains("-->");
            continue;
        }
        if in_fence {
            continue;
        }
        // Code spans may hold `](`; drop them first.
        let mut plain = String::new();
        for (index, part) in line.split('`').enumerate() {
            if index % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

/// The anchors mdbook gives a page's headings: lowercase, spaces to `-`, other punctuation
/// dropped.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_fence = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        let id: String = heading
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        found.insert(id);
    }
    found
}

#[test]
fn the_books_links_reach_their_pages_and_headings() {
    let mut files = Vec::new();
    pages(Path::new("docs/src"), &mut files);
    files.push(PathBuf::from("README.md"));
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") || link.is_empty() {
                continue;
            }
            let (path, anchor) = match link.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (link.as_str(), None),
            };
            let target = match path {
                "" => file.clone(),
                _ => file.parent().unwrap().join(path),
            };
            checked += 1;
            let Ok(target_text) = std::fs::read_to_string(&target) else {
                broken.push(format!("{}: {link} (no such file)", file.display()));
                continue;
            };
            if let Some(anchor) = anchor {
                if target.extension().is_some_and(|e| e == "md")
                    && !anchors(&target_text).contains(anchor)
                {
                    broken.push(format!("{}: {link} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 50, "only {checked} links checked");
}

#[test]
fn every_page_of_the_book_is_in_its_summary() {
    let summary = std::fs::read_to_string("docs/src/SUMMARY.md").unwrap();
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    let mut files = Vec::new();
    pages(Path::new("docs/src"), &mut files);
    for file in files {
        let name = file
            .strip_prefix("docs/src")
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if name == "SUMMARY.md" {
            continue;
        }
        assert!(
            listed.contains(&name),
            "docs/src/{name} is in no chapter of docs/src/SUMMARY.md"
        );
    }
    for name in listed {
        assert!(
            Path::new("docs/src").join(&name).exists(),
            "docs/src/SUMMARY.md lists {name}, which does not exist"
        );
    }
}

/// The checker itself finds what it must.
#[test]
fn links_and_anchors_are_read_as_mdbook_reads_them() {
    let text = "See [a](x.md#b-c) and `[no](code.md)`.\n```\n[no](fence.md)\n```\n[d](y.md)\n<!--\n- [no](comment.md)\n-->";
    assert_eq!(links(text), ["x.md#b-c", "y.md"]);
    let headings = anchors("# The `source:` field\n## Plans refuse what will fail\n");
    assert!(headings.contains("the-source-field"), "{headings:?}");
    assert!(headings.contains("plans-refuse-what-will-fail"));
}

/// The README's taste of a configuration is one corral accepts.
#[test]
fn the_readmes_configuration_is_valid() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme
        .find("```yaml\n")
        .expect("a YAML block in the README")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yaml"), &readme[start..end]).unwrap();
    let out = assert_cmd::Command::cargo_bin("corral")
        .unwrap()
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Every error code in the source (`code(corral::…)`) is listed in docs/src/errors.md,
/// and the page lists no code that does not exist.
#[test]
fn the_error_page_lists_every_error_code() {
    fn codes_in(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                codes_in(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices("code(corral::") {
                    let rest = &text[i + "code(".len()..];
                    let end = rest.find(')').unwrap();
                    found.insert(rest[..end].to_owned());
                }
            }
        }
    }
    let mut in_source = BTreeSet::new();
    codes_in(Path::new("src"), &mut in_source);
    codes_in(Path::new("crates"), &mut in_source);
    assert!(in_source.len() > 50, "{in_source:?}");
    let page = std::fs::read_to_string("docs/src/errors.md").unwrap();
    let in_page: BTreeSet<String> = page
        .split('`')
        .filter(|word| {
            // `corral::stage::what`; a heading's `corral::stage` names a group.
            word.starts_with("corral::")
                && word.matches("::").count() == 2
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':')
        })
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = in_source.difference(&in_page).collect();
    assert!(missing.is_empty(), "not in docs/src/errors.md: {missing:?}");
    let unknown: Vec<&String> = in_page.difference(&in_source).collect();
    assert!(
        unknown.is_empty(),
        "docs/src/errors.md lists unknown codes: {unknown:?}"
    );
}
