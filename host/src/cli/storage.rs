//! `osler storage …`: the data directory's database.

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use super::{Global, load_config};
use crate::app::{App, Mode};
use crate::audit::AuditFile;
use crate::storage::migrate::{self, Outcome};
use crate::storage::{Batch, Engine, Journal, StorageError, StorageResult};

#[derive(Subcommand, Debug)]
pub enum StorageCmd {
    /// Move the data directory's database to another engine (stop the server first). Every
    /// entry is copied and compared with the original before the copy is put in its place;
    /// the old database is kept beside it, renamed, for you to delete once satisfied.
    /// Safe to interrupt: run it again to finish.
    Migrate {
        /// The engine to move to: fjall (the default for new data directories) or sled.
        #[arg(long, default_value = "fjall", value_parser = parse_engine)]
        to: Engine,
    },
}

fn parse_engine(s: &str) -> Result<Engine, String> {
    Engine::named(s).ok_or_else(|| format!("unknown engine '{s}'; engines are: fjall, sled"))
}

pub fn run(global: &Global, cmd: StorageCmd) -> anyhow::Result<i32> {
    let StorageCmd::Migrate { to } = cmd;
    let config = load_config(global)?;
    let dir = config.data_dir.clone();
    // The audit trail is the write-ahead log's journal: a log left by a crash gives it back the
    // entries it lacks before the database is copied.
    let journal = || -> StorageResult<Arc<dyn Journal>> {
        let file = AuditFile::open(&dir)
            .map_err(|e| StorageError::Io(format!("cannot open the audit log: {e}")))?;
        Ok(Arc::new(file))
    };
    let outcome = migrate::migrate(
        &dir,
        to,
        &journal,
        config.storage_memory(),
        &mut |tree, n| println!("  {:<24} {n:>10} entries, copied and compared", tree.name()),
    )
    .with_context(|| {
        format!(
            "the database in {} was not moved (nothing was changed unless this says so)",
            dir.display()
        )
    })?;
    let m = match outcome {
        Outcome::Already(e) => {
            println!("{} already uses {}; nothing to do", dir.display(), e.name());
            return Ok(0);
        }
        Outcome::Done(m) => m,
    };
    // Open the moved database as the server will (the audit trail is checked against it), and
    // put the move on the trail.
    let app = App::open(config, Mode::Existing).context(
        "the database was moved, but the data directory does not open; the old database is \
         kept (see above)",
    )?;
    let detail = if m.resumed {
        format!(
            "finished an interrupted move from {} to {}; the old database is kept at {}",
            m.from.name(),
            m.to.name(),
            m.kept.display()
        )
    } else {
        format!(
            "moved from {} to {}: {} entries ({} bytes) copied and compared in {:.1} s; the old \
             database is kept at {}",
            m.from.name(),
            m.to.name(),
            m.entries,
            m.bytes,
            m.elapsed.as_secs_f64(),
            m.kept.display()
        )
    };
    let mut ev = App::cli_ctx().event("storage.migrate", "success");
    ev.detail = Some(detail.clone());
    app.commit_audited_blocking(&Batch::new(), ev)?;
    drop(app);
    println!("{detail}.");
    println!(
        "Start osler as before. Once the clinic has run on {} and you are satisfied, delete the \
         old database: rm -r {}",
        m.to.name(),
        m.kept.display()
    );
    Ok(0)
}
