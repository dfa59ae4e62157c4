//! The writer lease: which replica of a member may write. One row (`jol_writer`) holds the
//! lease's epoch, its holder, the holder's session and when it expires.
//!
//! A standby takes the lease when it has expired (the writer is paused or cut off) or when the
//! holder's database session is gone (the writer died: no need to wait for the expiry), bumping
//! the epoch. The writer renews it every third of its length. Every write the writer commits runs
//! `jol_fence(epoch)` first ([`super::schema`]): a write from an old epoch or past the expiry
//! rolls back, so a writer that was paused while another took over cannot commit anything after
//! waking. A writer whose renewal finds another epoch has lost the role for good; the node stops
//! (and a supervisor restarts it as a standby).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{connect, PgError, PgKv, PgSettings, PreviousLease};
use crate::store::recent::Recent;

/// A replica's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Has not asked the database yet (a node waits for the first answer before serving).
    Contending,
    /// Serves reads and the feed; refuses publishes (503).
    Standby,
    /// Holds the lease with this epoch: writes, syncs, signs checkpoints.
    Writer(i64),
    /// Held the lease and lost it to another replica: must stop.
    Deposed,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Contending => "contending",
            Role::Standby => "standby",
            Role::Writer(_) => "writer",
            Role::Deposed => "deposed",
        }
    }
}

/// Take the lease; answers the new epoch and how many seconds the previous holder's lease had
/// left (0 unless it was taken because the holder's session is gone).
const TAKE: &str =
    "WITH old AS (SELECT expires_at AS previous FROM jol_writer WHERE id = 1 FOR UPDATE)
    UPDATE jol_writer AS w SET epoch = w.epoch + 1, holder = $1, holder_pid = pg_backend_pid(),
        expires_at = clock_timestamp() + make_interval(secs => $2)
    FROM old
    WHERE w.id = 1 AND (w.holder IS NULL OR w.expires_at < clock_timestamp()
        OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = w.holder_pid))
    RETURNING w.epoch, CASE WHEN old.previous > clock_timestamp()
        THEN EXTRACT(EPOCH FROM old.previous - clock_timestamp())::float8 ELSE 0 END";

const RENEW: &str =
    "UPDATE jol_writer SET expires_at = clock_timestamp() + make_interval(secs => $2),
        holder_pid = pg_backend_pid()
    WHERE id = 1 AND epoch = $1 RETURNING epoch";

/// Contend for the writer lease as `holder` (a name for messages: member and host). The role
/// is announced on the returned watch; the store's writes are fenced with the epoch held.
pub(crate) fn contend(
    kv: &PgKv,
    holder: String,
    window: Option<Arc<Recent>>,
) -> watch::Receiver<Role> {
    let (tx, rx) = watch::channel(Role::Contending);
    let epoch = kv.epoch();
    let previous = kv.previous_lease();
    let settings = kv.settings().clone();
    super::runtime().spawn(async move {
        let window = Window(window);
        let role = run(&settings, &holder, &tx, (&epoch, &previous), &window).await;
        window.closed();
        epoch.store(0, Ordering::SeqCst);
        tx.send_replace(role);
    });
    rx
}

/// The writer's window of recent events, usable only while the lease is known to be this
/// replica's: from the moment a take or renewal was sent, for the lease's length (the database
/// counts its expiry from later), and not at all once a renewal fails, since the holder's lost
/// session lets another replica take over before the expiry.
struct Window(Option<Arc<Recent>>);

impl Window {
    fn held_from(&self, sent: Instant, length: Duration) {
        if let Some(w) = &self.0 {
            w.usable_until(sent + length);
        }
    }

    fn closed(&self) {
        if let Some(w) = &self.0 {
            w.usable_until(Instant::now());
        }
    }
}

/// Contend until the lease is lost (or nobody watches any more); returns the final role.
async fn run(
    settings: &PgSettings,
    holder: &str,
    role: &watch::Sender<Role>,
    (epoch, previous): (&std::sync::atomic::AtomicI64, &PreviousLease),
    window: &Window,
) -> Role {
    window.closed();
    let Ok(config) = settings.config() else {
        return Role::Standby;
    };
    let lease = Duration::from_millis(settings.lease_ms);
    let length = lease.as_secs_f64();
    let renew_every = Duration::from_millis((settings.lease_ms / 3).max(10));
    let poll = Duration::from_millis(settings.poll_ms.max(10));
    let mut held: Option<i64> = None;
    let mut client = None;
    loop {
        if role.is_closed() {
            return Role::Standby;
        }
        if client
            .as_ref()
            .is_none_or(|c: &tokio_postgres::Client| c.is_closed())
        {
            client = connect(config.clone()).await.ok();
        }
        let Some(c) = client.as_ref() else {
            window.closed();
            if held.is_none() {
                role.send_if_modified(|r| std::mem::replace(r, Role::Standby) != Role::Standby);
            }
            tokio::time::sleep(poll).await;
            continue;
        };
        let sent = Instant::now();
        match held {
            None => match c.query_opt(TAKE, &[&holder, &length]).await {
                Ok(Some(row)) => {
                    let e: i64 = row.get(0);
                    // Not known: as if the whole lease were left. Counted from the answer, not
                    // the request, so the wait ends after the old holder's window closed.
                    let left: f64 = row.try_get(1).unwrap_or(length);
                    let left = Duration::try_from_secs_f64(left.clamp(0.0, length));
                    previous.ends_at(Instant::now() + left.unwrap_or_default());
                    held = Some(e);
                    epoch.store(e, Ordering::SeqCst);
                    window.held_from(sent, lease);
                    tracing::info!(epoch = e, "this replica holds the writer lease");
                    role.send_replace(Role::Writer(e));
                }
                Ok(None) => {
                    role.send_if_modified(|r| std::mem::replace(r, Role::Standby) != Role::Standby);
                }
                Err(e) => {
                    role.send_if_modified(|r| std::mem::replace(r, Role::Standby) != Role::Standby);
                    tracing::warn!(error = %PgError::from(e), "cannot contend for the writer lease");
                }
            },
            Some(e) => match c.query_opt(RENEW, &[&e, &length]).await {
                Ok(Some(_)) => window.held_from(sent, lease),
                Ok(None) => {
                    tracing::error!(epoch = e, "another replica took the writer lease");
                    return Role::Deposed;
                }
                // The database is unreachable: the fence stops our writes once the lease
                // expires; we keep renewing and carry on if it comes back still ours. The
                // window waits for that.
                Err(err) => {
                    window.closed();
                    tracing::warn!(error = %PgError::from(err), "cannot renew the writer lease")
                }
            },
        }
        let pause = if held.is_some() { renew_every } else { poll };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = role.closed() => return Role::Standby,
        }
    }
}

/// Who holds the lease now: (epoch, holder), for `/readyz` and tests.
pub(crate) fn holder(kv: &PgKv) -> Result<(i64, Option<String>), PgError> {
    let config = kv.settings().config()?;
    super::block(async move {
        let client = connect(config).await?;
        let row = client
            .query_one("SELECT epoch, holder FROM jol_writer WHERE id = 1", &[])
            .await?;
        Ok((row.get(0), row.get(1)))
    })
}

/// Contend and wait until this process is the writer (a single-replica node at start, tests,
/// tools). Keep the receiver: dropping it gives the lease up at its next renewal.
pub(crate) fn acquire(
    kv: &PgKv,
    holder: String,
    timeout: Duration,
) -> Result<watch::Receiver<Role>, PgError> {
    let role = contend(kv, holder, None);
    let deadline = std::time::Instant::now() + timeout;
    while !matches!(*role.borrow(), Role::Writer(_)) {
        if std::time::Instant::now() > deadline {
            return Err(PgError::NotWriter);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::Op;

    fn database() -> Option<PgSettings> {
        super::super::test_database("the writer lease")
    }

    /// A writer paused past its lease is replaced, and when it wakes, its writes are refused by
    /// the fence and its next renewal tells it it was deposed.
    #[test]
    fn a_paused_writer_is_fenced_out_and_deposed() {
        let Some(settings) = database() else { return };
        let old = PgKv::open(&settings).unwrap();
        // The old writer's window of recent events, as a node's writer fills it.
        let window = Arc::new(Recent::new(8));
        let old_role = contend(&old, "old".into(), Some(window.clone()));
        let mut waited = 0;
        while !matches!(*old_role.borrow(), Role::Writer(_)) && waited < 1000 {
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        window.committed(1, vec![an_event()]);
        assert!(window.holds(1), "the writer reads its own window");
        old.write(vec![Op::Put(b"k".to_vec(), b"old".to_vec())])
            .unwrap();
        let new = PgKv::open(&settings).unwrap();
        let new_role = contend(&new, "new".into(), None);
        // The old writer is alive and renewing: the lease stays with it.
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(*new_role.borrow(), Role::Standby);
        // Pause it, as far as the lease can tell: its lease runs out, and stays run out (a
        // renewal of the paused writer that still lands before the standby's next try would
        // extend it, as it may: nobody else holds the lease yet).
        let mut waited = 0;
        while !matches!(*new_role.borrow(), Role::Writer(_)) && waited < 250 {
            super::super::execute(
                &settings,
                "UPDATE jol_writer SET expires_at = clock_timestamp() - interval '1 second' \
                 WHERE holder = 'old'"
                    .into(),
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            waited += 1;
        }
        let Role::Writer(new_epoch) = *new_role.borrow() else {
            panic!("the standby did not take over");
        };
        assert!(
            matches!(*old_role.borrow(), Role::Writer(e) if e < new_epoch)
                || *old_role.borrow() == Role::Deposed
        );
        // Whatever the old writer still believes, the database refuses its writes.
        let refused = old.write(vec![Op::Put(b"k".to_vec(), b"stale".to_vec())]);
        assert!(matches!(refused, Err(PgError::NotWriter)), "{refused:?}");
        new.write(vec![Op::Put(b"k".to_vec(), b"new".to_vec())])
            .unwrap();
        assert_eq!(new.get(b"k").unwrap(), Some(b"new".to_vec()));
        waited = 0;
        while *old_role.borrow() != Role::Deposed && waited < 500 {
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        assert_eq!(*old_role.borrow(), Role::Deposed);
        assert!(
            !window.holds(1),
            "a deposed writer's window hands nothing out"
        );
        // Taken after the expiry: the new writer's erasures need not wait.
        assert_eq!(new.erasures_wait(), Duration::ZERO);
        assert_eq!(holder(&new).unwrap(), (new_epoch, Some("new".into())));
    }

    /// A position of the log written by a commit the writer took for failed (it landed late)
    /// is not written over by the writer's next round: that round fails whole, and the writer
    /// repairs from what the store holds.
    #[test]
    fn an_appended_position_that_exists_fails_the_whole_commit() {
        let Some(settings) = database() else { return };
        let kv = PgKv::open(&settings).unwrap();
        let role = contend(&kv, "writer".into(), None);
        let mut waited = 0;
        while !matches!(*role.borrow(), Role::Writer(_)) && waited < 1000 {
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        let late = vec![Op::Append(b"position-1".to_vec(), b"landed late".to_vec())];
        kv.write(late).unwrap();
        let next = vec![
            Op::Put(b"index".to_vec(), b"of the next round".to_vec()),
            Op::Append(b"position-1".to_vec(), b"another event".to_vec()),
        ];
        let refused = kv.write(next);
        assert!(matches!(refused, Err(PgError::Db(_))), "{refused:?}");
        assert_eq!(
            kv.get(b"position-1").unwrap(),
            Some(b"landed late".to_vec())
        );
        assert_eq!(
            kv.get(b"index").unwrap(),
            None,
            "a part of the round landed"
        );
        // A put (an erasure stripping the event) still writes over it.
        kv.write(vec![Op::Put(b"position-1".to_vec(), b"stripped".to_vec())])
            .unwrap();
        assert_eq!(kv.get(b"position-1").unwrap(), Some(b"stripped".to_vec()));
    }

    fn an_event() -> crate::event::SignedEvent {
        let member: crate::event::identifiers::MemberId =
            "central-server/GOV/70000001/migration".parse().unwrap();
        let kid = crate::event::identifiers::KeyName::new(member.clone(), "k1").unwrap();
        crate::event::Event::new(
            member,
            crate::event::schema::EventType::ReturneeRecord,
            1,
            serde_json::json!({}),
        )
        .sign(&crate::event::keys::generate(), &kid)
    }

    /// A writer whose session is gone (the process died) is replaced without waiting for its
    /// lease to run out.
    #[test]
    fn a_dead_writer_is_replaced_before_its_lease_expires() {
        let Some(mut settings) = database() else {
            return;
        };
        settings.lease_ms = 60_000;
        let old = PgKv::open(&settings).unwrap();
        let old_role = acquire(&old, "old".into(), Duration::from_secs(10)).unwrap();
        // Dropping every receiver ends the lease task, which closes its session: as a kill would.
        drop(old_role);
        let new = PgKv::open(&settings).unwrap();
        let started = std::time::Instant::now();
        acquire(&new, "new".into(), Duration::from_secs(30)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(59),
            "waited for the expiry"
        );
        // Its erasures wait for that expiry, in case the old process lives on and reads its
        // window: a lost session is not a dead process.
        let wait = new.erasures_wait();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }
}
