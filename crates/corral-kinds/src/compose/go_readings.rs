//! Go's readings, as the CLI's libraries do them: yaml.v2's plain scalars, `strconv`
//! integers, `fmt` floats and google/shlex's split of a string `command:`.

use super::yaml_v2::Val;

/// A plain scalar as yaml.v2 (`resolve.go`) resolves it: YAML 1.1 booleans and nulls, Go's
/// `strconv.ParseInt(_, 0, 64)` integers (so `0644` is octal, `0x1F` hex), YAML-style
/// floats; everything else, timestamps included, a string.
pub(super) fn resolve_plain(text: &str) -> Val {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Val::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Val::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Val::Bool(false)
        }
        ".nan" | ".NaN" | ".NAN" => return Val::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Val::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Val::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let float = |s: &str| {
        is_yaml_float(s)
            .then(|| s.parse::<f64>().ok())
            .flatten()
            // Go's ParseFloat fails on overflow: the scalar stays a string.
            .filter(|f| f.is_finite())
            .map(Val::Float)
    };
    match text.as_bytes().first() {
        Some(b'.') => float(text).unwrap_or_else(|| Val::Str(text.to_owned())),
        Some(b'+' | b'-' | b'0'..=b'9') => {
            let plain = text.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                return Val::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Val::UInt(u);
            }
            float(&plain).unwrap_or_else(|| Val::Str(text.to_owned()))
        }
        _ => Val::Str(text.to_owned()),
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.strip_prefix('.') {
        Some(fraction) => !fraction.is_empty() && digits(fraction) == fraction.len(),
        None => {
            let int = digits(mantissa);
            int > 0
                && match &mantissa[int..] {
                    "" => true,
                    rest => rest.strip_prefix('.').is_some_and(|f| digits(f) == f.len()),
                }
        }
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e) == e.len()
    });
    mantissa_ok && exponent_ok
}

/// Go's `strconv.ParseUint(s, 0, 64)`: `0x`, `0o`, `0b` prefixes, a leading `0` for octal.
fn go_parse_uint(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    let (radix, digits) = match bytes {
        [] => return None,
        [b'0', prefix, _, ..] if matches!(prefix.to_ascii_lowercase(), b'b' | b'o' | b'x') => {
            let radix = match prefix.to_ascii_lowercase() {
                b'b' => 2,
                b'o' => 8,
                _ => 16,
            };
            (radix, &s[2..])
        }
        [b'0', ..] => (8, &s[1..]),
        _ => (10, s),
    };
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.Atoi` (64-bit): an optional sign and decimal digits.
pub(super) fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = i128::from(go_parse_uint(rest)?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// A float as Go's `fmt.Sprint` prints it (`%g` with the shortest digits: `1.5`, `1e+06`,
/// `0.0001`, `1.234567e+06`), which is what a number becomes in `environment:`.
pub(super) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: Vec<char> = mantissa.chars().filter(char::is_ascii_digit).collect();
    let count = digits.len() as i32;
    let mut out = sign.to_owned();
    if !(-4..6).contains(&exponent) {
        out.push(digits.first().copied().unwrap_or('0'));
        if digits.len() > 1 {
            out.push('.');
            out.extend(&digits[1..]);
        }
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{exponent_sign}{:02}", exponent.abs()));
        return out;
    }
    let point = exponent + 1;
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or('0')
    };
    if point > 0 {
        (0..point).for_each(|i| out.push(digit(i)));
    } else {
        out.push('0');
    }
    let decimals = (count - point).max(0);
    if decimals > 0 {
        out.push('.');
        (0..decimals).for_each(|i| out.push(digit(point + i)));
    }
    out
}

/// A string `command:` split as the CLI splits it (github.com/google/shlex): words
/// separated by spaces, tabs and newlines; `'…'` literal; `"…"` where `\` escapes any
/// character; `\` outside quotes escapes the next; `#` at the start of a word comments to
/// the end of the line.
pub(super) fn split_command(text: &str) -> Result<Vec<String>, &'static str> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Start,
        Word,
        Escaping,
        EscapingInQuotes,
        DoubleQuoted,
        SingleQuoted,
        Comment,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    for c in text.chars().map(Some).chain([None]) {
        let space = matches!(c, Some(' ' | '\t' | '\r' | '\n'));
        state = match (state, c) {
            (State::Start, None) => break,
            (State::Start, _) if space => State::Start,
            (State::Start | State::Word, Some('"')) => State::DoubleQuoted,
            (State::Start | State::Word, Some('\'')) => State::SingleQuoted,
            (State::Start | State::Word, Some('\\')) => State::Escaping,
            (State::Start, Some('#')) => State::Comment,
            (State::Word, None) => {
                words.push(std::mem::take(&mut word));
                break;
            }
            (State::Word, _) if space => {
                words.push(std::mem::take(&mut word));
                State::Start
            }
            (State::Start | State::Word | State::Escaping, Some(c)) => {
                word.push(c);
                State::Word
            }
            (State::Escaping | State::EscapingInQuotes, None) => return Err("it ends with `\\`"),
            (State::EscapingInQuotes, Some(c)) => {
                word.push(c);
                State::DoubleQuoted
            }
            (State::DoubleQuoted | State::SingleQuoted, None) => {
                return Err("a quote is not closed")
            }
            (State::DoubleQuoted, Some('"')) | (State::SingleQuoted, Some('\'')) => State::Word,
            (State::DoubleQuoted, Some('\\')) => State::EscapingInQuotes,
            (State::DoubleQuoted | State::SingleQuoted, Some(c)) => {
                word.push(c);
                state
            }
            (State::Comment, None) => break,
            (State::Comment, Some('\n')) => State::Start,
            (State::Comment, Some(_)) => State::Comment,
        };
    }
    Ok(words)
}
