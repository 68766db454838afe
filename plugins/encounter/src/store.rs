//! Storage and the rules of who may do what.
//!
//! Everything about a patient lives in patient-data, under the patient (the host checks each
//! call against the person's right to that chart and audits it with the patient):
//!
//! - `seq`: the patient's last id, rewritten with compare-and-swap in the batch of each new
//!   entry, so ids are unique and increase;
//! - `note/<id>`: a [`Note`] with every version;
//! - `cpp/<section>/<id>`: an [`Item`] of the cumulative patient profile;
//! - `m/<id>`: a [`Measurement`] set;
//! - `tickler/<id>`: a [`Tickler`].
//!
//! One index spans patients, in `kv`: `assigned/<user>/<patient>/<id>` → [`Assigned`] (due
//! date, open), for "My ticklers". It holds ids and dates, no clinical text. It is written
//! after the tickler (a separate store, so not in the same batch): if that second write fails,
//! the tickler is on the chart but missing from the list until it is next changed, and the
//! person is told.

use osler_sdk::{Caller, Error, audit, clock, directory, kv, patient_data};

use crate::model::*;

/// The roles that keep clinical notes. Everyone else — reception, kiosk, researchers,
/// administrators, patients — sees none of it (the host checks the chart right again on every
/// read and write).
pub const CLINICAL: [&str; 2] = ["physician", "nurse"];

pub fn clinical(c: &Caller) -> Result<(), Error> {
    if CLINICAL.iter().any(|r| c.has_role(r)) {
        Ok(())
    } else {
        Err(Error::denied(
            "encounter notes, the CPP, measurements and ticklers are for physicians and nurses",
        ))
    }
}

pub fn stamp(c: &Caller) -> Stamp {
    Stamp {
        user: c.user.clone(),
        name: c.display_name.clone(),
        at: clock::now().local,
    }
}

fn pad(n: u64) -> String {
    format!("{n:06}")
}

/// Writes `key` = `value` for `patient` under a fresh id (from `make`), retrying when another
/// writer took the id first.
fn insert<T: serde::Serialize>(
    patient: &str,
    prefix: &str,
    make: impl Fn(String) -> T,
) -> Result<T, Error> {
    for _ in 0..5 {
        let seq: Option<u64> = patient_data::get(patient, "seq")?;
        let id = pad(seq.unwrap_or(0) + 1);
        let value = make(id.clone());
        let r = patient_data::Batch::new(patient)
            .expect_unchanged("seq", seq.as_ref())
            .put("seq", &(seq.unwrap_or(0) + 1))
            .put(&format!("{prefix}{id}"), &value)
            .commit();
        match r {
            Ok(()) => return Ok(value),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(
        "the chart is being written by others right now; try again",
    ))
}

/// Replaces `key` with `new` if it still holds `old` (else `conflict`: someone changed it).
fn replace<T: serde::Serialize>(patient: &str, key: &str, old: &T, new: &T) -> Result<(), Error> {
    patient_data::Batch::new(patient)
        .expect_unchanged(key, Some(old))
        .put(key, new)
        .commit()
        .map_err(|e| match e {
            Error::Conflict(_) => {
                Error::conflict("someone changed this in the meantime: reload and try again")
            }
            e => e,
        })
}

// Notes.

pub fn notes(patient: &str) -> Result<Vec<Note>, Error> {
    let mut all: Vec<Note> = patient_data::scan_all(patient, "note/")?
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    // Newest encounter first; among one day's, the last written first.
    all.sort_by(|a, b| b.date.cmp(&a.date).then(b.id.cmp(&a.id)));
    Ok(all)
}

/// One note, for reading: the host audits the read of the chart's data, and the plugin adds
/// which note was read (`encounter.note.read`).
pub fn note(patient: &str, id: &str) -> Result<Note, Error> {
    let n = find_note(patient, id)?;
    audit::record(
        "note.read",
        Some(patient),
        Some(&format!("note {id}, version {}", n.current().n)),
    )?;
    Ok(n)
}

fn find_note(patient: &str, id: &str) -> Result<Note, Error> {
    patient_data::get(patient, &format!("note/{id}"))?
        .ok_or_else(|| Error::not_found(format!("no note {id} on this chart")))
}

pub fn create_note(c: &Caller, patient: &str, input: &NoteInput) -> Result<Note, Error> {
    clinical(c)?;
    let (kind, date) = input.header()?;
    let content = input.content()?;
    let written = stamp(c);
    insert(patient, "note/", |id| Note {
        id,
        patient: patient.into(),
        kind: kind.clone(),
        date: date.clone(),
        author: c.user.clone(),
        author_name: c.display_name.clone(),
        versions: vec![Version {
            n: 1,
            content: content.clone(),
            written: written.clone(),
            reason: None,
            signed: None,
        }],
    })
}

fn author_only(c: &Caller, n: &Note, what: &str) -> Result<(), Error> {
    clinical(c)?;
    if n.author != c.user {
        return Err(Error::denied(format!(
            "only the note's author, {}, may {what} it",
            n.author_name
        )));
    }
    Ok(())
}

/// Changes a draft (its author only; a signed note is locked).
pub fn edit_note(c: &Caller, patient: &str, id: &str, input: &NoteInput) -> Result<Note, Error> {
    let old = find_note(patient, id)?;
    author_only(c, &old, "change")?;
    if old.locked() {
        return Err(Error::conflict(
            "the note is signed and locked: correct it with an amendment, giving the reason",
        ));
    }
    let (kind, date) = input.header()?;
    let content = input.content()?;
    let mut new = old.clone();
    new.kind = kind;
    new.date = date;
    new.versions[0].content = content;
    new.versions[0].written = stamp(c);
    replace(patient, &format!("note/{id}"), &old, &new)?;
    Ok(new)
}

/// Signs a draft: its author only. From then on the note is locked.
pub fn sign_note(c: &Caller, patient: &str, id: &str) -> Result<Note, Error> {
    let old = find_note(patient, id)?;
    author_only(c, &old, "sign")?;
    if old.locked() {
        return Err(Error::conflict("the note is already signed"));
    }
    let mut new = old.clone();
    new.versions[0].signed = Some(stamp(c));
    replace(patient, &format!("note/{id}"), &old, &new)?;
    Ok(new)
}

/// Amends a signed note: a new version with its reason, signed as it is saved. The versions
/// before it stay, unchanged, in the history.
pub fn amend_note(c: &Caller, patient: &str, id: &str, input: &NoteInput) -> Result<Note, Error> {
    let old = find_note(patient, id)?;
    author_only(c, &old, "amend")?;
    if !old.locked() {
        return Err(Error::conflict(
            "the note is a draft: change it, then sign it (amendments are for signed notes)",
        ));
    }
    let reason = input.reason()?;
    let content = input.content()?;
    if content == old.current().content {
        return Err(Error::invalid(
            "text: the amendment changes nothing in the note",
        ));
    }
    let now = stamp(c);
    let mut new = old.clone();
    new.versions.push(Version {
        n: old.current().n + 1,
        content,
        written: now.clone(),
        reason: Some(reason),
        signed: Some(now),
    });
    replace(patient, &format!("note/{id}"), &old, &new)?;
    Ok(new)
}

// The CPP.

pub fn cpp(patient: &str) -> Result<Vec<Item>, Error> {
    Ok(patient_data::scan_all(patient, "cpp/")?
        .into_iter()
        .map(|(_, i)| i)
        .collect())
}

pub fn add_item(
    c: &Caller,
    patient: &str,
    section: &str,
    input: &ItemInput,
) -> Result<Item, Error> {
    clinical(c)?;
    let (text, code, since) = input.check(section)?;
    let added = stamp(c);
    insert(patient, &format!("cpp/{section}/"), |id| Item {
        id,
        section: section.into(),
        text: text.clone(),
        code: code.clone(),
        since: since.clone(),
        added: added.clone(),
        resolved: None,
    })
}

/// Marks an item resolved (a problem that is over, a reminder done): it stays in the history.
pub fn resolve_item(c: &Caller, patient: &str, section: &str, id: &str) -> Result<Item, Error> {
    clinical(c)?;
    self::section(section)?;
    let key = format!("cpp/{section}/{id}");
    let old: Item = patient_data::get(patient, &key)?
        .ok_or_else(|| Error::not_found(format!("no {section} entry {id} on this chart")))?;
    if old.resolved.is_some() {
        return Ok(old);
    }
    let mut new = old.clone();
    new.resolved = Some(stamp(c));
    replace(patient, &key, &old, &new)?;
    Ok(new)
}

// Measurements.

/// Oldest first.
pub fn measurements(patient: &str) -> Result<Vec<Measurement>, Error> {
    let mut all: Vec<Measurement> = patient_data::scan_all(patient, "m/")?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    all.sort_by(|a, b| a.taken.cmp(&b.taken).then(a.id.cmp(&b.id)));
    Ok(all)
}

pub fn record_measurements(
    c: &Caller,
    patient: &str,
    input: &MeasurementInput,
) -> Result<Measurement, Error> {
    clinical(c)?;
    let now = clock::now().local;
    let taken = match input.taken.trim() {
        "" => now[..16].to_string(),
        t => check_datetime("taken", t)?,
    };
    if taken.as_str() > &now[..16] {
        return Err(Error::invalid(format!(
            "taken: {taken} is in the future (it is {} now)",
            &now[..16]
        )));
    }
    let comment = line("comment", &input.comment)?;
    // The BMI needs a height: this set's, or the latest one taken before it.
    let last_height = if input.weight.is_some() && input.height.is_none() {
        measurements(patient)?
            .iter()
            .rev()
            .filter(|m| m.taken <= taken)
            .find_map(|m| m.values.get("height").copied())
    } else {
        None
    };
    let (values, bmi) = input.check(last_height)?;
    let recorded = stamp(c);
    insert(patient, "m/", |id| Measurement {
        id,
        taken: taken.clone(),
        values: values.clone(),
        bmi,
        comment: Some(comment.clone()).filter(|s| !s.is_empty()),
        recorded: recorded.clone(),
    })
}

// Ticklers.

/// Open first (soonest due first), then done.
pub fn ticklers(patient: &str) -> Result<Vec<Tickler>, Error> {
    let mut all: Vec<Tickler> = patient_data::scan_all(patient, "tickler/")?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    all.sort_by(|a, b| (a.done.is_some(), &a.due, &a.id).cmp(&(b.done.is_some(), &b.due, &b.id)));
    Ok(all)
}

fn index_key(t: &Tickler) -> String {
    format!("assigned/{}/{}/{}", t.assignee, t.patient, t.id)
}

fn index(t: &Tickler) -> Result<(), Error> {
    kv::put(
        &index_key(t),
        &Assigned {
            due: t.due.clone(),
            open: t.done.is_none(),
        },
    )
    .map_err(|e| {
        Error::internal(format!(
            "the tickler is on the chart, but not yet on {}'s list ({}): save it again",
            t.assignee_name,
            e.message()
        ))
    })
}

pub fn add_tickler(c: &Caller, patient: &str, input: &TicklerInput) -> Result<Tickler, Error> {
    clinical(c)?;
    let (message, due, assignee) = input.check()?;
    let person = directory::person(&assignee).map_err(|e| match e {
        Error::NotFound(_) | Error::Denied(_) => Error::invalid(format!(
            "assignee: '{assignee}' is not a staff member of this site"
        )),
        e => e,
    })?;
    if !CLINICAL.iter().any(|r| person.roles.iter().any(|x| x == r)) {
        return Err(Error::invalid(format!(
            "assignee: {} is not a physician or nurse, and could not read the tickler",
            person.display_name
        )));
    }
    let created = stamp(c);
    let t = insert(patient, "tickler/", |id| Tickler {
        id,
        patient: patient.into(),
        message: message.clone(),
        due: due.clone(),
        assignee: person.user.clone(),
        assignee_name: person.display_name.clone(),
        created: created.clone(),
        done: None,
    })?;
    index(&t)?;
    Ok(t)
}

/// Marks a tickler done, or open again.
pub fn set_tickler_done(c: &Caller, patient: &str, id: &str, done: bool) -> Result<Tickler, Error> {
    clinical(c)?;
    let key = format!("tickler/{id}");
    let old: Tickler = patient_data::get(patient, &key)?
        .ok_or_else(|| Error::not_found(format!("no tickler {id} on this chart")))?;
    let mut new = old.clone();
    new.done = done.then(|| stamp(c));
    if old.done.is_some() != done {
        replace(patient, &key, &old, &new)?;
    } else {
        new = old;
    }
    index(&new)?;
    Ok(new)
}

/// The ticklers assigned to `user` (open only unless `all`), soonest due first: from the
/// index, each read from its patient's chart (so each is a checked, audited read).
pub fn assigned_to(user: &str, all: bool) -> Result<Vec<Tickler>, Error> {
    let mut refs: Vec<(String, Assigned)> = kv::scan_all(&format!("assigned/{user}/"))?;
    refs.retain(|(_, a)| all || a.open);
    refs.sort_by(|a, b| a.1.due.cmp(&b.1.due).then(a.0.cmp(&b.0)));
    let mut out = Vec::new();
    for (key, _) in refs.into_iter().take(200) {
        let mut parts = key.rsplitn(3, '/');
        let (Some(id), Some(patient)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Some(t) = patient_data::get::<Tickler>(patient, &format!("tickler/{id}"))? {
            out.push(t);
        }
    }
    Ok(out)
}
