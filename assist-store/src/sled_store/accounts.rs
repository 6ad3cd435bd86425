//! Users, teams and tokens on sled. Passwords are argon2id hashes (PHC strings); tokens are 32
//! random bytes shown once as hex, stored as their SHA-256.

use super::calls::hex;
use super::{check_id, decode, encode, PasswordCost, SledStore};
use crate::admin::{NewUser, Team, User, UserUpdate};
use crate::call::UnixMs;
use crate::error::{Result, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A user with their password hash, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UserRecord {
    pub(super) user: User,
    password_hash: String,
}

/// A token, as stored under the SHA-256 of its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TokenRecord {
    pub(super) username: String,
    issued_at: UnixMs,
    pub(super) expires_at: UnixMs,
}

impl SledStore {
    pub(super) fn user_record(&self, username: &str) -> Result<Option<UserRecord>> {
        self.t
            .users
            .get(username.as_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    pub(super) fn create_user_impl(&self, new: &NewUser, at: UnixMs) -> Result<User> {
        check_id("username", &new.username)?;
        check_password(&new.password)?;
        let user = User {
            username: new.username.clone(),
            display_name: if new.display_name.trim().is_empty() {
                new.username.clone()
            } else {
                new.display_name.clone()
            },
            role: new.role,
            team: new.team.clone(),
            disabled: false,
            created_at: at,
        };
        let record = UserRecord {
            user: user.clone(),
            password_hash: self.hash_password(&new.password)?,
        };
        let inserted = self
            .t
            .users
            .compare_and_swap(
                new.username.as_bytes(),
                None as Option<&[u8]>,
                Some(encode(&record)?),
            )?
            .is_ok();
        if !inserted {
            return Err(StoreError::AlreadyExists {
                what: "user",
                id: new.username.clone(),
            });
        }
        self.durable()?;
        Ok(user)
    }

    pub(super) fn list_users_impl(&self) -> Result<Vec<User>> {
        self.t
            .users
            .iter()
            .map(|item| Ok(decode::<UserRecord>(&item?.1)?.user))
            .collect()
    }

    pub(super) fn update_user_impl(&self, username: &str, update: &UserUpdate) -> Result<User> {
        let mut record = self
            .user_record(username)?
            .ok_or_else(|| StoreError::not_found("user", username))?;
        if let Some(name) = &update.display_name {
            record.user.display_name = name.clone();
        }
        if let Some(role) = update.role {
            record.user.role = role;
        }
        if let Some(team) = &update.team {
            record.user.team = team.clone();
        }
        if let Some(disabled) = update.disabled {
            record.user.disabled = disabled;
        }
        self.t.users.insert(username.as_bytes(), encode(&record)?)?;
        self.durable()?;
        Ok(record.user)
    }

    pub(super) fn set_password_impl(&self, username: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let mut record = self
            .user_record(username)?
            .ok_or_else(|| StoreError::not_found("user", username))?;
        record.password_hash = self.hash_password(password)?;
        self.t.users.insert(username.as_bytes(), encode(&record)?)?;
        self.durable()
    }

    pub(super) fn delete_user_impl(&self, username: &str) -> Result<bool> {
        let removed = self.t.users.remove(username.as_bytes())?.is_some();
        self.revoke_tokens_where(|record| record.username == username)?;
        self.durable()?;
        Ok(removed)
    }

    pub(super) fn verify_password_impl(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>> {
        let Some(record) = self.user_record(username)? else {
            // An unknown username takes as long as a wrong password: the answer's timing must
            // not tell which usernames exist.
            let decoy = match self.decoy_hash.get() {
                Some(hash) => hash.clone(),
                None => {
                    let hash = self.hash_password("decoy: no user has this password")?;
                    self.decoy_hash.get_or_init(|| hash).clone()
                }
            };
            let hash =
                PasswordHash::new(&decoy).map_err(|e| StoreError::Password(e.to_string()))?;
            let _ = Argon2::default().verify_password(password.as_bytes(), &hash);
            return Ok(None);
        };
        let hash = PasswordHash::new(&record.password_hash)
            .map_err(|e| StoreError::Password(e.to_string()))?;
        // The parameters come from the stored hash, so hashes of either cost verify.
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        Ok((ok && !record.user.disabled).then_some(record.user))
    }

    fn hash_password(&self, password: &str) -> Result<String> {
        let argon2 = match self.options.password_cost {
            PasswordCost::Default => Argon2::default(),
            PasswordCost::Fast => {
                let params = Params::new(Params::MIN_M_COST, 1, 1, None)
                    .map_err(|e| StoreError::Password(e.to_string()))?;
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            }
        };
        let mut salt_bytes = [0u8; 16];
        getrandom::fill(&mut salt_bytes)
            .map_err(|e| StoreError::Password(format!("no randomness for a salt: {e}")))?;
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| StoreError::Password(e.to_string()))?;
        argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| StoreError::Password(e.to_string()))
    }

    // -- Tokens ---------------------------------------------------------------------------------

    pub(super) fn issue_token_impl(
        &self,
        username: &str,
        now: UnixMs,
        ttl_ms: i64,
    ) -> Result<String> {
        if self.user_record(username)?.is_none() {
            return Err(StoreError::not_found("user", username));
        }
        if ttl_ms <= 0 {
            return Err(StoreError::Invalid(format!(
                "a token's lifetime must be positive, got {ttl_ms} ms"
            )));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| StoreError::Password(format!("no randomness for a token: {e}")))?;
        let token = hex(&secret);
        let record = TokenRecord {
            username: username.to_string(),
            issued_at: now,
            expires_at: now.saturating_add(ttl_ms),
        };
        self.t.tokens.insert(token_key(&token), encode(&record)?)?;
        self.durable()?;
        Ok(token)
    }

    pub(super) fn user_for_token_impl(&self, token: &str, now: UnixMs) -> Result<Option<User>> {
        let key = token_key(token);
        let Some(raw) = self.t.tokens.get(key)? else {
            return Ok(None);
        };
        let record: TokenRecord = decode(&raw)?;
        if record.expires_at <= now {
            self.t.tokens.remove(key)?;
            return Ok(None);
        }
        Ok(self
            .user_record(&record.username)?
            .map(|r| r.user)
            .filter(|user| !user.disabled))
    }

    pub(super) fn revoke_token_impl(&self, token: &str) -> Result<bool> {
        let removed = self.t.tokens.remove(token_key(token))?.is_some();
        self.durable()?;
        Ok(removed)
    }

    /// Removes every token whose record passes `doomed`; returns how many.
    pub(super) fn revoke_tokens_where(
        &self,
        doomed: impl Fn(&TokenRecord) -> bool,
    ) -> Result<usize> {
        let mut removed = 0;
        for item in self.t.tokens.iter() {
            let (key, raw) = item?;
            if doomed(&decode(&raw)?) {
                self.t.tokens.remove(key)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.durable()?;
        }
        Ok(removed)
    }

    // -- Teams ----------------------------------------------------------------------------------

    pub(super) fn create_team_impl(&self, id: &str, name: &str, at: UnixMs) -> Result<Team> {
        check_id("team id", id)?;
        let team = Team {
            id: id.to_string(),
            name: if name.trim().is_empty() { id } else { name }.to_string(),
            created_at: at,
        };
        let inserted = self
            .t
            .teams
            .compare_and_swap(id.as_bytes(), None as Option<&[u8]>, Some(encode(&team)?))?
            .is_ok();
        if !inserted {
            return Err(StoreError::AlreadyExists {
                what: "team",
                id: id.to_string(),
            });
        }
        self.durable()?;
        Ok(team)
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(StoreError::Invalid(
            "a password needs at least 8 characters".to_string(),
        ));
    }
    Ok(())
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
