//! Times as the store and the logs write them: RFC 3339, UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// "2026-11-23T21:07:47Z".
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (date, time) = civil(secs);
    format!("{date}T{time}Z")
}

/// "2026-11-23T21:07:47.123456789Z": the log's line stamps, whose text
/// order is their time order.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, time) = civil(d.as_secs());
    format!("{date}T{time}.{:09}Z", d.subsec_nanos())
}

/// ("YYYY-MM-DD", "hh:mm:ss") of a time in seconds since the epoch.
fn civil(secs: u64) -> (String, String) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// A time as `logs --since` takes it: RFC 3339 ("2026-11-23T21:07:47Z",
/// with or without fractions; a date alone is its midnight), or a
/// duration before now ("10s", "5m", "2h").
pub fn parse_since(s: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some(unit) = s.chars().last().filter(|c| "smh".contains(*c)) {
        if let Ok(n) = s[..s.len() - 1].parse::<u64>() {
            let mult = match unit {
                's' => 1,
                'm' => 60,
                _ => 3600,
            };
            return now.checked_sub(Duration::from_secs(n.checked_mul(mult)?));
        }
    }
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00Z"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let time = time.strip_suffix('Z')?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
        digits.parse::<u32>().ok()?
    };
    // Days since the epoch (the inverse of `civil`).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(UNIX_EPOCH + Duration::new(days * 86_400 + hh * 3600 + mm * 60 + ss, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_both_ways() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_468_067);
        assert_eq!(rfc3339(t), "2026-11-23T21:07:47Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = t + Duration::from_nanos(120_000_007);
        assert_eq!(rfc3339_nanos(t), "2026-11-23T21:07:47.120000007Z");
        for s in [
            "2026-11-23T21:07:47.120000007Z",
            "2024-02-29T00:00:00Z",
            "1970-01-01T00:00:00Z",
        ] {
            assert_eq!(
                rfc3339_nanos(parse_since(s, t).unwrap()).replace(".000000000", ""),
                s
            );
        }
        assert_eq!(
            parse_since("2026-11-23T21:07:47.12Z", t),
            Some(UNIX_EPOCH + Duration::new(1_795_468_067, 120_000_000))
        );
        assert_eq!(parse_since("10s", t), Some(t - Duration::from_secs(10)));
        assert_eq!(parse_since("2h", t), Some(t - Duration::from_secs(7200)));
        for bad in [
            "",
            "x",
            "2026-13-01",
            "2026-11-23T25:00:00Z",
            "10x",
            "2026-11-23T21:07",
        ] {
            assert_eq!(parse_since(bad, t), None, "{bad}");
        }
    }
}
