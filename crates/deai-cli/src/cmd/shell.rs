//! `deai completions SHELL` and `deai man`: shell completion scripts and man pages, generated
//! from the same definitions that parse the command line, so they never drift from it.

use std::path::PathBuf;

use clap::CommandFactory as _;

/// Arguments of `deai completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  deai completions bash > ~/.local/share/bash-completion/completions/deai
  deai completions zsh > \"${fpath[1]}/_deai\"
  deai completions fish > ~/.config/fish/completions/deai.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `deai man`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai man --out man/ && man -l man/deai-task-create.1")]
pub struct ManArgs {
    /// Write a page per command (deai.1, deai-task.1, deai-task-create.1, ...) into this
    /// directory instead of printing deai.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `deai completions`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "deai", &mut out);
    crate::output::write_stdout(format_args!("{}", String::from_utf8_lossy(&out)));
    Ok(())
}

/// Every command and subcommand, with its man page name (`deai-task-create`).
fn pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
    let name = if prefix.is_empty() {
        cmd.get_name().to_string()
    } else {
        format!("{prefix}-{}", cmd.get_name())
    };
    for sub in cmd.get_subcommands() {
        pages(sub, &name, out);
    }
    out.push((name.clone(), cmd.clone().name(name)));
}

/// Runs `deai man`.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    cmd.build();
    let Some(dir) = args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        crate::output::write_stdout(format_args!("{}", String::from_utf8_lossy(&page)));
        return Ok(());
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut all = Vec::new();
    pages(&cmd, "", &mut all);
    for (name, page_cmd) in &all {
        let mut page = Vec::new();
        clap_mangen::Man::new(page_cmd.clone()).render(&mut page)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    crate::output::write_stdout(format_args!(
        "wrote {} man pages to {}\n",
        all.len(),
        dir.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_pages_cover_every_command() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut crate::Cli::command(), "deai", &mut out);
            let text = String::from_utf8(out).expect("utf-8");
            for word in ["dataset", "import", "label-column", "watch", "completions"] {
                assert!(text.contains(word), "{shell:?} completion lacks {word}");
            }
        }
        let dir = tempfile::tempdir().expect("tmp");
        man(ManArgs {
            out: Some(dir.path().to_path_buf()),
        })
        .expect("man pages");
        let page = std::fs::read_to_string(dir.path().join("deai-task-create.1"))
            .expect("a page per subcommand");
        assert!(page.contains("spec"), "the page documents --spec");
        assert!(dir.path().join("deai.1").exists());
        assert!(dir.path().join("deai-dataset-import.1").exists());
    }
}
