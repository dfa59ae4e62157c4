//! How far long work over the log has got (`jol rebuild-view`, `jol verify`, `jol export`):
//! events done of the total, the rate, and the time left. The work reports through
//! [`Progress`]; the commands give it [`Lines`] on standard error, which redraws one line in
//! place on a terminal and, when standard error is not one (a log file, a pipe), writes a plain
//! line at each tenth of the work, so a log holds ten lines, not a stream of redraws. Library
//! callers that want none pass [`Quiet`].

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Where long work says how far it is.
pub trait Progress {
    /// A phase begins: `what` it is (`rebuild-view: projecting`), over `total` events. A phase
    /// still open is finished first.
    fn start(&mut self, what: &str, total: u64);
    /// `n` more events are done.
    fn advance(&mut self, n: u64);
    /// The phase is over.
    fn finish(&mut self);
}

/// No progress said.
#[derive(Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn start(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// How often a terminal's line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(200);

/// Progress as text: one line redrawn on a terminal, plain lines at each tenth otherwise.
#[derive(Debug)]
pub struct Lines<W: Write> {
    out: W,
    terminal: bool,
    phase: Option<Phase>,
}

/// The phase under way.
#[derive(Debug)]
struct Phase {
    what: String,
    total: u64,
    done: u64,
    started: Instant,
    /// When a terminal's line was last drawn.
    drawn: Option<Instant>,
    /// The tenths already written as plain lines.
    tenths: u64,
}

impl Lines<std::io::Stderr> {
    /// Progress on standard error, redrawn in place when it is a terminal.
    pub fn stderr() -> Self {
        let terminal = std::io::stderr().is_terminal();
        Lines::new(std::io::stderr(), terminal)
    }
}

impl<W: Write> Lines<W> {
    /// Progress lines to `out`, redrawn in place when `terminal`.
    pub fn new(out: W, terminal: bool) -> Self {
        Lines {
            out,
            terminal,
            phase: None,
        }
    }

    /// What was written (for tests).
    pub fn into_inner(self) -> W {
        self.out
    }

    // Progress is a courtesy: a closed or full standard error never fails the work.
    fn write(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

impl<W: Write> Progress for Lines<W> {
    fn start(&mut self, what: &str, total: u64) {
        self.finish();
        self.phase = Some(Phase {
            what: what.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            drawn: None,
            tenths: 0,
        });
    }

    fn advance(&mut self, n: u64) {
        let Some(p) = self.phase.as_mut() else {
            return;
        };
        p.done = p.done.saturating_add(n);
        let line = if self.terminal {
            if p.drawn.is_some_and(|at| at.elapsed() < REDRAW) {
                return;
            }
            p.drawn = Some(Instant::now());
            format!("\r\x1b[2K{}", p.status())
        } else {
            let tenths = (p.done.min(p.total) * 10).checked_div(p.total).unwrap_or(0);
            if tenths <= p.tenths {
                return;
            }
            p.tenths = tenths;
            format!("{}\n", p.status())
        };
        self.write(&line);
    }

    fn finish(&mut self) {
        let Some(p) = self.phase.take() else {
            return;
        };
        let line = format!(
            "{}{}: {} events in {}\n",
            if self.terminal { "\r\x1b[2K" } else { "" },
            p.what,
            p.done,
            duration(p.started.elapsed())
        );
        self.write(&line);
    }
}

impl Phase {
    fn status(&self) -> String {
        status(&self.what, self.done, self.total, self.started.elapsed())
    }
}

/// `what: done of total events (percent), rate/s, time left`.
fn status(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let percent = (done.min(total) * 100).checked_div(total).unwrap_or(100);
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    let left = match rate > 0.0 {
        true => duration(Duration::from_secs_f64(
            total.saturating_sub(done) as f64 / rate,
        )),
        false => "?".to_string(),
    };
    format!("{what}: {done} of {total} events ({percent}%), {rate:.0}/s, {left} left")
}

/// `1 h 02 min`, `3 min 05 s`, `12 s`.
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_says_done_of_total_the_rate_and_the_time_left() {
        assert_eq!(
            status("verify", 250, 1000, Duration::from_secs(5)),
            "verify: 250 of 1000 events (25%), 50/s, 15 s left"
        );
        assert_eq!(
            status("export", 0, 0, Duration::ZERO),
            "export: 0 of 0 events (100%), 0/s, ? left"
        );
        assert_eq!(duration(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(duration(Duration::from_secs(3720)), "1 h 02 min");
    }

    #[test]
    fn off_a_terminal_a_plain_line_is_written_at_each_tenth() {
        let mut p = Lines::new(Vec::new(), false);
        p.start("rebuild-view: indexing", 1000);
        for _ in 0..1000 {
            p.advance(1);
        }
        p.start("rebuild-view: projecting", 0);
        p.advance(5);
        p.finish();
        let text = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10 + 1 + 1, "{text}");
        assert!(lines[0].starts_with("rebuild-view: indexing: 100 of 1000 events (10%)"));
        assert!(lines[9].starts_with("rebuild-view: indexing: 1000 of 1000 events (100%)"));
        assert!(lines[10].starts_with("rebuild-view: indexing: 1000 events in "));
        assert!(lines[11].starts_with("rebuild-view: projecting: 5 events in "));
        assert!(!text.contains('\r'), "no redraws in a log");
    }

    #[test]
    fn on_a_terminal_one_line_is_redrawn_and_ended_when_done() {
        let mut p = Lines::new(Vec::new(), true);
        p.start("verify", 10);
        p.advance(3);
        p.finish();
        let text = String::from_utf8(p.into_inner()).unwrap();
        assert!(
            text.starts_with("\r\x1b[2Kverify: 3 of 10 events (30%)"),
            "{text:?}"
        );
        assert!(text.contains("\r\x1b[2Kverify: 3 events in "), "{text:?}");
        assert!(text.ends_with('\n'), "{text:?}");
        assert_eq!(text.matches('\n').count(), 1);
    }

    #[test]
    fn quiet_says_nothing_and_advancing_before_a_start_is_ignored() {
        let mut p = Lines::new(Vec::new(), false);
        p.advance(7);
        p.finish();
        assert!(p.into_inner().is_empty());
        let mut q = Quiet;
        q.start("x", 1);
        q.advance(1);
        q.finish();
    }
}
