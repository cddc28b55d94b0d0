//! Sys: the bottom layer — thin, allocation-free syscalls (this file), the safe opens of every
//! file the agent reads or writes (`safefile`), which files it may obey (`trust`), and which
//! newer syscalls this kernel has (`caps`, probed once).
//! Must not know /proc formats, the config or any policy: everything else builds on it.
//!
//! Thin, allocation-free wrappers over the few syscalls the readers need.
//!
//! std's `read_dir` and `read_link` allocate per entry; the poll loop must not, so
//! directories, links and files are reached through libc with paths built in a stack
//! buffer (`CPath`). Every function returns `Err(errno)` on failure and never panics.

pub mod caps;
pub mod safefile;
pub mod trust;

use std::fmt;

/// An errno value (always > 0).
pub type Errno = i32;

/// The calling thread's errno, or EIO if libc left it unset.
pub fn errno() -> Errno {
    let e = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    if e == 0 { libc::EIO } else { e }
}

/// Opens /dev/null on whichever of descriptors 0, 1 and 2 is closed, as std's runtime start
/// does for `fn main` programs, so that no file opened later becomes stdin, stdout or stderr.
/// An init that starts the agent with them closed must not get audit lines in a status file.
pub fn sanitize_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only inspects the descriptor; open gets a static NUL-terminated path
        // and, with 0..fd open and fd closed, returns fd (the lowest free descriptor).
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 && errno() == libc::EBADF {
                let flags = if fd == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                };
                if libc::open(c"/dev/null".as_ptr(), flags) == -1 {
                    libc::abort();
                }
            }
        }
    }
}

/// Human text for an errno, e.g. "No such file or directory" (no allocation).
pub fn strerror(e: Errno) -> &'static str {
    match e {
        libc::ENOENT => "No such file or directory",
        libc::EACCES => "Permission denied",
        libc::EPERM => "Operation not permitted",
        libc::ESRCH => "No such process",
        libc::EINVAL => "Invalid argument",
        libc::ENAMETOOLONG => "File name too long",
        libc::ENOTDIR => "Not a directory",
        libc::EISDIR => "Is a directory",
        libc::EMFILE | libc::ENFILE => "Too many open files",
        libc::ENOMEM => "Out of memory",
        libc::EINTR => "Interrupted system call",
        libc::EAGAIN => "Resource temporarily unavailable",
        libc::ENOSYS => "Function not implemented",
        libc::EBADF => "Bad file descriptor",
        libc::ECONNREFUSED => "Connection refused",
        libc::ETIMEDOUT => "Timed out",
        libc::EIO => "Input/output error",
        libc::ELOOP => "Too many levels of symbolic links (a symlink where none may be)",
        libc::EEXIST => "File exists",
        libc::EROFS => "Read-only file system",
        libc::EFBIG => "File too large",
        libc::EPROTONOSUPPORT => "Protocol not supported",
        libc::EOPNOTSUPP => "Operation not supported",
        ENOTREG => "Not a regular file (a FIFO, device or directory)",
        _ => "system error",
    }
}

/// A NUL-terminated path assembled in a fixed stack buffer.
///
/// `push` fails (returns `Err(ENAMETOOLONG)`) instead of truncating, so a path that
/// does not fit is never silently turned into a different path.
#[derive(Clone)]
pub struct CPath {
    buf: [u8; CPath::CAP + 1],
    len: usize,
}

impl CPath {
    /// Longest path (bytes, without the NUL) a `CPath` holds.
    pub const CAP: usize = 511;

    pub const fn new() -> Self {
        CPath {
            buf: [0; CPath::CAP + 1],
            len: 0,
        }
    }

    /// A path holding `s` (an error if `s` is too long or contains NUL).
    pub fn from_bytes(s: &[u8]) -> Result<Self, Errno> {
        let mut p = CPath::new();
        p.push(s)?;
        Ok(p)
    }

    /// Appends raw bytes (no separator is added).
    pub fn push(&mut self, s: &[u8]) -> Result<&mut Self, Errno> {
        if s.contains(&0) {
            return Err(libc::EINVAL);
        }
        if self.len + s.len() > CPath::CAP {
            return Err(libc::ENAMETOOLONG);
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
        self.buf[self.len] = 0;
        Ok(self)
    }

    /// Appends `/` then `s`.
    pub fn join(&mut self, s: &[u8]) -> Result<&mut Self, Errno> {
        self.push(b"/")?;
        self.push(s)
    }

    /// Appends `/` then the decimal `n`.
    pub fn join_u32(&mut self, n: u32) -> Result<&mut Self, Errno> {
        let mut tmp = [0u8; 10];
        let digits = fmt_u64(n as u64, &mut tmp);
        self.push(b"/")?;
        self.push(digits)
    }

    /// Cuts the path back to `len` bytes (as returned by `len()` earlier).
    pub fn truncate(&mut self, len: usize) {
        if len <= self.len {
            self.len = len;
            self.buf[len] = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_ptr(&self) -> *const libc::c_char {
        self.buf.as_ptr() as *const libc::c_char
    }
}

impl Default for CPath {
    fn default() -> Self {
        CPath::new()
    }
}

impl fmt::Display for CPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Lossy(self.as_bytes()), f)
    }
}

impl fmt::Debug for CPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPath({self})")
    }
}

/// Displays bytes as UTF-8, replacing invalid sequences with U+FFFD, without allocating.
pub struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

impl core::ops::Deref for Lossy<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0
    }
}

/// The kernel's page size in bytes (sysconf), 4096 if it cannot be read. Page counts in
/// /proc (sockstat's `mem`, vmallocinfo's `pages=`) are converted with this.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// `fmt::Write` into a fixed string that keeps what fits (whole characters) and drops the rest,
/// so formatting never fails: a message cut short beats no message. The one bounded writer
/// (config errors, action reasons, syslog frames); where a value must fit whole or not at all
/// (an audit pair), write to the `heapless::String` itself, whose `fmt::Write` refuses instead.
///
/// It holds a view of the string (`as_mut_view()`), not the `String<N>` itself, so its
/// formatting code exists once rather than once per capacity.
pub struct Cut<'a>(pub &'a mut heapless::string::StringView);

impl fmt::Write for Cut<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.0.capacity() - self.0.len();
        let _ = self.0.push_str(cut(s, room));
        Ok(())
    }
}

/// `s` cut to at most `max` bytes at a char boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// `args` formatted into a new fixed string, cut to fit (see `Cut`).
pub fn cut_fmt<const N: usize>(args: fmt::Arguments<'_>) -> heapless::String<N> {
    let mut out = heapless::String::new();
    let _ = fmt::Write::write_fmt(&mut Cut(out.as_mut_view()), args);
    out
}

/// `s` copied into a new fixed string, cut to fit (whole characters).
pub fn cut_str<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    let _ = fmt::Write::write_str(&mut Cut(out.as_mut_view()), s);
    out
}

/// Appends `b` to `out` as lossy UTF-8 (invalid bytes as U+FFFD), stopping when full.
pub fn push_lossy<const N: usize>(out: &mut heapless::String<N>, b: &[u8]) {
    for chunk in b.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if out.push(ch).is_err() {
                return;
            }
        }
        if !chunk.invalid().is_empty() && out.push('\u{FFFD}').is_err() {
            return;
        }
    }
}

/// Writes `n` in decimal into `buf` and returns the digits.
pub fn fmt_u64(mut n: u64, buf: &mut [u8]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}

/// An owned file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(libc::c_int);

impl Fd {
    /// Opens `path` read-only (O_CLOEXEC), never blocking in open(2) (O_NONBLOCK: a FIFO opens
    /// at once; regular files ignore the flag). Returns Err(errno).
    pub fn open_ro(path: &CPath) -> Result<Fd, Errno> {
        Self::open(path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)
    }

    /// Opens `path` with `flags` | O_CLOEXEC (mode 0644 if O_CREAT). Returns Err(errno).
    /// An open interrupted by a signal is retried, unless a stop was requested
    /// (`request_stop`): then it returns Err(EINTR), so SIGTERM always ends the agent.
    pub fn open(path: &CPath, flags: libc::c_int) -> Result<Fd, Errno> {
        loop {
            // SAFETY: path is NUL-terminated by construction.
            let fd = unsafe {
                libc::open(
                    path.as_ptr(),
                    flags | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                )
            };
            if fd >= 0 {
                return Ok(Fd(fd));
            }
            let e = errno();
            if e != libc::EINTR || stop_requested() {
                return Err(e);
            }
        }
    }

    /// Wraps a raw descriptor this code now owns.
    pub fn from_raw(fd: libc::c_int) -> Fd {
        Fd(fd)
    }

    pub fn raw(&self) -> libc::c_int {
        self.0
    }

    /// Reads up to `buf.len()` bytes; Ok(0) is end of file. Retries EINTR.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        loop {
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = errno();
            if e != libc::EINTR {
                return Err(e);
            }
        }
    }

    /// Reads until `buf` is full or end of file; returns the bytes read.
    pub fn read_full(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut n = 0;
        while n < buf.len() {
            let got = self.read(&mut buf[n..])?;
            if got == 0 {
                break;
            }
            n += got;
        }
        Ok(n)
    }

    /// Seeks back to offset 0 (for re-reading a kept-open /proc file).
    pub fn rewind(&self) -> Result<(), Errno> {
        // SAFETY: plain syscall on an owned fd.
        if unsafe { libc::lseek(self.0, 0, libc::SEEK_SET) } < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// Writes all of `data`. Retries EINTR and short writes.
    pub fn write_all(&self, data: &[u8]) -> Result<(), Errno> {
        write_all_to(self.0, data)
    }
}

/// Writes all of `data` to descriptor `fd` (not owned). Retries EINTR and short writes.
pub fn write_all_to(fd: libc::c_int, mut data: &[u8]) -> Result<(), Errno> {
    {
        while !data.is_empty() {
            // SAFETY: data is valid for data.len() bytes.
            let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
            if n < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(libc::EIO);
            }
            data = &data[n as usize..];
        }
        Ok(())
    }
}

/// ⌊a × 1000 / b⌋ wrapped to 64 bits, exactly what `(a as u128 * 1000 / b as u128) as u64`
/// gives, without 128-bit division (a compiler-builtins routine of ~1 KiB on every target):
/// a / b, then three decimal digits of long division, each found by adding the remainder
/// ten times (no overflow). `b` must not be 0.
pub fn per_mille(a: u64, b: u64) -> u64 {
    let (mut q, mut r) = (a / b, a % b);
    for _ in 0..3 {
        // r < b: d = ⌊10r / b⌋ and x = 10r mod b.
        let (mut d, mut x) = (0, 0u64);
        for _ in 0..10 {
            if x >= b - r {
                x -= b - r;
                d += 1;
            } else {
                x += r;
            }
        }
        q = q.wrapping_mul(10).wrapping_add(d);
        r = x;
    }
    q
}

/// True if `needle` occurs in `hay`: a plain byte scan, for the few short texts ghostwatch
/// searches (argv templates, names). `str::contains(&str)` links core's Two-Way searcher,
/// ~2 KiB of a router's flash for no gain at these lengths.
pub fn contains(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// stat(2) of `path` (symlinks followed). Returns Err(errno).
pub fn stat(path: &CPath) -> Result<libc::stat, Errno> {
    // SAFETY: st is plain data; path is NUL-terminated.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::stat(path.as_ptr(), &mut st) } == 0 {
        Ok(st)
    } else {
        Err(errno())
    }
}

/// True if `path` names a directory (symlinks followed). Returns Err(errno) if stat fails.
pub fn is_dir(path: &CPath) -> Result<bool, Errno> {
    stat(path).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Creates directory `path` and whichever of its parents are missing, the way std's
/// `create_dir_all` does (mode 0777 less the umask; Ok if it is a directory already; the
/// same errno on failure): mkdir the path, going up one component per ENOENT, then down.
/// Returns Err(errno).
pub fn mkdir_all(path: &[u8]) -> Result<(), Errno> {
    // One mkdir; Ok if it made `p` or `p` is a directory already.
    fn make(path: &[u8], len: usize) -> Result<(), Errno> {
        let p = CPath::from_bytes(&path[..len])?;
        // SAFETY: p is NUL-terminated.
        if unsafe { libc::mkdir(p.as_ptr(), 0o777) } == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::ENOENT && is_dir(&p) == Ok(true) {
            return Ok(());
        }
        Err(e)
    }
    // End of the parent of path[..len] ("a//b/" -> "a"); None at the top.
    let parent = |len: usize| {
        let p = path[..len].iter().rposition(|&b| b != b'/')?;
        let slash = path[..p].iter().rposition(|&b| b == b'/')?;
        Some(
            path[..slash]
                .iter()
                .rposition(|&b| b != b'/')
                .map_or(1, |i| i + 1),
        )
    };
    let mut len = path.len();
    if len == 0 {
        return Ok(());
    }
    loop {
        match make(path, len) {
            Ok(()) if len == path.len() => return Ok(()),
            Ok(()) => break,
            Err(libc::ENOENT) => match parent(len) {
                Some(up) if up < len => len = up,
                _ => return Err(libc::ENOENT),
            },
            Err(e) => return Err(e),
        }
    }
    // Back down: each component below the first one that exists or was made.
    while len < path.len() {
        let next = path[len + 1..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(path.len(), |i| len + 1 + i);
        if next > len + 1 {
            make(path, next)?;
        }
        len = next;
    }
    Ok(())
}

/// Standard output or error (1 or 2) without std's locked, buffered handles, which cost
/// several KiB of a router's flash: `print` for lines, `write_bytes` for whole texts.
#[derive(Clone, Copy, Debug)]
pub struct Out(pub libc::c_int);

impl Out {
    pub const STDOUT: Out = Out(1);
    pub const STDERR: Out = Out(2);

    /// Writes all of `data` (retries EINTR and short writes).
    pub fn write_bytes(self, data: &[u8]) -> Result<(), Errno> {
        write_all_to(self.0, data)
    }

    /// Writes `args` with one write(2) where it fits (lines from two processes do not
    /// interleave). Errors are ignored, as `println!` would panic and `eprintln!` ignore them.
    pub fn print(self, args: fmt::Arguments<'_>) {
        let text = fmt::format(args);
        let _ = write_all_to(self.0, text.as_bytes());
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe {
            libc::close(self.0);
        }
    }
}

/// The errno for "not a regular file" (there is none in POSIX; `strerror` spells it out).
pub const ENOTREG: Errno = libc::EBADFD;

/// fstat(2) of `fd`; Ok only for a regular file, else Err(ENOTREG) (or the fstat errno).
pub fn require_regular(fd: &Fd) -> Result<(), Errno> {
    // SAFETY: st is a valid out-pointer; fd is open.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::fstat(fd.raw(), &mut st) } != 0 {
        return Err(errno());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(ENOTREG);
    }
    Ok(())
}

/// Opens `path` read-only without blocking (a FIFO opens at once) and only if it is a regular
/// file. Returns Err(errno), ENOTREG for a FIFO, device, socket or directory.
pub fn open_regular_ro(path: &CPath) -> Result<Fd, Errno> {
    let fd = Fd::open_ro(path)?;
    require_regular(&fd)?;
    Ok(fd)
}

/// Reads the whole (small) file at `path` into `buf`; returns the bytes read.
/// A file larger than `buf` is cut at `buf.len()` (callers size buffers for the file).
/// Only a regular file is read, opened without blocking (`open_regular_ro`): a FIFO or
/// device planted where a /proc file should be is Err(ENOTREG), never a hang.
pub fn read_file<'b>(path: &CPath, buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
    let fd = open_regular_ro(path)?;
    let n = fd.read_full(buf)?;
    Ok(&buf[..n])
}

/// Reads the target of the symlink at `path` into `buf`. Err(ENAMETOOLONG) if it does not fit.
pub fn readlink<'b>(path: &CPath, buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
    // SAFETY: path is NUL-terminated; buf valid for buf.len().
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(errno());
    }
    let n = n as usize;
    if n == buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    Ok(&buf[..n])
}

/// An open directory stream (opendir/readdir), closed on drop.
pub struct Dir(*mut libc::DIR);

impl Dir {
    pub fn open(path: &CPath) -> Result<Dir, Errno> {
        // SAFETY: path is NUL-terminated.
        let d = unsafe { libc::opendir(path.as_ptr()) };
        if d.is_null() {
            Err(errno())
        } else {
            Ok(Dir(d))
        }
    }

    /// The next entry's name, skipping "." and "..". Ok(None) at the end.
    pub fn next_name(&mut self) -> Result<Option<&[u8]>, Errno> {
        loop {
            // readdir only reports errors through errno; clear it first.
            // SAFETY: errno location is thread-local; self.0 is a live DIR*.
            unsafe { *libc::__errno_location() = 0 };
            let ent = unsafe { libc::readdir(self.0) };
            if ent.is_null() {
                let e = unsafe { *libc::__errno_location() };
                return if e == 0 { Ok(None) } else { Err(e) };
            }
            // SAFETY: d_name is NUL-terminated inside the dirent readdir returned.
            let name = unsafe { core::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            // Re-borrow with self's lifetime: the dirent lives until the next readdir.
            return Ok(Some(unsafe {
                core::slice::from_raw_parts(name.as_ptr(), name.len())
            }));
        }
    }
}

impl Dir {
    /// The position after the entry `next_name` returned last (telldir), for `seek`.
    pub fn tell(&self) -> i64 {
        // SAFETY: self.0 is a live DIR*.
        unsafe { libc::telldir(self.0) as i64 }
    }

    /// Goes back (or on) to a position `tell` gave, in this or an earlier stream of the same
    /// directory (the caller knows the directory's positions survive reopening).
    pub fn seek(&mut self, pos: i64) {
        // SAFETY: self.0 is a live DIR*; a position the kernel does not know just ends the
        // listing early or restarts it, it cannot corrupt the stream.
        unsafe { libc::seekdir(self.0, pos as libc::c_long) }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: we own the DIR*.
        unsafe {
            libc::closedir(self.0);
        }
    }
}

/// An `i128` in decimal, as `{}` prints it (no width, fill or sign flags: none of its users
/// has any), by short division of 32-bit limbs by 10^9 in u64: core's i128 formatter and the
/// u128 division it needs are ~0.6-0.8 KiB of a small binary, for the few values (kB sums
/// and differences, kB in bytes) that can pass 64 bits.
pub struct Wide(pub i128);

impl fmt::Display for Wide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.unsigned_abs();
        // Most significant limb first.
        let mut limbs = [
            (n >> 96) as u32,
            (n >> 64) as u32,
            (n >> 32) as u32,
            n as u32,
        ];
        // 10^9-chunks, least significant first: u128 has at most 39 digits, 5 chunks.
        let mut chunks = [0u32; 5];
        let mut used = 0;
        loop {
            let mut rem = 0u64;
            for l in limbs.iter_mut() {
                let cur = (rem << 32) | u64::from(*l);
                *l = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            if let Some(c) = chunks.get_mut(used) {
                *c = rem as u32;
                used += 1;
            }
            if limbs.iter().all(|&l| l == 0) || used == chunks.len() {
                break;
            }
        }
        let mut buf = [0u8; 41];
        let mut len = 0;
        if self.0 < 0 {
            buf[0] = b'-';
            len = 1;
        }
        for (i, &c) in chunks[..used].iter().rev().enumerate() {
            let mut digits = [b'0'; 9];
            let mut tmp = [0u8; 10];
            let d = fmt_u64(u64::from(c), &mut tmp);
            // Inner chunks keep their leading zeros.
            let d = if i == 0 {
                d
            } else {
                digits[9 - d.len()..].copy_from_slice(d);
                &digits[..]
            };
            buf[len..len + d.len()].copy_from_slice(d);
            len += d.len();
        }
        f.write_str(core::str::from_utf8(&buf[..len]).unwrap_or("?"))
    }
}

/// Sorts `v` so that no element is less than one before it (`is_less`), not stable: the
/// heapsort std's own `sort_unstable` uses when built for size (the shipped `small` binary's
/// build-std `optimize_for_size`), so every build orders equal keys alike. The prebuilt std's
/// `sort_unstable` (ipnsort: quicksort, small-sorts, pivot selection) is 1-2 KiB of code per
/// element type. No allocation; O(n log n).
#[inline(never)]
pub fn sort_unstable_by<T>(v: &mut [T], mut is_less: impl FnMut(&T, &T) -> bool) {
    let len = v.len();
    if len < 2 {
        return;
    }
    for i in (0..len + len / 2).rev() {
        let sift = if i >= len {
            i - len
        } else {
            v.swap(0, i);
            0
        };
        sift_down(&mut v[..i.min(len)], sift, &mut is_less);
    }
}

/// `sort_unstable_by`'s heap step: moves `v[node]` down to its place.
fn sift_down<T>(v: &mut [T], mut node: usize, is_less: &mut impl FnMut(&T, &T) -> bool) {
    let len = v.len();
    loop {
        let mut child = 2 * node + 1;
        if child >= len {
            break;
        }
        if child + 1 < len && is_less(&v[child], &v[child + 1]) {
            child += 1;
        }
        if !is_less(&v[node], &v[child]) {
            break;
        }
        v.swap(node, child);
        node = child;
    }
}

/// Parses an all-digit byte string as u32 (None for anything else, including overflow).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    u32::try_from(v).ok()
}

/// A `timespec` of `sec` seconds and `nsec` nanoseconds. Built from zeroes because with a 64-bit
/// `time_t` on 32-bit musl (see targets/README.md) the struct has private padding fields.
pub fn timespec(sec: u64, nsec: u32) -> libc::timespec {
    // SAFETY: timespec is plain integers; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    ts.tv_sec = sec as _;
    ts.tv_nsec = nsec as _;
    ts
}

static STOP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Marks that the process is stopping (async-signal-safe: the SIGTERM handler calls it), so a
/// blocking syscall that a signal interrupts gives up instead of being retried.
pub fn request_stop() {
    STOP.store(true, core::sync::atomic::Ordering::SeqCst);
}

/// True once `request_stop` was called.
pub fn stop_requested() -> bool {
    STOP.load(core::sync::atomic::Ordering::SeqCst)
}

/// Monotonic clock in microseconds (CLOCK_MONOTONIC; never jumps with wall time).
pub fn monotonic_us() -> u64 {
    let mut ts = timespec(0, 0);
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Monotonic clock in milliseconds.
pub fn monotonic_ms() -> u64 {
    monotonic_us() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_prints_like_i128_display() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut vals = vec![
            0i128,
            1,
            -1,
            9,
            10,
            999_999_999,
            1_000_000_000,
            -1_000_000_001,
        ];
        vals.extend([
            i128::MAX,
            i128::MIN,
            i128::MIN + 1,
            u64::MAX as i128,
            -(u64::MAX as i128),
        ]);
        vals.push(i64::MIN as i128 * 1024);
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let hi = seed;
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let v = ((hi as i128) << 64 | seed as i128) >> (hi % 127);
            vals.push(v);
        }
        for v in vals {
            assert_eq!(Wide(v).to_string(), v.to_string());
        }
    }

    #[test]
    fn sort_unstable_by_sorts_like_std() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..200 {
            let mut v: Vec<(u8, u32)> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 7) as u8, i)
                })
                .collect();
            let mut want: Vec<u8> = v.iter().map(|p| p.0).collect();
            want.sort_unstable();
            sort_unstable_by(&mut v, |a, b| a.0 < b.0);
            assert_eq!(v.iter().map(|p| p.0).collect::<Vec<_>>(), want, "len {len}");
            let mut ids: Vec<u32> = v.iter().map(|p| p.1).collect();
            ids.sort_unstable();
            assert!(ids.iter().copied().eq(0..len), "a permutation");
        }
    }

    #[test]
    fn per_mille_is_the_128_bit_quotient() {
        let big = [
            u64::MAX,
            u64::MAX - 1,
            u64::MAX / 7,
            1 << 63,
            (1 << 54) + 3,
            999_999_999_999,
        ];
        let mut vals = vec![0, 1, 2, 3, 7, 9, 10, 999, 1000, 1001, 65_536, 1_000_003];
        vals.extend(big);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vals.push(x >> (x % 64));
        }
        for (i, &a) in vals.iter().enumerate() {
            for &b in vals.iter().skip(i % 3).step_by(37).chain(&big) {
                if b != 0 {
                    let want = (a as u128 * 1000 / b as u128) as u64;
                    assert_eq!(per_mille(a, b), want, "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn contains_finds_substrings() {
        assert!(contains("a{comm}b", "{comm}") && contains("x", "") && contains("..", ".."));
        assert!(!contains("{com}", "{comm}") && !contains("", "a") && !contains("ab", "ba"));
        assert!(contains("né..x", "..") && !contains("é", "\u{e9}x"));
    }

    #[test]
    fn mkdir_all_creates_missing_parents_and_accepts_existing_ones() {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("gw-mkdir-{}", std::process::id()));
        let deep = dir.join("a/b/c");
        let deep_b = deep.as_os_str().as_bytes();
        assert_eq!(mkdir_all(deep_b), Ok(()));
        assert!(deep.is_dir());
        // Existing, with doubled and trailing slashes, and relative to cwd-like "./".
        let mut messy = deep_b.to_vec();
        messy.extend_from_slice(b"//");
        assert_eq!(mkdir_all(&messy), Ok(()));
        // A file in the way is an error, not a silent success.
        std::fs::write(dir.join("file"), b"x").unwrap();
        let blocked = dir.join("file/sub");
        assert_eq!(
            mkdir_all(blocked.as_os_str().as_bytes()),
            Err(libc::ENOTDIR)
        );
        assert_eq!(
            mkdir_all(dir.join("file").as_os_str().as_bytes()),
            Err(libc::EEXIST)
        );
        let p = CPath::from_bytes(dir.as_os_str().as_bytes()).unwrap();
        assert_eq!(is_dir(&p), Ok(true));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(is_dir(&p), Err(libc::ENOENT));
    }

    #[test]
    #[allow(clippy::unnecessary_cast)] // the casts are not no-ops on every target
    fn wall_clock_survives_2038() {
        // 32-bit musl targets are built with the libc crate's 64-bit time_t (targets/build.sh);
        // a build without it would stamp syslog lines wrongly from 2038-01-19 on.
        let ts = timespec(1 << 32, 999_999_999);
        assert_eq!(core::mem::size_of_val(&ts.tv_sec), 8);
        assert_eq!(
            (ts.tv_sec as i64, ts.tv_nsec as i64),
            (1 << 32, 999_999_999)
        );
    }

    #[test]
    fn cut_keeps_whole_characters_that_fit() {
        let s: heapless::String<5> = cut_str("ab路c");
        assert_eq!(s.as_str(), "ab路");
        let s: heapless::String<4> = cut_str("ab路c");
        assert_eq!(s.as_str(), "ab");
        let s: heapless::String<8> = cut_fmt(format_args!("{}-{}", 12345, 678));
        assert_eq!(s.as_str(), "12345-67");
    }

    #[test]
    fn cpath_builds_and_refuses_overflow() {
        let mut p = CPath::from_bytes(b"/proc").unwrap();
        p.join_u32(1234).unwrap().join(b"fd").unwrap();
        assert_eq!(p.as_bytes(), b"/proc/1234/fd");
        let n = p.len();
        p.join(b"7").unwrap();
        p.truncate(n);
        assert_eq!(p.as_bytes(), b"/proc/1234/fd");
        let long = [b'a'; 600];
        assert_eq!(p.push(&long).err(), Some(libc::ENAMETOOLONG));
        assert_eq!(CPath::from_bytes(b"a\0b").err(), Some(libc::EINVAL));
    }

    #[test]
    fn parse_u32_rejects_junk() {
        assert_eq!(parse_u32(b"42"), Some(42));
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"4a"), None);
        assert_eq!(parse_u32(b"99999999999"), None);
        assert_eq!(parse_u32(b"4294967296"), None);
    }

    #[test]
    fn reads_real_proc() {
        let p = CPath::from_bytes(b"/proc/self/comm").unwrap();
        let mut buf = [0u8; 64];
        let got = read_file(&p, &mut buf).unwrap();
        assert!(!got.is_empty());
        let mut d = Dir::open(&CPath::from_bytes(b"/proc/self/fd").unwrap()).unwrap();
        let mut n = 0;
        while let Some(name) = d.next_name().unwrap() {
            assert!(parse_u32(name).is_some());
            n += 1;
        }
        assert!(n >= 3);
    }

    extern "C" fn ignore(_: libc::c_int) {}

    #[test]
    fn a_stop_request_breaks_a_blocked_open() {
        // A FIFO opened O_RDONLY (blocking) waits for a writer; a signal interrupts the wait.
        let dir = std::env::temp_dir().join(format!("gw-eintr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let path = CPath::from_bytes(fifo.to_str().unwrap().as_bytes()).unwrap();
        // SAFETY: valid path; a no-op handler without SA_RESTART so open(2) sees EINTR.
        unsafe {
            assert_eq!(libc::mkfifo(path.as_ptr(), 0o600), 0);
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR2, &sa, core::ptr::null_mut());
        }
        request_stop();
        let (tx, rx) = std::sync::mpsc::channel();
        let p2 = path.clone();
        let t = std::thread::spawn(move || {
            tx.send(()).unwrap();
            Fd::open(&p2, libc::O_RDONLY).err()
        });
        // From the handle: musl's pthread_t is a pointer, which cannot cross a channel (std
        // hands it out as an integer; the cast is a no-op on glibc, not on musl).
        #[allow(clippy::unnecessary_cast)]
        let tid = std::os::unix::thread::JoinHandleExt::as_pthread_t(&t) as libc::pthread_t;
        rx.recv().unwrap();
        let mut got = None;
        for _ in 0..100 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            if t.is_finished() {
                got = Some(t.join().unwrap());
                break;
            }
            // SAFETY: the thread is alive (not finished) and ours.
            unsafe { libc::pthread_kill(tid, libc::SIGUSR2) };
        }
        STOP.store(false, core::sync::atomic::Ordering::SeqCst);
        let got = got.unwrap_or_else(|| {
            // Unblock the thread (a writer appears) before failing, so the test ends.
            let _w = Fd::open(&path, libc::O_WRONLY | libc::O_NONBLOCK);
            panic!("open kept retrying EINTR after a stop request")
        });
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, Some(libc::EINTR));
    }
}
