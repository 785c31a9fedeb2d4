//! How many bytes the hub's live allocations hold, as counted by its global allocator
//! (`main.rs`: mimalloc inside `cap::Cap`, which adds one atomic operation per allocation and
//! per free).
//!
//! Why: the process's RSS also counts what the allocator keeps after a free (pages it returns
//! later, or never while a few small objects still live on them), so RSS alone cannot tell a
//! leak from an allocator holding on. This count grows only while allocations stay alive. It is
//! exported as `fleetgate_hub_heap_bytes` (crate::metrics) and read by the soak
//! (e2e/tests/chaos.rs).

use std::sync::OnceLock;

/// Reads the count; set once by the binary that installs the counting allocator.
static COUNTER: OnceLock<fn() -> usize> = OnceLock::new();

/// Tells this library how to read the live heap (the hub binary, at start). A second call is
/// ignored.
pub fn count_with(read: fn() -> usize) {
    let _ = COUNTER.set(read);
}

/// Bytes the live allocations hold, or `None` when the process does not count them (the
/// hub's library used from a test binary with the system allocator).
pub fn live_bytes() -> Option<usize> {
    COUNTER.get().map(|read| read())
}
