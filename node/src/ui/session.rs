//! Logging in to the web UI without typing the API token.
//!
//! `catchment open` asks the API (with the token) for a one-time code and opens
//! `/login?code=...` in the browser. The code is 32 random bytes, lives [`CODE_LIFETIME`], and
//! works once: redeeming it removes it, and yields a session id for an `HttpOnly`,
//! `SameSite=Strict` cookie. The token itself never travels in a URL. Codes and sessions live
//! in memory only, so a restarted node forgets them (run `catchment open` again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// How long a one-time code may wait before it is redeemed.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a session lasts after it was made.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most codes waiting at once; minting more drops the oldest.
const MAX_CODES: usize = 32;
/// The most sessions at once; a new one drops the oldest.
const MAX_SESSIONS: usize = 128;

/// A fresh random secret: 32 bytes as 64 hex digits.
fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two secrets in constant time (for equal lengths).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// One-time login codes and the sessions they became.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Code -> when it was minted.
    codes: Mutex<HashMap<String, Instant>>,
    /// Session id -> when it was made.
    sessions: Mutex<HashMap<String, Instant>>,
}

fn drop_oldest(map: &mut HashMap<String, Instant>, keep: usize) {
    while map.len() > keep {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

impl Sessions {
    /// Mints a one-time code at `now`.
    pub fn issue_code(&self, now: Instant) -> String {
        let code = secret();
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, at| now.saturating_duration_since(*at) < CODE_LIFETIME);
        codes.insert(code.clone(), now);
        drop_oldest(&mut codes, MAX_CODES);
        code
    }

    /// Redeems a code at `now`: a new session id if the code exists and is young enough. A
    /// code works once, whether or not it was still valid.
    pub fn redeem(&self, code: &str, now: Instant) -> Option<String> {
        let minted = {
            let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
            let key = codes.keys().find(|k| same(k, code)).cloned()?;
            codes.remove(&key)?
        };
        if now.saturating_duration_since(minted) >= CODE_LIFETIME {
            tracing::debug!("login code expired");
            return None;
        }
        let session = secret();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.insert(session.clone(), now);
        drop_oldest(&mut sessions, MAX_SESSIONS);
        Some(session)
    }

    /// Whether a session id is current at `now`.
    pub fn check(&self, session: &str, now: Instant) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, at| now.saturating_duration_since(*at) < SESSION_LIFETIME);
        sessions.keys().any(|k| same(k, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_logs_in_once() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let code = sessions.issue_code(now);
        assert_eq!(code.len(), 64);
        let session = sessions.redeem(&code, now).expect("a fresh code works");
        assert!(sessions.check(&session, now));
        assert_ne!(session, code);
        assert_eq!(sessions.redeem(&code, now), None, "a code works only once");
    }

    #[test]
    fn a_code_expires_within_a_minute() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let code = sessions.issue_code(now);
        assert_eq!(sessions.redeem(&code, now + CODE_LIFETIME), None);
        let code = sessions.issue_code(now);
        let session = sessions.redeem(&code, now + CODE_LIFETIME - Duration::from_secs(1));
        assert!(
            session.is_some(),
            "a code just under a minute old still works"
        );
    }

    #[test]
    fn guesses_and_unknown_sessions_are_refused() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let code = sessions.issue_code(now);
        assert_eq!(sessions.redeem("", now), None);
        assert_eq!(sessions.redeem(&code[..63], now), None);
        assert_eq!(sessions.redeem(&"0".repeat(64), now), None);
        assert!(!sessions.check("", now));
        assert!(!sessions.check(&code, now), "a code is not a session");
        // The code was not spent by the wrong guesses.
        assert!(sessions.redeem(&code, now).is_some());
    }

    #[test]
    fn codes_are_random_and_bounded() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let first = sessions.issue_code(now);
        let mut later = now;
        for _ in 0..MAX_CODES {
            later += Duration::from_millis(1);
            assert_ne!(sessions.issue_code(later), first);
        }
        assert_eq!(
            sessions.redeem(&first, later),
            None,
            "the oldest code made way"
        );
    }

    #[test]
    fn sessions_end() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let session = sessions
            .redeem(&sessions.issue_code(now), now)
            .expect("works");
        assert!(!sessions.check(&session, now + SESSION_LIFETIME));
    }
}
