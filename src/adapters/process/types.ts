import type { Clock } from '../../kernel/clock.js'
import type { HostDefinition } from '../../ports/host-codecs.js'
import type { StoragePort } from '../../ports/storage.js'

/**
 * The program a process "VM" runs: an executable and its leading arguments. The adapter appends the VM's disk
 * paths (directories, resolved under {@link ProcessHostOptions.rootDir}) as further arguments and speaks the guest
 * control protocol with it over stdin and stdout: quiesce is a JSON-line request the guest acknowledges once it
 * holds its writes, not a signal (see `GuestRequest` / `GuestReply`).
 *
 * @public
 */
export interface GuestCommand {
  readonly command: string
  readonly args: readonly string[]
}

/**
 * Options of {@link processHost}.
 *
 * - `workDir`: where the adapter keeps its registry of mounts and fence tokens (created if needed). One adapter
 *   instance per `workDir` at a time.
 * - `hosts`: the logical hosts VMs are registered on (default: one host `local` with this machine's CPUs and memory).
 * - `guest`: what a VM runs (default: a small built-in Node guest that acknowledges quiesce and holds nothing).
 * - `rootDir`: the directory mount paths and VM disk paths are resolved under, like a chroot (default `/`: the
 *   paths are used as they are).
 * - `hookShell`: the shell hook scripts that are not executable files run with, as `<shell> -c` (default `/bin/sh`).
 * - `stopGraceMs`: how long a process has to exit after SIGTERM before it gets SIGKILL (default 5000).
 * - `controlTimeoutMs`: how long a guest has to acknowledge an unquiesce (default 5000).
 * - `clock`: the clock timeouts run on (default: the system clock).
 * - `freezeMechanism`: how `freezeActor` freezes a process (seed 004's mechanisms): `stop` (default) suspends its
 *   whole process group with SIGSTOP; `lowest-priority` leaves it running at the lowest scheduling priority
 *   (nice 19), starved by everything else, and `thawActor` gives back the priority it had. Only the group leader's
 *   priority changes, and restoring a priority higher than nice 19 needs root or CAP_SYS_NICE (else `E_ADAPTER`).
 * - `disks`: the site's storage, to give guests their real disks (default: none; disk paths and mount paths are
 *   plain directories). A VM's disk volumes are materialised at its disk paths before it powers on, and its disk
 *   paths are flushed back into the volumes when it is quiesced (once the guest holds its writes, or when it does
 *   not answer in time) and after it powers off; `mount` materialises the volume at the mount path and `dismount`
 *   flushes it back (not for read-only mounts). A volume keeps the directory as an image (a `DRKITDIR` header,
 *   a manifest and the file bytes; zeros mean an empty directory); only changed blocks are written. Flushes are
 *   written with the fence token of the call (a quiesce, which has none, uses the newest token the host accepted).
 *
 * @public
 */
export interface ProcessHostOptions {
  readonly workDir: string
  readonly hosts?: readonly HostDefinition[]
  readonly guest?: GuestCommand
  readonly rootDir?: string
  readonly hookShell?: string
  readonly stopGraceMs?: number
  readonly controlTimeoutMs?: number
  readonly clock?: Clock
  readonly freezeMechanism?: FreezeMechanism
  readonly disks?: { readonly storage: StoragePort }
}

/**
 * How a process host freezes an I/O actor: `stop` (SIGSTOP/SIGCONT) or `lowest-priority` (nice 19, then back).
 *
 * @public
 */
export type FreezeMechanism = 'stop' | 'lowest-priority'

/**
 * A plain application process to start as an I/O actor of a {@link ProcessHost}: its id (unique among the
 * host's actors and VMs), the command, the volumes it does I/O to, and optionally extra environment and a
 * working directory. It inherits the adapter's environment plus `DRKIT_ACTOR_ID`.
 *
 * @public
 */
export interface ProcessActorOptions {
  readonly id: string
  readonly command: string
  readonly args: readonly string[]
  readonly volumes: readonly string[]
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
}

/**
 * How a process ended: its exit code, or the signal that ended it (one of them is null).
 *
 * @public
 */
export interface ProcessExit {
  readonly code: number | null
  readonly signal: string | null
}
