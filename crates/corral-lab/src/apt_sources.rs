//! Finding the Debian mirror this machine's apt already uses, so the host image is
//! bootstrapped from a mirror known to be reachable. Read at run time from apt's sources;
//! no mirror is ever written into corral itself.

use std::path::{Path, PathBuf};

use super::LabError;

/// Overrides the mirror found in apt's sources.
pub const MIRROR_ENV: &str = "CORRAL_LAB_MIRROR";

/// The mirror to bootstrap from: `$CORRAL_LAB_MIRROR`, else the first non-security `deb`
/// URI of apt's deb822 `.sources` files, else of the one-line `sources.list` files.
pub(crate) fn find_mirror() -> Result<String, LabError> {
    if let Some(mirror) = std::env::var(MIRROR_ENV)
        .ok()
        .filter(|m| !m.trim().is_empty())
    {
        return Ok(mirror.trim().to_owned());
    }
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut read = Vec::new();
    let candidates = files_with_extension(dir, "sources")
        .into_iter()
        .map(|f| (f, true))
        .chain(std::iter::once((
            PathBuf::from("/etc/apt/sources.list"),
            false,
        )))
        .chain(
            files_with_extension(dir, "list")
                .into_iter()
                .map(|f| (f, false)),
        );
    for (file, deb822) in candidates {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        read.push(file.display().to_string());
        let found = if deb822 {
            mirrors_in_deb822(&text)
        } else {
            mirrors_in_one_line_format(&text)
        };
        if let Some(mirror) = found.into_iter().next() {
            return Ok(mirror);
        }
    }
    Err(LabError::NoMirror {
        searched: if read.is_empty() {
            "no apt source files found".to_owned()
        } else {
            format!("searched {}", read.join(", "))
        },
    })
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == extension))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Security archives carry only updates; debootstrap needs a full archive.
fn is_usable(uri: &str, suites: &[&str]) -> bool {
    let scheme_ok = ["http://", "https://", "ftp://", "file:/"]
        .iter()
        .any(|s| uri.starts_with(s));
    scheme_ok
        && !uri.trim_end_matches('/').ends_with("-security")
        && !suites
            .iter()
            .any(|s| s.contains("security") || s.ends_with("/updates"))
}

/// URIs of enabled `Types: deb` stanzas in deb822 format (`*.sources`).
pub(crate) fn mirrors_in_deb822(text: &str) -> Vec<String> {
    let mut mirrors = Vec::new();
    for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let types: Vec<&str> = field("types").split_whitespace().collect();
        let suites: Vec<&str> = field("suites").split_whitespace().collect();
        if !types.contains(&"deb") || field("enabled").eq_ignore_ascii_case("no") {
            continue;
        }
        for uri in field("uris").split_whitespace() {
            if is_usable(uri, &suites) {
                mirrors.push(uri.to_owned());
            }
        }
    }
    mirrors
}

/// URIs of `deb` lines in the one-line format (`sources.list`, `*.list`).
pub(crate) fn mirrors_in_one_line_format(text: &str) -> Vec<String> {
    let mut mirrors = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        // Skip options: `[arch=amd64 signed-by=...]`, possibly spread over several words.
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            match rest.iter().position(|w| w.ends_with(']')) {
                Some(end) => {
                    rest.drain(..=end);
                }
                None => continue,
            }
        }
        if let [uri, suite, ..] = rest.as_slice() {
            if is_usable(uri, &[suite]) {
                mirrors.push((*uri).to_owned());
            }
        }
    }
    mirrors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_skips_security_and_source_stanzas() {
        let text = "\
Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
";
        assert_eq!(mirrors_in_deb822(text), ["http://mirror.example/debian"]);
    }

    #[test]
    fn deb822_security_first_still_finds_the_main_archive() {
        let text = "\
Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security

Types: deb
URIs: https://other.example/debian
Suites: bookworm
Enabled: yes
";
        assert_eq!(mirrors_in_deb822(text), ["https://other.example/debian"]);
    }

    #[test]
    fn deb822_honours_enabled_no() {
        let text = "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\nEnabled: no\n";
        assert!(mirrors_in_deb822(text).is_empty());
    }

    #[test]
    fn one_line_format_with_options_and_comments() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main # trailing
deb cdrom:[Debian 12]/ bookworm main
";
        assert_eq!(
            mirrors_in_one_line_format(text),
            ["http://mirror.example/debian"]
        );
    }
}
