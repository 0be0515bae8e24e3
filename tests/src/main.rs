//! Runs every scenario and ends with the line "N passed, M failed"; used
//! inside the VMs, where there is no cargo. Arguments: scenario names to
//! run (default: all).

fn main() {
    let env = match husk_tests::Env::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("husk-tests: {e}");
            std::process::exit(2);
        }
    };
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, _) in husk_tests::ALL
        .iter()
        .filter(|(n, _)| wanted.is_empty() || wanted.iter().any(|w| w == n))
    {
        match husk_tests::run_scenario(&env, name) {
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
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
