//! The `progjar-chat` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    progjar_chat::cli::main()
}
