//! The examples' command line, shared by all of them: `--help` (or `-h`) prints what the
//! example does, its usage and its options, and exits with 0; an unknown option or a bad value
//! prints the problem and the usage on stderr and exits with status 2.
#![allow(unreachable_pub)] // `pub` for the examples that include it: nothing here is API

use std::fmt::Display;
use std::process;

/// What an example says about its command line.
#[derive(Debug)]
pub struct Cli {
    /// The example's name, as `cargo run --example` takes it.
    pub name: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// What follows the name in the usage line (`[--seed N]`), empty for no arguments.
    pub synopsis: &'static str,
    /// Each option (`--seed N`) and what it does.
    pub options: &'static [(&'static str, &'static str)],
}

impl Cli {
    /// The usage line.
    pub fn usage(&self) -> String {
        if self.synopsis.is_empty() {
            format!("usage: {}", self.name)
        } else {
            format!("usage: {} {}", self.name, self.synopsis)
        }
    }

    /// The whole help text: what it does, the usage, the options.
    pub fn help(&self) -> String {
        let help = ("-h, --help", "print this help and exit");
        let width = self
            .options
            .iter()
            .chain([&help])
            .map(|(option, _)| option.len())
            .max()
            .unwrap_or(0);
        let mut text = format!(
            "{}: {}\n\n{}\n\noptions:\n",
            self.name,
            self.about,
            self.usage()
        );
        for (option, what) in self.options.iter().chain([&help]) {
            text.push_str(&format!("  {option:<width$}  {what}\n"));
        }
        text
    }

    /// The arguments after the program's name. If `--help` or `-h` is among them, prints the
    /// help on stdout and exits with 0.
    pub fn args(&self) -> Vec<String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|arg| arg == "--help" || arg == "-h") {
            print!("{}", self.help());
            process::exit(0);
        }
        args
    }

    /// For an example without options: handles `--help`, and refuses any argument.
    pub fn no_arguments(&self) {
        if let Some(arg) = self.args().first() {
            self.fail(format!("unexpected argument {arg}"));
        }
    }

    /// Prints `problem` and the usage on stderr, and exits with status 2.
    pub fn fail(&self, problem: impl Display) -> ! {
        eprintln!(
            "{}: {problem}\n{}\n(--help for the options)",
            self.name,
            self.usage()
        );
        process::exit(2);
    }
}
