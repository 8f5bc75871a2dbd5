//! The user database: login names by uid, for the `username` field of
//! every Unix backend.

use std::{
    collections::HashMap,
    ffi::{CStr, c_char},
    io,
    sync::Mutex,
};

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
            .or_insert_with(|| match user_name(uid) {
                Ok(Some(name)) => name,
                Ok(None) | Err(_) => uid.to_string(),
            })
            .clone()
    }
}

/// The login name of `uid` from the user database (`getpwuid_r`), `None`
/// when the database has no such user.
fn user_name(uid: u32) -> io::Result<Option<String>> {
    let mut buf: Vec<c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid
        // value for getpwuid_r to overwrite.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local, and `buf.len()` is
        // the size of the scratch buffer the strings are written to.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: on success pw_name points to a NUL-terminated
                // string inside `buf`, which is still alive.
                let name = unsafe { CStr::from_ptr(pwd.pw_name) };
                return Ok(Some(name.to_string_lossy().into_owned()));
            }
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            err => return Err(io::Error::from_raw_os_error(err)),
        }
    }
}
