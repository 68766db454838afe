//! What a component really imports and exports, compared with what its manifest declares.
//!
//! Checked at install and again at every load: a component that imports an interface its
//! manifest does not declare is refused, naming the interface.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

use super::manifest::{FREE_INTERFACES, HOST_API_VERSIONS, Manifest, capability_for};

/// WASI packages a plugin may import. The host links them with nothing granted (no files,
/// no environment, no stdio, and no network: every socket address and name lookup is refused);
/// language runtimes import them whatever the plugin does: Rust's standard library, and
/// CPython's C library under componentize-py, which imports `wasi:sockets` too.
const WASI_ALLOWED: &[&str] = &[
    "wasi:cli",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
];

/// componentize-py (Python plugins) leaves its runtime's initialiser exported as an instance
/// named `exports` with one function, `init(app-name, symbols, stub-wasi)`, which it ran at
/// build time to snapshot the interpreter. The host never calls it (it calls only `handler`,
/// `event-handler` and the interfaces the manifest declares), so exactly this shape is let
/// through; any other unnamed export is still refused.
fn is_componentize_py_init(engine: &Engine, name: &str, item: &ComponentItem) -> bool {
    let ComponentItem::ComponentInstance(inst) = item else {
        return false;
    };
    let mut funcs = inst
        .exports(engine)
        .filter(|(_, e)| !matches!(e.ty, ComponentItem::Type(_)));
    let (Some((fname, ext)), None) = (funcs.next(), funcs.next()) else {
        return false;
    };
    let ComponentItem::ComponentFunc(f) = &ext.ty else {
        return false;
    };
    let params: Vec<&str> = f.params().map(|(n, _)| n).collect();
    name == "exports" && fname == "init" && params == ["app-name", "symbols", "stub-wasi"]
}

/// An interface of another plugin that this component imports.
#[derive(Clone, Debug)]
pub struct PluginImport {
    /// The import's full name, e.g. `osler:scheduling/appointments@0.1.0`.
    pub name: String,
    /// Without the version: `osler:scheduling/appointments`.
    pub base: String,
    pub version: semver::Version,
    pub funcs: Vec<String>,
}

/// An interface this component exports to other plugins.
#[derive(Clone, Debug)]
pub struct PluginExport {
    pub name: String,
    pub base: String,
    pub version: semver::Version,
}

/// The checked shape of a component.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The `osler:plugin` version it was built against.
    pub api: semver::Version,
    /// The `osler:plugin` interfaces it imports (without package and version).
    pub host_imports: Vec<String>,
    pub imports: Vec<PluginImport>,
    pub exports: Vec<PluginExport>,
}

/// `ns:pkg/iface@1.2.3` → (`ns:pkg`, `iface`, version).
fn split(name: &str) -> Option<(&str, &str, Option<semver::Version>)> {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(semver::Version::parse(v).ok()?)),
        None => (name, None),
    };
    let (pkg, iface) = path.split_once('/')?;
    Some((pkg, iface, version))
}

/// Every function of an inter-plugin interface must return `result<_, error>` where `error`
/// has an `unavailable` case, so that the host can answer for a provider that is not there.
fn returns_plugin_error(f: &ComponentFunc) -> bool {
    let results: Vec<Type> = f.results().collect();
    match results.as_slice() {
        [Type::Result(r)] => match r.err() {
            Some(Type::Variant(v)) => v.cases().any(|c| c.name == "unavailable"),
            _ => false,
        },
        _ => false,
    }
}

fn funcs_of(engine: &Engine, item: &ComponentItem, name: &str) -> Result<Vec<String>, String> {
    let ComponentItem::ComponentInstance(inst) = item else {
        return Err(format!("`{name}` is not an interface"));
    };
    let mut out = Vec::new();
    for (fname, ext) in inst.exports(engine) {
        match &ext.ty {
            ComponentItem::ComponentFunc(f) => {
                if !returns_plugin_error(f) {
                    return Err(format!(
                        "`{name}`: function `{fname}` must return result<_, \
                         osler:plugin/types.error> so that callers can be told when no \
                         provider is available"
                    ));
                }
                out.push(fname.to_string());
            }
            ComponentItem::Type(_) => {}
            _ => {
                return Err(format!(
                    "`{name}`: `{fname}` is a resource or nested item; plugin interfaces carry \
                     functions and plain data types only"
                ));
            }
        }
    }
    Ok(out)
}

pub fn check(engine: &Engine, component: &Component, m: &Manifest) -> Result<Shape, String> {
    let ty = component.component_type();
    let mut api: Option<semver::Version> = None;
    let mut note_api = |v: &Option<semver::Version>, name: &str| -> Result<(), String> {
        let Some(v) = v else {
            return Err(format!("`{name}` has no version"));
        };
        if !HOST_API_VERSIONS.contains(v) {
            return Err(format!(
                "the component uses osler:plugin@{v}, which this host does not provide"
            ));
        }
        if !m.api.matches(v) {
            return Err(format!(
                "the component uses osler:plugin@{v} but its manifest says api = \"{}\"",
                m.api
            ));
        }
        if let Some(a) = &api
            && a != v
        {
            return Err(format!("the component mixes osler:plugin@{a} and @{v}"));
        }
        api = Some(v.clone());
        Ok(())
    };

    let mut host_imports = Vec::new();
    let mut imports = Vec::new();
    for (name, ext) in ty.imports(engine) {
        let Some((pkg, iface, version)) = split(name) else {
            return Err(format!(
                "the component imports `{name}`, which is not an interface"
            ));
        };
        if pkg.starts_with("wasi:") {
            if !WASI_ALLOWED.contains(&pkg) {
                return Err(format!(
                    "the component imports `{name}`; plugins get no {pkg} (outbound requests go \
                     through osler:plugin/outbound-http)"
                ));
            }
            continue;
        }
        if pkg == "osler:plugin" {
            note_api(&version, name)?;
            if FREE_INTERFACES.contains(&iface) {
            } else if let Some(cap) = capability_for(iface) {
                if !m.capabilities.contains(&cap) {
                    return Err(format!(
                        "the component imports `{name}` but its manifest does not declare the \
                         capability \"{cap}\""
                    ));
                }
            } else {
                return Err(format!(
                    "the component imports `{name}`, which osler:plugin does not have"
                ));
            }
            host_imports.push(iface.to_string());
            continue;
        }
        let base = format!("{pkg}/{iface}");
        let Some(version) = version else {
            return Err(format!("the component imports `{name}` without a version"));
        };
        match m.imports.get(&base) {
            Some(req) if req.matches(&version) => {}
            Some(req) => {
                return Err(format!(
                    "the component imports `{name}` but its manifest asks for {base} {req}"
                ));
            }
            None => {
                return Err(format!(
                    "the component imports `{name}`, which its manifest does not declare under \
                     [imports]"
                ));
            }
        }
        let funcs = funcs_of(engine, &ext.ty, name)?;
        imports.push(PluginImport {
            name: name.to_string(),
            base,
            version,
            funcs,
        });
    }
    for base in m.imports.keys() {
        if !imports.iter().any(|i| &i.base == base) {
            return Err(format!(
                "the manifest declares the import {base} but the component does not import it"
            ));
        }
    }

    let mut exports = Vec::new();
    let mut has_handler = false;
    for (name, ext) in ty.exports(engine) {
        if is_componentize_py_init(engine, name, &ext.ty) {
            continue;
        }
        let Some((pkg, iface, version)) = split(name) else {
            return Err(format!(
                "the component exports `{name}`, which is not an interface"
            ));
        };
        if pkg == "osler:plugin" {
            note_api(&version, name)?;
            match iface {
                "handler" => has_handler = true,
                "event-handler" => {}
                _ => {
                    return Err(format!(
                        "the component exports `{name}`; a plugin exports only handler and \
                         event-handler of osler:plugin"
                    ));
                }
            }
            continue;
        }
        let base = format!("{pkg}/{iface}");
        let Some(version) = version else {
            return Err(format!("the component exports `{name}` without a version"));
        };
        if m.exports.get(&base) != Some(&version) {
            return Err(format!(
                "the component exports `{name}`, which its manifest does not declare under \
                 [exports] with that version"
            ));
        }
        funcs_of(engine, &ext.ty, name)?;
        exports.push(PluginExport {
            name: name.to_string(),
            base,
            version,
        });
    }
    if !has_handler {
        return Err(
            "the component does not export osler:plugin/handler; is it an Osler plugin?".into(),
        );
    }
    for (base, v) in &m.exports {
        if !exports.iter().any(|e| &e.base == base) {
            return Err(format!(
                "the manifest declares the export {base}@{v} but the component does not export it"
            ));
        }
    }
    Ok(Shape {
        api: api.ok_or("the component does not use osler:plugin")?,
        host_imports,
        imports,
        exports,
    })
}
