//! The one way the command line reads a length of time, for every flag of
//! every subcommand: a bare number is seconds (`2`, `0.5`), anything else
//! is read by `humantime` (`2s`, `500ms`, `2m`, `1m 30s`).

use std::time::Duration;

/// The longest duration any flag takes: a day.
const MAX: Duration = Duration::from_secs(24 * 3600);

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurationError(String);

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration: `2` (seconds), `0.5`, `2s`, `500ms`, `2m`.
pub(crate) fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let bad = || {
        DurationError(format!(
            "`{text}` is not a duration: write seconds (`2`, `0.5`) or a number and a unit (`500ms`, `2s`, `2m`)"
        ))
    };
    let duration = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::try_from_secs_f64(secs).map_err(|_| bad())?
        }
        Ok(_) => return Err(bad()),
        Err(_) => humantime::parse_duration(text).map_err(|_| bad())?,
    };
    if duration > MAX {
        return Err(DurationError(format!("`{text}` is longer than a day")));
    }
    Ok(duration)
}

/// [`parse`], for flags that need a positive duration.
pub(crate) fn parse_positive(text: &str) -> Result<Duration, DurationError> {
    let duration = parse(text)?;
    if duration.is_zero() {
        return Err(DurationError(format!("`{}` is zero: give a positive duration", text.trim())));
    }
    Ok(duration)
}

/// A duration as the command line would take it back: `2`, `0.5`.
pub(crate) fn format_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_the_same() {
        let two = Duration::from_secs(2);
        for text in ["2", "2s", "2.0", " 2s ", "2000ms"] {
            assert_eq!(parse(text), Ok(two), "{text}");
        }
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn nonsense_is_refused_with_the_forms_that_work() {
        for text in ["", "two", "-1", "2 parsecs", "NaN", "inf", "25h"] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(text.trim()), "{text}: {error}");
        }
        assert!(parse("x").unwrap_err().to_string().contains("`500ms`"));
        assert!(parse_positive("0s").is_err());
        assert_eq!(format_secs(Duration::from_millis(1500)), "1.5");
        assert_eq!(format_secs(Duration::from_secs(2)), "2");
    }
}
