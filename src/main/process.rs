//! What both binaries do around a command (`jol-node`, and jol-tools' `jol`): the allocator
//! and how long it keeps freed memory, logging, the runtime, and the exit code. Each binary
//! includes this file (`#[path]`): it needs `unsafe` for the allocator's options, which the
//! library forbids.

use std::future::Future;
use std::process::ExitCode;

use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// jemalloc, not glibc's malloc or mimalloc: the node allocates many small short-lived buffers
/// (JSON, JWS, B-tree pages) on one thread and frees them on another (a page parsed by the
/// receiving task, dropped by the writer). glibc's allocator took ~25 % of the CPU in a profile
/// of `jol bench sync`; mimalloc, which took its place, hands a block freed by another thread
/// back to the thread that allocated it, where it is cold in the cache (10-18 % of each node's
/// samples on the first load of such a block). jemalloc lets the freeing thread reuse it: the
/// live federation spends 13 % less CPU per event at saturation, catch-up 13 % less
/// (BENCHMARKS.md, "jemalloc").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long freed memory stays with the allocator before it goes back to the system, unless
/// `JOL_ALLOCATOR_PURGE_DELAY_MS` says otherwise: jemalloc's decay time for its dirty pages,
/// which it returns gradually over that time. The longer, the fewer pages the kernel zeroes
/// again for the next burst; the shorter, the less memory an idle node keeps (BENCHMARKS.md).
const PURGE_DELAY_MS: isize = 1000;

/// Bound the memory the allocator keeps after it was freed (the node's largest retention), let
/// it give memory back while the node is idle, and keep its memory in small pages.
fn configure_allocator() {
    small_pages_only();
    let delay = purge_delay_ms();
    // The arenas made from now on, then each made so far (arena 0 at least; one not made yet
    // refuses, and will take the first setting when it is).
    // SAFETY: `arenas.narenas` is an `unsigned`.
    let arenas = unsafe { allocator_option::<u32>("arenas.narenas") }.unwrap_or(1);
    for (option, value) in [("dirty_decay_ms", delay), ("muzzy_decay_ms", 0)] {
        logged(&format!("arenas.{option}"), value);
        for arena in 0..arenas {
            let _ = set_allocator_option(&format!("arena.{arena}.{option}"), value);
        }
    }
    // jemalloc purges as it is used; a node that goes quiet after a burst would keep the
    // burst's memory. Its background threads purge what has decayed meanwhile.
    logged("background_thread", true);
}

/// The purge delay: `JOL_ALLOCATOR_PURGE_DELAY_MS`, else [`PURGE_DELAY_MS`].
fn purge_delay_ms() -> isize {
    std::env::var("JOL_ALLOCATOR_PURGE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<isize>().ok())
        .unwrap_or(PURGE_DELAY_MS)
}

/// [`set_allocator_option`], telling stderr when the allocator refuses (its default stays;
/// the node runs either way).
fn logged<T: Copy>(name: &str, value: T) {
    if let Err(code) = set_allocator_option(name, value) {
        eprintln!("the allocator refused {name} (error {code}); its default stays");
    }
}

/// Set jemalloc's option `name` to `value`; `Err` holds the error number it answered.
fn set_allocator_option<T: Copy>(name: &str, mut value: T) -> Result<(), i32> {
    let name = std::ffi::CString::new(name).map_err(|_| libc::EINVAL)?;
    // SAFETY: `name` is a NUL-terminated option name and `value` a live value of the type the
    // option takes (`ssize_t` for the decay times, `bool` for background threads): jemalloc
    // copies `size_of::<T>()` bytes from it and writes nothing back (no old value asked).
    let code = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&mut value as *mut T).cast(),
            std::mem::size_of::<T>(),
        )
    };
    (code == 0).then_some(()).ok_or(code)
}

/// What jemalloc says option `name` is; `Err` holds the error number it answered.
///
/// # Safety
/// `T` must be the C type of the option (jemalloc copies the option's bytes into it even when
/// the sizes differ): `u32` for `arenas.narenas`, `isize` for the decay times, `bool` for
/// `background_thread`.
unsafe fn allocator_option<T: Copy + Default>(name: &str) -> Result<T, i32> {
    let name = std::ffi::CString::new(name).map_err(|_| libc::EINVAL)?;
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>();
    // SAFETY: `T` is the type the option holds (the caller's promise); jemalloc writes at most
    // `len` bytes, the size of `value`, into it.
    let code = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            (&mut value as *mut T).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (code == 0).then_some(value).ok_or(code)
}

/// Transparent huge pages off for this process, unless `JOL_ALLOCATOR_HUGE_PAGES=on`.
///
/// An allocator that asks for huge pages (mimalloc did, on its arenas; jemalloc does when its
/// `thp` option says so, or the system's setting is `always`) gives freed memory back after the
/// purge delay, and the next allocation there faults in a fresh 2 MiB page, which the kernel
/// zeroes whole. In a profile of `jol bench sync` (with mimalloc) that zeroing
/// (`clear_page_erms`) was a fifth of the process's samples; with small pages the benchmarks spent 10–30 % less CPU per event where
/// events come many per request, and a fifth less memory (BENCHMARKS.md, "Small pages"). The
/// flag is the process's: every thread and every mapping, including what the allocator mapped
/// before `main`.
fn small_pages_only() {
    if std::env::var("JOL_ALLOCATOR_HUGE_PAGES").as_deref() == Ok("on") {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours; a
    // kernel without it answers EINVAL, which leaves the process as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Dependencies whose debug or trace logs write what the store holds (the PostgreSQL client
/// its SQL with every key and value, sled every key): personal data, and out of an erasure's
/// reach once in a log file. Held at `info` whatever `RUST_LOG` says, a directive naming one
/// of their modules (`tokio_postgres::simple_query=debug`) included.
const DATA_LOGGERS: [&str; 3] = ["tokio_postgres", "postgres_protocol", "sled"];

/// Whether a log line may be written whatever `RUST_LOG` asks: one of [`DATA_LOGGERS`] only at
/// `info` or above.
fn not_stored_data(line: &tracing::Metadata<'_>) -> bool {
    let target = line.target();
    let from_data_logger = DATA_LOGGERS.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !from_data_logger || *line.level() <= tracing::Level::INFO
}

/// The node's log lines: those `filter` lets through that [`not_stored_data`] allows too. The
/// most verbose level `filter` asks for stays the hint, so callsites above it (the `log`
/// crate's too) are not asked at all.
fn log_filter<S: tracing::Subscriber>(filter: EnvFilter) -> impl Filter<S> {
    let hint = <EnvFilter as Layer<S>>::max_level_hint(&filter)
        .unwrap_or(tracing::level_filters::LevelFilter::TRACE);
    filter.and(filter_fn(not_stored_data).with_max_level_hint(hint))
}

/// Set up the allocator and logging (as JSON lines when `log_json`; at `default_filter` unless
/// `RUST_LOG` says otherwise), run `work` on a multi-threaded runtime, and turn its result into
/// the exit code.
pub(crate) fn run(
    log_json: bool,
    default_filter: &str,
    work: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    configure_allocator();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = tracing_subscriber::registry();
    match log_json {
        true => logs
            .with(lines.json().with_filter(log_filter(filter)))
            .init(),
        false => logs.with(lines.with_filter(log_filter(filter))).init(),
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(work));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What a subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Even when `RUST_LOG` asks for everything, down to one of their modules, the loggers that
    /// write stored keys and values (the PostgreSQL client's SQL, sled's keys) stay at `info`;
    /// the node's own debug lines still show.
    #[test]
    fn the_loggers_that_write_stored_data_stay_at_info() {
        let captured = Captured::default();
        let writer = captured.clone();
        let asked = "trace,tokio_postgres=trace,postgres_protocol=debug,sled=trace,\
                     tokio_postgres::simple_query=debug,sled::tree=trace";
        let lines = tracing_subscriber::fmt::layer().with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry()
            .with(lines.with_filter(log_filter(EnvFilter::new(asked))));
        assert_eq!(
            tracing::Subscriber::max_level_hint(&tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer().with_filter(log_filter(EnvFilter::new("info")))
            )),
            Some(tracing::level_filters::LevelFilter::INFO),
            "callsites above the level asked for are asked"
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "tokio_postgres::simple_query", "executing 21503199012345");
            tracing::trace!(target: "sled::tree", "key 21503199012345");
            tracing::debug!(target: "postgres_protocol::message", "21503199012345");
            tracing::info!(target: "tokio_postgres::connection", "connection closed");
            tracing::debug!(target: "jol::federation::sync", "a page stored");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("21503199012345"), "{text}");
        assert!(text.contains("connection closed"), "{text}");
        assert!(text.contains("a page stored"), "{text}");
    }

    #[test]
    fn the_allocator_takes_the_purge_delay_and_purges_in_the_background() {
        configure_allocator();
        // SAFETY (each read): the decay times are `ssize_t`, `background_thread` a `bool`.
        for name in ["arenas.dirty_decay_ms", "arena.0.dirty_decay_ms"] {
            let set = unsafe { allocator_option::<isize>(name) };
            assert_eq!(set, Ok(purge_delay_ms()), "{name}");
        }
        for name in ["arenas.muzzy_decay_ms", "arena.0.muzzy_decay_ms"] {
            assert_eq!(unsafe { allocator_option::<isize>(name) }, Ok(0), "{name}");
        }
        assert_eq!(
            unsafe { allocator_option::<bool>("background_thread") },
            Ok(true)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_keeps_to_small_pages() {
        small_pages_only();
        // SAFETY: PR_GET_THP_DISABLE reads the process's flag and touches no memory of ours.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1, "transparent huge pages are still allowed");
    }
}
