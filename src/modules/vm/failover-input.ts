import * as t from 'io-ts'

/**
 * The workflow type of a failover (and of a test failover).
 *
 * @public
 */
export const VM_FAILOVER_WORKFLOW = 'vm.failover'

/**
 * Input of the failover workflow: plan, run id, who started it, for a test failover the isolated network, the
 * failed source hosts of a partial failover (null: all), and the site to fail over to (absent in runs journaled
 * before tertiary sites existed: the plan's destination).
 *
 * @public
 */
export const VmFailoverWorkflowInput = t.intersection([
  t.type({
    planId: t.string,
    runId: t.string,
    by: t.union([t.literal('administrator'), t.literal('dr-services')]),
    test: t.boolean,
    network: t.union([t.string, t.null]),
    failedHosts: t.union([t.null, t.array(t.string)]),
  }),
  t.partial({ site: t.string }),
])

/**
 * Input of one failover run.
 *
 * @public
 */
export type VmFailoverWorkflowInput = t.TypeOf<typeof VmFailoverWorkflowInput>
