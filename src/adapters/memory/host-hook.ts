import type { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { HookRequest, HookResult } from '../../ports/host.js'
import type { HookHandler } from './host-types.js'

/**
 * Runs a memory hook: calls `handler` in place of the script and answers what a script runner would. A handler
 * that has not answered after `request.timeoutMs` on `clock` counts as killed (`timedOut`, exit code null); one
 * that throws counts as a script that failed (exit code 1, the error on stderr). Rejects only with
 * `closedError()` when `closing` aborts first.
 */
export function runHookHandler(
  handler: HookHandler,
  request: HookRequest,
  clock: Clock,
  closing: AbortSignal,
  closedError: () => DrError,
): Promise<HookResult> {
  return new Promise<HookResult>((resolve, reject) => {
    const cleanups: Array<() => void> = []
    const finish = (): void => {
      for (const cleanup of cleanups.splice(0)) cleanup()
    }
    const onClose = (): void => {
      finish()
      reject(closedError())
    }
    closing.addEventListener('abort', onClose, { once: true })
    cleanups.push(() => closing.removeEventListener('abort', onClose))
    cleanups.push(
      clock.setTimer(request.timeoutMs, () => {
        finish()
        resolve({ exitCode: null, stdout: '', stderr: '', timedOut: true })
      }),
    )
    Promise.resolve()
      .then(() => handler(request))
      .then(
        (result) => {
          finish()
          resolve({ exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, timedOut: result.timedOut })
        },
        (error: unknown) => {
          finish()
          resolve({ exitCode: 1, stdout: '', stderr: error instanceof Error ? error.message : String(error), timedOut: false })
        },
      )
  })
}
