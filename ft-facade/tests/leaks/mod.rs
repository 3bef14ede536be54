//! Leak accounting for the reliability tests (issue 9): what the process holds, measured
//! four ways, so that "memory back to its baseline" can say *what* memory.
//!
//! * **live heap bytes**: every allocation of the test process goes through [`Counting`], a
//!   global allocator that wraps the system one and keeps the bytes allocated and not yet
//!   freed. This is what our structures hold (and everything else in the process);
//! * **descriptors**: the entries of `/proc/self/fd`;
//! * **threads** and **RSS**: `/proc/self/status`; RSS also after [`trim`], which asks
//!   glibc to give the free memory of every arena back to the kernel (`malloc_trim(0)`):
//!   RSS minus that is memory the allocator keeps for reuse, not memory anything holds;
//! * **allocator free bytes**: `mallinfo2()`'s `fordblks` (free chunks kept by glibc).
#![allow(dead_code, unreachable_pub, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The system allocator, counting live bytes and allocations.
#[derive(Debug)]
pub struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_ALLOCS: AtomicI64 = AtomicI64::new(0);
static TOTAL_ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters are only updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System.alloc`'s.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            counted(l.size() as i64, 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            counted(l.size() as i64, 1);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as `alloc`.
        unsafe { System.dealloc(p, l) };
        counted(-(l.size() as i64), -1);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: as `alloc`.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE_BYTES.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
            if new > l.size() {
                BY_CLASS[class(new)].fetch_add(1, Ordering::Relaxed);
            }
        }
        q
    }
}

/// Allocations (and growths by `realloc`) by size class: class k holds sizes in
/// `[2^k, 2^(k+1))`.
pub static BY_CLASS: [AtomicU64; 40] = [const { AtomicU64::new(0) }; 40];

/// The size class of `n` bytes: `k` for `[2^k, 2^(k+1))`, 0 for 0.
fn class(n: usize) -> usize {
    (usize::BITS - 1).saturating_sub(n.leading_zeros()) as usize
}

fn counted(bytes: i64, n: i64) {
    if n > 0 && bytes > 0 {
        BY_CLASS[class(bytes as usize)].fetch_add(1, Ordering::Relaxed);
    }
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    LIVE_ALLOCS.fetch_add(n, Ordering::Relaxed);
    if n > 0 {
        TOTAL_ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations ever made of at least `2^k` bytes.
pub fn allocs_of_at_least(k: usize) -> u64 {
    BY_CLASS[k..]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
}

/// Bytes allocated and not freed, in the whole process.
pub fn live_heap() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Allocations not freed, in the whole process.
pub fn live_allocs() -> i64 {
    LIVE_ALLOCS.load(Ordering::Relaxed)
}

/// Open descriptors of this process (the directory's own descriptor not counted).
pub fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1))
}

/// `Threads` and `VmRSS` (kB) from `/proc/self/status`.
pub fn threads_rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}

/// Free bytes glibc keeps in its arenas (`mallinfo2().fordblks`), 0 elsewhere.
pub fn allocator_free() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no argument and only reads the allocator's statistics.
        let mi = unsafe { libc::mallinfo2() };
        mi.fordblks as u64
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    0
}

/// Gives glibc's free memory back to the kernel (`malloc_trim(0)`); nothing elsewhere.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the system; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A reading of everything above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub live_heap: i64,
    pub live_allocs: i64,
    pub fds: usize,
    pub threads: u64,
    pub rss_kb: u64,
    pub allocator_free: u64,
}

impl Reading {
    pub fn now() -> Self {
        let (threads, rss_kb) = threads_rss();
        Self {
            live_heap: live_heap(),
            live_allocs: live_allocs(),
            fds: fds(),
            threads,
            rss_kb,
            allocator_free: allocator_free(),
        }
    }
}
