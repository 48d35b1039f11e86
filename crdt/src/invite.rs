//! Invite grants and self-admission proofs.
//!
//! An invite is a capability: a fresh ed25519 keypair (the invite key) whose public half an
//! admin signs into a [`Grant`] (topic, role, expiry, use limit, and the charter heads at which
//! the admin held that role). Whoever holds the invite secret can admit a member key by signing
//! it; the joiner writes grant and proof as the first entry of its own journal, so that joining
//! needs nobody online. Every node checks the admission from the documents alone: the grant's
//! signature, that its issuer was an admin at the charter heads the grant names, and the proof.

use automerge::ChangeHash;

use crate::ids::TopicId;
use crate::keys::{KeyError, Keypair, MemberId};
use crate::schema::Role;

const GRANT_DOMAIN: &[u8] = b"catchment/grant/v1";
const PROOF_DOMAIN: &[u8] = b"catchment/admission/v1";
const GRANT_VERSION: u8 = 1;
/// A grant may name at most this many charter heads.
const MAX_GRANT_HEADS: usize = 64;

/// An admin's signed permission for the holder of an invite key to admit one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The topic it admits to.
    pub topic: TopicId,
    /// The invite's public key; its secret is in the invite string.
    pub invite: MemberId,
    /// The role the admitted member gets.
    pub role: Role,
    /// Milliseconds since the epoch after which an admission claiming a later time is refused.
    pub expires: Option<i64>,
    /// How many members may be admitted with it; beyond that, admissions are quarantined.
    pub uses: Option<u32>,
    /// When the admin signed it (milliseconds since the epoch, as claimed).
    pub created: i64,
    /// The admin who signed it.
    pub issuer: MemberId,
    /// The charter heads at which `issuer` was an admin.
    pub charter_heads: Vec<ChangeHash>,
    /// The issuer's signature over everything above.
    pub signature: [u8; 64],
}

/// Why grant bytes or a grant are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The bytes end early or carry something unknown.
    #[error("invite grant is malformed: {0}")]
    Malformed(&'static str),
    /// Written by a newer version.
    #[error("invite grant version {0} is not supported")]
    Version(u8),
    /// The signature or a key is wrong.
    #[error("invite grant: {0}")]
    Key(#[from] KeyError),
}

impl Grant {
    /// Creates and signs a grant; returns it with the invite secret.
    pub fn issue(
        admin: &Keypair,
        topic: TopicId,
        role: Role,
        expires: Option<i64>,
        uses: Option<u32>,
        created: i64,
        charter_heads: Vec<ChangeHash>,
    ) -> (Grant, Keypair) {
        let invite_key = Keypair::generate();
        let mut grant = Grant {
            topic,
            invite: invite_key.member_id(),
            role,
            expires,
            uses,
            created,
            issuer: admin.member_id(),
            charter_heads,
            signature: [0; 64],
        };
        grant.signature = admin.sign(&grant.signed_bytes());
        (grant, invite_key)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        out.extend_from_slice(GRANT_DOMAIN);
        self.body(&mut out);
        out
    }

    fn body(&self, out: &mut Vec<u8>) {
        out.push(GRANT_VERSION);
        out.extend_from_slice(&self.topic.0);
        out.extend_from_slice(&self.invite.0);
        out.push(self.role as u8);
        out.extend_from_slice(&self.expires.unwrap_or(i64::MAX).to_be_bytes());
        out.extend_from_slice(&self.uses.unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.issuer.0);
        out.push(self.charter_heads.len() as u8);
        for head in &self.charter_heads {
            out.extend_from_slice(&head.0);
        }
    }

    /// The grant's canonical encoding (signature last).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        self.body(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads [`Grant::to_bytes`] back; does not check the signature (see [`Grant::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Grant, GrantError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != GRANT_VERSION {
            return Err(GrantError::Version(version));
        }
        let topic = TopicId(r.array()?);
        let invite = MemberId(r.array()?);
        let role = Role::from_u8(r.u8()?).ok_or(GrantError::Malformed("unknown role"))?;
        let expires = Some(i64::from_be_bytes(r.array()?)).filter(|e| *e != i64::MAX);
        let uses = Some(u32::from_be_bytes(r.array()?)).filter(|u| *u != u32::MAX);
        let created = i64::from_be_bytes(r.array()?);
        let issuer = MemberId(r.array()?);
        let count = r.u8()? as usize;
        if count > MAX_GRANT_HEADS {
            return Err(GrantError::Malformed("too many charter heads"));
        }
        let mut charter_heads = Vec::with_capacity(count);
        for _ in 0..count {
            charter_heads.push(ChangeHash(r.array()?));
        }
        let signature = r.array()?;
        if !r.0.is_empty() {
            return Err(GrantError::Malformed("trailing bytes"));
        }
        Ok(Grant {
            topic,
            invite,
            role,
            expires,
            uses,
            created,
            issuer,
            charter_heads,
            signature,
        })
    }

    /// Checks the issuer's signature (strictly) and that the invite key is not weak.
    pub fn verify(&self) -> Result<(), GrantError> {
        self.invite.verifying_key()?;
        self.issuer.verify(&self.signed_bytes(), &self.signature)?;
        Ok(())
    }
}

/// The message an invite key signs to admit `member` to `topic`.
pub fn admission_message(topic: &TopicId, member: &MemberId) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROOF_DOMAIN.len() + 64);
    out.extend_from_slice(PROOF_DOMAIN);
    out.extend_from_slice(&topic.0);
    out.extend_from_slice(&member.0);
    out
}

/// Proves possession of the invite secret for `member`.
pub fn prove_admission(invite_key: &Keypair, topic: &TopicId, member: &MemberId) -> [u8; 64] {
    invite_key.sign(&admission_message(topic, member))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], GrantError> {
        if self.0.len() < N {
            return Err(GrantError::Malformed("ends early"));
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("split_at gave N bytes"))
    }

    fn u8(&mut self) -> Result<u8, GrantError> {
        Ok(self.array::<1>()?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_round_trips_and_verifies() {
        let admin = Keypair::generate();
        let topic = TopicId([7; 32]);
        let (grant, invite) = Grant::issue(
            &admin,
            topic,
            Role::Member,
            Some(10),
            Some(1),
            5,
            vec![ChangeHash([1; 32])],
        );
        let back = Grant::from_bytes(&grant.to_bytes()).unwrap();
        assert_eq!(back, grant);
        back.verify().unwrap();
        assert_eq!(back.invite, invite.member_id());

        let mut tampered = grant.to_bytes();
        tampered[70] ^= 1;
        let tampered = Grant::from_bytes(&tampered).unwrap();
        assert!(tampered.verify().is_err());
        assert!(Grant::from_bytes(&grant.to_bytes()[..50]).is_err());
    }
}
