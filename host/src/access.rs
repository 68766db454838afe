//! Roles, permissions, the context every request carries, and the one gate every entry point
//! goes through.
//!
//! [`ROLE_PERMISSIONS`] is the one place that says what each role may do; the README prints the
//! same table. Every domain operation takes a [`Ctx`] and asks the [`Gate`] whether it may
//! proceed, whoever the caller is (an HTTP handler, a plugin's host call, the command line):
//! the gate decides from the context alone and records every refusal in the audit trail, so
//! the rule and its audit entry cannot drift apart between entrances.
//!
//! A plugin's host call is one more layer of the same decision: the [`Ctx`] of a sandbox names
//! the plugin acting ([`Acting`]) with the capabilities its manifest declares and the
//! administrator granted at the site, and a [`Check`] naming a [`Capability`] passes only
//! when both hold *and* the person behind the call may do what the capability does.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{Audit, AuditError};

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
    /// Change the contact details (phones, email, address) of one's own patient record, and
    /// nothing else of it.
    #[serde(rename = "patients.contact-own")]
    PatientsContactOwn,
    /// Create a patient's own account (linked to their chart) and issue its activation code.
    #[serde(rename = "patients.accounts")]
    PatientAccounts,
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
            Permission::PatientsContactOwn => "patients.contact-own",
            Permission::PatientAccounts => "patients.accounts",
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
        &[
            AuditRead,
            UsersManage,
            SitesManage,
            PluginsManage,
            PatientAccounts,
        ],
    ),
    (Role::Physician, &[PatientsRead, PatientsWrite]),
    (Role::Nurse, &[PatientsRead, PatientsWrite]),
    (
        Role::Reception,
        &[PatientsRead, PatientsWrite, PatientAccounts],
    ),
    (Role::Kiosk, &[PatientsMatch]),
    (Role::Researcher, &[PatientsDeidentified]),
    (Role::Patient, &[PatientsReadOwn, PatientsContactOwn]),
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

/// Who a piece of work is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in person: their roles say what they may do.
    Person,
    /// The operator at the machine: the command line and demo seeding, which hold the data
    /// directory anyway.
    Operator,
    /// Plugin work with nobody behind it (an event the host published, a scheduled job): it
    /// may do only what the plugin's *unattended* grants allow.
    Unattended,
}

/// Who is acting, where, from where, and through what. Built by the host from the
/// authenticated session — never from anything a client or plugin claims.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The person's user name; `system` for the operator, `unattended` for unattended work.
    pub user: String,
    pub principal: Principal,
    pub roles: Vec<Role>,
    pub site: Option<String>,
    /// For `patient` users: their own patient record.
    pub patient: Option<String>,
    pub source: Option<String>,
    /// The plugins a call came through (`a>b` when plugin `a` called plugin `b`).
    pub via: Option<String>,
    /// The plugin acting now, in a sandbox: what it declares and was granted.
    pub plugin: Option<Arc<Acting>>,
}

/// The plugin a host call comes from: its id, the capabilities its manifest declares and those
/// the administrator granted it at the site of the call (for unattended work, the grants
/// given for unattended use).
#[derive(Clone, Debug)]
pub struct Acting {
    pub id: String,
    pub site: String,
    pub declared: BTreeSet<Capability>,
    pub granted: BTreeSet<Capability>,
}

impl Ctx {
    /// A signed-in person.
    pub fn person(
        user: &str,
        roles: Vec<Role>,
        site: Option<String>,
        patient: Option<String>,
        source: Option<String>,
    ) -> Self {
        Ctx {
            user: user.into(),
            principal: Principal::Person,
            roles,
            site,
            patient,
            source,
            via: None,
            plugin: None,
        }
    }

    /// The operator (the command line, demo seeding).
    pub fn system(what: &str) -> Self {
        Ctx {
            user: "system".into(),
            principal: Principal::Operator,
            roles: vec![],
            site: None,
            patient: None,
            source: Some(what.into()),
            via: None,
            plugin: None,
        }
    }

    /// Plugin work with nobody behind it, at `site`.
    pub fn unattended(site: &str, what: &str) -> Self {
        Ctx {
            user: "unattended".into(),
            principal: Principal::Unattended,
            roles: vec![],
            site: Some(site.into()),
            patient: None,
            source: Some(what.into()),
            via: None,
            plugin: None,
        }
    }

    pub fn can(&self, p: Permission) -> bool {
        match self.principal {
            Principal::Operator => true,
            Principal::Person => ROLE_PERMISSIONS
                .iter()
                .any(|(r, perms)| self.roles.contains(r) && perms.contains(&p)),
            // Nobody's permissions to intersect with: what the unattended grants imply.
            Principal::Unattended => self
                .plugin
                .as_ref()
                .is_some_and(|a| a.granted.iter().any(|c| c.implies(p))),
        }
    }

    pub fn role_string(&self) -> String {
        match self.principal {
            Principal::Operator => return "system".into(),
            Principal::Unattended => return "unattended".into(),
            Principal::Person if self.roles.is_empty() => return "none".into(),
            Principal::Person => {}
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

/// Something a plugin may be granted at a site. Each unlocks one host interface of the plugin
/// API (see `plugins::manifest` for which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Capability {
    #[serde(rename = "patients.read")]
    PatientsRead,
    #[serde(rename = "patients.write")]
    PatientsWrite,
    #[serde(rename = "patients.deidentified")]
    PatientsDeidentified,
    #[serde(rename = "patients.match")]
    PatientsMatch,
    #[serde(rename = "patient-data")]
    PatientData,
    #[serde(rename = "kv")]
    Kv,
    #[serde(rename = "events.publish")]
    EventsPublish,
    #[serde(rename = "directory")]
    Directory,
    #[serde(rename = "outbound")]
    Outbound,
    /// Requests from servers elsewhere, with nobody signed in, reach the plugin's handler at
    /// `/inbound/{site}/{plugin}/…` (API 0.2); the plugin authenticates them itself.
    #[serde(rename = "inbound")]
    Inbound,
}

impl Capability {
    pub const ALL: [Capability; 10] = [
        Capability::PatientsRead,
        Capability::PatientsWrite,
        Capability::PatientsDeidentified,
        Capability::PatientsMatch,
        Capability::PatientData,
        Capability::Kv,
        Capability::EventsPublish,
        Capability::Directory,
        Capability::Outbound,
        Capability::Inbound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::PatientsRead => "patients.read",
            Capability::PatientsWrite => "patients.write",
            Capability::PatientsDeidentified => "patients.deidentified",
            Capability::PatientsMatch => "patients.match",
            Capability::PatientData => "patient-data",
            Capability::Kv => "kv",
            Capability::EventsPublish => "events.publish",
            Capability::Directory => "directory",
            Capability::Outbound => "outbound",
            Capability::Inbound => "inbound",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// What granting it means, where an administrator decides, for the capabilities whose
    /// name does not say it plainly.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            Capability::Inbound => Some(
                "servers elsewhere may send requests to this plugin at this site without \
                 signing in; the plugin must authenticate them itself",
            ),
            _ => None,
        }
    }

    /// Whether this capability, granted for unattended use, stands in for the person's
    /// permission `p` (there is no person to ask).
    pub fn implies(self, p: Permission) -> bool {
        use Permission as P;
        matches!(
            (self, p),
            (Capability::PatientsRead, P::PatientsRead)
                | (Capability::PatientsWrite, P::PatientsWrite)
                | (Capability::PatientsDeidentified, P::PatientsDeidentified)
                | (Capability::PatientsMatch, P::PatientsMatch)
                | (Capability::PatientData, P::PatientsRead | P::PatientsWrite)
        )
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the person behind a call must be allowed.
#[derive(Clone, Copy, Debug)]
pub enum Need<'a> {
    /// Nothing of the person: only the plugin's capability is checked.
    Nothing,
    Permission(Permission),
    /// Any one of these.
    AnyOf(&'a [Permission]),
    /// Reading one patient's chart: `patients.read`, or `patients.read-own` when it is the
    /// person's own record.
    Chart(&'a str),
    /// Changing one patient's contact details: `patients.write`, or `patients.contact-own`
    /// when it is the person's own record.
    Contact(&'a str),
}

/// One question for the [`Gate`]: may the caller do `action`?
#[derive(Clone, Debug)]
pub struct Check<'a> {
    /// The audit action, e.g. `patient.read`, `plugin.install`, `plugin.kv`.
    pub action: &'a str,
    /// What the person must be allowed.
    pub need: Need<'a>,
    /// For a plugin's host call: the capability it needs (declared and granted).
    pub capability: Option<Capability>,
    /// The patient concerned, for the audit entry.
    pub patient: Option<&'a str>,
    /// The resource concerned, for the audit entry (a capability refusal names the
    /// capability when this is empty).
    pub resource: Option<String>,
}

impl<'a> Check<'a> {
    pub fn new(action: &'a str, need: Need<'a>) -> Self {
        Check {
            action,
            need,
            capability: None,
            patient: None,
            resource: None,
        }
    }

    /// A plugin's host call that needs `capability`, and `need` of the person behind it.
    pub fn capability(action: &'a str, capability: Capability, need: Need<'a>) -> Self {
        Check {
            capability: Some(capability),
            ..Check::new(action, need)
        }
    }

    pub fn patient(mut self, id: &'a str) -> Self {
        self.patient = Some(id);
        self.resource.get_or_insert_with(|| format!("Patient/{id}"));
        self
    }

    pub fn resource(mut self, r: impl Into<String>) -> Self {
        self.resource = Some(r.into());
        self
    }
}

/// Why the gate said no.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not allowed; the refusal is on the audit trail. The message says why.
    #[error("{0}")]
    Denied(String),
    /// The refusal could not be recorded, so nothing is answered but this.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The one gate: decides from the [`Ctx`] alone, and records every refusal durably before it
/// is answered. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    audit: Audit,
}

impl Gate {
    pub fn new(audit: Audit) -> Gate {
        Gate { audit }
    }

    /// Why `ctx` may not do what `check` asks, or `None` when it may. No audit entry: for
    /// deciding what to show (a link, a button), never for guarding an action.
    pub fn refusal(ctx: &Ctx, check: &Check<'_>) -> Option<String> {
        Self::decide(ctx, check).map(|(reason, _)| reason)
    }

    /// The refusal, and whether it was the plugin's capability (rather than the person) that
    /// failed.
    fn decide(ctx: &Ctx, check: &Check<'_>) -> Option<(String, bool)> {
        if let (Some(cap), Some(p)) = (check.capability, &ctx.plugin) {
            if !p.declared.contains(&cap) {
                let reason = format!(
                    "plugin '{}' does not declare the capability {cap} in its manifest",
                    p.id
                );
                return Some((reason, true));
            }
            if !p.granted.contains(&cap) {
                let how = match ctx.principal {
                    Principal::Unattended => " for unattended use",
                    _ => "",
                };
                let reason = format!(
                    "the capability {cap} has not been granted to plugin '{}'{how} at site '{}'",
                    p.id, p.site
                );
                return Some((reason, true));
            }
        }
        let (allowed, needed) = match check.need {
            Need::Nothing => (true, String::new()),
            Need::Permission(p) => (ctx.can(p), p.as_str().to_string()),
            Need::AnyOf(ps) => (
                ps.iter().any(|p| ctx.can(*p)),
                ps.iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
            Need::Chart(id) => (
                ctx.can(Permission::PatientsRead)
                    || (ctx.can(Permission::PatientsReadOwn) && ctx.patient.as_deref() == Some(id)),
                Permission::PatientsRead.as_str().to_string(),
            ),
            Need::Contact(id) => (
                ctx.can(Permission::PatientsWrite)
                    || (ctx.can(Permission::PatientsContactOwn)
                        && ctx.patient.as_deref() == Some(id)),
                Permission::PatientsWrite.as_str().to_string(),
            ),
        };
        if allowed {
            return None;
        }
        let who = match (ctx.principal, &ctx.plugin) {
            (Principal::Unattended, _) => "unattended work (no person behind it)",
            (_, Some(_)) => "the role of the person this call serves",
            (_, None) => "your role",
        };
        let reason = format!(
            "{who} ({}) may not {} ({needed} is needed)",
            ctx.role_string(),
            describe(check.action)
        );
        Some((reason, false))
    }

    /// Allow `check` for `ctx`, or record the refusal (durably) and return it.
    pub async fn check(&self, ctx: &Ctx, check: Check<'_>) -> Result<(), Refusal> {
        let Some((reason, by_capability)) = Self::decide(ctx, &check) else {
            return Ok(());
        };
        Err(self.record(ctx, check, reason, by_capability).await)
    }

    /// Refuse `check` for a reason a capability decides by its own data (an outbound origin
    /// its manifest does not list), recorded exactly as the gate's own refusals are.
    pub async fn deny(&self, ctx: &Ctx, check: Check<'_>, reason: String) -> Refusal {
        self.record(ctx, check, reason, false).await
    }

    async fn record(
        &self,
        ctx: &Ctx,
        check: Check<'_>,
        reason: String,
        by_capability: bool,
    ) -> Refusal {
        let mut ev = ctx.event(check.action, "denied");
        ev.patient = check.patient.map(str::to_string);
        ev.resource = match (check.capability, check.resource) {
            (Some(c), _) if by_capability => Some(format!("capability/{c}")),
            (_, Some(r)) => Some(r),
            (Some(c), None) => Some(format!("capability/{c}")),
            (None, None) => None,
        };
        ev.detail = Some(reason.clone());
        match self.audit.record_durable(ev).await {
            Ok(_) => Refusal::Denied(reason),
            Err(e) => Refusal::Audit(e),
        }
    }
}

/// What an audit action is, in words, for a refusal's message.
fn describe(action: &str) -> &str {
    match action {
        "patient.create" | "patient.import" => "create patient records",
        "patient.update" => "change patient records",
        "patient.account" => "create patient accounts",
        "patient.search" => "search patient records",
        "patient.read" => "read this patient record",
        "patient.match" => "match a health card to a patient",
        "patient.deidentified" => "read de-identified patient data",
        "audit.read" | "audit.verify" => "read the audit trail",
        "site.create" => "add sites",
        a if a.starts_with("user.") => "manage users",
        a if a.starts_with("plugin.") => "manage plugins",
        _ => "do this",
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

    #[test]
    fn a_patient_may_change_only_their_own_contact_details() {
        let me = Ctx::person("sam", vec![Role::Patient], None, Some("p1".into()), None);
        let contact = |id| Check::new("patient.update", Need::Contact(id));
        assert!(Gate::refusal(&me, &contact("p1")).is_none());
        assert!(Gate::refusal(&me, &contact("p2")).is_some());
        let write = Check::new("patient.update", Need::Permission(PatientsWrite));
        assert!(Gate::refusal(&me, &write).is_some());
        let desk = Ctx::person("desk", vec![Role::Reception], None, None, None);
        assert!(Gate::refusal(&desk, &contact("p2")).is_none());
        assert!(desk.can(PatientAccounts));
        let nurse = Ctx::person("kim", vec![Role::Nurse], None, None, None);
        assert!(!nurse.can(PatientAccounts));
    }
}
