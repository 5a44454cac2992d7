import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { HookRequest, HookResult } from '../../ports/host.js'
import { ProcessGroup } from './process-group.js'

/** How much of each of a hook's stdout and stderr is kept. */
const MAX_OUTPUT_BYTES = 64 * 1024
/** How long the output of a hook that has exited may take to drain (real time: it waits on the kernel's pipes). */
const DRAIN_MS = 1000

/** What a hook runs in: its shell, clock and the signal that the host is closing. */
export interface HookContext {
  readonly shell: string
  readonly clock: Clock
  readonly closing: AbortSignal
  readonly closedError: () => DrError
  /** Called with every group started, so the host can kill it on close; returns the function to forget it. */
  readonly track: (group: ProcessGroup) => () => void
}

/** The first {@link MAX_OUTPUT_BYTES} of a stream, with a note of how much was cut. */
class BoundedOutput {
  readonly #chunks: Buffer[] = []
  #kept = 0
  #dropped = 0
  readonly done: Promise<void>

  constructor(stream: Readable | null) {
    this.done = new Promise<void>((resolve) => {
      if (stream === null) return resolve()
      stream.on('data', (chunk: Buffer) => this.#add(chunk))
      stream.once('close', () => resolve())
      stream.on('error', () => resolve())
    })
  }

  #add(chunk: Buffer): void {
    const room = MAX_OUTPUT_BYTES - this.#kept
    if (room > 0) this.#chunks.push(chunk.subarray(0, room))
    this.#kept += Math.min(room, chunk.length)
    this.#dropped += Math.max(0, chunk.length - room)
  }

  text(): string {
    const text = Buffer.concat(this.#chunks).toString('utf8')
    return this.#dropped === 0 ? text : `${text}\n[drkit: ${this.#dropped} more bytes of output not kept]`
  }
}

/** True when `script` names an executable file (then it runs directly rather than through the shell). */
async function isExecutableFile(script: string): Promise<boolean> {
  if (!script.includes('/')) return false
  try {
    if (!(await stat(script)).isFile()) return false
    await access(script, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Runs a hook in its own process group: an executable file directly with `args`, anything else as
 * `<shell> -c <script> drkit-hook <args…>` (so the script sees its arguments as `$1`…). The environment is the
 * host's plus `request.env`. After `timeoutMs` the whole group is killed and the result says `timedOut` with
 * exit code null; once the hook exits, whatever it left running in its group is killed too. A script that cannot
 * start answers like a shell would (127 when it does not exist, 126 otherwise). Rejects only with
 * `closedError()` when the host closes first.
 */
export async function runHookProcess(request: HookRequest, context: HookContext): Promise<HookResult> {
  const direct = await isExecutableFile(request.script)
  const command = direct ? request.script : context.shell
  const args = direct ? request.args : ['-c', request.script, 'drkit-hook', ...request.args]
  let group: ProcessGroup
  try {
    group = await ProcessGroup.start({
      command,
      args,
      env: { ...process.env, ...request.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } catch (error) {
    const missing = typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT'
    const message = error instanceof Error ? error.message : String(error)
    return { exitCode: missing ? 127 : 126, stdout: '', stderr: message, timedOut: false }
  }
  const forget = context.track(group)
  try {
    return await watchHook(group, request.timeoutMs, context)
  } finally {
    forget()
  }
}

function watchHook(group: ProcessGroup, timeoutMs: number, context: HookContext): Promise<HookResult> {
  const stdout = new BoundedOutput(group.child.stdout)
  const stderr = new BoundedOutput(group.child.stderr)
  let timedOut = false
  return new Promise<HookResult>((resolve, reject) => {
    const cancelTimeout = context.clock.setTimer(timeoutMs, () => {
      timedOut = true
      group.kill()
    })
    const onClose = (): void => {
      cancelTimeout()
      group.kill()
      reject(context.closedError())
    }
    if (context.closing.aborted) onClose()
    context.closing.addEventListener('abort', onClose, { once: true })
    void group.exited.then(async (exit) => {
      cancelTimeout()
      context.closing.removeEventListener('abort', onClose)
      let drainTimer: NodeJS.Timeout | undefined
      await Promise.race([
        Promise.all([stdout.done, stderr.done]),
        new Promise<void>((done) => {
          drainTimer = setTimeout(done, DRAIN_MS)
        }),
      ])
      clearTimeout(drainTimer)
      group.child.stdout?.destroy()
      group.child.stderr?.destroy()
      resolve({ exitCode: timedOut ? null : exit.code, stdout: stdout.text(), stderr: stderr.text(), timedOut })
    })
  })
}
