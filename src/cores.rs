//! Spreading one piece of CPU work over the machine's cores: a slice cut into one chunk per
//! core, each chunk's results in order, for work one task would otherwise do alone (a page's
//! signature checks at a subscriber); and running blocking work from async code without
//! stalling the runtime's other tasks.

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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks = cores.min(items.len() / at_least.max(1));
    if chunks < 2 {
        return work(items);
    }
    let chunk = items.len().div_ceil(chunks);
    let work = &work;
    std::thread::scope(|scope| {
        let mut parts = items.chunks(chunk);
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts.map(|c| scope.spawn(move || work(c))).collect();
        let mut results = work(first);
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
}
