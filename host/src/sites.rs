//! Sites: the clinic's locations. Users belong to sites; each request acts at one of them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::storage::{Batch, Storage, StorageError, Tree};

/// A clinic location.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Site {
    /// Short identifier, e.g. `main` or `north`.
    #[schema(pattern = "^[a-z0-9-]{1,32}$")]
    pub id: String,
    /// Display name, e.g. "Main Street Clinic".
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("site '{0}' already exists")]
    Exists(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A site's name, trimmed, or why it cannot be one.
fn valid_name(name: &str) -> Result<String, SiteError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(SiteError::InvalidName(
            "a site needs a name (at most 200 plain characters)".into(),
        ));
    }
    Ok(name.to_string())
}

#[derive(Clone)]
pub struct Sites {
    storage: Storage,
}

impl Sites {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    pub fn get(&self, id: &str) -> Result<Option<Site>, StorageError> {
        Ok(self
            .storage
            .get(Tree::Sites, id.as_bytes())?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    pub fn list(&self) -> Result<Vec<Site>, StorageError> {
        Ok(self
            .storage
            .scan(Tree::Sites, b"", None, usize::MAX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// The batch that renames a site, with the site before and after; `None` if there is no
    /// such site.
    pub fn rename(&self, id: &str, name: &str) -> Result<Option<(Site, Site, Batch)>, SiteError> {
        let name = valid_name(name)?;
        let Some(old_bytes) = self.storage.get(Tree::Sites, id.as_bytes())? else {
            return Ok(None);
        };
        let old: Site = serde_json::from_slice(&old_bytes)
            .map_err(|e| StorageError::Io(format!("unreadable site record: {e}")))?;
        let site = Site {
            id: old.id.clone(),
            name,
        };
        let mut b = Batch::new();
        b.expect(Tree::Sites, id.as_bytes(), Some(old_bytes));
        b.put(
            Tree::Sites,
            id.as_bytes(),
            serde_json::to_vec(&site).expect("ser"),
        );
        Ok(Some((old, site, b)))
    }

    /// The batch that adds a site (the caller commits it with its audit entry).
    pub fn add(&self, id: &str, name: &str) -> Result<(Site, Batch), SiteError> {
        let ok_id = (1..=32).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok_id {
            return Err(SiteError::Invalid(
                "a site id is 1 to 32 lowercase letters, digits or '-'".into(),
            ));
        }
        let name = valid_name(name)?;
        if self.get(id)?.is_some() {
            return Err(SiteError::Exists(id.into()));
        }
        let site = Site {
            id: id.into(),
            name,
        };
        let mut b = Batch::new();
        b.expect(Tree::Sites, id.as_bytes(), None);
        b.put(
            Tree::Sites,
            id.as_bytes(),
            serde_json::to_vec(&site).expect("ser"),
        );
        Ok((site, b))
    }
}
