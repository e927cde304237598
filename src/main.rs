//! The `sentinel-bridge` binary: every command lives in [`sentinel_bridge::cli`]; this file only hands over.

// The webhook path allocates many small JSON values per event; mimalloc handles that far better than glibc's
// malloc under two busy threads (see the benchmark figures in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sentinel_bridge::cli::main()
}
