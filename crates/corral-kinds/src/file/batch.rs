//! The probes of one fact script that read files, read by one `perl` instead of a process
//! or more each: [`super::probe`]'s (a file's content, metadata or digest),
//! [`super::account_probe`]'s, who corral runs as, corral's record of the host (from
//! `managed`), and `os/sysctl`'s live values (`sysctl -n KEY`, read from `/proc/sys`).
//!
//! [`super::PROBE_FUNCTION`] costs a host a subshell, `pwd`, `stat`, `dd` and `base64` per
//! file, and `sysctl` a process per key: about 4 ms and 1-1.5 ms of CPU on a lab host, and
//! a hardening plan reads dozens of both. Where the host has `perl` (Debian's essential
//! `perl-base`; no module is loaded), one process answers them all, printing each probe's
//! whole section (markers included) exactly as the probe would have; a digest (a file to
//! compare, or one past [`super::MAX_DIFF_BYTES`]) is `sha256sum`'s, started by the reader
//! with the file it opened as its input.
//!
//! It answers only what it can answer the same way, byte for byte: a walk that ends at a
//! link, a missing name, a non-directory or a regular file or directory it can read; a
//! sysctl value of one line. For anything else (a path with an empty, `.` or `..`
//! component, a race seen while walking, a device, FIFO or socket, a key that cannot be
//! read, any call that fails) it prints nothing for that probe; it writes the indexes of
//! the probes it answered to file descriptor 3, and the script runs the probe itself for
//! every other one. Without `perl`, every probe runs as before. A probe's section is
//! printed whole before its index is, so a `perl` killed half-way leaves at worst a probe
//! answered twice, the same way.
//!
//! (The shell's builtin `read` cannot stand in for `sysctl`: `dash` reads a byte at a
//! time, and the kernel's numeric sysctl files answer only a read from offset 0, so it
//! sees the first digit and no newline.)

use crate::shell::quote;

/// The reader. Arguments: the script's nonce, `1` for timings (else `0`), then for each
/// probe its index and [`super::probe`]'s three arguments (path, how, id).
///
/// As the shell function: walk down from `/` one directory at a time (`lstat` each name,
/// then `chdir` into it, and `.` must be the directory `lstat` saw: a directory swapped
/// for a link after the check is seen), `lstat` the last name, `%a %U %G %s %Y %F` as
/// `stat -c` prints them (`UNKNOWN` for an owner without a name), the content opened and
/// checked to be the regular file `lstat` saw (a name swapped for a link in between is
/// not read), in base64 (`pack 'u'` translated to the base64 alphabet, padded), or its
/// digest by `sha256sum` reading that open file.
///
/// No module is loaded: `Fcntl` and `Cwd` took a lab host's `perl` from 2.5 to 10.5 ms
/// (and `perl-base` has no `MIME::Base64`).
const READER: &str = r#"my ($n, $t, @a) = @ARGV;
open(my $done, '>&=', 3) or exit 0;
select($done); $| = 1; select(STDOUT); $| = 1;
sub clock { return '' unless $t; open(my $u, '<', '/proc/uptime') or return ' -'; my $l = <$u>; return defined $l && $l =~ /^(\S+)/ ? " $1" : ' -' }
sub b64 { my $d = shift; my $e = pack('u', $d); $e =~ s/^.//mg; $e =~ tr/\n//d; $e =~ tr|` -_|AA-Za-z0-9+/|; my $p = (3 - length($d) % 3) % 3; substr($e, -$p) = '=' x $p if $p; return $e }
sub link_at { my ($name, $at) = @_; my $l = readlink $name; return undef unless defined $l; $l =~ tr/\n\t//d; return "link\t$at\t$l\n" }
sub digest { my $f = shift; my $pid = open(my $h, '-|') // return undef; if (!$pid) { open(STDIN, '<&', $f) or exit 1; exec('sha256sum') or exit 1 } my $l = <$h>; close $h; return $? == 0 && defined $l && $l =~ /^([0-9a-f]{64})  -$/ ? $1 : undef }
sub same { my ($x, $y) = @_; return @$x && @$y && $x->[0] == $y->[0] && $x->[1] == $y->[1] }
sub value { my $p = shift; open(my $f, '<', $p) or return undef; local $/; my $v = <$f>; return defined $v && $v =~ /\A[^\n]+\n\z/ ? $v : undef }
sub account { my ($name, $db) = @_; my @e = $db eq 'passwd' ? getpwnam($name) : getgrnam($name); return @e ? '' : undef }
sub login { my $u = $ENV{SUDO_USER}; return "$u\n" if defined $u && $u ne ''; my $n = getpwuid($>); return defined $n ? "$n\n" : undef }
sub slurp { my $p = shift; open(my $f, '<', $p) or return undef; binmode $f; local $/; my $d = <$f>; return defined $d ? $d : undef }
sub names { my $dir = shift; opendir(my $d, $dir) or return -e $dir ? undef : []; return [sort grep { !/^\./ } readdir $d] }
sub managed {
  my ($decl, $owed) = @_;
  my %declared = map { $_ => 1 } split /\n/, $decl;
  my $o = "record none\n";
  if (-f 'RECORDFILE') { my $d = slurp('RECORDFILE'); return undef unless defined $d; $o = 'record ' . b64($d) . "\n" }
  my $names = names('ORIGINALS') or return undef;
  for my $n (grep { /\.path\z/ } @$names) {
    next unless -f "ORIGINALS/$n";
    my $cid = substr($n, 0, -5);
    return undef unless $cid =~ /^[0-9a-f]+$/;
    open(my $k, '<', "ORIGINALS/$n") or return undef;
    my $kept = <$k>; $kept = '' unless defined $kept; $kept =~ s/\n\z//;
    my $how = -e "ORIGINALS/$cid.sensitive" || $declared{$kept} ? 'meta' : 'content';
    my $was = one("ORIGINALS/$cid", $how, 'none'); return undef unless defined $was;
    my $now = one($kept, $how, $cid); return undef unless defined $now;
    $o .= "\@original\t$cid\n$was\@current\t$cid\n$now";
  }
  for my $n (grep { /\.created\z/ } @$names) { $o .= "\@created\t" . substr($n, 0, -8) . "\n" if -f "ORIGINALS/$n" }
  my $debts = names($owed) or return undef;
  for my $n (@$debts) {
    my $p = "$owed/$n";
    next unless -f $p && !-l $p;
    my @st = stat $p; my $d = slurp($p);
    return undef unless @st && defined $d;
    $o .= "\@owed\t$n\t$st[9]\t" . b64($d) . "\n";
  }
  return $o;
}
sub one {
  my ($p, $how, $id) = @_;
  return value($p) if $how eq 'sysctl';
  return managed($p, $id) if $how eq 'managed';
  return account($p, $how) if $how eq 'passwd' || $how eq 'group';
  return login() if $how eq 'login';
  return undef unless ($how eq 'content' || $how eq 'meta' || $how =~ /^[0-9a-f]{64}$/) && $id =~ /^([0-9a-f]+|none)$/ && $p =~ m{^/.};
  my @c = split m{/}, substr($p, 1), -1;
  return undef if grep { $_ eq '' || $_ eq '.' || $_ eq '..' } @c;
  my $r = pop @c;
  chdir '/' or return undef;
  my $q = '';
  for my $c (@c) {
    $q .= "/$c";
    return link_at($c, $q) if -l $c;
    return "absent\t$q\n" unless -e _;
    return "notdir\t$q\n" unless -d _;
    my @was = lstat _;
    chdir $c or return undef;
    my @now = stat '.';
    return undef unless same(\@was, \@now);
  }
  return link_at($r, $p) if -l $r;
  return "absent\t$p\n" unless -e _;
  my @s = lstat _;
  my $type = -f _ ? ($s[7] ? 'regular file' : 'regular empty file') : -d _ ? 'directory' : return undef;
  my ($u, $g) = (scalar getpwuid($s[4]), scalar getgrgid($s[5]));
  my $o = sprintf("stat %o %s %s %d %d %s\n", $s[2] & 07777, $u // 'UNKNOWN', $g // 'UNKNOWN', $s[7], $s[9], $type);
  $o .= "original kept\n" if -e "ORIGINALS/$id";
  $o .= "created by corral\n" if -e "ORIGINALS/$id.created";
  return $o if $type eq 'directory' || $how eq 'meta';
  open(my $f, '<', $r) or return undef;
  my @fs = stat $f;
  return undef unless same(\@s, \@fs) && -f _;
  if ($how ne 'content' || $s[7] > MAXBYTES) {
    my $h = digest($f);
    return undef unless defined $h;
    return $o . "sha256 $h  -\n" if $how eq 'content';
    return $o . ($h eq $how ? "compare same\n" : "compare differs\n");
  }
  binmode $f;
  my ($d, $got) = ('', 0);
  while (($got = sysread($f, $d, 65536, length $d))) {}
  return undef unless defined $got;
  return $o . 'base64 ' . b64($d) . "\n";
}
while (@a >= 4) {
  my ($i, $p, $how, $id) = splice @a, 0, 4;
  my $s = clock();
  my $o = one($p, $how, $id);
  next unless defined $o;
  print "\@\@F $n $i$s\n$o\n\@\@E $n $i 0" . clock() . "\n";
  print $done "$i ";
}
"#;

/// [`READER`] with its constants filled in, made once.
fn reader() -> &'static str {
    static READER_TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    READER_TEXT.get_or_init(|| {
        READER
            .replace("ORIGINALS", super::ORIGINALS_DIR)
            .replace("RECORDFILE", crate::facts::record::PATH)
            .replace("MAXBYTES", &super::MAX_DIFF_BYTES.to_string())
    })
}

/// The reader's arguments for a probe it can answer (path quoted, how, id), or none:
/// a probe [`super::probe`] made (a file's content, metadata, or digest to compare), a sysctl key's live
/// value (`sysctl -n KEY`), read from `/proc/sys` where it is one line, whether an account
/// or group exists ([`super::account_probe`]; the name found in the same databases as
/// `getent` reads, else `getent` answers), and who corral runs as
/// ([`crate::user::login_probe`]: `SUDO_USER`, else the effective user's name).
pub fn args(key: &str, script: &str) -> Option<String> {
    if let Some(path) = crate::sysctl::live_value_path(key, script) {
        return Some(format!("{} sysctl -", quote(&path)));
    }
    if let Some((database, name)) = key
        .strip_prefix("getent:")
        .and_then(|rest| rest.split_once(':'))
    {
        let known = matches!(database, "passwd" | "group");
        return (known && super::account_probe(database, name).script == script)
            .then(|| format!("{} {database} -", quote(name)));
    }
    let login = crate::user::login_probe();
    if key == login.key && script == login.script {
        return Some("- login -".to_owned());
    }
    let call = script
        .strip_prefix(super::probe_function())?
        .strip_prefix("corral_file ")?;
    let (path_and_how, id) = call.rsplit_once(' ')?;
    let (_, how) = path_and_how.rsplit_once(' ')?;
    let plain_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
    let digest = how.len() == 64 && how.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ((how == "content" || how == "meta" || digest) && plain_id).then(|| call.to_owned())
}

/// A shell function `corral_files` that reads the files of `probes` (each an index and its
/// [`args`]): the reader where `perl` is found, then `section(index)` in the shell for every
/// probe the reader did not answer. None without probes.
pub fn function(
    nonce: &str,
    timings: bool,
    probes: &[(usize, String)],
    section: impl Fn(usize) -> String,
) -> Option<String> {
    if probes.is_empty() {
        return None;
    }
    let mut text = format!(
        "corral_files() {{\ncorral_done=\nif command -v perl >/dev/null 2>&1; then {{ corral_done=$(perl -e {} {nonce} {}",
        quote(reader()),
        u8::from(timings)
    );
    for (index, args) in probes {
        text.push_str(&format!(" {index} {args}"));
    }
    text.push_str(" 3>&1 1>&4 2>/dev/null); } 4>&1; fi\n");
    for (index, _) in probes {
        text.push_str(&format!(
            "case \" $corral_done \" in *\" {index} \"*) ;; *) {} ;; esac\n",
            section(*index)
        ));
    }
    text.push_str("}\n");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::super::{probe, Read};
    use super::*;
    use crate::facts::Probe;
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    const NONCE: &str = "0123456789abcdef";

    use corral_core::testing::run_sh;

    /// The sections of a script's output, by index: (output, rc, clock fields present).
    fn sections(out: &str) -> BTreeMap<usize, (String, String)> {
        let mut found = BTreeMap::new();
        let mut rest = out;
        let start = format!("@@F {NONCE} ");
        while let Some(at) = rest.find(&start) {
            let (head, body) = rest[at + start.len()..].split_once('\n').unwrap();
            let index: usize = head.split(' ').next().unwrap().parse().unwrap();
            let end = body.find(&format!("\n@@E {NONCE} {index} ")).unwrap();
            let (marker, next) = body[end + 1..].split_once('\n').unwrap();
            let rc = marker.split(' ').nth(3).unwrap().to_owned();
            found.insert(index, (body[..end].to_owned(), rc));
            rest = next;
        }
        found
    }

    /// The section of `probe` run alone through the shell function.
    fn alone(index: usize, probe: &Probe) -> (String, String) {
        let shell = run_sh(&format!(
            "export LC_ALL=C\nexec 2>&1\np() {{\n{}\n}}\n{{ printf '@@F %s %s\\n' {NONCE} {index}; p </dev/null 2>&1; printf '\\n@@E %s %s %s\\n' {NONCE} {index} $?; }}\n",
            probe.script
        ));
        sections(&shell).remove(&index).unwrap()
    }

    /// Every probe through the reader and, alone, through the shell function, on a real
    /// `sh`, `perl` and coreutils: the same sections, and the reader took every probe it
    /// says it answers (so the comparison is not of the shell with itself).
    #[test]
    fn the_reader_prints_what_the_shell_function_prints() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let at = |name: &str| root.join(name).to_str().unwrap().to_owned();
        // Contents of every length around base64's groups and `pack 'u'`'s 45-byte lines,
        // with every byte value.
        let bytes: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        // Digests to compare with: the one of `sub/file`'s bytes, and another.
        let same = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"x\n"));
        let other = "0".repeat(64);
        let mut answered = Vec::new();
        let mut cases = Vec::new();
        for len in [1usize, 2, 3, 4, 44, 45, 46, 47, 90, 91, 256, 700] {
            let name = format!("len{len}");
            std::fs::write(root.join(&name), &bytes[..len]).unwrap();
            cases.push((at(&name), Read::Content, true));
        }
        std::fs::write(root.join("empty"), b"").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), b"x\n").unwrap();
        std::fs::set_permissions(
            root.join("sub/file"),
            std::os::unix::fs::PermissionsExt::from_mode(0o4751),
        )
        .unwrap();
        symlink(root.join("sub/file"), root.join("link")).unwrap();
        symlink("sub\n\twith\ttabs", root.join("odd-link")).unwrap();
        symlink(root.join("sub"), root.join("linkdir")).unwrap();
        std::fs::write(root.join("big"), vec![b'a'; 300 * 1024]).unwrap();
        let fifo = root.join("fifo");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        cases.extend([
            (at("empty"), Read::Content, true),
            (at("sub/file"), Read::Content, true),
            (at("sub/file"), Read::Metadata, true),
            (at("sub"), Read::Metadata, true),
            (at("sub"), Read::Content, true),
            (at("link"), Read::Content, true),
            (at("odd-link"), Read::Content, true),
            (at("linkdir/file"), Read::Content, true),
            (at("missing"), Read::Content, true),
            (at("missing/deeper/file"), Read::Content, true),
            (at("empty/below"), Read::Content, true),
            (at("name with 'quotes' and $(spaces)"), Read::Content, true),
            // Digests, by `sha256sum` on the file the reader opened: past the size for a
            // diff, compared the same and differing, of a directory and of nothing.
            (at("big"), Read::Content, true),
            (at("sub/file"), Read::CompareWith(&same), true),
            (at("sub/file"), Read::CompareWith(&other), true),
            (at("big"), Read::CompareWith(&other), true),
            (at("sub"), Read::CompareWith(&same), true),
            (at("missing"), Read::CompareWith(&same), true),
            // The shell's: a FIFO, odd paths.
            (at("fifo"), Read::Content, false),
            (
                format!("{}/./sub/file", root.display()),
                Read::Content,
                false,
            ),
            (
                format!("{}//sub/file", root.display()),
                Read::Content,
                false,
            ),
        ]);
        if nix_is_root() {
            std::fs::write(root.join("nobody-owns"), b"y").unwrap();
            std::os::unix::fs::chown(root.join("nobody-owns"), Some(54321), Some(54321)).unwrap();
            cases.push((at("nobody-owns"), Read::Content, true));
        }
        let mut probes: Vec<_> = cases
            .iter()
            .map(|(path, read, _)| probe(path, *read))
            .collect();
        // Accounts, found and not (`getent` exits 2), and who runs this.
        for (database, name, found) in [
            ("passwd", "root", true),
            ("group", "root", true),
            ("passwd", "corral-no-such-user", false),
            ("group", "0", false),
        ] {
            probes.push(super::super::account_probe(database, name));
            cases.push((format!("{database} {name}"), Read::Metadata, found));
        }
        probes.push(crate::user::login_probe());
        cases.push(("login".to_owned(), Read::Metadata, true));
        let mut batched = Vec::new();
        let mut text = format!(
            "export LC_ALL=C\nexec 2>&1\n{}",
            super::super::probe_function()
        );
        for (index, p) in probes.iter().enumerate() {
            let call = p
                .script
                .strip_prefix(super::super::probe_function())
                .unwrap_or(&p.script);
            text.push_str(&format!("p{index}() {{\n{call}\n}}\n"));
            batched.push((
                index,
                args(&p.key, &p.script).expect("a probe the reader takes"),
            ));
        }
        let section = |i: usize| {
            format!("{{ printf '@@F %s %s\\n' {NONCE} {i}; p{i} </dev/null 2>&1; printf '\\n@@E %s %s %s\\n' {NONCE} {i} $?; }}")
        };
        text.push_str(&function(NONCE, false, &batched, section).unwrap());
        text.push_str("corral_files\necho \"@@DONE $corral_done\"\n");
        let out = run_sh(&text);
        let done: Vec<usize> = out
            .rsplit_once("@@DONE ")
            .unwrap()
            .1
            .split_whitespace()
            .map(|i| i.parse().unwrap())
            .collect();
        let got = sections(&out);
        for (index, (path, read, by_reader)) in cases.iter().enumerate() {
            let expected = alone(index, &probes[index]);
            assert_eq!(got.get(&index), Some(&expected), "{path} ({read:?})");
            assert_eq!(
                done.contains(&index),
                *by_reader,
                "{path} ({read:?}): {out}"
            );
            if *by_reader {
                answered.push(index);
            }
        }
        assert!(answered.len() > 20, "{answered:?}");
    }

    /// Without `perl` on the PATH every probe runs in the shell, the same way.
    #[test]
    fn without_perl_the_shell_reads_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("f"), b"hello\n").unwrap();
        let p = probe(root.join("f").to_str().unwrap(), Read::Content);
        let call = p
            .script
            .strip_prefix(super::super::probe_function())
            .unwrap();
        let section = |i: usize| {
            format!("{{ printf '@@F %s %s\\n' {NONCE} {i}; p{i} </dev/null 2>&1; printf '\\n@@E %s %s %s\\n' {NONCE} {i} $?; }}")
        };
        // A shell whose `command -v perl` finds nothing: a function shadows nothing for
        // `command -v`, so the PATH is cut to a directory holding only what the shell
        // function runs.
        let bin = tempfile::tempdir().unwrap();
        for tool in ["stat", "dd", "base64", "readlink", "tr", "sha256sum"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap();
            let path = String::from_utf8(found.stdout).unwrap();
            symlink(path.trim(), bin.path().join(tool)).unwrap();
        }
        let text = format!(
            "PATH={}\nexport LC_ALL=C\nexec 2>&1\n{}p0() {{\n{call}\n}}\n{}corral_files\necho \"@@DONE $corral_done.\"\n",
            bin.path().display(),
            super::super::probe_function(),
            function(NONCE, false, &[(0, args(&p.key, &p.script).unwrap())], section).unwrap()
        );
        let out = run_sh(&text);
        assert!(out.contains("@@DONE ."), "{out}");
        let got = sections(&out).remove(&0).unwrap();
        assert!(got.0.ends_with("base64 aGVsbG8K\n"), "{out}");
        assert_eq!(got, alone(0, &p));
    }

    /// The probe `os/sysctl` makes of a key (`sysctl -n KEY`).
    fn sysctl(key: &str) -> Probe {
        Probe {
            key: format!("sysctl:{key}"),
            script: format!("sysctl -n {}", quote(key)),
        }
    }

    /// Sysctl keys read by the reader print what `sysctl -n` prints, for keys this
    /// machine's kernel has (every seventh of `sysctl -a`'s, values that change between two
    /// reads left out) and awkward ones: tabs, write-only, failing to read while unset,
    /// absent. A real `sysctl`; most keys taken by the reader.
    #[test]
    fn the_reader_reads_sysctl_values_as_sysctl_prints_them() {
        let listed = Command::new("sysctl").args(["-N", "-a"]).output().unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        let mut keys: Vec<&str> = listed.lines().step_by(7).collect();
        assert!(keys.len() > 20, "{listed}");
        keys.extend([
            "net.ipv4.ip_local_port_range",
            "kernel.printk",
            "vm.drop_caches",
            "net.ipv6.conf.all.stable_secret",
            "kernel.domainname",
            "net.ipv4.no_such_key",
        ]);
        // Counters every process started moves (dentries, inodes, open files, random
        // numbers): a second reader changes what the first one saw.
        let counters = [
            "fs.dentry-state",
            "fs.inode-nr",
            "fs.inode-state",
            "fs.file-nr",
            "kernel.random.",
            "kernel.ns_last_pid",
        ];
        let probes: Vec<Probe> = keys
            .iter()
            .filter(|k| !counters.iter().any(|c| k.starts_with(c)))
            .filter_map(|k| crate::sysctl::canonical_key(k).ok())
            .map(|k| sysctl(&k))
            .collect();
        let mut text = String::from("export LC_ALL=C\nexec 2>&1\n");
        let mut batched = Vec::new();
        for (index, p) in probes.iter().enumerate() {
            text.push_str(&format!("p{index}() {{\n{}\n}}\n", p.script));
            batched.push((index, args(&p.key, &p.script).unwrap()));
        }
        let section = |i: usize| {
            format!("{{ printf '@@F %s %s\\n' {NONCE} {i}; p{i} </dev/null 2>&1; printf '\\n@@E %s %s %s\\n' {NONCE} {i} $?; }}")
        };
        text.push_str(&function(NONCE, false, &batched, section).unwrap());
        text.push_str("corral_files\necho \"@@DONE $corral_done\"\n");
        let out = run_sh(&text);
        let done = out.rsplit_once("@@DONE ").unwrap().1.to_owned();
        let got = sections(&out);
        let (mut compared, mut by_reader) = (0, 0);
        for (index, p) in probes.iter().enumerate() {
            let mut expected = alone(index, p);
            let mut read = got[&index].clone();
            // A counter or a random value changes between two reads: read both again, side
            // by side, a few times; a value that never changes must match.
            let mut changing = false;
            for _ in 0..5 {
                if read == expected {
                    break;
                }
                read = sections(&run_sh(&text))[&index].clone();
                let again = alone(index, p);
                changing |= again != expected;
                expected = again;
            }
            if read != expected && changing {
                continue;
            }
            assert_eq!(read, expected, "{}", p.key);
            compared += 1;
            by_reader += usize::from(done.split_whitespace().any(|i| i == index.to_string()));
        }
        assert!(
            compared > 20 && by_reader * 2 > compared,
            "{by_reader} of {compared}"
        );
        assert_ne!(
            got[&(probes.len() - 1)].1,
            "0",
            "an absent key fails as sysctl fails"
        );
    }

    fn nix_is_root() -> bool {
        std::env::var("USER").as_deref() == Ok("root")
            || Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout == b"0\n")
    }

    #[test]
    fn only_the_probes_the_reader_reads_alike_are_batched() {
        let batched = |p: Probe| args(&p.key, &p.script);
        assert!(batched(probe("/etc/motd", Read::Content)).is_some());
        assert!(batched(probe("/etc/motd", Read::Metadata)).is_some());
        let digest = "ab".repeat(32);
        assert!(batched(probe("/etc/motd", Read::CompareWith(&digest))).is_some());
        let short = "ab".repeat(8);
        assert!(batched(probe("/etc/motd", Read::CompareWith(&short))).is_none());
        assert!(args("file:content:/etc/motd", "corral_file /etc/motd content 00").is_none());
        assert_eq!(
            batched(sysctl("net.ipv4.conf.eth0/1.rp_filter")).as_deref(),
            Some("/proc/sys/net/ipv4/conf/eth0.1/rp_filter sysctl -")
        );
        assert_eq!(
            args("sysctl:kernel.printk", "sysctl -n kernel.printk; id"),
            None
        );
    }
}
