//! Process resources: the descriptor limit, the allocator's tuning and a
//! worker's stack pages. A client's sessions use them (bounded by
//! `max_clients` and the pool); these keep that use within the limits and
//! give memory back after it.

use super::check;
use std::io;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so that many sessions
/// (each with a control socket, a data socket, a file and a directory fd) fit
/// in the descriptor table; the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: all-zero is a valid rlimit; the kernel fills it in.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: limit is a valid out-pointer.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: limit is a valid, initialised rlimit.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
    }
    Ok(limit.rlim_cur as u64)
}

/// glibc's malloc, left to itself, gives each busy thread an arena of its own
/// (sized by reading /sys and /proc, which a chrooted process cannot), raises
/// its mmap threshold after the first large free so transfer buffers land in
/// those arenas, and keeps what they held after a busy minute. One arena, a
/// fixed mmap threshold below the transfer buffers (they are mmapped and
/// unmapped whole) and a low trim threshold give the memory back. Called
/// before any thread starts; musl's allocator returns memory by itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; no thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_malloc() {}

/// The lowest address of the calling thread's stack, for
/// `release_stack_below`.
pub fn stack_low_end() -> io::Result<usize> {
    // SAFETY: all-zero is a valid pthread_attr_t to be filled in.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: attr is a valid out-pointer; the thread is the calling one.
    let ret = unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: attr was initialised above; addr and size are valid out-pointers.
    let ret = unsafe { libc::pthread_attr_getstack(&attr, &mut addr, &mut size) };
    // SAFETY: attr was initialised by pthread_getattr_np and is not used again.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(addr as usize)
}

/// Stack kept below the caller's frame for the frames of this call (sysconf,
/// madvise). Nothing below the stack pointer is live: the kernel writes no
/// user stack during a system call, and a signal frame pushed afterwards
/// lands on zero pages like any new frame.
const STACK_MARGIN: usize = 4 * 1024;

/// Gives back to the kernel the calling thread's stack pages from `low` up to
/// a margin below the caller's frame: pages that a finished session touched
/// in deep calls and that a waiting worker does not need. They come back as
/// zero pages when touched again.
pub fn release_stack_below(low: usize) {
    let here = 0u8;
    let frame = std::hint::black_box(&here) as *const u8 as usize;
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => return,
    };
    let start = low.div_ceil(page) * page;
    let end = frame.saturating_sub(STACK_MARGIN) / page * page;
    if end > start {
        // SAFETY: [start, end) lies in this thread's own stack, below every
        // live frame by STACK_MARGIN: nothing there is in use, and
        // MADV_DONTNEED on anonymous memory only makes it read as zeros.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// Gives the C library's free heap memory back to the kernel. glibc's
/// `free` returns only the top of the heap; a busy minute leaves free pages
/// all through it (listing buffers, TLS records, session state freed out of
/// order), and `malloc_trim(0)` releases them with `MADV_DONTNEED`. musl's
/// allocator unmaps free memory by itself, so there this does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks the allocator's own free lists, under
    // its locks; it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_heap() {}

/// The glibc tunable that turns off the per-thread cache of freed blocks.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const NO_TCACHE: &str = "glibc.malloc.tcache_count=0";

/// glibc keeps up to 7 freed blocks of each small size in a cache of each
/// thread (tcache) that nothing empties but the thread's exit: after a busy
/// minute each of hundreds of idle workers holds blocks scattered through
/// the heap, which pin its pages (`trim_heap` cannot release them). Only
/// the `GLIBC_TUNABLES` variable, read when the process starts, turns the
/// cache off; so before anything is opened or started the process executes
/// itself again, once, with it set (the pid, arguments and descriptors stay;
/// `/proc/self/exe` names the binary). Returns when that is not needed
/// (already set, or not glibc) or not possible (no /proc), after which the
/// caches stay on and only cost memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn restart_without_thread_malloc_cache() -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
    let tunables = tunables.to_string_lossy();
    if tunables.contains("glibc.malloc.tcache_count") {
        return Ok(());
    }
    let tunables = match tunables.as_ref() {
        "" => NO_TCACHE.to_string(),
        other => format!("{other}:{NO_TCACHE}"),
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "minftpd".into());
    Err(std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec())
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn restart_without_thread_malloc_cache() -> io::Result<()> {
    Ok(())
}
