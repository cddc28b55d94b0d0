//! Observe: everything that reads the box — the /proc readers, the socket scanner, the owner
//! walk, who a process really is, and the Ghost equation over what was read.
//! Must not decide, act or write output: it returns records and errors, nothing else.

pub mod ghost;
pub mod identity;
pub mod owners;
pub mod proc;
pub mod sockets;
