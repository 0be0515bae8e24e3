//! Runs every scenario and ends with the line "N passed, M failed"; used
//! inside the VMs, where there is no cargo. Arguments: scenario names to
//! run, in that order, a name as often as it is given (default: all).

use std::sync::mpsc;
use std::time::Duration;

/// A scenario that takes longer than this is hung: every wait inside one
/// is bounded well below it.
const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

/// The scenarios that start hundreds of containers, which take minutes
/// under emulation: theirs.
const LONG_SCENARIOS: &[&str] = &["a_rootfs_swapped_for_a_symlink_never_runs_on_the_host"];
const LONG_LIMIT: Duration = Duration::from_secs(420);

fn main() {
    let env = match husk_tests::Env::from_env() {
        Ok(env) => &*Box::leak(Box::new(env)),
        Err(e) => {
            eprintln!("husk-tests: {e}");
            std::process::exit(2);
        }
    };
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names = husk_tests::ALL.iter().map(|(n, _)| n.to_string()).collect();
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut flaky = Vec::new();
    for name in names {
        let run = || {
            let (tx, rx) = mpsc::channel();
            let scenario = name.clone();
            std::thread::spawn(move || {
                let _ = tx.send(husk_tests::run_scenario(env, &scenario));
            });
            let limit = if LONG_SCENARIOS.contains(&name.as_str()) {
                LONG_LIMIT
            } else {
                SCENARIO_LIMIT
            };
            rx.recv_timeout(limit).unwrap_or_else(|e| {
                // A panic (its message is already out) fails the scenario;
                // a hang shows where everything sleeps, then ends the run:
                // the hung thread holds the lock every scenario takes.
                if e == mpsc::RecvTimeoutError::Disconnected {
                    return Err("the scenario panicked".into());
                }
                println!(
                    "FAILED {name}: no result after {limit:?}; the processes:\n{}",
                    husk_tests::host::process_table()
                );
                println!("{passed} passed, {} failed, {skipped} skipped", failed + 1);
                std::process::exit(1);
            })
        };
        // Under emulation a scenario's timing can go wrong once; a second
        // failure is a failure, and a pass on the second attempt is shown
        // with the first attempt's whole output, never hidden.
        let result = match run() {
            Err(first) => {
                println!("RETRYING {name} after a failure:\n{first}");
                let second = run();
                if second.is_ok() {
                    flaky.push(name.clone());
                }
                second
            }
            result => result,
        };
        match result {
            Ok(None) => {
                passed += 1;
                println!("ok {name}");
            }
            Ok(Some(why)) => {
                skipped += 1;
                println!("skipped {name}: {why}");
            }
            Err(e) => {
                failed += 1;
                println!("FAILED {name}:\n{e}");
            }
        }
    }
    if !flaky.is_empty() {
        println!("flaky (passed on a second attempt): {}", flaky.join(", "));
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
