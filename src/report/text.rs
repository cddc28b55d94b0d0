//! The human report: sizes and names formatted for people, the equation table, the socket
//! table, the skipped notes.

use super::Findings;
use super::verdict::{LocalIn, Verdict};
use crate::escape::Printable;
use crate::ghost;
use crate::proc::meminfo::Field;
use core::fmt;
use std::io::{self, Write};

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

/// `"{}"` of a Display value into a stack buffer (for column widths), cut at 64 bytes.
fn small_text(v: &dyn fmt::Display) -> heapless::String<64> {
    let mut s = heapless::String::new();
    let _ = fmt::Write::write_fmt(&mut s, format_args!("{v}"));
    s
}

/// The human report.
pub fn write_text(r: &Findings, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "VERDICT: {}", Verdict(r))?;
    writeln!(out)?;

    let g = &r.ghost;
    writeln!(
        out,
        "Accounting equation (/proc/meminfo, zoneinfo)     kB         MiB"
    )?;
    let row = |out: &mut dyn Write, label: &dyn fmt::Display, kb: i64, note: &str| {
        writeln!(
            out,
            "  {:<36} {:>12} {:>11}{}",
            small_text(label).as_str(),
            kb,
            Fixed::new(kb, 1024, 1),
            note
        )
    };
    row(out, &"MemTotal", g.mem_total_kb as i64, "")?;
    for t in &g.terms {
        let note = match t.name {
            "VmallocUsed" if g.vmalloc_source == ghost::VmallocSource::Vmallocinfo => {
                "   (from vmallocinfo: meminfo reads 0 on this kernel)"
            }
            "Hugetlb" if r.mem.get(Field::Hugetlb).is_none() => {
                "   (HugePages_Total x Hugepagesize)"
            }
            _ => "",
        };
        row(out, &format_args!("- {}", t.name), t.kb as i64, note)?;
    }
    row(out, &"= accounted", g.accounted_kb as i64, "")?;
    let pm = r.ghost_permille();
    let ghost_note = small_text(&format_args!(
        "   {}{}.{}% of RAM",
        if pm < 0 { "-" } else { "" },
        pm.unsigned_abs() / 10,
        pm.unsigned_abs() % 10
    ));
    row(
        out,
        &"Ghost = MemTotal - accounted",
        g.ghost_kb,
        ghost_note.as_str(),
    )?;
    writeln!(out)?;

    writeln!(
        out,
        "Memory                                               kB         MiB"
    )?;
    let mrow = |out: &mut dyn Write, label: &dyn fmt::Display, kb: u64, note: &str| {
        writeln!(
            out,
            "  {:<44} {:>12} {:>11}{}",
            small_text(label).as_str(),
            kb,
            Fixed::new(kb as i64, 1024, 1),
            note
        )
    };
    mrow(
        out,
        &"used (Total-Free-Buffers-Cached-SReclaimable)",
        r.used_kb(),
        "",
    )?;
    let p = &r.procs;
    mrow(
        out,
        &format_args!(
            "process RSS total ({} processes)",
            p.count.saturating_sub(p.kernel_threads)
        ),
        p.rss_total_kb,
        "   (shared pages count once per process)",
    )?;
    if let Some((pid, comm, kb)) = p.largest {
        mrow(
            out,
            &format_args!("  largest: {} (pid {pid})", Printable(comm.as_bytes())),
            kb,
            "",
        )?;
    }
    mrow(out, &"Shmem (tmpfs, shared memory)", r.shmem_kb(), "")?;
    mrow(out, &"MemAvailable", r.available_kb(), "")?;
    if let Some(s) = &r.sockstat {
        if let Some(pages) = s.tcp_mem_pages {
            mrow(
                out,
                &"TCP buffers (sockstat mem)",
                pages.saturating_mul(r.page_size) / 1024,
                "",
            )?;
        }
        if let Some(pages) = s.udp_mem_pages {
            mrow(
                out,
                &"UDP buffers (sockstat mem)",
                pages.saturating_mul(r.page_size) / 1024,
                "",
            )?;
        }
    }
    writeln!(out)?;

    write_socket_table(r, out)?;
    writeln!(out)?;

    if r.skipped.is_empty() {
        writeln!(out, "Skipped: nothing — every file was readable.")?;
    } else {
        writeln!(out, "Skipped")?;
        for s in &r.skipped {
            writeln!(out, "  - {s}")?;
        }
    }
    Ok(())
}

fn write_socket_table(r: &Findings, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Sockets by receive queue (top {} of {}; {} queued in all; via {}, {} network namespace{})",
        r.top.len(),
        r.sockets_total(),
        Bytes(r.rx_queued_total()),
        r.socket_source.name(),
        r.netns.list.len(),
        if r.netns.list.len() == 1 { "" } else { "s" }
    )?;
    // Idle sockets say nothing to the reader: list the ones with data queued or dropped.
    let busy = || r.top.iter().filter(|s| s.rx_queue > 0 || s.drops > 0);
    if busy().next().is_none() {
        writeln!(out, "  every receive queue is empty.")?;
        return Ok(());
    }
    let width = busy()
        .map(|s| small_text(&LocalIn(r, s)).len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "  {:<8} {:<width$} {:>12} {:>10} {:>8} {:>10} {:>6}  OWNERS",
        "PROTO", "LOCAL", "RX_QUEUE", "TX_QUEUE", "DROPS", "INODE", "UID"
    )?;
    for s in busy() {
        write!(
            out,
            "  {:<8} {:<width$} {:>12} {:>10} {:>8} {:>10} {:>6}  ",
            s.proto.name(),
            small_text(&LocalIn(r, s)).as_str(),
            s.rx_queue,
            s.tx_queue,
            s.drops,
            s.inode,
            s.uid
        )?;
        let mut n = 0;
        for o in r.owners.of(s.inode) {
            if n == 4 {
                break;
            }
            if n > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{}/{}", o.pid, Printable(o.comm.as_bytes()))?;
            n += 1;
        }
        let more = r.owners.of(s.inode).count() - n + r.owners.more(s.inode) as usize;
        if more > 0 {
            write!(out, " +{more} more")?;
        } else if n == 0 {
            out.write_all(if r.owners.pids_denied > 0 { b"?" } else { b"-" })?;
        }
        writeln!(out)?;
    }
    let idle = r.top.len() - busy().count();
    if idle > 0 {
        writeln!(
            out,
            "  ({idle} more of the top {} have empty queues; see --json)",
            r.top.len()
        )?;
    }
    Ok(())
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
