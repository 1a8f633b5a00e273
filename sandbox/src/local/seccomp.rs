//! The seccomp filter every local sandbox runs under (bwrap `--seccomp`): what Docker's and
//! Flatpak's default profiles deny, so that a kernel interface nobody needs to write Python
//! is not there to be attacked from inside.
//!
//! Denied with `EPERM`: loading or unloading kernel code (`init_module`, `kexec_load`…),
//! kernel keyrings (`keyctl`, `add_key`, `request_key`), `bpf`, `perf_event_open`,
//! `userfaultfd`, io_uring, mounting and the new mount API, `pivot_root`, new namespaces
//! (`unshare`, `setns`, `clone` with a namespace flag), file handles
//! (`open_by_handle_at`), other processes' memory (`process_vm_readv`/`writev`), clocks,
//! `reboot`, swap, quotas, `acct`, NUMA policy calls, `iopl`/`ioperm`, `personality` other
//! than the harmless values, and the `TIOCSTI`/`TIOCLINUX` ioctls (typing into a terminal).
//! `clone3` answers `ENOSYS`, as in Docker: its flags live in memory a filter cannot read,
//! and libc then falls back to `clone`, whose flags it can. On x86-64 every x32-ABI call
//! answers `ENOSYS` (the same calls under other numbers), and a call from another
//! architecture (32-bit `int 0x80`) kills the process.
//!
//! Most of these already fail for a user without capabilities; the filter is the layer
//! under that, for the kernel bug that makes one of them reachable.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

/// Calls denied outright, on every architecture.
const DENIED: &[i64] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_adjtimex,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_get_mempolicy,
    libc::SYS_init_module,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_io_uring_setup,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mbind,
    libc::SYS_mount,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_move_pages,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_set_mempolicy,
    libc::SYS_set_mempolicy_home_node,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_umount2,
    libc::SYS_unshare,
    libc::SYS_userfaultfd,
    libc::SYS_vhangup,
];

/// Calls only x86-64 has (aarch64 has no `iopl`, `sysfs` and the other x86 relics).
#[cfg(target_arch = "x86_64")]
const DENIED_HERE: &[i64] = &[
    libc::SYS_ioperm,
    libc::SYS_iopl,
    libc::SYS_nfsservctl,
    libc::SYS_sysfs,
    libc::SYS__sysctl,
    libc::SYS_uselib,
    libc::SYS_ustat,
];
#[cfg(target_arch = "aarch64")]
const DENIED_HERE: &[i64] = &[];

/// `clone` flags that make a namespace. (`CLONE_NEWTIME`, 0x80, is only `clone3`'s and
/// `unshare`'s: in `clone` those bits are the exit signal.)
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `ioctl` requests denied: typing into a terminal, and the Linux console's.
const DENIED_IOCTLS: [u64; 2] = [0x5412 /* TIOCSTI */, 0x541C /* TIOCLINUX */];

/// `personality` values programs use (the default, `linux32`, `uname26` and querying);
/// others (`READ_IMPLIES_EXEC`, `ADDR_NO_RANDOMIZE`…) weaken the process's protections.
const ALLOWED_PERSONALITIES: [u64; 5] = [0, 0x0008, 0x0002_0000, 0x0002_0008, 0xffff_ffff];

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

#[cfg(target_arch = "x86_64")]
const SYS_CLONE3: u32 = 435;
#[cfg(target_arch = "aarch64")]
const SYS_CLONE3: u32 = 435;

/// The filter as the bytes bwrap reads from `--seccomp FD`: the `struct sock_filter` array,
/// in this machine's byte order.
pub fn program() -> Result<Vec<u8>, seccompiler::BackendError> {
    let condition =
        |index, op, value| SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .chain(DENIED_HERE)
        .map(|call| (*call, Vec::new()))
        .collect();
    let clone = NAMESPACE_FLAGS
        .iter()
        .map(|flag| SeccompRule::new(vec![condition(0, SeccompCmpOp::MaskedEq(*flag), *flag)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone);
    let ioctl = DENIED_IOCTLS
        .iter()
        .map(|request| SeccompRule::new(vec![condition(1, SeccompCmpOp::Eq, *request)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctl);
    let personality = ALLOWED_PERSONALITIES
        .iter()
        .map(|value| condition(0, SeccompCmpOp::Ne, *value))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_personality, vec![SeccompRule::new(personality)?]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        ARCH,
    )?;
    let body: BpfProgram = filter.try_into()?;
    let mut program = prefix();
    program.extend(body);
    Ok(program
        .iter()
        .flat_map(|instruction| {
            let mut bytes = [0u8; 8];
            bytes[..2].copy_from_slice(&instruction.code.to_ne_bytes());
            bytes[2] = instruction.jt;
            bytes[3] = instruction.jf;
            bytes[4..].copy_from_slice(&instruction.k.to_ne_bytes());
            bytes
        })
        .collect())
}

/// What runs before seccompiler's program (which checks the architecture first): `ENOSYS`
/// for `clone3`, and on x86-64 for every x32 call (numbers with bit 30 set), which that
/// program's per-number rules would not see.
fn prefix() -> Vec<sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const RET_ERRNO: u32 = 0x0005_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let enosys = RET_ERRNO | libc::ENOSYS as u32;
    let mut prefix = vec![op(LD_W_ABS, 0, 0, 0)];
    if ARCH == TargetArch::x86_64 {
        // -> the ENOSYS return, two further on.
        prefix.push(op(JGE_K, 2, 0, X32_SYSCALL_BIT));
    }
    prefix.extend([
        op(JEQ_K, 1, 0, SYS_CLONE3),
        op(JA, 0, 0, 1),
        op(RET_K, 0, 0, enosys),
    ]);
    prefix
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_program_compiles_to_whole_instructions_within_the_kernel_limit() {
        let program = program().unwrap();
        assert_eq!(program.len() % 8, 0);
        // BPF_MAXINSNS.
        assert!(
            program.len() / 8 < 4096,
            "{} instructions",
            program.len() / 8
        );
    }
}
