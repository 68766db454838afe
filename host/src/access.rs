//! Roles, permissions and the context every request carries.
//!
//! [`ROLE_PERMISSIONS`] is the one place that says what each role may do; the README prints the
//! same table. Every domain operation takes a [`Ctx`] and checks it here, whoever the caller is
//! (the HTTP API today, a plugin tomorrow), so a check cannot be forgotten at one entrance.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A role a user holds.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Physician,
    Nurse,
    Reception,
    /// A check-in device.
    Kiosk,
    Researcher,
    /// A patient, linked to one patient record.
    Patient,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Physician,
        Role::Nurse,
        Role::Reception,
        Role::Kiosk,
        Role::Researcher,
        Role::Patient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Physician => "physician",
            Role::Nurse => "nurse",
            Role::Reception => "reception",
            Role::Kiosk => "kiosk",
            Role::Researcher => "researcher",
            Role::Patient => "patient",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a role may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Permission {
    /// Read and search identified patient records (demographics).
    #[serde(rename = "patients.read")]
    PatientsRead,
    /// Create and update patient records.
    #[serde(rename = "patients.write")]
    PatientsWrite,
    /// Read only the patient record linked to one's own account.
    #[serde(rename = "patients.read-own")]
    PatientsReadOwn,
    /// Read de-identified patient data only.
    #[serde(rename = "patients.deidentified")]
    PatientsDeidentified,
    /// Find a patient's id by health card number and birth date, and nothing more.
    #[serde(rename = "patients.match")]
    PatientsMatch,
    /// Query the audit trail.
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Add, disable and change users.
    #[serde(rename = "users.manage")]
    UsersManage,
    /// Add sites.
    #[serde(rename = "sites.manage")]
    SitesManage,
    /// Install, enable, configure and remove plugins.
    #[serde(rename = "plugins.manage")]
    PluginsManage,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::PatientsRead => "patients.read",
            Permission::PatientsWrite => "patients.write",
            Permission::PatientsReadOwn => "patients.read-own",
            Permission::PatientsDeidentified => "patients.deidentified",
            Permission::PatientsMatch => "patients.match",
            Permission::AuditRead => "audit.read",
            Permission::UsersManage => "users.manage",
            Permission::SitesManage => "sites.manage",
            Permission::PluginsManage => "plugins.manage",
        }
    }
}

use Permission::*;

/// The role → permission table. An administrator runs the system (users, sites, audit) but
/// does not read charts: reading patient data is a clinical role's job, and an admin who also
/// sees patients holds a clinical role as well.
pub const ROLE_PERMISSIONS: &[(Role, &[Permission])] = &[
    (
        Role::Admin,
        &[AuditRead, UsersManage, SitesManage, PluginsManage],
    ),
    (Role::Physician, &[PatientsRead, PatientsWrite]),
    (Role::Nurse, &[PatientsRead, PatientsWrite]),
    (Role::Reception, &[PatientsRead, PatientsWrite]),
    (Role::Kiosk, &[PatientsMatch]),
    (Role::Researcher, &[PatientsDeidentified]),
    (Role::Patient, &[PatientsReadOwn]),
];

pub fn permissions_of(roles: &[Role]) -> Vec<Permission> {
    let mut out = Vec::new();
    for (role, perms) in ROLE_PERMISSIONS {
        if roles.contains(role) {
            for p in *perms {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
        }
    }
    out
}

/// Who is acting, where, from where, and through what. Built by the host from the
/// authenticated session — never from anything a client or plugin claims.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub user: String,
    pub roles: Vec<Role>,
    pub site: Option<String>,
    /// For `patient` users: their own patient record.
    pub patient: Option<String>,
    pub source: Option<String>,
    /// The plugin a call came through.
    pub via: Option<String>,
}

impl Ctx {
    /// Work with no person behind it (the command line, demo seeding).
    pub fn system(what: &str) -> Self {
        Ctx {
            user: "system".into(),
            roles: vec![],
            site: None,
            patient: None,
            source: Some(what.into()),
            via: None,
        }
    }

    pub fn can(&self, p: Permission) -> bool {
        if self.user == "system" && self.roles.is_empty() {
            return true;
        }
        ROLE_PERMISSIONS
            .iter()
            .any(|(r, perms)| self.roles.contains(r) && perms.contains(&p))
    }

    pub fn role_string(&self) -> String {
        if self.roles.is_empty() {
            return "system".into();
        }
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// An audit event for this context.
    pub fn event(&self, action: &str, outcome: &str) -> crate::audit::Event {
        crate::audit::Event {
            actor: self.user.clone(),
            role: self.role_string(),
            site: self.site.clone(),
            action: action.into(),
            outcome: outcome.into(),
            source: self.source.clone(),
            via: self.via.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_row_and_reception_cannot_read_audit() {
        for r in Role::ALL {
            assert!(
                ROLE_PERMISSIONS.iter().any(|(x, _)| *x == r),
                "{r} has no row"
            );
        }
        assert!(!permissions_of(&[Role::Reception]).contains(&AuditRead));
        assert!(!permissions_of(&[Role::Researcher]).contains(&PatientsRead));
        assert_eq!(permissions_of(&[Role::Kiosk]), vec![PatientsMatch]);
    }
}
