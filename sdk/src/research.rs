//! Research plugins: experimental tools (a cohort count, a risk score) that a clinic's
//! administrator installs into the research sandbox for named researchers, and that run on
//! de-identified data only.
//!
//! A research plugin targets the `osler:plugin/research@0.2.0` world: it exports one
//! [`Research::run`], and may import only [`log`](crate::log), [`config`](crate::config),
//! [`kv`](crate::kv) (its own storage, wiped when the plugin is removed; a batch may not
//! publish events) and [`patients::deidentified`](crate::patients::deidentified). The host
//! refuses, before compiling, a research component that imports anything else. Its manifest
//! (`plugin.toml`) is an ordinary one that asks only for `kv` and/or `patients.deidentified`.
//!
//! A run is deterministic: the same parameters and `as_of` on the same data give the same
//! table and use the same fuel. The clocks read `as_of`, random numbers are seeded from the
//! run, there is no environment, no files, no network. A run has a fuel budget and a memory
//! limit; past either it is stopped.
//!
//! Return counts as [`Cell::Count`]: when the administrator enabled small-cell protection,
//! the host replaces every count below the threshold with "suppressed" before anyone sees it.
//!
//! ```no_run
//! use osler_sdk::research::{Cell, Research, RunInput, Table};
//! use osler_sdk::{Error, patients};
//!
//! struct Cohort;
//!
//! impl Research for Cohort {
//!     fn run(input: RunInput) -> Result<Table, Error> {
//!         let params: serde_json::Value = serde_json::from_str(&input.parameters)
//!             .map_err(|e| Error::invalid(e.to_string()))?;
//!         let gender = params["gender"].as_str().unwrap_or("female");
//!         let (mut n, mut cursor) = (0, None);
//!         loop {
//!             let page = patients::deidentified::list(cursor.as_deref(), 100)?;
//!             n += page.patients.iter().filter(|p| p["gender"] == gender).count() as u64;
//!             match page.next {
//!                 Some(next) => cursor = Some(next),
//!                 None => break,
//!             }
//!         }
//!         Ok(Table {
//!             columns: vec!["gender".into(), "patients".into()],
//!             rows: vec![vec![Cell::Text(gender.into()), Cell::Count(n)]],
//!         })
//!     }
//! }
//!
//! osler_sdk::export_research!(Cohort);
//! ```

/// The bindings `wit-bindgen` generates for the `osler:plugin/research@0.2.0` world; its
/// imports are this crate's (so [`kv`](crate::kv), [`log`](crate::log) and the others work
/// unchanged).
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.2.0",
        world: "osler:plugin/research@0.2.0",
        pub_export_macro: true,
        default_bindings_module: "osler_sdk::research::bindings",
        with: {
            "osler:plugin/types@0.2.0": crate::types,
            "osler:plugin/log@0.2.0": crate::bindings::osler::plugin::log,
            "osler:plugin/config@0.2.0": crate::bindings::osler::plugin::config,
            "osler:plugin/kv@0.2.0": crate::bindings::osler::plugin::kv,
            "osler:plugin/patients-deidentified@0.2.0": crate::bindings::osler::plugin::patients_deidentified,
        },
    });
}

pub use bindings::exports::osler::plugin::research_run::{Cell, RunInput, Table};

/// A research plugin. Implement it for a unit struct and export that with
/// [`export_research!`](crate::export_research).
pub trait Research {
    /// One run: `input.parameters` is the researcher's JSON object, `input.as_of_millis` the
    /// time the run is at, `input.site` the site. The table is what the researcher gets.
    fn run(input: RunInput) -> Result<Table, crate::Error>;
}

/// Exports a [`Research`] implementation as the component's `osler:plugin/research-run`.
#[macro_export]
macro_rules! export_research {
    ($plugin:ident) => {
        impl $crate::research::bindings::exports::osler::plugin::research_run::Guest for $plugin {
            fn run(
                input: $crate::research::RunInput,
            ) -> ::core::result::Result<$crate::research::Table, $crate::Error> {
                <$plugin as $crate::research::Research>::run(input)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::research::bindings::export!($plugin with_types_in $crate::research::bindings);

        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(
            $crate::research::RunInput,
        ) -> ::core::result::Result<$crate::research::Table, $crate::Error> =
            <$plugin as $crate::research::Research>::run;
    };
}
