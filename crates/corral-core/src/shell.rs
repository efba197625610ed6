//! Building POSIX shell text safely. Every value from the configuration that reaches a host
//! goes through [`quote`]; file bodies travel base64-encoded in a quoted here-document.

use base64::Engine;

/// Quotes `value` as one POSIX shell word.
///
/// NUL bytes cannot be passed to a program at all; the configuration checks reject them,
/// so here they are dropped rather than failing deep inside apply.
pub fn quote(value: &str) -> String {
    match shlex::try_quote(value) {
        Ok(quoted) => quoted.into_owned(),
        Err(_) => quote(&value.replace('\0', "")),
    }
}

/// Shell text that writes `bytes` to the file named by the shell expression `target`
/// (e.g. `"$tmp"`), through `base64 -d` and a quoted here-document so no byte of the content
/// is interpreted by the shell.
pub fn write_bytes(target: &str, bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut text = format!("base64 -d > {target} <<'CORRAL_EOF'\n");
    for chunk in encoded.as_bytes().chunks(76) {
        // base64's alphabet is ASCII, so every chunk is valid UTF-8.
        text.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        text.push('\n');
    }
    text.push_str("CORRAL_EOF\n");
    text
}

/// The words of a script as a command name could be among them: split at blanks and at
/// the shell's operators and quotes, so that `x=$(docker …)` and `| gluster` yield the
/// command's name, and a path holding one (`/etc/docker/…`) stays one word.
pub fn words(script: &str) -> impl Iterator<Item = &str> {
    script.split(|c: char| c.is_whitespace() || ";|&()`\"'{}=<>".contains(c))
}

/// Whether `value` is safe as a plain identifier-like word (package names, units, keys):
/// no whitespace, quotes, NUL or leading dash.
pub fn is_plain_word(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with('-')
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ':' | '@' | '/' | '=')
        })
}

/// A script that changes a host, as sent: one brace group, read whole before it runs, with
/// stdin from /dev/null (stdin is the script itself, and apt or a maintainer script must not
/// eat the rest of it) and stderr joined to stdout, in the C locale (scripts read what
/// programs print, such as `stat`'s "regular file", which a translation would change).
pub fn change_script(body: &str) -> String {
    format!(
        "export LC_ALL=C\nexec 2>&1\n{{\n{}\n}} </dev/null\n",
        body.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The quoted word must come back unchanged from a real `sh`.
    #[test]
    fn quote_round_trips_through_sh() {
        for value in [
            "plain",
            "with space",
            "it's",
            "$(reboot)",
            "`x`",
            "a\nb",
            "\\",
            "",
            "-n",
            "*",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }

    #[test]
    fn write_bytes_round_trips_through_sh() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let script = write_bytes(&quote(target.to_str().unwrap()), &bytes);
        let status = Command::new("sh").arg("-c").arg(script).status().unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(target).unwrap(), bytes);
    }
}
