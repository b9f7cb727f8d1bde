//! The cookie digest of the handshake (`lib/kernel/src/dist_util.erl` `gen_digest/2`):
//! `MD5(cookie ++ decimal(challenge))`, where the challenge is the unsigned 32-bit value
//! written in ASCII decimal.

use md5::{Digest as _, Md5};
use std::fmt;
use subtle::ConstantTimeEq;

/// A distribution cookie. Its `Debug` never shows the value and it has no `Display`, so it
/// cannot end up in a log line or an error message by accident.
#[derive(Clone)]
pub struct Cookie(Box<[u8]>);

impl Cookie {
    /// A cookie with these bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Cookie {
        Cookie(bytes.into().into_boxed_slice())
    }

    /// The bytes, for the digest only.
    fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (safe to report: it says nothing useful about the value).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty cookie.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True if `text` is this cookie (constant time). For tests proving the cookie is absent
    /// from output.
    pub fn appears_in(&self, text: &[u8]) -> bool {
        !self.0.is_empty() && text.windows(self.0.len()).any(|w| w == &*self.0)
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<redacted>)")
    }
}

/// An MD5 digest proving knowledge of the cookie.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 16]);

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Digests allow offline guessing of the cookie: never print them.
        f.write_str("Digest(<redacted>)")
    }
}

impl Digest {
    /// The digest for `challenge` under `cookie`.
    pub fn compute(cookie: &Cookie, challenge: u32) -> Digest {
        let mut md5 = Md5::new();
        md5.update(cookie.bytes());
        md5.update(challenge.to_string().as_bytes());
        Digest(md5.finalize().into())
    }

    /// True if `received` is the right digest for `challenge`, compared in constant time.
    pub fn verify(cookie: &Cookie, challenge: u32, received: &Digest) -> bool {
        Digest::compute(cookie, challenge)
            .0
            .ct_eq(&received.0)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_documented_vector() {
        // erlang:md5("secret" ++ integer_to_list(1234567)), as dist_util:gen_digest/2 computes it.
        let d = Digest::compute(&Cookie::new("secret"), 1_234_567);
        let hex: String = d.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "1074ec9d831e47aa83e47394ca29f2de");
    }

    #[test]
    fn challenge_is_unsigned_decimal() {
        let cookie = Cookie::new("c");
        let mut md5 = Md5::new();
        md5.update(b"c4294967295");
        let expected = Digest(md5.finalize().into());
        assert_eq!(Digest::compute(&cookie, u32::MAX), expected);
        assert!(Digest::verify(&cookie, u32::MAX, &expected));
        assert!(!Digest::verify(&Cookie::new("d"), u32::MAX, &expected));
    }

    #[test]
    fn cookie_is_never_printed() {
        let c = Cookie::new("hunter2");
        assert_eq!(format!("{c:?}"), "Cookie(<redacted>)");
        assert!(c.appears_in(b"xx hunter2 yy"));
        assert!(!c.appears_in(b"hunter"));
    }
}
