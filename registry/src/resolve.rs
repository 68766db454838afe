//! Choosing a release: the highest version that matches the request, is not yanked (unless
//! pinned exactly) and works with this host's API.

use semver::{Op, Version, VersionReq};

use crate::Error;
use crate::meta::{Index, Release};

/// `id`, `id@<semver requirement>` or `id@=<exact version>`.
pub fn parse_spec(spec: &str) -> Result<(String, Option<VersionReq>), Error> {
    let (id, req) = match spec.split_once('@') {
        Some((id, req)) => (id, Some(req)),
        None => (spec, None),
    };
    if id.is_empty() {
        return Err(Error::Invalid(format!(
            "'{spec}' names no plugin; write <id> or <id>@<version requirement>"
        )));
    }
    let req = req
        .map(|r| {
            VersionReq::parse(r).map_err(|e| {
                Error::Invalid(format!(
                    "'{r}' is not a version requirement ({e}); e.g. 1.2, ^1.2.3 or =1.2.3"
                ))
            })
        })
        .transpose()?;
    Ok((id.to_string(), req))
}

/// A requirement that names exactly one version (`=1.2.3`).
pub fn is_exact(req: &VersionReq) -> bool {
    matches!(req.comparators.as_slice(), [c] if c.op == Op::Exact && c.minor.is_some() && c.patch.is_some())
}

/// Whether a release's API requirement accepts one of the host's API versions.
pub fn api_compatible(release: &Release, host_api: &[Version]) -> bool {
    VersionReq::parse(&release.api).is_ok_and(|req| host_api.iter().any(|v| req.matches(v)))
}

/// Pick the release to install, or say precisely why none fits.
pub fn choose<'a>(
    index: &'a Index,
    req: Option<&VersionReq>,
    host_api: &[Version],
) -> Result<&'a Release, Error> {
    let id = &index.id;
    let exact = req.is_some_and(is_exact);
    let matching: Vec<&Release> = index
        .releases
        .iter()
        .filter(|r| req.is_none_or(|q| q.matches(&r.version)))
        .collect();
    if matching.is_empty() {
        let have: Vec<String> = index
            .releases
            .iter()
            .map(|r| r.version.to_string())
            .collect();
        return Err(Error::Resolve(format!(
            "no version of '{id}' matches {}; the registry has: {}",
            req.map_or("any".to_string(), |r| r.to_string()),
            if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            }
        )));
    }
    let unyanked: Vec<&Release> = matching
        .iter()
        .copied()
        .filter(|r| exact || !r.yanked)
        .collect();
    if unyanked.is_empty() {
        let v = matching.last().expect("not empty").version.clone();
        return Err(Error::Yanked(format!(
            "'{id}' {v} is yanked (withdrawn by its publisher); install it anyway only by \
             pinning it exactly: {id}@={v}"
        )));
    }
    let fitting = unyanked
        .iter()
        .copied()
        .filter(|r| api_compatible(r, host_api))
        .max_by(|a, b| a.version.cmp(&b.version));
    fitting.ok_or_else(|| {
        let r = unyanked.last().expect("not empty");
        Error::Api(format!(
            "'{id}' {} needs host API {}, and this host provides {}",
            r.version,
            r.api,
            host_api
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use time::OffsetDateTime;

    fn rel(v: &str, api: &str, yanked: bool) -> Release {
        Release {
            version: v.parse().unwrap(),
            name: "X".into(),
            description: String::new(),
            publisher: "p".into(),
            keyid: "k".into(),
            path: format!("packages/x/x-{v}.osp"),
            sha256: String::new(),
            length: 1,
            api: api.into(),
            capabilities: BTreeSet::new(),
            exports: Default::default(),
            imports: Default::default(),
            yanked,
            published: OffsetDateTime::now_utc(),
        }
    }

    fn index(rs: Vec<Release>) -> Index {
        Index {
            kind: "index".into(),
            id: "x".into(),
            version: 1,
            expires: OffsetDateTime::now_utc(),
            releases: rs,
        }
    }

    #[test]
    fn the_highest_matching_unyanked_compatible_release_wins() {
        let api = [Version::new(0, 1, 0)];
        let i = index(vec![
            rel("1.0.0", "^0.1", false),
            rel("1.1.0", "^0.1", false),
            rel("1.2.0", "^0.1", true),
            rel("2.0.0", "^0.2", false),
        ]);
        assert_eq!(choose(&i, None, &api).unwrap().version.to_string(), "1.1.0");
        let (_, req) = parse_spec("x@~1.0").unwrap();
        assert_eq!(
            choose(&i, req.as_ref(), &api).unwrap().version.to_string(),
            "1.0.0"
        );
        let (_, req) = parse_spec("x@=1.2.0").unwrap();
        assert_eq!(
            choose(&i, req.as_ref(), &api).unwrap().version.to_string(),
            "1.2.0"
        );
        let (_, req) = parse_spec("x@^1.2").unwrap();
        assert!(matches!(
            choose(&i, req.as_ref(), &api),
            Err(Error::Yanked(_))
        ));
        let (_, req) = parse_spec("x@2").unwrap();
        assert!(matches!(choose(&i, req.as_ref(), &api), Err(Error::Api(_))));
        let (_, req) = parse_spec("x@3").unwrap();
        assert!(matches!(
            choose(&i, req.as_ref(), &api),
            Err(Error::Resolve(_))
        ));
        assert!(parse_spec("x@banana").is_err());
        assert!(parse_spec("@1").is_err());
    }
}
