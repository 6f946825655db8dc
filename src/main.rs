//! The `morgue` binary: everything lives in the library; this only hands over.

#![forbid(unsafe_code)]

/// mimalloc: letters are many small allocations (key, value, headers), and the
/// system allocator spent a fifth of a DLQ scan in malloc/free.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    morgue::cli::main()
}
