//! Sizes and shares formatted for people ("2.47 GiB", "73.2 MiB", "0.7%"): the units the text
//! report and the plain-words verdict both print, so neither has to lean on the other.

use core::fmt;

/// A size in kB, printed the way people say it: "2.47 GiB", "73.2 MiB", "512 kB".
pub struct Kb(pub u64);

impl fmt::Display for Kb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1024 * 1024 {
            write!(f, "{} GiB", Fixed::new(self.0 as i64, 1024 * 1024, 2))
        } else if self.0 >= 1024 {
            write!(f, "{} MiB", Fixed::new(self.0 as i64, 1024, 1))
        } else {
            write!(f, "{} kB", self.0)
        }
    }
}

/// A size in bytes, printed like `Kb` ("73.2 MiB", "1.1 kB", "600 bytes").
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1024 {
            if self.0 < 1024 * 1024 {
                return write!(f, "{} kB", Fixed::new(self.0 as i64, 1024, 1));
            }
            return Kb(self.0 / 1024).fmt(f);
        }
        write!(f, "{} bytes", self.0)
    }
}

/// `num / den` with `decimals` digits after the point, rounded half to even exactly as `{:.N}`
/// rounds the same quotient held in an f64 (for the power-of-two divisors used here the f64 is
/// exact). Integer-only: the binary then carries no float formatting (grisu/dragon tables),
/// which is several KiB on a router's flash. Honours width and alignment (`{:>11}`).
pub struct Fixed {
    num: i64,
    den: u64,
    decimals: u32,
}

impl Fixed {
    pub fn new(num: i64, den: u64, decimals: u32) -> Fixed {
        Fixed {
            num,
            den: den.max(1),
            decimals: decimals.min(6),
        }
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // u64 only: 128-bit division is a library call on 32-bit CPUs, and large here.
        let scale = 10u64.pow(self.decimals);
        let (n, den) = (self.num.unsigned_abs(), self.den);
        let frac = (n % den).saturating_mul(scale); // exact for den < 2^44 (all used here)
        let mut q = (n / den).saturating_mul(scale) + frac / den;
        let r = frac % den;
        if 2 * r > den || (2 * r == den && q % 2 == 1) {
            q += 1;
        }
        let mut s = heapless::String::<48>::new();
        let sign = if self.num < 0 { "-" } else { "" };
        let _ = if self.decimals == 0 {
            fmt::Write::write_fmt(&mut s, format_args!("{sign}{q}"))
        } else {
            let (int, frac, w) = (q / scale, q % scale, self.decimals as usize);
            fmt::Write::write_fmt(&mut s, format_args!("{sign}{int}.{frac:0w$}"))
        };
        f.pad(&s)
    }
}

/// `kb` as a share of `total`: "68%", or "0.7%" below 10% where whole percents would say 0.
pub struct Pct(pub u64, pub u64);

impl fmt::Display for Pct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 == 0 {
            return f.write_str("?");
        }
        let tenths = crate::sys::per_mille(self.0, self.1);
        if tenths < 100 {
            write!(f, "{}.{}", tenths / 10, tenths % 10)
        } else {
            write!(f, "{}", tenths / 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_matches_float_formatting() {
        // Every case the report prints: kB and bytes over 1024 and 1024², with ties.
        let mut v: Vec<i64> = (-3000..3000).collect();
        v.extend([
            51,
            52,
            5120,
            1536,
            2591452,
            76755840,
            1 << 40,
            (1 << 40) + 512,
        ]);
        v.extend((0..2000).map(|i| i * 524_288 + 5_243));
        for &n in &v {
            for (den, d) in [(1024u64, 1u32), (1024 * 1024, 2)] {
                let want = format!("{:>11.*}", d as usize, n as f64 / den as f64);
                assert_eq!(format!("{:>11}", Fixed::new(n, den, d)), want, "{n}/{den}");
            }
        }
        assert_eq!(Kb(2591452).to_string(), "2.47 GiB");
        assert_eq!(Bytes(76755840).to_string(), "73.2 MiB");
        assert_eq!(Bytes(1126).to_string(), "1.1 kB");
    }
}
