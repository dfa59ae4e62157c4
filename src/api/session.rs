//! Dashboard sessions: signing in with a token gives the browser an HttpOnly, SameSite=Strict
//! cookie naming a random session id; the node keeps, in memory, which token each id stands for
//! and until when. The token itself never reaches the page's scripts, a restart signs everyone
//! out, and revoking the token ends its sessions (the token is looked up again on every request).
//!
//! **The cookie is the listener's own.** Browsers do not scope cookies by port: every listener
//! on a host gets every cookie of that host. So the cookie's name carries the listener's port
//! (`jol_session_8080`), a listener reads only its own name, and two nodes on one host neither
//! take nor overwrite each other's sessions. (A process on another port of the same host still
//! receives the cookie; a node that must be kept apart from such processes gets a host name of
//! its own, `[local] names`.) `Secure` when the browser reaches the listener over TLS: the
//! local listener speaks plain HTTP, so that is when a reverse proxy ends TLS in front of it
//! (`[local] session_cookie_secure`).
//!
//! **At most `[local] max_sessions` are live.** Signing in when that many are ends the session
//! used least recently, rather than refusing the sign-in: sessions abandoned without signing out
//! (a closed browser) would otherwise keep the desk that signs in now out for up to 30 idle
//! minutes. One token holds at most `[local] sessions_per_token` of them: signing in with it
//! beyond that ends its own session used least recently, so whoever holds a valid token and
//! opens sessions in a loop pushes out nobody else's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::header::{HeaderValue, COOKIE};
use hyper::Request;

/// A session ends this long after its last use…
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// …and at the latest this long after sign-in.
pub(crate) const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// The session cookie of one listener.
#[derive(Debug, Clone)]
pub(crate) struct SessionCookie {
    name: String,
    /// The browser reaches the listener over TLS: the cookie is sent over TLS only.
    secure: bool,
}

impl SessionCookie {
    /// The cookie of the listener bound to `listen`, reached by browsers over TLS or not.
    pub(crate) fn for_listener(listen: SocketAddr, tls: bool) -> SessionCookie {
        SessionCookie {
            name: format!("jol_session_{}", listen.port()),
            secure: tls,
        }
    }

    /// The cookie's name (the tests compare two listeners').
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The session id a request's `Cookie` header carries under this listener's name, if any.
    pub(crate) fn id_of<'r, B>(&self, req: &'r Request<B>) -> Option<&'r str> {
        req.headers()
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name)
            .map(|(_, value)| value)
    }

    /// `Set-Cookie` for a new session: not readable by scripts, never sent cross-site.
    pub(crate) fn set(&self, id: &str) -> HeaderValue {
        self.header(id, LIFETIME.as_secs())
    }

    /// `Set-Cookie` that removes the session cookie.
    pub(crate) fn clear(&self) -> HeaderValue {
        self.header("", 0)
    }

    fn header(&self, id: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let value = format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict{secure}; Max-Age={max_age}",
            self.name
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

struct Session {
    /// SHA-256 (hex) of the token signed in with.
    token_digest: String,
    signed_in: Instant,
    last_used: Instant,
}

impl Session {
    fn is_live(&self, now: Instant) -> bool {
        now.duration_since(self.last_used) < IDLE && now.duration_since(self.signed_in) < LIFETIME
    }
}

/// A listener's open sessions, with its cookie and its cap.
pub(crate) struct Sessions {
    cookie: SessionCookie,
    max: usize,
    per_token: usize,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// At most `max_sessions` (at least one) live at once, `per_token` (at least one) of them
    /// one token's.
    pub(crate) fn new(cookie: SessionCookie, max_sessions: usize, per_token: usize) -> Sessions {
        Sessions {
            cookie,
            max: max_sessions.max(1),
            per_token: per_token.max(1),
            open: Mutex::default(),
        }
    }

    pub(crate) fn cookie(&self) -> &SessionCookie {
        &self.cookie
    }

    /// Open a session for the token with this digest; returns the new session id. When the
    /// token holds its share of sessions its own used least recently ends; when the listener's
    /// cap is reached, the session used least recently ends.
    pub(crate) fn open(&self, token_digest: &str) -> String {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, s| s.is_live(now));
        let own = |s: &Session| s.token_digest == token_digest;
        while open.values().filter(|s| own(s)).count() >= self.per_token {
            end_least_recently_used(&mut open, own);
        }
        while open.len() >= self.max {
            end_least_recently_used(&mut open, |_| true);
            tracing::info!(
                max_sessions = self.max,
                "dashboard sessions at their cap ([local] max_sessions): the one used least recently ended"
            );
        }
        open.insert(
            id.clone(),
            Session {
                token_digest: token_digest.to_string(),
                signed_in: now,
                last_used: now,
            },
        );
        id
    }

    /// The token digest of a live session (and mark it used); an expired one is forgotten.
    pub(crate) fn token_digest(&self, id: &str) -> Option<String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let live = open.get(id).is_some_and(|s| s.is_live(now));
        if !live {
            open.remove(id);
            return None;
        }
        let session = open.get_mut(id)?;
        session.last_used = now;
        Some(session.token_digest.clone())
    }

    /// Sign a session out.
    pub(crate) fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// End the session used least recently among those `among` picks.
fn end_least_recently_used(open: &mut HashMap<String, Session>, among: impl Fn(&Session) -> bool) {
    let oldest = open
        .iter()
        .filter(|(_, s)| among(s))
        .min_by_key(|(_, s)| s.last_used)
        .map(|(id, _)| id.clone());
    if let Some(oldest) = oldest {
        open.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(port: u16) -> SessionCookie {
        SessionCookie::for_listener(SocketAddr::from(([127, 0, 0, 1], port)), false)
    }

    #[test]
    fn a_session_names_its_token_until_it_is_closed() {
        let sessions = Sessions::new(cookie(8080), 64, 8);
        let id = sessions.open("abc");
        assert_eq!(id.len(), 43, "256 random bits, base64url");
        assert_eq!(sessions.token_digest(&id).as_deref(), Some("abc"));
        assert_eq!(sessions.token_digest("guessed"), None);
        sessions.close(&id);
        assert_eq!(sessions.token_digest(&id), None);
    }

    #[test]
    fn at_the_cap_the_session_used_least_recently_ends() {
        let sessions = Sessions::new(cookie(8080), 2, 8);
        let first = sessions.open("a");
        let second = sessions.open("b");
        // The first is used after the second: the second is now the least recently used.
        assert!(sessions.token_digest(&first).is_some());
        let third = sessions.open("c");
        assert_eq!(sessions.token_digest(&second), None);
        assert!(sessions.token_digest(&first).is_some());
        assert!(sessions.token_digest(&third).is_some());
    }

    #[test]
    fn a_token_signing_in_in_a_loop_ends_only_its_own_sessions() {
        let sessions = Sessions::new(cookie(8080), 64, 8);
        let desk = sessions.open("desk");
        let looped: Vec<String> = (0..100).map(|_| sessions.open("loop")).collect();
        assert!(sessions.token_digest(&desk).is_some(), "nobody else's ends");
        let live = looped
            .iter()
            .filter(|id| sessions.token_digest(id).is_some())
            .count();
        assert_eq!(live, 8);
        assert!(sessions.token_digest(looped.last().unwrap()).is_some());
    }

    #[test]
    fn each_listener_reads_only_its_own_cookie() {
        let (a, b) = (cookie(8080), cookie(8081));
        assert_ne!(a.name(), b.name());
        let req = Request::builder()
            .header(
                COOKIE,
                "theme=dark; jol_session_8081=bbb; jol_session_8080=aaa; x=y",
            )
            .body(())
            .unwrap();
        assert_eq!(a.id_of(&req), Some("aaa"));
        assert_eq!(b.id_of(&req), Some("bbb"));
        let other = Request::builder()
            .header(COOKIE, "jol_session=old; jol_session_9999=zzz")
            .body(())
            .unwrap();
        assert_eq!(a.id_of(&other), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_for_the_whole_site_and_secure_over_tls() {
        let set = cookie(8080).set("s1d");
        let set = set.to_str().unwrap();
        assert!(set.starts_with("jol_session_8080=s1d;"), "{set}");
        for attribute in ["Path=/", "HttpOnly", "SameSite=Strict"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(!set.contains("Secure"), "{set}");
        let tls = SessionCookie::for_listener(SocketAddr::from(([10, 0, 0, 5], 443)), true);
        assert!(tls.set("x").to_str().unwrap().contains("; Secure"));
        assert!(tls.clear().to_str().unwrap().contains("Max-Age=0"));
    }
}
