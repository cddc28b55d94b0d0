//! Output: what ghostwatch writes for others to read — the logfmt audit line (`audit`), the
//! syslog sink (`sink`) and its name resolver (`resolve`), the status and metrics files (`status`), one escaper per format (`escape`).
//! Must not read the box or decide anything: it is handed plain data and writes it out.

pub mod audit;
pub mod escape;
pub mod resolve;
pub mod sink;
pub mod status;
