//! husk's container scenarios. Each drives the real runner as a user would,
//! against a busybox rootfs, and checks from inside and outside. The same
//! list runs under `cargo test` on the host (tests/host.rs) and as the
//! static `husk-tests` program inside the VMs.
//!
//! Every scenario is also checked for what it leaves behind: the host's
//! mount table, cgroup directories, and processes in other PID namespaces
//! must be as they were before it ran.

mod archives;
mod cgroups;
mod cni;
mod detached;
pub mod elf;
mod escapes;
mod exit;
mod filesystems;
mod hardening;
mod harness;
pub mod host;
mod image_runs;
mod images;
mod images_hostile;
mod init;
mod kernels;
mod lifecycle;
mod lifecycle_failures;
mod mounts;
mod namespaces;
mod netdump;
mod network;
pub mod rootfs;
mod terminal;

pub use harness::*;

/// The scenarios, in the order they run. One list: it makes both the
/// `ALL` table and the host's #[test] functions.
#[macro_export]
macro_rules! for_each_scenario {
    ($m:ident) => {
        $m! {
            pid_one_with_no_parent,
            namespaces_differ_from_the_host,
            hostname_env_and_workdir,
            defaults_hostname_path_and_workdir,
            proc_sys_and_dev_mount_options,
            dev_nodes_are_the_right_devices,
            devpts_is_a_new_instance,
            only_lo_and_it_is_up,
            net_host_shares_the_host_network,
            etc_files_are_the_containers_own,
            old_root_is_unreachable,
            a_chrooted_runner_pivots_or_says_why_not,
            exit_status_is_the_programs,
            not_executable_is_126,
            not_found_is_127,
            stdin_reaches_an_interactive_shell,
            sigint_to_the_runner_ends_pid_one_with_130,
            caught_signals_are_forwarded,
            memory_hog_is_killed_with_137,
            under_the_memory_limit_runs,
            pids_limit_stops_a_fork_loop,
            cpu_quota_throttles,
            cpuset_pins_the_container,
            cgroup_parent_is_made_and_removed,
            a_killed_runners_cgroup_is_swept_by_the_next,
            bad_input_is_one_line_and_leaves_nothing,
            leftover_checks_see_a_running_container,
            setup_failure_leaves_nothing,
            non_root_is_refused,
            a_terminal_of_its_own,
            exec_tty_opens_only_the_containers_own_ptmx,
            default_capabilities_no_new_privs_and_seccomp,
            capability_flags_change_the_set,
            device_nodes_a_container_makes_do_not_open,
            seccomp_refuses_with_eperm_and_programs_still_work,
            seccomp_allow_list_follows_the_capabilities,
            masked_and_read_only_paths,
            sys_fs_cgroup_is_the_containers_own_and_read_only,
            no_controlling_terminal_so_no_tiocsti,
            only_stdio_reaches_the_container,
            proc_exe_cannot_overwrite_the_runtime,
            symlinked_mount_points_are_refused,
            a_symlinked_dev_null_does_not_unmask,
            racing_symlink_exchange_never_escapes,
            a_failure_at_every_step_leaves_nothing,
            user_namespaces_cannot_reach_the_hosts_cgroups,
            a_rootfs_swapped_for_a_symlink_never_runs_on_the_host,
            device_nodes_below_the_rootfs_do_not_open,
            a_killed_runners_container_is_ended_by_the_next_command,
            a_capability_that_cannot_be_granted_is_an_error,
            a_net_namespace_is_joined_by_path,
            a_name_is_taken_once,
            a_missing_interpreter_is_named,
            fallbacks_keep_the_guarantees_where_calls_are_missing,
            fifty_detached_containers_are_all_in_ps,
            logs_follow_a_counter,
            exec_joins_everything_and_returns_the_status,
            stop_waits_the_grace_time_then_kills,
            rm_force_leaves_nothing,
            a_detached_container_survives_its_shell_and_terminal,
            attach_takes_the_terminal_and_lets_go,
            two_rm_at_once_one_removes_the_other_says_so,
            a_killed_monitor_leaves_nothing,
            a_truncated_state_file_is_a_clear_answer,
            init_reaps_orphans,
            init_still_says_the_oom_killer_ended_it,
            yes_into_head_ends_as_on_a_host_with_init,
            ctrl_c_on_a_terminal_ends_pid_one_without_a_handler,
            a_tty_with_stdin_not_a_terminal_gets_its_end,
            volumes_bind_host_paths_and_ro_holds_below,
            read_only_root_keeps_tmpfs_and_volumes_writable,
            volume_and_tmpfs_targets_never_follow_symlinks,
            overlay_roots_share_layers_and_keep_writes_apart,
            many_layers_mount_or_say_the_limit,
            a_failure_at_every_step_with_layers_and_volumes_leaves_nothing,
            a_killed_runners_overlay_is_swept_or_kept,
            images_import_from_every_kind_of_archive_and_share_layers,
            images_hostile_archives_are_refused_and_change_nothing,
            images_a_killed_import_leaves_nothing_used,
            images_run_with_their_layers_defaults_and_commit,
            bridge_containers_talk_and_reach_out_through_nat,
            published_ports_reach_the_container_from_outside_and_localhost,
            networks_are_isolated_and_addresses_come_back,
            fifty_containers_at_once_get_fifty_addresses,
            network_failures_and_kills_leave_nothing,
            cni_networks_run_the_standard_plugins_and_give_everything_back,
        }
    };
}

macro_rules! table {
    ($($name:ident),* $(,)?) => {
        /// Every scenario with its name.
        pub const ALL: &[(&str, fn(&Env) -> Result<(), String>)] = &[$((stringify!($name), all_scenarios::$name)),*];
    };
}
for_each_scenario!(table);

/// The scenarios, whichever file they are in.
mod all_scenarios {
    pub use crate::cgroups::*;
    pub use crate::cni::*;
    pub use crate::escapes::*;
    pub use crate::exit::*;
    pub use crate::filesystems::*;
    pub use crate::hardening::*;
    pub use crate::image_runs::*;
    pub use crate::images::*;
    pub use crate::images_hostile::*;
    pub use crate::init::*;
    pub use crate::kernels::*;
    pub use crate::lifecycle::*;
    pub use crate::lifecycle_failures::*;
    pub use crate::mounts::*;
    pub use crate::namespaces::*;
    pub use crate::network::*;
    pub use crate::terminal::*;
}

/// The rootfs as a docker-archive of one layer, tagged test:latest, for
/// the OCI callers' tests (ctr image import).
pub fn image_archive(rootfs: &std::path::Path) -> Vec<u8> {
    archives::docker_archive(&[archives::tree_layer(rootfs)], None, false)
}

/// The rootfs as a plain tar (podman import).
pub fn rootfs_tar(rootfs: &std::path::Path) -> Vec<u8> {
    archives::tree_layer(rootfs)
}
