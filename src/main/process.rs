//! What both binaries do around a command (`jol-node`, and jol-tools' `jol`): the allocator
//! and how long it keeps freed memory, logging, the runtime, and the exit code. Each binary
//! includes this file (`#[path]`): it needs `unsafe` for the allocator's options, which the
//! library forbids.

use std::future::Future;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: the node allocates many small short-lived buffers (JSON,
/// JWS, sled nodes) from several threads, where glibc's allocator took ~25% of the CPU in a
/// profile of `jol bench sync` (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option index of `purge_delay` (`mi_option_purge_delay` in mimalloc.h's
/// `mi_option_e`, the same in its v2 and v3).
const MI_OPTION_PURGE_DELAY: i32 = 15;
/// How long freed memory stays with the allocator before it goes back to the system, unless
/// `JOL_ALLOCATOR_PURGE_DELAY_MS` says otherwise. mimalloc's own default (1 s) kept a node that
/// had just read its store at 175 MiB of RSS where 10 ms gave it back; but at 10 ms a node
/// catching up faulted in (and the kernel zeroed) the same pages again and again, a sixth of
/// its CPU. 100 ms keeps most of that gain (catch-up 12 % less CPU per event) and a
/// million-event node well under its memory goal (BENCHMARKS.md, tenth sitting of issue 31).
const PURGE_DELAY_MS: i64 = 100;

/// Bound the memory the allocator keeps after it was freed (the node's largest retention), and
/// keep its memory in small pages.
fn configure_allocator() {
    small_pages_only();
    let delay = std::env::var("JOL_ALLOCATOR_PURGE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(PURGE_DELAY_MS);
    // SAFETY: setting an option of the allocator this binary links; mimalloc reads it on every
    // purge decision, so changing it at any time is allowed.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay as _) };
    // mimalloc purges when it is next used: a node that goes quiet after a burst would keep the
    // burst's memory. Once a second, let it purge what has waited long enough.
    let _ = std::thread::Builder::new()
        .name("jol-allocator".into())
        .spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            // SAFETY: asks the allocator to collect; callable from any thread at any time.
            unsafe { libmimalloc_sys::mi_collect(false) };
        });
}

/// Transparent huge pages off for this process, unless `JOL_ALLOCATOR_HUGE_PAGES=on`.
///
/// mimalloc asks for huge pages on its arenas, and gives freed memory back after the purge
/// delay; the next allocation there faults in a fresh 2 MiB page, which the kernel zeroes
/// whole. In a profile of `jol bench sync` that zeroing (`clear_page_erms`) was a fifth of the
/// process's samples; with small pages the benchmarks spent 10–30 % less CPU per event where
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
/// reach once in a log file. Held at `info` whatever `RUST_LOG` says.
const DATA_LOGGERS: [&str; 3] = ["tokio_postgres=info", "postgres_protocol=info", "sled=info"];

/// `filter` with [`DATA_LOGGERS`] held at `info`.
fn quiet_data_loggers(filter: EnvFilter) -> EnvFilter {
    DATA_LOGGERS
        .iter()
        .fold(filter, |f, directive| match directive.parse() {
            Ok(d) => f.add_directive(d),
            Err(_) => f,
        })
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
    let filter = quiet_data_loggers(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
    );
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if log_json {
        logs.json().init();
    } else {
        logs.init();
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

    /// Even when `RUST_LOG` asks for everything, the loggers that write stored keys and values
    /// (the PostgreSQL client's SQL, sled's keys) stay at `info`; the node's own debug lines
    /// still show.
    #[test]
    fn the_loggers_that_write_stored_data_stay_at_info() {
        let captured = Captured::default();
        let writer = captured.clone();
        let asked = "trace,tokio_postgres=trace,postgres_protocol=debug,sled=trace";
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(quiet_data_loggers(EnvFilter::new(asked)))
            .with_writer(move || writer.clone())
            .finish();
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
    fn the_purge_delay_index_is_mimallocs() {
        // Before anyone sets it, the option at that index holds mimalloc's purge-delay default.
        // SAFETY: reading an allocator option.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            default, 1000,
            "mimalloc's option {MI_OPTION_PURGE_DELAY} is not purge_delay"
        );
        configure_allocator();
        // SAFETY: as above.
        let set = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(set as i64, PURGE_DELAY_MS);
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
