//! How values look in tables: sizes, CPU time and dates the way `ps`,
//! `uptime` and `ls` show them, in the viewer's local time zone.

/// A byte count with a binary unit, as `ps` and `free -h` show it:
/// "512B", "9.8M", "123M", "1.2G".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n}B"),
        _ if value < 10.0 => format!("{value:.1}{}", UNITS[unit]),
        _ => format!("{value:.0}{}", UNITS[unit]),
    }
}

/// CPU seconds as `ps`'s TIME column: "HH:MM:SS", with "D-" before it
/// past a day.
pub fn cpu_time(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    let (days, rest) = (total / 86_400, total % 86_400);
    let hms = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    match days {
        0 => hms,
        d => format!("{d}-{hms}"),
    }
}

/// A length of time as `uptime` says it: "3:04", "2 days, 3:04".
pub fn duration(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    let (days, hours, minutes) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60);
    let hm = format!("{hours}:{minutes:02}");
    match days {
        0 => hm,
        1 => format!("1 day, {hm}"),
        d => format!("{d} days, {hm}"),
    }
}

/// How long something has lasted, short and to the point, as a zombie's
/// age reads in a table: "42s", "12m05s", "3h04m", "2d03h".
pub fn age(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m{secs:02}s")
    } else {
        format!("{secs}s")
    }
}

/// Seconds since the epoch as a full local date and time,
/// "2026-11-03 14:02:11", or the number itself if it is no date.
pub fn datetime(epoch: f64) -> String {
    match LocalTime::at(epoch) {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        ),
        None => format!("{epoch}"),
    }
}

/// A start time as `ps`'s STIME column: "14:02" today, "Nov03" this
/// year, "2024" before.
pub fn start_time(epoch: f64, now: f64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (Some(t), Some(today)) = (LocalTime::at(epoch), LocalTime::at(now)) else {
        return "?".to_owned();
    };
    if (t.year, t.month, t.day) == (today.year, today.month, today.day) {
        format!("{:02}:{:02}", t.hour, t.minute)
    } else if t.year == today.year {
        let month = MONTHS
            .get(t.month.saturating_sub(1) as usize)
            .unwrap_or(&"???");
        format!("{month}{:02}", t.day)
    } else {
        t.year.to_string()
    }
}

/// Now, in seconds since the epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A moment broken down in the local time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalTime {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl LocalTime {
    /// `epoch` in the local zone (TZ, else /etc/localtime), daylight
    /// saving included; `None` for values that are no time at all.
    fn at(epoch: f64) -> Option<LocalTime> {
        if !(0.0..=1e12).contains(&epoch) {
            return None;
        }
        let moment = jiff::Timestamp::from_second(epoch.floor() as i64).ok()?;
        let t = jiff::tz::TimeZone::system().to_datetime(moment);
        let field = |v: i8| u32::try_from(v).ok();
        Some(LocalTime {
            year: i32::from(t.year()),
            month: field(t.month())?,
            day: field(t.day())?,
            hour: field(t.hour())?,
            minute: field(t.minute())?,
            second: field(t.second())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ps() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(10 * 1024 * 1024 - 200 * 1024), "9.8M");
        assert_eq!(bytes(123 * 1024 * 1024), "123M");
        assert_eq!(bytes(u64::MAX), "16384P");
    }

    #[test]
    fn cpu_time_reads_like_ps() {
        assert_eq!(cpu_time(0.0), "00:00:00");
        assert_eq!(cpu_time(83.9), "00:01:23");
        assert_eq!(cpu_time(2.0 * 86_400.0 + 3723.0), "2-01:02:03");
        assert_eq!(cpu_time(f64::NAN), "00:00:00");
    }

    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(duration(59.0), "0:00");
        assert_eq!(duration(3.0 * 3600.0 + 240.0), "3:04");
        assert_eq!(duration(86_400.0 + 60.0), "1 day, 0:01");
        assert_eq!(duration(5.0 * 86_400.0), "5 days, 0:00");
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(0.4), "0s");
        assert_eq!(age(42.0), "42s");
        assert_eq!(age(12.0 * 60.0 + 5.0), "12m05s");
        assert_eq!(age(3.0 * 3600.0 + 240.0), "3h04m");
        assert_eq!(age(2.0 * 86_400.0 + 3.0 * 3600.0), "2d03h");
        assert_eq!(age(-5.0), "0s");
    }

    #[test]
    fn start_times_read_like_ps() {
        let now = 1_790_000_000.0; // Sept 2026
        assert_eq!(start_time(now - 1.0, now).len(), "14:02".len());
        assert_eq!(start_time(now - 400.0 * 86_400.0, now), "2025");
        assert_eq!(start_time(f64::NAN, now), "?");
        assert_eq!(datetime(-5.0), "-5");
        assert_eq!(datetime(now).len(), "2026-11-03 14:02:11".len());
    }

    /// The local zone is the one `date(1)` uses (TZ, else /etc/localtime),
    /// on both sides of a daylight saving change where the zone has one.
    #[cfg(target_os = "linux")]
    #[test]
    fn local_times_agree_with_date() {
        for epoch in [1_790_000_000_i64, 1_800_000_000] {
            let out = std::process::Command::new("date")
                .args(["-d", &format!("@{epoch}"), "+%Y-%m-%d %H:%M:%S"])
                .output()
                .expect("date(1) runs");
            assert!(out.status.success(), "{out:?}");
            let date = String::from_utf8(out.stdout).expect("utf-8");
            assert_eq!(datetime(epoch as f64), date.trim_end());
        }
    }
}
