//! The human report: sizes and names formatted for people, the equation table, the socket
//! table, the skipped notes.

use super::Findings;
use super::units::{Bytes, Fixed};
use super::verdict::{LocalIn, Verdict};
use super::watch::{Spark, WatchVerdict};
use crate::observe::ghost;
use crate::observe::proc::meminfo::Field;
use crate::output::escape::Printable;
use core::fmt;

/// `"{}"` of a Display value into a stack buffer (for column widths), cut at 64 bytes.
fn small_text(v: &dyn fmt::Display) -> heapless::String<64> {
    let mut s = heapless::String::new();
    let _ = fmt::Write::write_fmt(&mut s, format_args!("{v}"));
    s
}

/// The human report; `tty`: stdout is a terminal (sparklines for `--watch`).
pub fn write_text(r: &Findings, out: &mut dyn fmt::Write, tty: bool) -> fmt::Result {
    writeln!(out, "VERDICT: {}", Verdict(r))?;
    writeln!(out)?;
    if r.watch.is_some() {
        write_watch(r, out, tty)?;
        writeln!(out)?;
    }

    let g = &r.ghost;
    writeln!(
        out,
        "Accounting equation (/proc/meminfo, zoneinfo)     kB         MiB"
    )?;
    let row = |out: &mut dyn fmt::Write, label: &dyn fmt::Display, kb: i64, note: &str| {
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
    let mrow = |out: &mut dyn fmt::Write, label: &dyn fmt::Display, kb: u64, note: &str| {
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

fn write_socket_table(r: &Findings, out: &mut dyn fmt::Write) -> fmt::Result {
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
                out.write_str(",")?;
            }
            write!(out, "{}/{}", o.pid, Printable(o.comm.as_bytes()))?;
            n += 1;
        }
        let more = r.owners.of(s.inode).count() - n + r.owners.more(s.inode) as usize;
        if more > 0 {
            write!(out, " +{more} more")?;
        } else if n == 0 {
            out.write_str(if r.owners.pids_denied > 0 { "?" } else { "-" })?;
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

/// `--watch`: the correlation verdict, the sparklines (on a terminal) and the ranked sockets.
fn write_watch(r: &Findings, out: &mut dyn fmt::Write, tty: bool) -> fmt::Result {
    let Some(w) = &r.watch else {
        return Ok(());
    };
    let samples = w.window.map_or(0, |x| x.samples);
    writeln!(
        out,
        "WATCH ({} s, {samples} samples): {}.",
        w.seconds,
        WatchVerdict(r, w)
    )?;
    if tty && w.ghost_series.len() > 1 {
        let g: heapless::Vec<Option<i64>, { super::watch::MAX_SAMPLES }> =
            w.ghost_series.iter().map(|&v| Some(v)).collect();
        writeln!(out, "  Ghost     {}", Spark(&g))?;
        if let Some(top) = w.ranked.first() {
            let q: heapless::Vec<Option<i64>, { super::watch::MAX_SAMPLES }> = w
                .queue_series
                .iter()
                .map(|v| v.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
                .collect();
            writeln!(out, "  inode {:<4}{}", top.socket.inode, Spark(&q))?;
        }
    }
    if w.ranked.is_empty() {
        return Ok(());
    }
    writeln!(out, "  Sockets by how much of Ghost's growth they explain")?;
    writeln!(
        out,
        "  {:>8} {:<8} {:<24} {:>12} {:>12} {:>7} {:>10}  OWNERS",
        "EXPLAINS", "PROTO", "LOCAL", "RX_QUEUE", "GREW", "RATIO", "INODE"
    )?;
    for x in &w.ranked {
        let b = &x.blame;
        let ratio = match b.ratio {
            Some(ratio) => small_text(&format_args!("{ratio}x")),
            None => small_text(&"-"),
        };
        write!(
            out,
            "  {:>7}% {:<8} {:<24} {:>12} {:>12} {:>7} {:>10}  ",
            b.explains_pm / 10,
            x.socket.proto.name(),
            small_text(&LocalIn(r, &x.socket)).as_str(),
            b.queue_now,
            b.queue_growth,
            ratio.as_str(),
            x.socket.inode
        )?;
        let mut n = 0;
        for o in r.owners.of(x.socket.inode).take(4) {
            if n > 0 {
                out.write_str(",")?;
            }
            write!(out, "{}/{}", o.pid, Printable(o.comm.as_bytes()))?;
            n += 1;
        }
        if n == 0 {
            out.write_str("-")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
