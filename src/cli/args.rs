//! The command line: clap types only. Each subcommand's flags become a plain settings struct
//! in `cli::settings`; nothing outside `src/cli/` sees clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Bring up the platform services of a Kubernetes cluster once GitOps installed their charts:
/// OpenBao/Vault, External Secrets, identity-provider clients, Gitea tokens, shared secrets.
#[derive(Debug, Parser)]
#[command(name = "bringup", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context)
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Directory of phase files
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "phases",
        env = "BRINGUP_PHASES",
        hide_env_values = true
    )]
    pub phases: PathBuf,
    /// Values file layered over <phases>/values.yaml (repeatable; later files win)
    #[arg(long = "values", short = 'f', global = true, value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Set a value: --set gitea.admin=gitea_admin (repeatable; wins over values files)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Namespace of the checkpoint ConfigMap and the lock Lease
    #[arg(
        long,
        global = true,
        value_name = "NS",
        default_value = "bringup",
        env = "BRINGUP_STATE_NAMESPACE",
        hide_env_values = true
    )]
    pub state_namespace: String,
    /// Output format
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More logs (-v info, -vv debug, -vvv trace); secrets are redacted at every level
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and the final summary
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// No colors (also when NO_COLOR is set)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Answer yes to the confirmation before the first change to the cluster
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// How long the lock Lease lives without renewal
    #[arg(
        long,
        global = true,
        hide = true,
        value_name = "DURATION",
        default_value = "30s",
        env = "BRINGUP_LOCK_DURATION"
    )]
    pub lock_duration: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a run would do, changing nothing (no lock, no writes)
    Plan(PlanArgs),
    /// Run the bring-up, resuming where the last run stopped
    Run(RunArgs),
    /// Show the checkpoint: each step's last outcome
    Status,
    /// Probe every step and report drift (exit 1 when something drifted)
    Verify(SelectArgs),
    /// Forget checkpoint entries so the steps run again
    Reset(ResetArgs),
    /// Check the phase files and values without touching a cluster
    Validate,
    /// Print the phase dependency graph
    Graph(GraphArgs),
    /// Break the run lock left by a run that cannot release it
    Unlock,
}

/// Which steps a command applies to.
#[derive(Debug, Args, Default)]
pub struct SelectArgs {
    /// Only this phase (repeatable); its dependencies must be done
    #[arg(long = "phase", id = "phase", value_name = "PHASE")]
    pub phases: Vec<String>,
    /// Start at this phase or phase/step, and go on in run order
    #[arg(long, value_name = "PHASE[/STEP]")]
    pub from: Option<String>,
    /// Only this step, as phase/step (repeatable)
    #[arg(long = "step", value_name = "PHASE/STEP")]
    pub steps: Vec<String>,
    /// Run selected phases even when their dependencies are not done
    #[arg(long)]
    pub ignore_dependencies: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Also run every step's read-only probe and show what it finds
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Run once-steps again even when the checkpoint says they are done
    #[arg(long)]
    pub force: bool,
    /// How many independent phases may run at once
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResetArgs {
    /// Forget every step of this phase (repeatable)
    #[arg(long = "phase", id = "phase", value_name = "PHASE")]
    pub phases: Vec<String>,
    /// Forget this step, as phase/step (repeatable)
    #[arg(long = "step", value_name = "PHASE/STEP")]
    pub steps: Vec<String>,
    /// Forget the whole checkpoint
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
