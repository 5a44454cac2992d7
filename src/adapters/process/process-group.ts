import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import os from 'node:os'
import { readFile } from 'node:fs/promises'
import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { FreezeMechanism, ProcessExit } from './types.js'

/** Process groups started by any process host of this Node process and not yet ended, by leader pid. */
const liveGroups = new Set<number>()
let exitHookInstalled = false

/**
 * Kills every group still alive when Node exits, so that a crashed or exiting embedder leaves no process behind
 * (the `exit` event runs only synchronous code, and `process.kill` is synchronous).
 */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const pid of liveGroups) signalGroup(pid, 'SIGKILL')
  })
}

/** Sends `signal` to the process group led by `pid`; false when the group is gone already. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * Waits until the kernel reports process `pid` stopped (`T` in `/proc/<pid>/stat`), so that a freeze is in
 * force, not merely requested, when it resolves. Gives up quietly after `limitMs` or where there is no `/proc`.
 * This waits on the kernel, so it runs on real time whatever clock the host was given.
 */
async function waitStopped(pid: number, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs
  for (;;) {
    let stat: string
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    } catch {
      return
    }
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if (state === 'T' || state === 't' || state === 'Z' || state === 'X' || Date.now() >= deadline) return
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** How to start a {@link ProcessGroup}. */
export interface GroupSpawn {
  readonly command: string
  readonly args: readonly string[]
  readonly env: NodeJS.ProcessEnv
  readonly stdio: StdioOptions
  readonly cwd?: string
}


/** The lowest scheduling priority (the highest nice value) on Linux and macOS. */
const LOWEST_PRIORITY = 19

/** Runs an `os` priority call, turning its system error into `E_ADAPTER` naming the process. */
function priorityCall<T>(call: () => T, pid: number): T {
  try {
    return call()
  } catch (error) {
    throw new DrError('E_ADAPTER', `process host: cannot change the scheduling priority of process ${pid}: ${error instanceof Error ? error.message : String(error)}`, {
      adapter: 'process',
      pid,
    })
  }
}
/**
 * A child process started in its own process group (session), so that signals reach everything it started:
 * freeze (SIGSTOP) and thaw (SIGCONT) the whole group, stop it with SIGTERM then SIGKILL, and kill any
 * leftover members once the leader has exited. Start one with {@link ProcessGroup.start}.
 */
export class ProcessGroup {
  readonly pid: number
  readonly child: ChildProcess
  /** Resolves when the leader has exited (never rejects). */
  readonly exited: Promise<ProcessExit>
  #exit: ProcessExit | undefined
  #frozen = false
  /** The leader's priority before a `lowest-priority` freeze, to give back at the thaw; undefined otherwise. */
  #savedPriority: number | undefined

  private constructor(child: ChildProcess, pid: number) {
    this.child = child
    this.pid = pid
    liveGroups.add(pid)
    this.exited = new Promise<ProcessExit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal }
        this.#frozen = false
        signalGroup(pid, 'SIGKILL')
        liveGroups.delete(pid)
        resolve(this.#exit)
      })
    })
  }

  /**
   * Spawns `spec` as the leader of a new process group. Resolves once the process runs; rejects with the
   * spawn error (the command does not exist, is not executable…).
   */
  static start(spec: GroupSpawn): Promise<ProcessGroup> {
    installExitHook()
    return new Promise<ProcessGroup>((resolve, reject) => {
      const child = spawn(spec.command, [...spec.args], {
        env: spec.env,
        stdio: spec.stdio,
        detached: true,
        ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      })
      child.once('error', reject)
      child.once('spawn', () => {
        child.removeListener('error', reject)
        child.on('error', () => undefined)
        const pid = child.pid
        if (pid === undefined) {
          reject(new DrError('E_ADAPTER', `process host: ${spec.command} started without a pid`, { adapter: 'process', command: spec.command }))
          return
        }
        resolve(new ProcessGroup(child, pid))
      })
    })
  }

  /** True until the leader has exited. */
  get running(): boolean {
    return this.#exit === undefined
  }

  /** True while the group is stopped by {@link ProcessGroup.freeze}. */
  get frozen(): boolean {
    return this.#frozen
  }

  /** How the leader ended, once it has. */
  get exit(): ProcessExit | undefined {
    return this.#exit
  }

  /**
   * Freezes the group. `stop` (default) stops every process of the group (SIGSTOP) and waits until the leader is
   * stopped; `lowest-priority` drops the leader to nice 19, keeping the priority it had for the thaw. Idempotent.
   */
  async freeze(mechanism: FreezeMechanism = 'stop'): Promise<void> {
    if (!this.running || this.#frozen) return
    if (mechanism === 'lowest-priority') {
      this.#savedPriority = priorityCall(() => os.getPriority(this.pid), this.pid)
      priorityCall(() => os.setPriority(this.pid, LOWEST_PRIORITY), this.pid)
      this.#frozen = true
      return
    }
    if (signalGroup(this.pid, 'SIGSTOP')) this.#frozen = true
    await waitStopped(this.pid, 1000)
  }

  /** Thaws the group the way it was frozen: SIGCONT, or the leader's priority from before the freeze. Idempotent. */
  thaw(): void {
    if (!this.running || !this.#frozen) return
    const saved = this.#savedPriority
    if (saved !== undefined) {
      priorityCall(() => os.setPriority(this.pid, saved), this.pid)
      this.#savedPriority = undefined
    } else {
      signalGroup(this.pid, 'SIGCONT')
    }
    this.#frozen = false
  }

  /** Kills the group at once (SIGKILL), without waiting. */
  kill(): void {
    if (this.running) signalGroup(this.pid, 'SIGKILL')
  }

  /**
   * Ends the group: SIGTERM (followed by SIGCONT when frozen, so it can act on it), then SIGKILL if the leader is
   * still alive after `graceMs`. Resolves when the leader has exited. Idempotent.
   */
  async stop(clock: Clock, graceMs: number): Promise<ProcessExit> {
    if (this.#exit !== undefined) return this.#exit
    signalGroup(this.pid, 'SIGTERM')
    if (this.#frozen) this.thaw()
    const cancel = clock.setTimer(graceMs, () => this.kill())
    try {
      return await this.exited
    } finally {
      cancel()
    }
  }
}
