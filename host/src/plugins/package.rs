//! A plugin package (`.osp`): a tar archive holding `plugin.toml`, `plugin.wasm` and, when
//! published, the publisher's `signature.json`. The format belongs to the registry crate,
//! which signs and verifies it.

pub use osler_registry::package::{MAX_COMPONENT, Package, PackageSignature};
