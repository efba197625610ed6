//! Helpers for the tests of every crate of the workspace, behind the `testing` feature
//! (the other crates enable it in their dev-dependencies only): never in the binary.

/// The repository's root, where `fixtures/`, `examples/` and `tests/inputs/` are: every
/// crate's folder is two below it (`crates/NAME`).
pub const REPOSITORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Runs `command` with `input` on its stdin and its stdout piped (stderr as the command
/// sets it), to the end.
pub fn output_with_stdin(
    command: &mut std::process::Command,
    input: &[u8],
) -> std::process::Output {
    use std::io::Write;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the command starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .expect("the command reads its input");
    child.wait_with_output().expect("the command ends")
}

/// What a real `sh -s` prints on stdout for `script` given on its stdin, as a fact script
/// runs (bytes that are not UTF-8 replaced).
pub fn run_sh(script: &str) -> String {
    let out = output_with_stdin(
        std::process::Command::new("sh").arg("-s"),
        script.as_bytes(),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `count` mutations of `seed`, each one to four edits (a byte of `alphabet` put over, or
/// in front of, a byte; a byte removed) at places an xorshift from `state` picks; those that
/// are no longer UTF-8 are left out. The same arguments give the same texts, so a failure
/// is found again.
pub fn mutations<'a>(
    seed: &'a str,
    alphabet: &'a [u8],
    mut state: u64,
    count: usize,
) -> impl Iterator<Item = String> + 'a {
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).filter_map(move |_| {
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() % (bytes.len() as u64 + 1)) as usize;
            let byte = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        String::from_utf8(bytes).ok()
    })
}
