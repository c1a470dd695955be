//! Turns flags into the engine's plain settings.

use super::args::{GlobalArgs, SelectArgs};
use crate::engine::{RunSettings, Selection};
use crate::phase::Values;
use crate::phase::model::parse_duration;

pub fn run_settings(
    global: &GlobalArgs,
    select: &SelectArgs,
    values: &Values,
    interactive: bool,
) -> Result<RunSettings, String> {
    let lock_duration = parse_duration(&global.lock_duration)
        .map_err(|e| format!("error: --lock-duration: {e}"))?;
    if lock_duration < std::time::Duration::from_secs(1) {
        return Err("error: --lock-duration must be at least 1s".into());
    }
    Ok(RunSettings {
        selection: Selection {
            phases: select.phases.clone(),
            from: select.from.clone(),
            steps: select.steps.clone(),
            force: false,
            ignore_dependencies: select.ignore_dependencies,
        },
        state_namespace: global.state_namespace.clone(),
        lock_duration,
        values: values.as_json().clone(),
        interactive,
        ..RunSettings::default()
    })
}
