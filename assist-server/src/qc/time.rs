//! Timestamps in chat logs: ISO 8601 / RFC 3339 text or Unix time as a number.

use assist_store::UnixMs;

/// Parses a timestamp into Unix milliseconds:
///
/// - `2026-11-20T10:15:03Z`, `2026-11-20T10:15:03.250+08:00`, `2026-11-20 10:15:03` (a space
///   instead of `T`; no zone means UTC), `2026-11-20T10:15` (seconds optional);
/// - a number: Unix seconds (fractions allowed), or milliseconds when above 10^11.
pub fn parse_timestamp(raw: &str) -> Result<UnixMs, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("the timestamp is empty".into());
    }
    if let Ok(n) = value.parse::<f64>() {
        return from_number(n).ok_or_else(|| format!("`{value}` is not a usable Unix time"));
    }
    parse_iso(value).ok_or_else(|| {
        format!(
            "`{value}` is not a timestamp: use ISO 8601 like 2026-11-20T10:15:03+08:00 or Unix seconds"
        )
    })
}

/// Unix seconds, or milliseconds when the number is too large to be seconds.
pub fn from_number(n: f64) -> Option<UnixMs> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n >= 1e11 { n } else { n * 1000.0 };
    (ms < 1e15).then_some(ms.round() as UnixMs)
}

fn parse_iso(value: &str) -> Option<UnixMs> {
    let bytes = value.as_bytes();
    if bytes.len() < 10 {
        return None;
    }
    let (date, rest) = value.split_at(10);
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    let day_ms = days_from_civil(y, m, d) * 86_400_000;
    if rest.is_empty() {
        return Some(day_ms);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // Split off the zone: Z, +HH:MM, -HH:MM, +HHMM.
    let (clock, offset_minutes) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, zone) = rest.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 && digits.len() != 2 {
            return None;
        }
        let h: i64 = digits.get(..2)?.parse().ok()?;
        let mi: i64 = if digits.len() == 4 {
            digits.get(2..)?.parse().ok()?
        } else {
            0
        };
        (c, sign * (h * 60 + mi))
    } else {
        (rest, 0)
    };
    let mut hms = clock.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let s: f64 = match hms.next() {
        Some(v) => v.parse().ok()?,
        None => 0.0,
    };
    if hms.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&mi) {
        return None;
    }
    if !(0.0..61.0).contains(&s) {
        return None;
    }
    let local = day_ms + h * 3_600_000 + mi * 60_000 + (s * 1000.0).round() as i64;
    Some(local - offset_minutes * 60_000)
}

/// Days from 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_and_unix_forms() {
        let base = 1_763_633_703_000; // 2025-11-20T10:15:03Z
        assert_eq!(parse_timestamp("2025-11-20T10:15:03Z"), Ok(base));
        assert_eq!(parse_timestamp("2025-11-20 10:15:03"), Ok(base));
        assert_eq!(parse_timestamp("2025-11-20T18:15:03+08:00"), Ok(base));
        assert_eq!(parse_timestamp("2025-11-20T05:15:03-0500"), Ok(base));
        assert_eq!(parse_timestamp("2025-11-20T10:15:03.250Z"), Ok(base + 250));
        assert_eq!(parse_timestamp("1763633703"), Ok(base));
        assert_eq!(parse_timestamp("1763633703000"), Ok(base));
        assert_eq!(parse_timestamp("1763633703.5"), Ok(base + 500));
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2025-13-01T00:00:00Z").is_err());
        assert!(parse_timestamp("").is_err());
    }
}
