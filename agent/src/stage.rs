//! `codepod-agent stage …`: the host-side first step of a local sandbox, which the server runs
//! (as root, for the whole boundary) just before bubblewrap. In this order it
//!
//! 1. joins the sandbox's cgroup(s), so that everything after runs inside its limits;
//! 2. in a mount namespace of its own, mounts the sandbox's writable file systems — tmpfs
//!    capped in size and inodes, owned by the sandbox's uid — under the mount point, where
//!    bwrap binds them in (they exist in no other namespace and vanish with the sandbox);
//! 3. opens the seccomp program and the files bwrap copies in (`passwd`, `group`,
//!    `profile`), and names their descriptors to bwrap;
//! 4. sets the rlimits;
//! 5. drops to the sandbox's uid and gid, with no supplementary groups, no capabilities
//!    and no new privileges;
//! 6. executes bwrap.
//!
//! One program instead of a chain of shell tools (`unshare`, `sh`, `mount`, `mkdir`,
//! `setpriv`, `prlimit`): every exec costs a millisecond or two on a small machine, and the
//! chain made a sandbox start take half again as long (docs/benchmarks.md).
//!
//! ```text
//! codepod-agent stage [--join CGROUP_PROCS]... [--box DIR [--tmpfs NAME OPTIONS]...]
//!     [--as UID:GID] [--rlimit NAME=VALUE]... --seccomp FILE --passwd FILE --group FILE
//!     --profile FILE -- BWRAP [ARG...]
//! ```

use std::{
    ffi::CString,
    os::{fd::IntoRawFd, unix::ffi::OsStrExt},
    path::PathBuf,
};

use nix::{
    fcntl::OFlag,
    mount::MsFlags,
    sched::CloneFlags,
    sys::{resource::Resource, stat::Mode},
    unistd::{Gid, Uid},
};

/// What one stage does, parsed from its command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// `cgroup.procs` files to write this process's pid to.
    pub join: Vec<PathBuf>,
    /// Where the private file systems are mounted, and each one's name and tmpfs options.
    pub mounts: Option<(PathBuf, Vec<(String, String)>)>,
    /// The uid and gid to run bwrap as.
    pub identity: Option<(u32, u32)>,
    pub rlimits: Vec<(Resource, u64)>,
    pub seccomp: PathBuf,
    pub passwd: PathBuf,
    pub group: PathBuf,
    pub profile: PathBuf,
    /// bwrap and its arguments (those naming the descriptors are added).
    pub bwrap: Vec<String>,
}

/// Parses the stage's arguments (after `stage`).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut files: [Option<PathBuf>; 4] = Default::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--" => {
                plan.bwrap = args.collect();
                break;
            }
            "--join" => plan.join.push(PathBuf::from(value()?)),
            "--box" => plan.mounts = Some((PathBuf::from(value()?), Vec::new())),
            "--tmpfs" => {
                let name = value()?;
                let options = value()?;
                if name.is_empty() || name.contains('/') || name.starts_with('.') {
                    return Err(format!("bad tmpfs name {name:?}"));
                }
                match &mut plan.mounts {
                    Some((_, mounts)) => mounts.push((name, options)),
                    None => return Err("--tmpfs needs a --box before it".into()),
                }
            }
            "--as" => {
                let text = value()?;
                let (uid, gid) = text
                    .split_once(':')
                    .and_then(|(uid, gid)| Some((uid.parse().ok()?, gid.parse().ok()?)))
                    .ok_or_else(|| format!("--as takes UID:GID, not {text:?}"))?;
                if uid == 0 {
                    return Err("--as must not be root".into());
                }
                plan.identity = Some((uid, gid));
            }
            "--rlimit" => {
                let text = value()?;
                let (name, limit) = text
                    .split_once('=')
                    .ok_or_else(|| format!("--rlimit takes NAME=VALUE, not {text:?}"))?;
                let resource = match name {
                    "nofile" => Resource::RLIMIT_NOFILE,
                    "fsize" => Resource::RLIMIT_FSIZE,
                    "cpu" => Resource::RLIMIT_CPU,
                    "core" => Resource::RLIMIT_CORE,
                    "as" => Resource::RLIMIT_AS,
                    "nproc" => Resource::RLIMIT_NPROC,
                    _ => return Err(format!("unknown rlimit {name:?}")),
                };
                let limit = limit
                    .parse()
                    .map_err(|_| format!("bad rlimit value {limit:?}"))?;
                plan.rlimits.push((resource, limit));
            }
            "--seccomp" => files[0] = Some(PathBuf::from(value()?)),
            "--passwd" => files[1] = Some(PathBuf::from(value()?)),
            "--group" => files[2] = Some(PathBuf::from(value()?)),
            "--profile" => files[3] = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let [seccomp, passwd, group, profile] = files;
    plan.seccomp = seccomp.ok_or("--seccomp is required")?;
    plan.passwd = passwd.ok_or("--passwd is required")?;
    plan.group = group.ok_or("--group is required")?;
    plan.profile = profile.ok_or("--profile is required")?;
    if plan.bwrap.is_empty() {
        return Err("no bwrap command after --".into());
    }
    Ok(plan)
}

/// Carries the plan out; returns only if it failed (it ends by executing bwrap).
pub fn run(plan: Plan) -> String {
    match execute(plan) {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

fn execute(plan: Plan) -> Result<std::convert::Infallible, String> {
    let pid = std::process::id().to_string();
    for procs in &plan.join {
        std::fs::write(procs, &pid)
            .map_err(|error| format!("cannot join {}: {error}", procs.display()))?;
    }
    if let Some((mount_point, mounts)) = &plan.mounts {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|error| format!("cannot make a mount namespace: {error}"))?;
        // Nothing mounted here reaches the host's namespace, nor the other way round.
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|error| format!("cannot make the mounts private: {error}"))?;
        let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        tmpfs(
            mount_point,
            "codepod",
            base | MsFlags::MS_NOEXEC,
            "size=1m,nr_inodes=32,mode=0755",
        )?;
        for (name, options) in mounts {
            let dir = mount_point.join(name);
            nix::unistd::mkdir(&dir, Mode::from_bits_truncate(0o755))
                .map_err(|error| format!("cannot make {}: {error}", dir.display()))?;
            tmpfs(&dir, &format!("codepod-{name}"), base, options)?;
        }
    }
    // Open across the exec (no close-on-exec), for bwrap to read.
    let open = |path: &PathBuf| -> Result<String, String> {
        let fd = nix::fcntl::open(path, OFlag::O_RDONLY, Mode::empty())
            .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
        Ok(fd.into_raw_fd().to_string())
    };
    let (seccomp, passwd, group, profile) = (
        open(&plan.seccomp)?,
        open(&plan.passwd)?,
        open(&plan.group)?,
        open(&plan.profile)?,
    );
    for (resource, limit) in &plan.rlimits {
        nix::sys::resource::setrlimit(*resource, *limit, *limit)
            .map_err(|error| format!("cannot set {resource:?}: {error}"))?;
    }
    if let Some((uid, gid)) = plan.identity {
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
        nix::unistd::setgroups(&[]).map_err(|error| format!("cannot drop groups: {error}"))?;
        nix::unistd::setresgid(gid, gid, gid)
            .map_err(|error| format!("cannot take gid {gid}: {error}"))?;
        // From root to another uid: the permitted and effective capabilities go too.
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(|error| format!("cannot take uid {uid}: {error}"))?;
        if nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok() {
            return Err("still able to become root after dropping to the sandbox's uid".into());
        }
    }
    nix::sys::prctl::set_no_new_privs()
        .map_err(|error| format!("cannot forbid new privileges: {error}"))?;

    let mut argv = vec![plan.bwrap[0].clone()];
    argv.extend(
        [
            "--seccomp",
            &seccomp,
            "--ro-bind-data",
            &passwd,
            "/etc/passwd",
            "--ro-bind-data",
            &group,
            "/etc/group",
            "--ro-bind-data",
            &profile,
            "/etc/profile",
        ]
        .map(str::to_owned),
    );
    argv.extend(plan.bwrap[1..].iter().cloned());
    let cstring =
        |text: &[u8]| CString::new(text).map_err(|_| "an argument contains a NUL byte".to_owned());
    let argv = argv
        .iter()
        .map(|arg| cstring(arg.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let env = std::env::vars_os()
        .map(|(key, value)| {
            let mut pair = key.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            cstring(&pair)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let program = resolve(&plan.bwrap[0])?;
    nix::unistd::execve(&program, &argv, &env)
        .map_err(|error| format!("cannot run {}: {error}", plan.bwrap[0]))
}

fn tmpfs(
    target: &std::path::Path,
    source: &str,
    flags: MsFlags,
    options: &str,
) -> Result<(), String> {
    nix::mount::mount(Some(source), target, Some("tmpfs"), flags, Some(options))
        .map_err(|error| format!("cannot mount a tmpfs on {}: {error}", target.display()))
}

/// `program` as a path: itself if it has a slash, else found on `PATH`.
fn resolve(program: &str) -> Result<CString, String> {
    let found = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
    };
    let found = found.ok_or_else(|| format!("{program} is not on PATH"))?;
    CString::new(found.as_os_str().as_bytes()).map_err(|_| "a path contains a NUL byte".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_stage_is_parsed_from_its_command_line() {
        let plan = parse(args(
            "--join /cg/a/cgroup.procs --box /run/codepod/mnt --tmpfs workspace size=1,nr_inodes=2 \
             --as 1900000001:1900000001 --rlimit nofile=1024 --rlimit core=0 \
             --seccomp /s --passwd /p --group /g --profile /f -- bwrap --unshare-all",
        ))
        .unwrap();
        assert_eq!(plan.join, vec![PathBuf::from("/cg/a/cgroup.procs")]);
        assert_eq!(
            plan.mounts,
            Some((
                PathBuf::from("/run/codepod/mnt"),
                vec![("workspace".to_owned(), "size=1,nr_inodes=2".to_owned())]
            ))
        );
        assert_eq!(plan.identity, Some((1_900_000_001, 1_900_000_001)));
        assert_eq!(
            plan.rlimits,
            vec![(Resource::RLIMIT_NOFILE, 1024), (Resource::RLIMIT_CORE, 0)]
        );
        assert_eq!(plan.bwrap, args("bwrap --unshare-all"));
    }

    #[test]
    fn a_stage_refuses_root_odd_names_and_missing_parts() {
        let files = "--seccomp /s --passwd /p --group /g --profile /f -- bwrap";
        for bad in [
            format!("--as 0:0 {files}"),
            format!("--box /m --tmpfs ../x size=1 {files}"),
            format!("--tmpfs x size=1 {files}"),
            format!("--rlimit stack=1 {files}"),
            "--seccomp /s -- bwrap".to_owned(),
            "--seccomp /s --passwd /p --group /g --profile /f".to_owned(),
        ] {
            assert!(parse(args(&bad)).is_err(), "{bad}");
        }
    }
}
