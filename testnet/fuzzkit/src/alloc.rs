//! A global allocator that counts, per thread, the bytes live and their peak while armed.
//!
//! Why: a decoder must not allocate what a length prefix claims (4 GiB for `ff ff ff ff`); only the bytes it
//! actually allocates show that, so each fuzz test binary installs [`CountingAlloc`] and the runner checks
//! the peak of every input against a cap. Counters are thread-local, so parallel test threads do not see
//! each other's allocations, and only allocations made while the current thread is armed are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator with per-thread live/peak counters. Install it in the test binary:
/// `#[global_allocator] static ALLOC: fuzzkit::CountingAlloc = fuzzkit::CountingAlloc;`
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

thread_local! {
    // `const` initializers and no destructors: safe to touch from inside the allocator.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static SEEN: Cell<bool> = const { Cell::new(false) };
}

fn grow(by: usize) {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let live = LIVE.get().saturating_add(isize::try_from(by).unwrap_or(isize::MAX));
            LIVE.set(live);
            if live > PEAK.get() {
                PEAK.set(live);
            }
            SEEN.set(true);
        }
    });
}

fn shrink(by: usize) {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            LIVE.set(LIVE.get().saturating_sub(isize::try_from(by).unwrap_or(isize::MAX)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the new block arriving before the old one leaves: the true peak of a copy.
        grow(new_size);
        shrink(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` with this thread's counters armed and returns its result and the peak of bytes live above what
/// was live when it started (allocations freed inside count only while they lived).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LIVE.set(0);
    PEAK.set(0);
    ARMED.set(true);
    let r = f();
    ARMED.set(false);
    (r, usize::try_from(PEAK.get()).unwrap_or(0))
}

/// Whether [`CountingAlloc`] is this binary's global allocator (an armed allocation was seen).
pub fn installed() -> bool {
    SEEN.set(false);
    let ((), _) = measure(|| drop(std::hint::black_box(vec![0u8; 64])));
    SEEN.get()
}
