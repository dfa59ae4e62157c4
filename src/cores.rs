//! Spreading one piece of CPU work over the machine's cores: a slice cut into one chunk per
//! core, each chunk's results in order, for work one task would otherwise do alone (a page's
//! signature checks at a subscriber, the writer's signatures of a large round); and running
//! blocking work from async code without stalling the runtime's other tasks.

/// Run `work`, which blocks (CPU, store reads and writes, fsync), from async code: on a
/// multi-threaded runtime the worker thread hands its other tasks to the rest first
/// (`block_in_place`); elsewhere (a current-thread runtime, as in tests) it runs inline.
pub(crate) fn blocking<R>(work: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    match multi_thread {
        true => tokio::task::block_in_place(work),
        false => work(),
    }
}

/// `work` applied to `items` cut into a chunk per core (on scoped threads, the calling thread
/// taking the first), the results in `items` order; on one thread when there is one core or
/// fewer than `at_least` items per chunk would be left. A panic in a chunk is the caller's.
pub(crate) fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    at_least: usize,
    work: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    match chunk_len(items.len(), at_least) {
        None => work(items),
        Some(len) => on_scoped_threads(items.chunks(len), work),
    }
}

/// [`map_chunks`] for work that takes each item by value (signing an event consumes it).
pub(crate) fn map_owned<T: Send, R: Send>(
    items: Vec<T>,
    at_least: usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let Some(len) = chunk_len(items.len(), at_least) else {
        return items.into_iter().map(work).collect();
    };
    let mut items = items.into_iter();
    let chunks = std::iter::from_fn(|| {
        let chunk: Vec<T> = items.by_ref().take(len).collect();
        (!chunk.is_empty()).then_some(chunk)
    });
    on_scoped_threads(chunks, |chunk| chunk.into_iter().map(&work).collect())
}

/// How many items each chunk takes when `len` items are cut into a chunk per core, each of
/// at least `at_least`; `None` when fewer than two chunks would be cut.
fn chunk_len(len: usize, at_least: usize) -> Option<usize> {
    let chunks = cores().min(len / at_least.max(1));
    (chunks >= 2).then(|| len.div_ceil(chunks))
}

/// How many cores the process may use, as the standard library first found it. Asked once:
/// each asking opens and reads the cgroup's CPU quota files again (about 1.4 % of a
/// subscriber's CPU when asked for every page).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `work` run on each chunk, the first on the calling thread and each other on a scoped
/// thread of its own; the results in chunk order.
fn on_scoped_threads<C: Send, R: Send>(
    mut chunks: impl Iterator<Item = C>,
    work: impl Fn(C) -> Vec<R> + Sync,
) -> Vec<R> {
    let work = &work;
    std::thread::scope(|scope| {
        let first = chunks.next();
        let others: Vec<_> = chunks.map(|c| scope.spawn(move || work(c))).collect();
        let mut results = first.map(work).unwrap_or_default();
        for other in others {
            results.extend(
                other
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_whatever_the_chunks() {
        let items: Vec<u32> = (0..1000).collect();
        for at_least in [1, 7, 500, 2000] {
            let doubled = map_chunks(&items, at_least, |c| c.iter().map(|x| x * 2).collect());
            assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
        assert!(map_chunks(&[] as &[u32], 1, |c| c.to_vec()).is_empty());
    }

    #[test]
    fn owned_items_come_back_in_order_whatever_the_chunks() {
        for (len, at_least) in [
            (1000, 1),
            (1000, 7),
            (1000, 500),
            (1000, 2000),
            (3, 1),
            (0, 1),
        ] {
            let items: Vec<String> = (0..len).map(|n| n.to_string()).collect();
            let lengths = map_owned(items.clone(), at_least, |s| s.len());
            assert_eq!(lengths, items.iter().map(String::len).collect::<Vec<_>>());
        }
    }
}
