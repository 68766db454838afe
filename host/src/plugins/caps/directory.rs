//! `directory`: the staff who work at the current site. Capability `directory`. Never
//! includes password hashes, disabled accounts, kiosks or patients.

use super::{Cx, Sandbox};
use crate::access::{Capability, Check, Need, Role};
use crate::auth::{Accounts, User};
use crate::plugins::latest::Error;
use crate::plugins::v0_1::osler::plugin::directory;

fn is_staff(u: &User, site: &str) -> bool {
    !u.disabled
        && u.sites.iter().any(|s| s == site)
        && u.roles
            .iter()
            .any(|r| !matches!(r, Role::Kiosk | Role::Patient))
}

fn person(u: &User) -> directory::Person {
    directory::Person {
        user: u.username.clone(),
        display_name: u.display_name.clone().unwrap_or_else(|| u.username.clone()),
        roles: u.roles.iter().map(|r| r.as_str().to_string()).collect(),
    }
}

/// What `directory` sees: the call and the accounts.
pub struct DirectoryView<'a> {
    cx: Cx<'a>,
    accounts: &'a Accounts,
}

impl Sandbox {
    pub(super) fn directory_view(&mut self) -> DirectoryView<'_> {
        DirectoryView {
            cx: self.cx(),
            accounts: &self.services().accounts,
        }
    }
}

impl DirectoryView<'_> {
    /// The staff of the current site, if `directory` is granted.
    async fn staff_here(&self) -> Result<Vec<User>, Error> {
        let check = Check::capability("plugin.directory", Capability::Directory, Need::Nothing);
        self.cx.allow(check).await?;
        let users = self
            .accounts
            .list()
            .map_err(|_| Error::Internal("the user directory is unavailable".into()))?;
        Ok(users
            .into_iter()
            .filter(|u| is_staff(u, &self.cx.call.site))
            .collect())
    }
}

impl directory::Host for DirectoryView<'_> {
    async fn staff(&mut self) -> wasmtime::Result<Result<Vec<directory::Person>, Error>> {
        Ok(self
            .staff_here()
            .await
            .map(|users| users.iter().map(person).collect()))
    }

    async fn lookup(&mut self, user: String) -> wasmtime::Result<Result<directory::Person, Error>> {
        Ok(self.staff_here().await.and_then(|users| {
            users
                .iter()
                .find(|u| u.username == user)
                .map(person)
                .ok_or_else(|| Error::NotFound(format!("no staff member '{user}' at this site")))
        }))
    }
}
