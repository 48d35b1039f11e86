//! The invite string: a self-contained capability to join a topic.
//!
//! ```text
//! "catchment1" + base32 (RFC 4648, no padding, any case) of:
//!   version: u8 = 1
//!   topic key: 32 bytes (encrypts the topic's gossip; only members hold it)
//!   invite secret: 32 bytes (signs the joiner's admission)
//!   grant: u16 length + the admin-signed grant (topic, role, expiry, uses, charter heads)
//!   addresses: u8 count, each u8 length + a multiaddr as text
//!   charter: u16 count, each u32 length + a signed change envelope
//!   checksum: the first 4 bytes of SHA-256 over everything above
//! ```
//!
//! The charter's signed changes up to the grant's heads travel inside the invite, so that the
//! joiner can check its own admission, and so contribute, with nobody online. A charter too
//! large for an invite ([`MAX_CHARTER_BYTES`]) is left out; the joiner then waits for a peer
//! before its admission is accepted. The checksum catches typing and copying mistakes; the
//! grant's signature catches tampering.

use catchment_crdt::invite::{Grant, GrantError};
use catchment_crdt::{Keypair, SignedChange};
use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

use crate::envelope;

/// What every invite string starts with.
pub const PREFIX: &str = "catchment1";
/// The invite format this code writes.
pub const VERSION: u8 = 1;
/// The most charter bytes an invite carries.
pub const MAX_CHARTER_BYTES: usize = 16 * 1024;
/// The most addresses an invite carries.
pub const MAX_ADDRESSES: usize = 16;

/// Everything an invite carries.
#[derive(Debug)]
pub struct Invite {
    /// The topic's gossip key.
    pub topic_key: [u8; 32],
    /// The invite's secret key.
    pub secret: Keypair,
    /// The admin's grant.
    pub grant: Grant,
    /// Where the inviter can be reached (multiaddrs).
    pub addresses: Vec<String>,
    /// The charter's signed changes, in order, if they fit.
    pub charter: Vec<SignedChange>,
}

/// Why a string is not a usable invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Not an invite at all.
    #[error("not a Catchment invite: it should start with {PREFIX:?}")]
    Prefix,
    /// Characters outside the alphabet.
    #[error("the invite has characters that do not belong in one (was it cut or wrapped?)")]
    Encoding,
    /// The checksum does not match.
    #[error("the invite's checksum does not match: it was mistyped, cut short or altered")]
    Checksum,
    /// A newer format.
    #[error("invite format {0} is newer than this version of Catchment reads")]
    Version(u8),
    /// Fields do not parse.
    #[error("the invite is malformed: {0}")]
    Malformed(&'static str),
    /// The grant's signature or fields are wrong.
    #[error("the invite has been tampered with: {0}")]
    Tampered(String),
}

impl From<GrantError> for InviteError {
    fn from(e: GrantError) -> Self {
        InviteError::Tampered(e.to_string())
    }
}

impl Invite {
    /// Encodes the invite as a string, leaving the charter out if it is too large.
    pub fn encode(&self) -> String {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.topic_key);
        out.extend_from_slice(&self.secret.to_bytes());
        let grant = self.grant.to_bytes();
        out.extend_from_slice(&(grant.len() as u16).to_be_bytes());
        out.extend_from_slice(&grant);
        let addresses: Vec<&String> = self
            .addresses
            .iter()
            .filter(|a| a.len() <= 255)
            .take(MAX_ADDRESSES)
            .collect();
        out.push(addresses.len() as u8);
        for address in addresses {
            out.push(address.len() as u8);
            out.extend_from_slice(address.as_bytes());
        }
        let charter: Vec<Vec<u8>> = self.charter.iter().map(envelope::encode).collect();
        let size: usize = charter.iter().map(Vec::len).sum();
        let charter = if size <= MAX_CHARTER_BYTES {
            charter
        } else {
            Vec::new()
        };
        out.extend_from_slice(&(charter.len() as u16).to_be_bytes());
        for change in charter {
            out.extend_from_slice(&(change.len() as u32).to_be_bytes());
            out.extend_from_slice(&change);
        }
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum[..4]);
        format!("{PREFIX}{}", BASE32_NOPAD.encode(&out).to_lowercase())
    }

    /// Decodes and checks an invite string: checksum, format, and the grant's signature.
    /// Expiry and revocation are the node's to check, against the topic as it knows it.
    pub fn decode(text: &str) -> Result<Invite, InviteError> {
        let text: String = text.split_whitespace().collect();
        let body = match text.get(..PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(PREFIX) => &text[PREFIX.len()..],
            _ => return Err(InviteError::Prefix),
        };
        let bytes = BASE32_NOPAD
            .decode(body.to_uppercase().as_bytes())
            .map_err(|_| InviteError::Encoding)?;
        if bytes.len() < 5 {
            return Err(InviteError::Checksum);
        }
        let (payload, checksum) = bytes.split_at(bytes.len() - 4);
        if Sha256::digest(payload)[..4] != *checksum {
            return Err(InviteError::Checksum);
        }

        let mut r = Reader(payload);
        let version = r.u8()?;
        if version != VERSION {
            return Err(InviteError::Version(version));
        }
        let topic_key = r.array::<32>()?;
        let secret = Keypair::from_bytes(&r.array::<32>()?);
        let grant_len = u16::from_be_bytes(r.array()?) as usize;
        let grant = Grant::from_bytes(r.take(grant_len)?)?;
        grant.verify()?;
        if grant.invite != secret.member_id() {
            return Err(InviteError::Tampered(
                "the secret does not match the grant".into(),
            ));
        }
        let mut addresses = Vec::new();
        for _ in 0..r.u8()? {
            let len = r.u8()? as usize;
            let text = std::str::from_utf8(r.take(len)?)
                .map_err(|_| InviteError::Malformed("an address is not text"))?;
            addresses.push(text.to_string());
        }
        let mut charter = Vec::new();
        let count = u16::from_be_bytes(r.array()?);
        for _ in 0..count {
            let len = u32::from_be_bytes(r.array()?) as usize;
            let change = envelope::decode(r.take(len)?)
                .map_err(|_| InviteError::Malformed("a charter change does not decode"))?;
            charter.push(change);
        }
        if !r.0.is_empty() {
            return Err(InviteError::Malformed("trailing bytes"));
        }
        Ok(Invite {
            topic_key,
            secret,
            grant,
            addresses,
            charter,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InviteError> {
        if self.0.len() < n {
            return Err(InviteError::Malformed("it ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], InviteError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self) -> Result<u8, InviteError> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
mod tests {
    use catchment_crdt::genesis;
    use catchment_crdt::schema::Role;
    use proptest::prelude::*;

    use super::*;

    fn invite() -> Invite {
        let admin = Keypair::generate();
        let (topic, _, genesis) = genesis::create_topic(&admin, "T", 1_000).unwrap();
        let (grant, secret) = Grant::issue(
            &admin,
            topic,
            Role::Member,
            Some(9_000),
            Some(3),
            2_000,
            vec![topic.genesis_hash()],
        );
        Invite {
            topic_key: [7; 32],
            secret,
            grant,
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            charter: vec![genesis],
        }
    }

    #[test]
    fn round_trips_in_any_case_and_with_line_breaks() {
        let invite = invite();
        let text = invite.encode();
        assert!(text.starts_with(PREFIX));
        let wrapped: String = text
            .to_uppercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i % 60 == 59 { vec![c, '\n'] } else { vec![c] })
            .collect();
        for form in [text.clone(), wrapped] {
            let back = Invite::decode(&form).unwrap();
            assert_eq!(back.grant, invite.grant);
            assert_eq!(back.topic_key, invite.topic_key);
            assert_eq!(back.secret.member_id(), invite.secret.member_id());
            assert_eq!(back.addresses, invite.addresses);
            assert_eq!(back.charter, invite.charter);
        }
    }

    #[test]
    fn says_which_way_an_invite_is_wrong() {
        let text = invite().encode();
        assert_eq!(Invite::decode("hello").unwrap_err(), InviteError::Prefix);
        assert_eq!(
            Invite::decode(&format!("{text}!")).unwrap_err(),
            InviteError::Encoding
        );
        assert_eq!(
            Invite::decode(&text[..text.len() - 9]).unwrap_err(),
            InviteError::Checksum
        );
        let mut typo: Vec<char> = text.chars().collect();
        let i = PREFIX.len() + 20;
        typo[i] = if typo[i] == 'a' { 'b' } else { 'a' };
        let typo: String = typo.into_iter().collect();
        assert_eq!(Invite::decode(&typo).unwrap_err(), InviteError::Checksum);
    }

    #[test]
    fn a_tampered_grant_with_a_fixed_checksum_is_caught() {
        let invite = invite();
        let text = invite.encode();
        let mut bytes = BASE32_NOPAD
            .decode(text[PREFIX.len()..].to_uppercase().as_bytes())
            .unwrap();
        // Raise the role byte inside the grant (after version, key, secret, length, grant
        // version, topic id and invite key), then recompute the checksum as a forger would.
        let role_at = 1 + 32 + 32 + 2 + 1 + 32 + 32;
        assert_eq!(bytes[role_at], Role::Member as u8);
        bytes[role_at] = Role::Admin as u8;
        let n = bytes.len() - 4;
        let checksum = Sha256::digest(&bytes[..n]);
        bytes[n..].copy_from_slice(&checksum[..4]);
        let forged = format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes));
        assert!(matches!(
            Invite::decode(&forged),
            Err(InviteError::Tampered(_))
        ));
    }

    #[test]
    fn a_large_charter_is_left_out() {
        let mut invite = invite();
        let big = invite.charter[0].clone();
        invite.charter = vec![big; 200];
        let back = Invite::decode(&invite.encode()).unwrap();
        assert!(back.charter.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(text in "catchment1[a-z2-7]{0,300}") {
            let _ = Invite::decode(&text);
        }
    }
}
