import type { HostPort } from '../../ports/host.js'
import type { HookRecord } from './policy.js'

/**
 * What a failover or failback is about, as hooks receive it in their environment.
 *
 * @public
 */
export interface SwitchContext {
  readonly namespace: string
  readonly path: string
  readonly policy: string
  readonly mirrorId: string
  readonly workflowId: string
  readonly from: { readonly site: string; readonly share: string }
  readonly to: { readonly site: string; readonly share: string }
  readonly reason: string
}

/**
 * What running a hook came to: whether it succeeded (exit code 0, in time), and otherwise why not.
 *
 * @public
 */
export interface HookOutcome {
  readonly ok: boolean
  readonly exitCode: number | null
  readonly timedOut: boolean
  readonly message: string
}

/**
 * The environment a failover hook runs with: `DRKIT_PHASE` (`pre` / `post`), the link (`DRKIT_NAMESPACE`,
 * `DRKIT_LINK_PATH`), the policy, the mirror, the workflow id, the share it switches from and to, and why.
 *
 * @public
 */
export function hookEnvironment(context: SwitchContext, phase: 'pre' | 'post'): Record<string, string> {
  return {
    DRKIT_PHASE: phase,
    DRKIT_NAMESPACE: context.namespace,
    DRKIT_LINK_PATH: context.path,
    DRKIT_POLICY: context.policy,
    DRKIT_MIRROR_ID: context.mirrorId,
    DRKIT_WORKFLOW_ID: context.workflowId,
    DRKIT_FROM_SITE: context.from.site,
    DRKIT_FROM_SHARE: context.from.share,
    DRKIT_TO_SITE: context.to.site,
    DRKIT_TO_SHARE: context.to.share,
    DRKIT_REASON: context.reason,
  }
}

/**
 * Runs a failover hook through the host port with the failover context in its environment and the hook's
 * timeout. Never rejects: a host that cannot run it is reported as a failed outcome.
 *
 * @public
 */
export async function runFailoverHook(host: HostPort, hook: HookRecord, context: SwitchContext, phase: 'pre' | 'post'): Promise<HookOutcome> {
  try {
    const result = await host.runHook({ script: hook.script, args: hook.args, env: hookEnvironment(context, phase), timeoutMs: hook.timeoutMs })
    const ok = result.exitCode === 0 && !result.timedOut
    const message = ok
      ? 'ok'
      : result.timedOut
        ? `${phase}-failover hook "${hook.script}" timed out after ${hook.timeoutMs} ms`
        : `${phase}-failover hook "${hook.script}" exited with ${String(result.exitCode)}: ${result.stderr.slice(0, 500)}`
    return { ok, exitCode: result.exitCode, timedOut: result.timedOut, message }
  } catch (error) {
    return { ok: false, exitCode: null, timedOut: false, message: `${phase}-failover hook "${hook.script}" could not run: ${error instanceof Error ? error.message : String(error)}` }
  }
}
