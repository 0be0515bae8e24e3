//! The scenarios as cargo tests on this machine, against the release
//! runner. Without root each reports itself skipped, with the reason; as
//! root (CI) nothing may skip: what a scenario lacks here fails it.

macro_rules! host_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let env = husk_tests::Env::from_env().unwrap_or_else(|e| panic!("{e}"));
                match husk_tests::run_scenario(&env, stringify!($name)) {
                    Ok(None) => {}
                    Ok(Some(why)) if husk_tests::is_root() => panic!("skipped as root: {why}"),
                    Ok(Some(why)) => eprintln!("skipped {}: {why}", stringify!($name)),
                    Err(e) => panic!("{e}"),
                }
            }
        )*
    };
}

husk_tests::for_each_scenario!(host_tests);
