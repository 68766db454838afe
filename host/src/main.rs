use clap::Parser;

fn main() {
    // Before any thread starts (see osler_host::memory).
    osler_host::memory::limit_arenas();
    // Logs go to stderr; the level comes from OSLER_LOG (default `info`, with the storage
    // engine's own messages from `warn`: it narrates every table it recovers). They never
    // carry patient data: request logs name the route template, not the path or query.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OSLER_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn")
            }),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal; a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = osler_host::cli::Cli::parse();
    match osler_host::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
