//! `directory`: the staff who work at the current site. Capability `directory`. Never
//! includes password hashes, disabled accounts, kiosks or patients.

use super::Sandbox;
use crate::access::Role;
use crate::auth::User;
use crate::plugins::manifest::Capability;
use crate::plugins::v0_1::Error;
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

impl directory::Host for Sandbox {
    async fn staff(&mut self) -> wasmtime::Result<Result<Vec<directory::Person>, Error>> {
        if let Err(e) = self
            .allow(Capability::Directory, None, "plugin.directory")
            .await
        {
            return Ok(Err(e));
        }
        Ok(match self.app.accounts.list() {
            Ok(users) => Ok(users
                .iter()
                .filter(|u| is_staff(u, &self.call.site))
                .map(person)
                .collect()),
            Err(_) => Err(Error::Internal("the user directory is unavailable".into())),
        })
    }

    async fn lookup(&mut self, user: String) -> wasmtime::Result<Result<directory::Person, Error>> {
        if let Err(e) = self
            .allow(Capability::Directory, None, "plugin.directory")
            .await
        {
            return Ok(Err(e));
        }
        Ok(match self.app.accounts.list() {
            Ok(users) => users
                .iter()
                .find(|u| u.username == user && is_staff(u, &self.call.site))
                .map(person)
                .ok_or_else(|| Error::NotFound(format!("no staff member '{user}' at this site"))),
            Err(_) => Err(Error::Internal("the user directory is unavailable".into())),
        })
    }
}
