//! `zaqar`: the command-line client of the Zaqar v2 API (see `src/cli/`).

fn main() -> std::process::ExitCode {
    zaqar_cli::main()
}
