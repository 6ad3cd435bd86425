//! Times in query parameters: Unix milliseconds, a date `YYYY-MM-DD`, or
//! `YYYY-MM-DDTHH:MM[:SS]Z`. Dates are local to the request's `utc_offset_minutes`.

use super::error::ApiError;
use assist_store::UnixMs;

const DAY_MS: i64 = 86_400_000;

/// Which end of a range a parameter is: a bare date as `to` means the end of that day.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Start,
    End,
}

/// Parses the time parameter `name`.
pub fn parse(
    name: &str,
    value: &str,
    bound: Bound,
    utc_offset_minutes: i32,
) -> Result<UnixMs, ApiError> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        ApiError::bad_request(format!(
            "`{name}` must be Unix milliseconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, got `{value}`"
        ))
    };
    let (date, time) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) if (1..=12).contains(&m) && (1..=31).contains(&d) => (y, m, d),
        _ => return Err(bad()),
    };
    let day_start = days_from_civil(y, m, d) * DAY_MS;
    match time {
        None => {
            let local = day_start - i64::from(utc_offset_minutes) * 60_000;
            Ok(if bound == Bound::End {
                local + DAY_MS
            } else {
                local
            })
        }
        Some(t) => {
            let t = t.strip_suffix('Z').ok_or_else(bad)?;
            let mut hms = t.split(':');
            let h: i64 = hms.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            let mi: i64 = hms.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            let s: f64 = match hms.next() {
                Some(v) => v.parse().map_err(|_| bad())?,
                None => 0.0,
            };
            if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0.0..61.0).contains(&s) {
                return Err(bad());
            }
            Ok(day_start + h * 3_600_000 + mi * 60_000 + (s * 1000.0) as i64)
        }
    }
}

/// Days from 1970-01-01 to the date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Optional parameter helper.
pub fn parse_opt(
    name: &str,
    value: Option<&str>,
    bound: Bound,
    utc_offset_minutes: i32,
) -> Result<Option<UnixMs>, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse(name, v, bound, utc_offset_minutes))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_times_and_milliseconds_parse() {
        assert_eq!(
            parse("from", "1970-01-02", Bound::Start, 0).ok(),
            Some(DAY_MS)
        );
        assert_eq!(parse("to", "1970-01-01", Bound::End, 0).ok(), Some(DAY_MS));
        assert_eq!(
            parse("from", "2026-11-22T07:31:48Z", Bound::Start, 0).ok(),
            Some(1_795_332_708_000)
        );
        assert_eq!(parse("from", "12345", Bound::Start, 0).ok(), Some(12345));
        // Beijing midnight is 16:00 UTC the day before.
        assert_eq!(
            parse("from", "1970-01-02", Bound::Start, 480).ok(),
            Some(DAY_MS - 8 * 3_600_000)
        );
        assert!(parse("from", "yesterday", Bound::Start, 0).is_err());
        assert!(parse("from", "2026-13-01", Bound::Start, 0).is_err());
    }
}
