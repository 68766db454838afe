//! A plugin package (`.osp`): a tar archive holding `plugin.toml` and `plugin.wasm`.
//! The registry adds the publisher's signature to it.

use std::io::Read;

/// The two parts of a package.
pub struct Package {
    pub manifest: String,
    pub component: Vec<u8>,
}

const MAX_MANIFEST: u64 = 64 << 10;
const MAX_COMPONENT: u64 = 64 << 20;

impl Package {
    pub fn read(bytes: &[u8]) -> Result<Package, String> {
        let mut manifest = None;
        let mut component = None;
        let mut archive = tar::Archive::new(bytes);
        let entries = archive
            .entries()
            .map_err(|e| format!("not a plugin package (.osp): {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("not a plugin package (.osp): {e}"))?;
            let path = entry
                .path()
                .map_err(|e| format!("bad entry name in the package: {e}"))?
                .to_string_lossy()
                .into_owned();
            let (slot, max) = match path.as_str() {
                "plugin.toml" => (&mut manifest, MAX_MANIFEST),
                "plugin.wasm" => (&mut component, MAX_COMPONENT),
                other => return Err(format!("unexpected file '{other}' in the package")),
            };
            if entry.size() > max {
                return Err(format!("{path} is larger than {max} bytes"));
            }
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry
                .by_ref()
                .take(max)
                .read_to_end(&mut buf)
                .map_err(|e| format!("cannot read {path} from the package: {e}"))?;
            *slot = Some(buf);
        }
        let manifest = manifest.ok_or("the package has no plugin.toml")?;
        let component = component.ok_or("the package has no plugin.wasm")?;
        let manifest =
            String::from_utf8(manifest).map_err(|_| "plugin.toml is not UTF-8".to_string())?;
        Ok(Package {
            manifest,
            component,
        })
    }

    pub fn write(&self) -> std::io::Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("plugin.toml", self.manifest.as_bytes()),
            ("plugin.wasm", self.component.as_slice()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, data)?;
        }
        b.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_round_trips_and_strays_are_refused() {
        let p = Package {
            manifest: "id = \"x\"".into(),
            component: vec![0, 97, 115, 109],
        };
        let bytes = p.write().unwrap();
        let q = Package::read(&bytes).unwrap();
        assert_eq!(q.manifest, p.manifest);
        assert_eq!(q.component, p.component);
        assert!(Package::read(b"hello").is_err());
    }
}
