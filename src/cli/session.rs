//! What every subcommand shares: the global flags turned into settings, the redactor, the
//! reporter, loading the phases and values, and connecting to the cluster. The subcommands
//! themselves are small methods here, each a few lines over the engine.

use std::io::IsTerminal as _;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::args::{GlobalArgs, OutputFormat, PlanArgs, ResetArgs, RunArgs, SelectArgs};
use super::confirm::TerminalDecider;
use super::prompter::TerminalPrompter;
use super::settings;
use crate::cluster::{Cluster, ConnectOptions, KubeCluster};
use crate::engine::{
    self, EngineError, EventSink, Redactor, ResetScope, RunSettings, StepsExecutor,
};
use crate::phase::{self, PhaseSet, Templater, Values};
use crate::report;
use crate::steps::{NoPrompter, Prompter};

/// How a subcommand failed: the exit code, and a message for stderr (`None` when the
/// reporter already told the story, as for failed steps).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: Option<String>,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: Some(message.into()),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Self {
        let told_by_reporter = matches!(
            error,
            EngineError::StepsFailed(_) | EngineError::Drift { .. } | EngineError::Interrupted(_)
        );
        Failure {
            code: u8::try_from(error.exit_code()).unwrap_or(1),
            message: (!told_by_reporter)
                .then(|| format!("error: {}", crate::error_chain::error_chain(&error))),
        }
    }
}

pub struct Session {
    global: GlobalArgs,
    pub redactor: Redactor,
    interactive: bool,
}

impl Session {
    pub fn new(global: &GlobalArgs) -> Self {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        Session {
            global: clone_global(global),
            redactor: Redactor::new(),
            interactive,
        }
    }

    fn values(&self) -> Result<Values, Failure> {
        Values::load(&self.global.phases, &self.global.values, &self.global.set)
            .map_err(|e| Failure::bad_input(format!("error: {e}")))
    }

    /// Loads and validates every phase file: bad input stops here, before any cluster call.
    pub fn load(&self) -> Result<PhaseSet, Failure> {
        Ok(self.load_with_values()?.0)
    }

    fn load_with_values(&self) -> Result<(PhaseSet, Values), Failure> {
        let values = self.values()?;
        if !self.global.phases.is_dir() {
            return Err(Failure::bad_input(format!(
                "error: phases directory `{}` does not exist; pass --phases DIR",
                self.global.phases.display()
            )));
        }
        let phases = phase::load_dir(&self.global.phases, &values).map_err(|diagnostics| {
            let count = diagnostics.0.len();
            Failure::bad_input(format!(
                "{diagnostics}\nerror: {count} problem{} in {}; nothing was changed",
                if count == 1 { "" } else { "s" },
                self.global.phases.display()
            ))
        })?;
        Ok((phases, values))
    }

    async fn connect(&self, read_only: bool) -> Result<Arc<dyn Cluster>, Failure> {
        let options = ConnectOptions {
            kubeconfig: self.global.kubeconfig.clone(),
            context: self.global.context.clone(),
            read_only,
        };
        let cluster = KubeCluster::connect(options).await.map_err(|e| Failure {
            code: 1,
            message: Some(format!("error: {e}")),
        })?;
        Ok(Arc::new(cluster))
    }

    fn events(&self) -> EventSink {
        let reporter = report::choose(
            self.global.output == OutputFormat::Json,
            self.global.no_color,
        );
        let reporter = if self.global.quiet {
            report::quiet(reporter)
        } else {
            reporter
        };
        EventSink::new(reporter, self.redactor.clone())
    }

    fn executor(
        &self,
        values: &Values,
        phases: &PhaseSet,
        cluster: &Arc<dyn Cluster>,
    ) -> Arc<StepsExecutor> {
        let templates = Templater::new(
            values.as_json().clone(),
            Some(cluster.clone()),
            self.redactor.clone(),
        )
        .with_phases(phases);
        let prompter: Arc<dyn Prompter> = if self.interactive {
            Arc::new(TerminalPrompter)
        } else {
            Arc::new(NoPrompter)
        };
        Arc::new(StepsExecutor::new(templates, prompter))
    }

    fn settings(&self, select: &SelectArgs, values: &Values) -> Result<RunSettings, Failure> {
        settings::run_settings(&self.global, select, values, self.interactive)
            .map_err(Failure::bad_input)
    }

    pub fn validate(&self) -> Result<(), Failure> {
        let phases = self.load()?;
        let steps = phases.steps().count();
        println!(
            "{} phases, {steps} steps: no problems found",
            phases.phases.len()
        );
        Ok(())
    }

    pub async fn plan(&self, args: &PlanArgs) -> Result<(), Failure> {
        let (phases, values) = self.load_with_values()?;
        let mut settings = self.settings(&args.select, &values)?;
        settings.probe = args.probe;
        let cluster = self.connect(true).await?;
        let executor = self.executor(&values, &phases, &cluster);
        engine::plan(&settings, &phases.phases, cluster, executor, self.events()).await?;
        Ok(())
    }

    pub async fn run(&self, args: &RunArgs, cancel: CancellationToken) -> Result<(), Failure> {
        let (phases, values) = self.load_with_values()?;
        let mut settings = self.settings(&args.select, &values)?;
        settings.selection.force = args.force;
        settings.jobs = usize::from(args.jobs);
        let decider = (!self.global.yes).then(|| Arc::new(TerminalDecider::new(self.interactive)));
        settings.confirm = decider.clone().map(|d| d as Arc<dyn engine::Decider>);
        let cluster = self.connect(false).await?;
        let executor = self.executor(&values, &phases, &cluster);
        let outcome = engine::run(
            &settings,
            &phases.phases,
            cluster,
            executor,
            self.events(),
            cancel,
        )
        .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(EngineError::Declined)
                if decider
                    .as_ref()
                    .is_some_and(|d| d.refused_without_terminal()) =>
            {
                Err(Failure::bad_input(
                    "error: this run would change the cluster and there is no terminal to confirm it; pass --yes",
                ))
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn status(&self) -> Result<(), Failure> {
        let (phases, values) = self.load_with_values()?;
        let settings = self.settings(&SelectArgs::default(), &values)?;
        let cluster = self.connect(true).await?;
        engine::status(&settings, &phases.phases, cluster, self.events()).await?;
        Ok(())
    }

    pub async fn verify(&self, select: &SelectArgs) -> Result<(), Failure> {
        let (phases, values) = self.load_with_values()?;
        let settings = self.settings(select, &values)?;
        let cluster = self.connect(true).await?;
        let executor = self.executor(&values, &phases, &cluster);
        engine::verify(&settings, &phases.phases, cluster, executor, self.events()).await?;
        Ok(())
    }

    pub async fn reset(&self, args: &ResetArgs) -> Result<(), Failure> {
        let (phases, values) = self.load_with_values()?;
        let select = SelectArgs {
            phases: args.phases.clone(),
            steps: args.steps.clone(),
            ..SelectArgs::default()
        };
        let mut settings = self.settings(&select, &values)?;
        let decider = (!self.global.yes).then(|| Arc::new(TerminalDecider::new(self.interactive)));
        settings.confirm = decider.clone().map(|d| d as Arc<dyn engine::Decider>);
        let scope = if args.all {
            ResetScope::All
        } else {
            ResetScope::Selection
        };
        let cluster = self.connect(false).await?;
        match engine::reset(&settings, &phases.phases, cluster, self.events(), scope).await {
            Ok(_) => Ok(()),
            Err(EngineError::Declined)
                if decider
                    .as_ref()
                    .is_some_and(|d| d.refused_without_terminal()) =>
            {
                Err(Failure::bad_input(
                    "error: reset changes the checkpoint and there is no terminal to confirm it; pass --yes",
                ))
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn unlock(&self) -> Result<(), Failure> {
        let values = self.values()?;
        let settings = self.settings(&SelectArgs::default(), &values)?;
        let cluster = self.connect(false).await?;
        engine::unlock(&settings, cluster, self.events()).await?;
        Ok(())
    }
}

fn clone_global(g: &GlobalArgs) -> GlobalArgs {
    GlobalArgs {
        kubeconfig: g.kubeconfig.clone(),
        context: g.context.clone(),
        phases: g.phases.clone(),
        values: g.values.clone(),
        set: g.set.clone(),
        state_namespace: g.state_namespace.clone(),
        output: g.output,
        verbose: g.verbose,
        quiet: g.quiet,
        no_color: g.no_color,
        yes: g.yes,
        lock_duration: g.lock_duration.clone(),
    }
}
