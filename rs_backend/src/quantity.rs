//! Kubernetes resource quantities ("250Mi", "1Gi", "500M", "1e9") as byte counts.

/// Parses a memory quantity into bytes. Fractions round up: a limit is never made looser.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("memory quantity is empty".into());
    }
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(trimmed.len());
    let (number, suffix) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a valid quantity: bad number {number:?}"))?;
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..]
                .parse()
                .map_err(|_| format!("{text:?} is not a valid quantity: bad exponent"))?;
            10.0_f64.powi(power)
        }
        other => {
            return Err(format!(
                "{text:?} is not a valid quantity: unknown suffix {other:?} (use Ki, Mi, Gi, k, M, G, ...)"
            ))
        }
    };
    let bytes = (value * multiplier).ceil();
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_memory("250Mi"), Ok(250 * 1024 * 1024));
        assert_eq!(parse_memory("1Gi"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_memory("500M"), Ok(500_000_000));
        assert_eq!(parse_memory("1000"), Ok(1000));
        assert_eq!(parse_memory("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(parse_memory("1e9"), Ok(1_000_000_000));
        assert_eq!(parse_memory("2E3"), Ok(2000));
        assert_eq!(parse_memory(" 128Ki "), Ok(131_072));
        assert_eq!(parse_memory("1500m"), Ok(2));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "Mi", "12XB", "1.2.3Gi", "-5Mi", "1e", "abc"] {
            assert!(parse_memory(bad).is_err(), "{bad:?} accepted");
        }
    }
}
