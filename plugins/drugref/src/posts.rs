//! Clinicians' posts (MyDrugRef): warnings, bulletins and comments attached to an ATC code
//! or class, shown beside interaction results.
//!
//! Layout: `post/<id>` holds a [`Post`]; `post-atc/<code>/<id>` indexes it by its code;
//! `trust/<user>/<author>` marks an author a user trusts; `hide/<user>/<id>` holds the post's
//! version when the user hid it, so an edit (a higher version) brings it back.

use std::collections::{BTreeSet, HashSet};

use osler_sdk::{Caller, Error, clock, kv};
use serde::{Deserialize, Serialize};

use crate::atc;

pub const KINDS: [&str; 3] = ["warning", "bulletin", "comment"];
const MAX_TITLE: usize = 120;
const MAX_BODY: usize = 4000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    pub id: String,
    pub atc: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub author: String,
    pub author_name: String,
    pub created: String,
    pub updated: String,
    /// 1 when posted, one more at each edit.
    pub version: u32,
}

/// A post as a viewer sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    #[serde(flatten)]
    pub post: Post,
    pub trusted: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Draft {
    pub atc: String,
    pub kind: String,
    pub title: String,
    pub body: String,
}

impl Draft {
    /// The validated fields, or `invalid` naming the field.
    fn validate(&self) -> Result<(String, String, String, String), Error> {
        let atc = atc::normalize(&self.atc)
            .ok_or_else(|| Error::invalid("atc: an ATC code or class, like B01AA03 or M01A"))?;
        let kind = self.kind.trim().to_ascii_lowercase();
        if !KINDS.contains(&kind.as_str()) {
            return Err(Error::invalid("kind: warning, bulletin or comment"));
        }
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(Error::invalid(format!(
                "title: 1 to {MAX_TITLE} characters"
            )));
        }
        let body = self.body.trim();
        if body.is_empty() || body.chars().count() > MAX_BODY {
            return Err(Error::invalid(format!("body: 1 to {MAX_BODY} characters")));
        }
        Ok((atc, kind, title.into(), body.into()))
    }
}

/// Posting is for clinicians.
fn may_post(caller: &Caller) -> Result<(), Error> {
    if caller.has_role("physician") || caller.has_role("nurse") {
        Ok(())
    } else {
        Err(Error::denied(
            "only physicians and nurses post to the drug reference",
        ))
    }
}

fn valid_id(id: &str) -> Result<(), Error> {
    if id.len() == 18 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        Ok(())
    } else {
        Err(Error::not_found(format!("no post {id}")))
    }
}

pub fn get(id: &str) -> Result<Post, Error> {
    valid_id(id)?;
    kv::get(&format!("post/{id}"))?.ok_or_else(|| Error::not_found(format!("no post {id}")))
}

pub fn create(caller: &Caller, draft: &Draft) -> Result<Post, Error> {
    may_post(caller)?;
    let (atc, kind, title, body) = draft.validate()?;
    let now = clock::now();
    for n in 0..100 {
        let id = format!("{:013}-{n:04}", now.epoch_millis);
        let post = Post {
            id: id.clone(),
            atc: atc.clone(),
            kind: kind.clone(),
            title: title.clone(),
            body: body.clone(),
            author: caller.user.clone(),
            author_name: caller.display_name.clone(),
            created: now.local.clone(),
            updated: now.local.clone(),
            version: 1,
        };
        let r = kv::Batch::new()
            .expect_absent(&format!("post/{id}"))
            .put(&format!("post/{id}"), &post)
            .put(&format!("post-atc/{atc}/{id}"), &"")
            .commit();
        match r {
            Ok(()) => return Ok(post),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict("too many posts at once: try again"))
}

/// The author edits a post: a new version, shown again to those who hid the old one.
pub fn edit(caller: &Caller, id: &str, draft: &Draft) -> Result<Post, Error> {
    let old = get(id)?;
    if old.author != caller.user {
        return Err(Error::denied("only the author may edit a post"));
    }
    let (atc, kind, title, body) = draft.validate()?;
    let post = Post {
        atc,
        kind,
        title,
        body,
        updated: clock::now().local,
        version: old.version + 1,
        ..old.clone()
    };
    kv::Batch::new()
        .expect(&format!("post/{id}"), &old)
        .put(&format!("post/{id}"), &post)
        .delete(&format!("post-atc/{}/{id}", old.atc))
        .put(&format!("post-atc/{}/{id}", post.atc), &"")
        .commit()
        .map_err(|e| match e {
            Error::Conflict(_) => {
                Error::conflict("the post changed meanwhile: reload and try again")
            }
            e => e,
        })?;
    Ok(post)
}

/// Hides post `id` from `user` until it is edited.
pub fn hide(user: &str, id: &str) -> Result<(), Error> {
    let post = get(id)?;
    kv::put(&format!("hide/{user}/{id}"), &post.version)
}

/// Marks (or unmarks) `author` as trusted by `user`.
pub fn trust(user: &str, author: &str, trusted: bool) -> Result<(), Error> {
    let author = author.trim();
    if author.is_empty() || author.len() > 100 || author.contains('/') {
        return Err(Error::invalid("author: a user name"));
    }
    let key = format!("trust/{user}/{author}");
    if trusted {
        kv::put(&key, &"")
    } else {
        kv::delete(&key)
    }
}

/// The authors `user` trusts.
pub fn trusted_by(user: &str) -> Result<Vec<String>, Error> {
    let prefix = format!("trust/{user}/");
    Ok(kv::scan_all::<String>(&prefix)?
        .into_iter()
        .map(|(k, _)| k[prefix.len()..].to_string())
        .collect())
}

fn shown(viewer: &str, posts: Vec<Post>) -> Result<Vec<Shown>, Error> {
    let trusted = trusted_by(viewer)?;
    let mut out = Vec::new();
    for post in posts {
        let hidden_at: Option<u32> = kv::get(&format!("hide/{viewer}/{}", post.id))?;
        if hidden_at.is_some_and(|v| v >= post.version) {
            continue;
        }
        let trusted = trusted.contains(&post.author);
        out.push(Shown { post, trusted });
    }
    out.sort_by(|a, b| {
        b.trusted
            .cmp(&a.trusted)
            .then(kind_rank(&a.post.kind).cmp(&kind_rank(&b.post.kind)))
            .then(b.post.id.cmp(&a.post.id))
    });
    Ok(out)
}

fn kind_rank(kind: &str) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len())
}

/// Posts on any of `codes` or their classes, as `viewer` sees them.
pub fn for_codes(codes: &[String], viewer: &str) -> Result<Vec<Shown>, Error> {
    // A clinic without a single post (the usual case) is answered from one scan, not one per
    // level of each code and the viewer's trust list.
    if kv::scan_bytes("post-atc/", None, 1)?.entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut looked = HashSet::new();
    for code in codes {
        let Some(code) = atc::normalize(code) else {
            continue;
        };
        for p in atc::prefixes(&code) {
            if !looked.insert(p.to_string()) {
                continue;
            }
            let prefix = format!("post-atc/{p}/");
            for (k, _) in kv::scan_all::<String>(&prefix)? {
                ids.insert(k[prefix.len()..].to_string());
            }
        }
    }
    let mut posts = Vec::new();
    for id in &ids {
        if let Some(p) = kv::get::<Post>(&format!("post/{id}"))? {
            posts.push(p);
        }
    }
    shown(viewer, posts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(atc: &str, kind: &str, title: &str, body: &str) -> Draft {
        Draft {
            atc: atc.into(),
            kind: kind.into(),
            title: title.into(),
            body: body.into(),
        }
    }

    #[test]
    fn drafts_are_validated() {
        let msg = |d: Draft| d.validate().unwrap_err().message().to_string();
        assert!(msg(draft("nope", "warning", "t", "b")).starts_with("atc:"));
        assert!(msg(draft("B01A", "rumour", "t", "b")).starts_with("kind:"));
        assert!(msg(draft("B01A", "warning", " ", "b")).starts_with("title:"));
        assert!(msg(draft("B01A", "warning", "t", "")).starts_with("body:"));
        assert_eq!(
            draft("b01a", "Warning", " t ", "b").validate().unwrap(),
            ("B01A".into(), "warning".into(), "t".into(), "b".into())
        );
    }

    #[test]
    fn ids_are_checked_before_use() {
        assert!(valid_id("1764430000000-0001").is_ok());
        assert!(valid_id("../x").is_err());
    }
}
