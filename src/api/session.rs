//! Dashboard sessions: signing in with a token gives the browser an HttpOnly, SameSite=Strict
//! cookie naming a random session id; the node keeps, in memory, which token each id stands for
//! and until when. The token itself never reaches the page's scripts, a restart signs everyone
//! out, and revoking the token ends its sessions (the token is looked up again on every request).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderValue, COOKIE};
use hyper::Request;

/// The cookie that carries the session id.
pub const COOKIE_NAME: &str = "jol_session";

/// A session ends this long after its last use…
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// …and at the latest this long after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

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

/// The node's open sessions.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// Open a session for the token with this digest; returns the new session id.
    pub fn open(&self, token_digest: &str) -> String {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, s| s.is_live(now));
            map.insert(
                id.clone(),
                Session {
                    token_digest: token_digest.to_string(),
                    signed_in: now,
                    last_used: now,
                },
            );
        }
        id
    }

    /// The token digest of a live session (and mark it used); an expired one is forgotten.
    pub fn token_digest(&self, id: &str) -> Option<String> {
        let mut map = self.0.lock().ok()?;
        let now = Instant::now();
        let live = map.get(id).is_some_and(|s| s.is_live(now));
        if !live {
            map.remove(id);
            return None;
        }
        let session = map.get_mut(id)?;
        session.last_used = now;
        Some(session.token_digest.clone())
    }

    /// Sign a session out.
    pub fn close(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }
}

/// The session id a request's `Cookie` header carries, if any.
pub fn id_of<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session: not readable by scripts, never sent cross-site.
pub fn set_cookie(id: &str) -> HeaderValue {
    let value = format!(
        "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("jol_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_token_until_it_is_closed() {
        let sessions = Sessions::default();
        let id = sessions.open("abc");
        assert_eq!(id.len(), 43, "256 random bits, base64url");
        assert_eq!(sessions.token_digest(&id).as_deref(), Some("abc"));
        assert_eq!(sessions.token_digest("guessed"), None);
        sessions.close(&id);
        assert_eq!(sessions.token_digest(&id), None);
    }

    #[test]
    fn the_cookie_is_found_among_others_and_is_http_only_and_strict() {
        let req = Request::builder()
            .header(COOKIE, "theme=dark; jol_session=s1d; x=y")
            .body(())
            .unwrap();
        assert_eq!(id_of(&req), Some("s1d"));
        let set = set_cookie("s1d");
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    }
}
