//! Sensor values of sysfs (`/sys/class/hwmon`, `/sys/class/thermal`,
//! `/sys/class/power_supply`), worked out as psutil's `sensors_*`
//! functions do (`psutil/_pslinux.py`).

use crate::backend::system::Battery;

/// A value in thousandths (millidegrees Celsius), as a float; `None` when
/// the file does not hold a number (psutil skips or drops it).
pub fn parse_millis(bytes: &[u8]) -> Option<f64> {
    let value: f64 = std::str::from_utf8(bytes).ok()?.trim().parse().ok()?;
    Some(value / 1000.0)
}

/// A whole number (fan RPM, a power supply's energy), `None` otherwise.
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// The files of a battery directory and of the mains adapter that psutil's
/// `sensors_battery()` reads, each `None` where absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatteryFiles {
    /// `energy_now`, else `charge_now`.
    pub energy_now: Option<i64>,
    /// `power_now`, else `current_now`.
    pub power_now: Option<i64>,
    /// `energy_full`, else `charge_full`.
    pub energy_full: Option<i64>,
    /// `time_to_empty_now`, minutes.
    pub time_to_empty: Option<i64>,
    /// `capacity`, percent.
    pub capacity: Option<i64>,
    /// `online` of the `AC0` (else `AC`) power supply.
    pub ac_online: Option<i64>,
    /// `status`, such as "Discharging".
    pub status: Option<String>,
}

/// psutil's battery from its files: `None` when neither the energy pair
/// nor `capacity` tells the charge.
pub fn battery(f: &BatteryFiles) -> Option<Battery> {
    let percent = match (f.energy_now, f.energy_full) {
        (Some(now), Some(full)) if full != 0 => 100.0 * now as f64 / full as f64,
        (Some(_), Some(_)) => 0.0,
        _ => f.capacity? as f64,
    };
    let power_plugged = match f.ac_online {
        Some(online) => Some(online == 1),
        None => match f.status.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            Some(s) if s == "discharging" => Some(false),
            Some(s) if s == "charging" || s == "full" => Some(true),
            _ => None,
        },
    };
    // psutil says "unlimited" while plugged in and "unknown" when it
    // cannot tell; both are absent here.
    let secsleft = if power_plugged == Some(true) {
        None
    } else if let (Some(now), Some(power)) = (f.energy_now, f.power_now) {
        (power != 0).then(|| (now as f64 / power as f64 * 3600.0).trunc())
    } else {
        f.time_to_empty
            .map(|minutes| minutes.saturating_mul(60))
            .filter(|s| *s >= 0)
            .map(|s| s as f64)
    };
    Some(Battery {
        percent,
        secsleft,
        power_plugged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_millis(b"45000\n"), Some(45.0));
        assert_eq!(parse_millis(b"-2500\n"), Some(-2.5));
        assert_eq!(parse_millis(b"\n"), None);
        assert_eq!(parse_int(b"2100\n"), Some(2100));
        assert_eq!(parse_int(b"N/A\n"), None);
    }

    #[test]
    fn battery_as_psutil() {
        let discharging = BatteryFiles {
            energy_now: Some(30_000_000),
            power_now: Some(10_000_000),
            energy_full: Some(40_000_000),
            status: Some("Discharging\n".into()),
            ..BatteryFiles::default()
        };
        assert_eq!(
            battery(&discharging),
            Some(Battery {
                percent: 75.0,
                secsleft: Some(10_800.0),
                power_plugged: Some(false),
            })
        );
        let plugged = BatteryFiles {
            ac_online: Some(1),
            ..discharging.clone()
        };
        assert_eq!(battery(&plugged).map(|b| b.secsleft), Some(None));
        let capacity_only = BatteryFiles {
            capacity: Some(55),
            time_to_empty: Some(90),
            ..BatteryFiles::default()
        };
        assert_eq!(
            battery(&capacity_only),
            Some(Battery {
                percent: 55.0,
                secsleft: Some(5400.0),
                power_plugged: None,
            })
        );
        assert_eq!(battery(&BatteryFiles::default()), None);
    }
}
