//! Randomness from the kernel, for what two configurations or two files never share by
//! accident (an id, a salt, a secret's version key).

/// `N` bytes from the kernel's random source.
pub fn bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    bytes
}
