//! The user database: login names by uid, for the `username` field of
//! every Unix backend.

use std::{collections::HashMap, sync::Mutex};

use nix::unistd::{Uid, User};

/// Login names by uid, asked of the user database once each: it is slow
/// to ask (NSS may go over the network) and a host runs few distinct
/// users.
#[derive(Debug, Default)]
pub(crate) struct UserNames(Mutex<HashMap<u32, String>>);

impl UserNames {
    /// The login name of `uid`, or the uid in decimal when the user
    /// database has no such user or cannot be asked (as psutil does).
    pub(crate) fn name(&self, uid: u32) -> String {
        let mut names = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        names
            .entry(uid)
            .or_insert_with(|| match User::from_uid(Uid::from_raw(uid)) {
                Ok(Some(user)) => user.name,
                Ok(None) | Err(_) => uid.to_string(),
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name_and_an_unknown_uid_is_its_number() {
        let names = UserNames::default();
        assert_eq!(names.name(0), "root");
        // The highest uid short of (uid_t)-1, which no system assigns.
        assert_eq!(names.name(u32::MAX - 1), (u32::MAX - 1).to_string());
    }
}
