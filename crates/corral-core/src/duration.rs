//! Durations as Go reads and prints them (`time.ParseDuration`, `Duration.String`), the one
//! reader for what Docker and Compose files take: `10s`, `1m30s`, `1.5h`, `500ms`, `-2s`.
//! No crate matches Go's rules (`humantime` reads other units and no fractions the Go way;
//! `go-parse-duration` 0.1 misplaces its overflow bound and mixes bytes with characters),
//! so the rules are here, once. `lifecycle.timeout` has a grammar of corral's own (whole
//! seconds, spaces, `min`), not Go's, read here too.

use std::time::Duration;

/// Go's `time.ParseDuration`, in nanoseconds: `1h30m`, `1.5s`, `500ms`, `-2s`, `0`.
pub fn parse_go(text: &str) -> Option<i64> {
    const MAX: u64 = 1 << 63;
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let leading_digits =
        |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return None;
        }
        let int_len = leading_digits(rest);
        let whole: u64 = match int_len {
            0 => 0,
            _ => rest[..int_len].parse().ok().filter(|v| *v <= MAX)?,
        };
        rest = &rest[int_len..];
        let mut fraction = "";
        if let Some(after) = rest.strip_prefix('.') {
            let len = leading_digits(after);
            fraction = &after[..len];
            rest = &after[len..];
        }
        if int_len == 0 && fraction.is_empty() {
            return None;
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let mut value = whole.checked_mul(unit).filter(|v| *v <= MAX)?;
        // Go adds the fraction in floating point, digits past 2^63 ignored.
        let (mut numerator, mut scale, mut overflow) = (0u64, 1f64, false);
        for digit in fraction.bytes().map(|b| u64::from(b - b'0')) {
            if overflow {
                continue;
            }
            if numerator > (MAX - 1) / 10 {
                overflow = true;
                continue;
            }
            match numerator * 10 + digit {
                next if next <= MAX => {
                    numerator = next;
                    scale *= 10.0;
                }
                _ => overflow = true,
            }
        }
        if numerator > 0 {
            value = value
                .checked_add((numerator as f64 * (unit as f64 / scale)) as u64)
                .filter(|v| *v <= MAX)?;
        }
        total = total.checked_add(value).filter(|v| *v <= MAX)?;
    }
    match negative {
        true => Some((-(i128::from(total))) as i64),
        false => i64::try_from(total).ok(),
    }
}

/// A duration as corral writes Docker's flags and `swarm/service` takes them: Go's
/// syntax without sign or fractions (`10s`, `1m30s`, `500ms`, `0`), read by [`parse_go`].
pub fn parse_docker_flag(text: &str) -> Option<Duration> {
    let mut rest = text;
    if rest != "0" {
        if rest.is_empty() {
            return None;
        }
        // Only digits followed by a unit of ASCII letters: no sign, fraction, `µs` or space.
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let letters = rest[digits..].len()
                - rest[digits..]
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            if digits == 0 || letters == 0 {
                return None;
            }
            rest = &rest[digits + letters..];
        }
    }
    let nanos = u64::try_from(parse_go(text)?).ok()?;
    Some(Duration::from_nanos(nanos))
}

/// A `lifecycle.timeout` in whole seconds: `600`, `90s`, `20m`, `20min`, `1h30m`,
/// `1h 30m` (a bare number is seconds, but only alone: `1h 30` is a mistake). `None` when
/// it is not one or does not fit in a `u64`; the range is the caller's to check.
pub fn parse_timeout_seconds(text: &str) -> Option<u64> {
    let mut seconds: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let letters = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = match &rest[..letters] {
            "" if seconds == 0 && rest.is_empty() => 1,
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            _ => return None,
        };
        rest = rest[letters..].trim_start();
        seconds = number.checked_mul(unit)?.checked_add(seconds)?;
    }
    Some(seconds)
}

/// A duration as Go prints it, without fractions: `1m30s`, `500ms`, `0s`.
pub fn format_go(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".into();
    }
    let mut nanos = duration.as_nanos();
    let mut text = String::new();
    for (unit, size) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos >= size {
            text.push_str(&format!("{}{unit}", nanos / size));
            nanos %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_go_reads_them() {
        let second = 1_000_000_000;
        for (text, nanos) in [
            ("0", Some(0)),
            ("10s", Some(10 * second)),
            ("1m30s", Some(90 * second)),
            ("1.5s", Some(second + second / 2)),
            (".5h", Some(1800 * second)),
            ("-2ms", Some(-2_000_000)),
            ("3\u{b5}s", Some(3000)),
            ("10", None),
            ("1d", None),
            ("s", None),
            ("", None),
            ("9999999999h", None),
        ] {
            assert_eq!(parse_go(text), nanos, "{text}");
        }
    }

    /// Go's bounds: durations are int64 nanoseconds, the most negative one included.
    #[test]
    fn the_bounds_are_go_s() {
        assert_eq!(parse_go("9223372036854775807ns"), Some(i64::MAX));
        assert_eq!(parse_go("9223372036854775808ns"), None);
        assert_eq!(parse_go("-9223372036854775808ns"), Some(i64::MIN));
        assert_eq!(parse_go("2562048h"), None);
    }

    #[test]
    fn docker_flags_are_go_s_without_sign_or_fraction() {
        let parsed = parse_docker_flag;
        assert_eq!(parsed("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parsed("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parsed("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parsed("0"), Some(Duration::ZERO));
        assert_eq!(parsed("0s"), Some(Duration::ZERO));
        for bad in [
            "",
            "10",
            "1.5s",
            "10 s",
            "-1s",
            "+1s",
            "5d",
            "s",
            "3\u{b5}s",
            "99999999999h",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        for (nanos, shown) in [
            (90_000_000_000u64, "1m30s"),
            (1_500_000_000, "1s500ms"),
            (0, "0s"),
            (7_200_000_000_000, "2h"),
            (1_001, "1us1ns"),
        ] {
            assert_eq!(format_go(Duration::from_nanos(nanos)), shown);
        }
    }
}
